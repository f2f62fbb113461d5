import { GraphQLError } from 'graphql';

/**
 * Bad input from a caller (GraphQL argument, CLI flag, import row): coded BAD_USER_INPUT, shown as is,
 * and raised before anything is written.
 */
export function badInput(message: string, details: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...details } });
}

export function isBadInput(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && error.extensions.code === 'BAD_USER_INPUT';
}

/**
 * The subject is not (or no longer) a customer: bad input, tagged so that callers tell it from others without
 * reading the message; `where` names the input that gave it (a mutation's `subjectId` field by default).
 */
export function unknownSubject(message: string, where: { field: string } | { argument: string } = { field: 'subjectId' }): GraphQLError {
  return badInput(message, { ...where, reason: 'UNKNOWN_SUBJECT' });
}

export function isUnknownSubject(error: unknown): boolean {
  return isBadInput(error) && error.extensions.reason === 'UNKNOWN_SUBJECT';
}

/**
 * The access log could not be written: coded AUDIT_UNAVAILABLE (503), shown as is (the message says what
 * was and was not done, and what to do).
 */
export function auditUnavailable(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'AUDIT_UNAVAILABLE', http: { status: 503 } } });
}

/** The access log does not verify: coded AUDIT_LOG_BROKEN, for work that must not rest on it (a report). */
export function auditLogBroken(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'AUDIT_LOG_BROKEN' } });
}

/** A coded error whose message is meant for the caller (bad input, the log unavailable or broken). */
export function isCallerFacing(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && ['BAD_USER_INPUT', 'AUDIT_UNAVAILABLE', 'AUDIT_LOG_BROKEN'].includes(String(error.extensions.code));
}

/** A page size given by a caller (`first`, `limit`): a whole number from `min` to `max`, else bad input naming `argument`. */
/**
 * Whether an argument's value was given: an empty string is a value (matched, or refused as an unknown subject or
 * time), never the argument left out — an unset template variable must not read as "every record" or "none".
 */
export const isGiven = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null;

export function checkPageSize(argument: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw badInput(`${argument} must be between ${min} and ${max}`, { argument });
}

/** What `isoTime` accepts, said for the descriptions of the arguments it reads. */
export const ISO_TIME_ACCEPTED =
  "an ISO-8601 date (2026-11-01, read as midnight UTC) or a date and time with its offset (2026-11-01T12:00:00Z, 2026-11-01T14:00:00+02:00); a time without an offset is refused rather than read in the server's time zone";

/**
 * An ISO-8601 date or time given by a caller (`2026-11-01`, `2026-11-01T12:00:00Z`), as a Date; anything
 * else — `12`, `01/11/2026`, a day the month does not have, a time without its offset (which would be read
 * in the server's own time zone) — is bad input naming `what`. A date alone is midnight UTC.
 */
export function isoTime(value: string, what: string, details: Record<string, unknown> = {}): Date {
  const parsed = new Date(value);
  // Hours 00–23 (Date reads 24:00 as the next day's midnight), minutes and seconds 00–59, offsets up to ±14:00 (the widest in use).
  const day = /^(\d{4})-(\d{2})-(\d{2})(?:$|T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)$)/.exec(value);
  // Date rolls 2026-02-30 over to 2 March: the calendar day must survive parsing.
  if (!day || Number.isNaN(parsed.getTime()) || new Date(`${day[1]}-${day[2]}-${day[3]}T00:00:00Z`).toISOString().slice(0, 10) !== `${day[1]}-${day[2]}-${day[3]}`) {
    throw badInput(`${what} must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "${value}"`, details);
  }
  // Stored as ISO text and compared as such: a year past 9999 once in UTC (+010000-…) would sort before 2026.
  if (parsed.getUTCFullYear() > 9999) throw badInput(`${what} must fall before the year 10000 (in UTC), got "${value}"`, details);
  return parsed;
}
