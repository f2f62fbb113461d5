import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed, expiring links to a data subject's privacy page: `<payload>.<signature>`, the payload naming the
 * subject and the expiry, the signature an HMAC-SHA-256 under a key derived from the server secret.
 */
export type LinkCheck = { readonly ok: true; readonly subjectId: string } | { readonly ok: false; readonly problem: 'invalid' | 'expired' };

const key = (secret: string) => createHmac('sha256', secret).update('candor-privacy-link/1').digest();
const sign = (secret: string, payload: string) => createHmac('sha256', key(secret)).update(payload).digest('base64url');

export function createSubjectToken(secret: string, subjectId: string, expiresAt: Date): string {
  const payload = Buffer.from(JSON.stringify({ s: subjectId, e: Math.floor(expiresAt.getTime() / 1000) })).toString('base64url');
  return `${payload}.${sign(secret, payload)}`;
}

export function checkSubjectToken(secret: string, token: string | undefined, now: Date): LinkCheck {
  if (!token || token.length > 1_000) return { ok: false, problem: 'invalid' };
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) return { ok: false, problem: 'invalid' };
  const expected = Buffer.from(sign(secret, payload));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, problem: 'invalid' };
  try {
    const { s, e } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { s: unknown; e: unknown };
    if (typeof s !== 'string' || typeof e !== 'number') return { ok: false, problem: 'invalid' };
    if (e * 1000 <= now.getTime()) return { ok: false, problem: 'expired' };
    // A link issued for longer (before the cap, or by hand) is held to the cap from now on.
    if (e * 1000 > now.getTime() + MAX_LINK_TTL_DAYS * 86_400_000) return { ok: false, problem: 'invalid' };
    return { ok: true, subjectId: s };
  } catch {
    return { ok: false, problem: 'invalid' };
  }
}

/** Parses a time-to-live such as `7d`, `12h`, `30m` (default unit: days). */
export function parseTtl(value: string): number {
  const match = /^(\d+)([dhm]?)$/.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`--ttl must look like 7d, 12h or 30m, got "${value}"`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, '': 86_400_000 }[match[2] as 'd' | 'h' | 'm' | ''];
  const ms = Number(match[1]) * unit;
  // A link is the page's only key and cannot be revoked short of erasure: it must not outlive its use.
  if (ms > MAX_LINK_TTL_DAYS * 86_400_000) throw new Error(`--ttl must be at most ${MAX_LINK_TTL_DAYS}d, got "${value}"`);
  return ms;
}

/** The longest a privacy-page link may stay valid. */
export const MAX_LINK_TTL_DAYS = 30;
