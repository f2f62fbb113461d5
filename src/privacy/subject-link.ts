import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { derivedKey } from '../config';

/**
 * Expiring links to a data subject's privacy page. A token is `2.<nonce>.<sealed>`: the subject and the
 * expiry, encrypted and authenticated with AES-256-GCM under a key derived from the server secret, so that
 * whoever sees the URL (a proxy's access log) learns nothing of whom it is for.
 *
 * Links of the first format (`<payload>.<signature>`: the payload readable, HMAC-signed) are still
 * accepted until they expire; none is issued any more, and none can live past MAX_LINK_TTL_DAYS.
 */
export type LinkCheck = { readonly ok: true; readonly subjectId: string } | { readonly ok: false; readonly problem: 'invalid' | 'expired' };

const SEALED_VERSION = '2';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export function createSubjectToken(secret: string, subjectId: string, expiresAt: Date): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', derivedKey(secret, 'candor-privacy-link/2'), nonce);
  const sealed = Buffer.concat([cipher.update(JSON.stringify({ s: subjectId, e: Math.floor(expiresAt.getTime() / 1000) }), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${SEALED_VERSION}.${nonce.toString('base64url')}.${sealed.toString('base64url')}`;
}

export function checkSubjectToken(secret: string, token: string | undefined, now: Date): LinkCheck {
  if (!token || token.length > 1_000) return { ok: false, problem: 'invalid' };
  const parts = token.split('.');
  const payload = parts.length === 3 && parts[0] === SEALED_VERSION ? opened(secret, parts[1], parts[2]) : parts.length === 2 ? signedPayload(secret, parts[0], parts[1]) : undefined;
  if (payload === undefined) return { ok: false, problem: 'invalid' };
  try {
    const { s, e } = JSON.parse(payload) as { s: unknown; e: unknown };
    if (typeof s !== 'string' || typeof e !== 'number') return { ok: false, problem: 'invalid' };
    if (e * 1000 <= now.getTime()) return { ok: false, problem: 'expired' };
    // A link issued for longer (before the cap, or by hand) is held to the cap from now on.
    if (e * 1000 > now.getTime() + MAX_LINK_TTL_DAYS * 86_400_000) return { ok: false, problem: 'invalid' };
    return { ok: true, subjectId: s };
  } catch {
    return { ok: false, problem: 'invalid' };
  }
}

/** The plaintext of a sealed token, or undefined when it was not sealed under this secret (or was altered). */
function opened(secret: string, nonceText: string, sealedText: string): string | undefined {
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (nonce.length !== NONCE_BYTES || sealed.length <= TAG_BYTES) return undefined;
  // One spelling per token: base64url's last character may carry unused bits, and a link altered only
  // there (or holding characters the decoder skips) would otherwise open the page as the original.
  if (nonce.toString('base64url') !== nonceText || sealed.toString('base64url') !== sealedText) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', derivedKey(secret, 'candor-privacy-link/2'), nonce);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** The payload of a first-format link whose signature holds, or undefined. */
function signedPayload(secret: string, payload: string, signature: string): string | undefined {
  if (!payload || !signature) return undefined;
  const expected = Buffer.from(createHmac('sha256', derivedKey(secret, 'candor-privacy-link/1')).update(payload).digest('base64url'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  return Buffer.from(payload, 'base64url').toString('utf8');
}

/** Parses a time-to-live such as `7d`, `12h`, `30m` (the unit is required). */
export function parseTtl(value: string): number {
  // With its unit: `30` alone could be meant as days or minutes, and the link is the page's only key.
  const match = /^(\d+)([dhm])$/.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`--ttl must look like 7d, 12h or 30m, got "${value}"`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'];
  const ms = Number(match[1]) * unit;
  // A link is the page's only key and cannot be revoked short of erasure: it must not outlive its use.
  if (ms > MAX_LINK_TTL_DAYS * 86_400_000) throw new Error(`--ttl must be at most ${MAX_LINK_TTL_DAYS}d, got "${value}"`);
  return ms;
}

/** The longest a privacy-page link may stay valid. */
export const MAX_LINK_TTL_DAYS = 30;
