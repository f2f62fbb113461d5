import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { isoTime } from '../../src/errors';

describe('a time given by a caller', () => {
  it.each([
    ['2026-11-01', '2026-11-01T00:00:00.000Z'],
    ['2026-11-01T12:30:00Z', '2026-11-01T12:30:00.000Z'],
    ['2026-11-01T12:30Z', '2026-11-01T12:30:00.000Z'],
    ['2026-11-01T12:30:00.123+02:00', '2026-11-01T10:30:00.123Z'],
    ['2026-11-01T12:30:00.123456Z', '2026-11-01T12:30:00.123Z'],
  ])('reads %s as %s, whatever the server time zone', (value, instant) => {
    expect(isoTime(value, '--from').toISOString()).toBe(instant);
    // In processes of their own: Node reads TZ at start (a test's process.env does not reach it).
    for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles', 'Asia/Kolkata']) {
      const script = `const { isoTime } = require(${JSON.stringify(join(projectRoot(), 'dist/src/errors.js'))}); process.stdout.write(new Date(2026, 0, 1).getTimezoneOffset() + ' ' + isoTime(${JSON.stringify(value)}, '--from').toISOString())`;
      const [offset, read] = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: tz }, encoding: 'utf8' }).split(' ');
      expect([tz, offset !== '0', read]).toEqual([tz, true, instant]);
    }
  });

  it('KILL reads the year limit in UTC, whatever the server time zone', () => {
    const script = `const { isoTime } = require(${JSON.stringify(join(projectRoot(), 'dist/src/errors.js'))}); process.stdout.write(isoTime('9999-12-31T23:00:00Z', 'expiresAt').toISOString())`;
    expect(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'Pacific/Kiritimati' }, encoding: 'utf8' })).toBe('9999-12-31T23:00:00.000Z');
  });

  it('refuses a time past the year 9999 in UTC (stored as text, +010000-… would sort before 2026)', () => {
    expect(() => isoTime('9999-12-31T23:00:00-14:00', 'expiresAt')).toThrow('expiresAt must fall before the year 10000 (in UTC), got "9999-12-31T23:00:00-14:00"');
    expect(isoTime('9999-12-31T23:00:00Z', 'expiresAt').toISOString()).toBe('9999-12-31T23:00:00.000Z');
  });

  it.each(['2026-11-01T00:00', '2026-11-01T00:00:00', '12', '01/11/2026', '2026-02-30', '2026-11-01 00:00Z', '-002026-11-01', '2026-11-01T25:00Z'])('refuses %s (no offset, or not ISO-8601)', (value) => {
    expect(() => isoTime(value, '--from')).toThrow(`--from must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "${value}"`);
  });
});
