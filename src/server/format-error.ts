import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { PUBLIC_ERROR_CODES, QUERY_LIMIT_CODES } from '../policy/codes';

const LIMIT_CODES: ReadonlySet<unknown> = new Set(QUERY_LIMIT_CODES);
/** Apollo's refusal of introspection tells how to turn it on in Apollo's own code; Candor has a setting for it. */
const INTROSPECTION_OFF = 'introspection is switched off (the default in production): CANDOR_INTROSPECTION=true turns it on';

/**
 * Lets Candor's coded errors through and masks everything else as INTERNAL_SERVER_ERROR, so no
 * stack trace, SQL text or driver message reaches a client. Query-limit refusals get back the code the
 * limit gave them (Apollo reports every validation error as GRAPHQL_VALIDATION_FAILED).
 */
export function formatError(formatted: GraphQLFormattedError, error?: unknown): GraphQLFormattedError {
  const limitCode = error instanceof GraphQLError && error.originalError instanceof GraphQLError ? error.originalError.extensions?.code : undefined;
  // Apollo gives an error raised without a code INTERNAL_SERVER_ERROR before it gets here.
  const given = formatted.extensions?.code;
  const uncoded = given === undefined || given === 'INTERNAL_SERVER_ERROR' ? uncodedRequestError(formatted.message, error) : undefined;
  const code = LIMIT_CODES.has(limitCode) ? limitCode : (uncoded?.code ?? given);
  if (typeof code === 'string' && PUBLIC_ERROR_CODES.has(code)) {
    const { stacktrace: _stacktrace, ...extensions } = formatted.extensions ?? {};
    const message = extensions.validationErrorCode === 'INTROSPECTION_DISABLED' ? INTROSPECTION_OFF : (uncoded?.message ?? formatted.message);
    return { ...formatted, message, extensions: { ...extensions, code } };
  }
  return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}

/**
 * Errors graphql-js and Apollo raise without a code for a request that is wrong, not for a failure: an
 * argument's value refused as execution reaches it (`$limit: null` for an `Int!` with a default, which
 * validation lets through) and Apollo's persisted-query checks. Only GraphQL errors without a cause of their
 * own, and only these whole messages, which name an argument and a type and nothing else: a resolver's
 * failure (a driver error, any other text) stays masked.
 */
const UNCODED_REQUEST_ERRORS: ReadonlyArray<{ readonly pattern: RegExp; readonly code: string; readonly message?: (match: RegExpExecArray) => string }> = [
  // Whole messages, which carry names and types only: no other text passes.
  { pattern: /^Argument "\w+" of (required type "[\w[\]!]+" was not provided|non-null type "[\w[\]!]+" must not be null)\.$/, code: 'BAD_USER_INPUT' },
  // An argument's literal with a variable in it that is null where its input field needs a value (`input: {
  // explicit: $e }`): graphql-js prints the whole literal, which is answered in a sentence of our own instead.
  {
    pattern: /^Argument "(\w+)" has invalid value [\s\S]*\.$/,
    code: 'BAD_USER_INPUT',
    message: ([, argument]) => `Argument "${argument}" has an invalid value: a variable in it is null or missing where its field needs a value.`,
  },
  { pattern: /^(provided sha does not match query|Unsupported persisted query version)$/, code: 'BAD_REQUEST' },
];

function uncodedRequestError(message: string, error: unknown): { readonly code: string; readonly message?: string } | undefined {
  const raised = error instanceof GraphQLError && error.originalError instanceof GraphQLError ? error.originalError : error;
  if (!(raised instanceof GraphQLError) || raised.originalError) return undefined;
  for (const { pattern, code, message: rewrite } of UNCODED_REQUEST_ERRORS) {
    const match = pattern.exec(message);
    if (match) return { code, message: rewrite?.(match) };
  }
  return undefined;
}

/** What operators are told of a masked error: its kind and code only. */
export interface MaskedCause {
  readonly error: string;
  readonly code: string | null;
  readonly path: string | null;
}

/** Where a masked error's cause rides on its formatted error until its request's log line is written; never serialised. */
const MASKED_CAUSE = Symbol('candor.maskedCause');

/**
 * `formatError`, keeping on each error it masks what an operator needs to know (read by `maskedCauseOf`
 * where the request id is at hand): the error's class and its driver or system code (`23505`,
 * `ECONNRESET`), never its message — a driver's message can quote the row's values (`Key (email)=(…)
 * already exists`).
 */
export function formatErrorKeepingCause(formatted: GraphQLFormattedError, error?: unknown): GraphQLFormattedError {
  const answered = formatError(formatted, error);
  // No code Candor lets through is INTERNAL_SERVER_ERROR: this one was masked here.
  if (answered.extensions?.code === 'INTERNAL_SERVER_ERROR') Object.defineProperty(answered, MASKED_CAUSE, { value: causeOf(error, formatted.path?.join('.') ?? null) });
  return answered;
}

/** The cause `formatErrorKeepingCause` kept on an error it masked. */
export function maskedCauseOf(formatted: GraphQLFormattedError): MaskedCause | undefined {
  return (formatted as { [MASKED_CAUSE]?: MaskedCause })[MASKED_CAUSE];
}

/** What an error would be masked as, when it would be: an error thrown before any response is formatted (building the context). */
export function maskedCause(error: unknown): MaskedCause | undefined {
  const code = error instanceof GraphQLError ? error.extensions?.code : undefined;
  const formatted = formatError({ message: error instanceof Error ? error.message : String(error), extensions: { code: code ?? 'INTERNAL_SERVER_ERROR' } }, error);
  return formatted.extensions?.code === 'INTERNAL_SERVER_ERROR' ? causeOf(error, null) : undefined;
}

/**
 * pg-pool's refusal when no connection of the pool came free in time: a plain Error without a code, which
 * operators could not tell from any other failure (found in review: a table locked under load looked like
 * an unexplained error). Its message holds no value, so it is matched whole.
 */
const POOL_EXHAUSTED = 'timeout exceeded when trying to connect';
const POOL_EXHAUSTED_CODE = 'CONNECTION_POOL_EXHAUSTED';

function causeOf(error: unknown, path: string | null): MaskedCause {
  const cause = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  const code = cause instanceof Error && cause.message === POOL_EXHAUSTED ? POOL_EXHAUSTED_CODE : (cause as { code?: unknown } | undefined)?.code;
  return { error: cause instanceof Error ? cause.constructor.name : typeof cause, code: typeof code === 'string' || typeof code === 'number' ? String(code) : null, path };
}
