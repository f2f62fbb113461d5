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
