import { ApolloArmor } from '@escape.tech/graphql-armor';
import { GraphQLError, Lexer, Source, TokenKind } from 'graphql';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import type { CandorConfig } from '../config';
import type { QUERY_LIMIT_CODES } from '../policy/codes';

/**
 * Reports each kind of refusal as a validation error carrying its own code (graphql-armor's own errors
 * are thrown out of the visitor, uncoded); `formatError` restores the code Apollo overwrites.
 */
const coded =
  (code: (typeof QUERY_LIMIT_CODES)[number]): GraphQLArmorRejectCallback =>
  (context, error) => {
    const coded = new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code } });
    // Validation rules report through their context; the token limit runs in the parser, with none.
    if (context) context.reportError(coded);
    else throw coded;
  };
const reject = (code: (typeof QUERY_LIMIT_CODES)[number]) => ({ onReject: [coded(code)], propagateOnRejection: false });

/** True when `query` has more than `limit` tokens (graphql-js's own lexer; stops counting at the limit). */
export function exceedsTokenLimit(query: string, limit: number): boolean {
  const lexer = new Lexer(new Source(query));
  try {
    for (let count = 0; lexer.advance().kind !== TokenKind.EOF; count++) if (count >= limit) return true;
  } catch {
    return false; // a syntax error is reported by the parser, with its position
  }
  return false;
}

/**
 * Query limits from graphql-armor, a maintained library: depth, aliases, cost, tokens and directives,
 * plus no field suggestions (they would let a caller probe the schema). Batched HTTP operations are refused
 * altogether (Apollo's default, kept).
 */
export function queryLimits(limits: CandorConfig['limits']) {
  return new ApolloArmor({
    maxDepth: { n: limits.depth, ...reject('QUERY_TOO_DEEP') },
    maxAliases: { n: limits.aliases, ...reject('TOO_MANY_ALIASES') },
    costLimit: { maxCost: limits.cost, ...reject('QUERY_TOO_COSTLY') },
    // Tokens are counted before anything else, in the context factory (`exceedsTokenLimit`), so the refusal is
    // coded and recorded like the other refusals; armor's parser plugin would surface as a generic error.
    maxTokens: { enabled: false },
    maxDirectives: { n: limits.directives, ...reject('TOO_MANY_DIRECTIVES') },
    blockFieldSuggestion: { enabled: true },
  }).protect();
}
