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
 * The access log could not be written: coded AUDIT_UNAVAILABLE (503), shown as is (the message says what
 * was and was not done, and what to do).
 */
export function auditUnavailable(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'AUDIT_UNAVAILABLE', http: { status: 503 } } });
}

/** A coded error whose message is meant for the caller (bad input, or the log unavailable). */
export function isCallerFacing(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && (error.extensions.code === 'BAD_USER_INPUT' || error.extensions.code === 'AUDIT_UNAVAILABLE');
}
