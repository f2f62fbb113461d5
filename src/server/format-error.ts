import type { GraphQLFormattedError } from 'graphql';
import { PUBLIC_ERROR_CODES } from '../policy/codes';

/**
 * Lets Candor's coded errors through and masks everything else as INTERNAL_SERVER_ERROR, so no
 * stack trace, SQL text or driver message reaches a client.
 */
export function formatError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && PUBLIC_ERROR_CODES.has(code)) {
    const { stacktrace: _stacktrace, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}
