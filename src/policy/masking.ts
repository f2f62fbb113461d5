import { createHmac } from 'node:crypto';

/**
 * How a category's value is reduced when the taxonomy allows a masked release for a purpose. Each
 * strategy reveals at most what its description says, whatever the input: an empty, short or malformed
 * value yields the fully masked form (or null), never the value itself. The description is what a masked
 * field's description in the schema shows (Apollo Sandbox's docs panel): what the masked value looks like.
 */
export const MASK_STRATEGIES = {
  partial_email: 'the first character of the local part (when it has at least 3) and the domain: j***@example.com; *** when the value is not an address',
  year: 'the year of an ISO date only: 1990; null when the value is not a date',
  city: 'a "latitude,longitude" position rounded to 0.1° (about 11 km, city level): 52.5,13.4; null when the value is not such a position',
  keyed_hash: 'kh_ and 16 hex digits: a keyed hash (HMAC-SHA-256 under the server key, 64 bits), equal for equal values: joins without the value',
} as const;
export type MaskStrategy = keyof typeof MASK_STRATEGIES;

export function isMaskStrategy(name: string): name is MaskStrategy {
  return Object.prototype.hasOwnProperty.call(MASK_STRATEGIES, name);
}

/** Applies a strategy to a value (each element of a list); null and undefined stay null. */
export type Masker = (strategy: MaskStrategy, value: unknown) => unknown;

const FULLY_MASKED = '***';

/** A masker whose keyed hashes are computed under `key` (derived from the server secret). */
export function createMasker(key: Buffer): Masker {
  const maskOne = (strategy: MaskStrategy, value: unknown): string | null => {
    if (value === null || value === undefined) return null;
    const text = String(value);
    switch (strategy) {
      case 'partial_email':
        return partialEmail(text);
      case 'year':
        return yearOf(text);
      case 'city':
        return cityLevel(text);
      case 'keyed_hash':
        return `kh_${createHmac('sha256', key).update(text).digest('hex').slice(0, 16)}`;
    }
  };
  return (strategy, value) => (Array.isArray(value) ? value.map((element) => maskOne(strategy, element)) : maskOne(strategy, value));
}

/**
 * A domain name as an address ends with one: labels of letters (with their combining marks and joiners, as
 * Indic and Thai names need), digits and hyphens, at least two, the last holding a letter (no top-level
 * domain is all digits). Anything after an "@" that is not one (a dotted phone number, an IP address, the
 * rest of a sentence) is not shown.
 */
const LABEL = '[\\p{L}\\p{N}](?:[\\p{L}\\p{N}\\p{M}\\u200c\\u200d-]*[\\p{L}\\p{N}\\p{M}])?';
const DOMAIN = new RegExp(`^(?:${LABEL}\\.)+(?=[^.]*\\p{L})${LABEL}$`, 'u');

/** Keeps the domain and, when the local part has at least 3 characters, its first one; the length never shows. */
function partialEmail(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0 || !DOMAIN.test(text.slice(at + 1)) || /\s/.test(text.slice(0, at))) return FULLY_MASKED;
  // Characters are code points: a UTF-16 count would call "😀a" three characters and show half of it.
  const local = [...text.slice(0, at)];
  const domain = text.slice(at + 1);
  return `${local.length >= 3 ? local[0] : ''}${FULLY_MASKED}@${domain}`;
}

/** The year of an ISO date (`1990-04-17`, or a time on it): a calendar day, or nothing. */
function yearOf(text: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(text);
  if (!match) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: that one reads the years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? match[1] : null;
}

function cityLevel(text: string): string | null {
  const match = /^\s*(-?\d{1,3}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$/.exec(text);
  if (!match) return null;
  const [latitude, longitude] = [Number(match[1]), Number(match[2])];
  if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return null;
  // Rounded first: toFixed would keep the sign of -0.04 ("-0.0"), half a tenth of a degree more than it says.
  const tenth = (degrees: number) => ((Math.round(degrees * 10) / 10) || 0).toFixed(1);
  return `${tenth(latitude)},${tenth(longitude)}`;
}
