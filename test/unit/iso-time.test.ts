import { isoTime } from '../../src/errors';

describe('a time given by a caller', () => {
  it.each([
    ['2026-11-01', '2026-11-01T00:00:00.000Z'],
    ['2026-11-01T12:30:00Z', '2026-11-01T12:30:00.000Z'],
    ['2026-11-01T12:30Z', '2026-11-01T12:30:00.000Z'],
    ['2026-11-01T12:30:00.123+02:00', '2026-11-01T10:30:00.123Z'],
  ])('reads %s as %s, whatever the server time zone', (value, instant) => {
    expect(isoTime(value, '--from').toISOString()).toBe(instant);
  });

  it.each(['2026-11-01T00:00', '2026-11-01T00:00:00', '12', '01/11/2026', '2026-02-30', '2026-11-01 00:00Z'])('refuses %s (no offset, or not ISO-8601)', (value) => {
    expect(() => isoTime(value, '--from')).toThrow(`--from must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "${value}"`);
  });
});
