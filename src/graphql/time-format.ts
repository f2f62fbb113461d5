/**
 * The form of the times Candor itself writes (each goes through `Date.prototype.toISOString`), for the
 * descriptions of the fields that return one: a client parsing them needs the exact form.
 */
export const WRITTEN_TIME = 'ISO-8601 in UTC, with milliseconds: 2026-11-01T12:00:00.000Z';
