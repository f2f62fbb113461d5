import { createHmac } from 'node:crypto';
import { checkSubjectToken, createSubjectToken, MAX_LINK_TTL_DAYS } from '../../src/privacy/subject-link';

describe('privacy-page links', () => {
  const secret = 'a-test-secret-of-some-length';
  const now = new Date('2026-11-30T12:00:00Z');
  const inAnHour = new Date(now.getTime() + 3_600_000);
  const subjectId = 'cus_0042_anna';

  it('open for the subject they were made for, until they expire', () => {
    const token = createSubjectToken(secret, subjectId, inAnHour);
    expect(checkSubjectToken(secret, token, now)).toEqual({ ok: true, subjectId });
    expect(checkSubjectToken(secret, token, inAnHour)).toEqual({ ok: false, problem: 'expired' });
  });

  it('tell whoever sees the URL nothing of whom they are for, and differ each time they are made', () => {
    const token = createSubjectToken(secret, subjectId, inAnHour);
    const encodings = [subjectId, ...['base64', 'base64url', 'hex'].map((encoding) => Buffer.from(subjectId).toString(encoding as BufferEncoding))];
    for (const encoding of encodings) expect(token).not.toContain(encoding.replace(/=+$/, ''));
    expect(Buffer.from(token.split('.')[2], 'base64url').toString('latin1')).not.toContain('cus_');
    expect(createSubjectToken(secret, subjectId, inAnHour)).not.toBe(token);
  });

  it('refuse a token altered anywhere, made under another secret, or of another shape', () => {
    const token = createSubjectToken(secret, subjectId, inAnHour);
    const [version, nonce, sealed] = token.split('.');
    const flipped = (text: string, at: number) => `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
    for (const altered of [`${version}.${flipped(nonce, 3)}.${sealed}`, `${version}.${nonce}.${flipped(sealed, 5)}`, `${version}.${nonce}.${flipped(sealed, sealed.length - 2)}`, `3.${nonce}.${sealed}`]) {
      expect(checkSubjectToken(secret, altered, now)).toEqual({ ok: false, problem: 'invalid' });
    }
    expect(checkSubjectToken('another-secret-of-some-length', token, now)).toEqual({ ok: false, problem: 'invalid' });
    // Every last character, whatever bits of it the decoder uses: one spelling per token.
    for (const last of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
      if (last === sealed.at(-1)) continue;
      expect(checkSubjectToken(secret, `${version}.${nonce}.${sealed.slice(0, -1)}${last}`, now)).toEqual({ ok: false, problem: 'invalid' });
    }
    for (const shape of [undefined, '', 'x', '2..', `${token}.x`, `2.${nonce}.${sealed.slice(0, 10)}`, 'x'.repeat(1_001)]) {
      expect(checkSubjectToken(secret, shape, now)).toEqual({ ok: false, problem: 'invalid' });
    }
  });

  it('hold a link made for longer than the cap to the cap', () => {
    const token = createSubjectToken(secret, subjectId, new Date(now.getTime() + (MAX_LINK_TTL_DAYS + 1) * 86_400_000));
    expect(checkSubjectToken(secret, token, now)).toEqual({ ok: false, problem: 'invalid' });
  });

  it('still open a link of the first format (readable, signed) until it expires, and refuse one altered', () => {
    // As the first format made them: the payload in base64url, an HMAC-SHA-256 under a key derived for it.
    const payload = Buffer.from(JSON.stringify({ s: subjectId, e: Math.floor(inAnHour.getTime() / 1000) })).toString('base64url');
    const key = createHmac('sha256', secret).update('candor-privacy-link/1').digest();
    const firstFormat = `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
    expect(checkSubjectToken(secret, firstFormat, now)).toEqual({ ok: true, subjectId });
    expect(checkSubjectToken(secret, firstFormat, inAnHour)).toEqual({ ok: false, problem: 'expired' });
    const forged = `${Buffer.from(JSON.stringify({ s: 'cus_someone_else', e: Math.floor(inAnHour.getTime() / 1000) })).toString('base64url')}.${firstFormat.split('.')[1]}`;
    expect(checkSubjectToken(secret, forged, now)).toEqual({ ok: false, problem: 'invalid' });
  });
});
