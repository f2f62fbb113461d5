import { ApolloArmor } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
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
    context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code } }));
  };
const reject = (code: (typeof QUERY_LIMIT_CODES)[number]) => ({ onReject: [coded(code)], propagateOnRejection: false });

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
    maxTokens: { n: limits.tokens, ...reject('TOO_MANY_TOKENS') },
    maxDirectives: { n: limits.directives, ...reject('TOO_MANY_DIRECTIVES') },
    blockFieldSuggestion: { enabled: true },
  }).protect();
}
