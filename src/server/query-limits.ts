import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { GraphQLArmorRejectCallback } from '@escape.tech/graphql-armor-types';
import type { CandorConfig } from '../config';
import type { QUERY_LIMIT_CODES } from '../policy/codes';

/** Gives each kind of refusal its own code (graphql-armor reports them all as validation failures). */
const coded =
  (code: (typeof QUERY_LIMIT_CODES)[number]): GraphQLArmorRejectCallback =>
  (_context, error) => {
    (error.extensions as Record<string, unknown>).code = code;
  };

/**
 * Query limits from graphql-armor, a maintained library: depth, aliases, cost, tokens and directives,
 * plus no field suggestions (they would let a caller probe the schema). Batched HTTP operations are refused
 * altogether (Apollo's default, kept).
 */
export function queryLimits(limits: CandorConfig['limits']) {
  return new ApolloArmor({
    maxDepth: { n: limits.depth, onReject: [coded('QUERY_TOO_DEEP')] },
    maxAliases: { n: limits.aliases, onReject: [coded('TOO_MANY_ALIASES')] },
    costLimit: { maxCost: limits.cost, onReject: [coded('QUERY_TOO_COSTLY')] },
    maxTokens: { n: limits.tokens, onReject: [coded('TOO_MANY_TOKENS')] },
    maxDirectives: { n: limits.directives, onReject: [coded('TOO_MANY_DIRECTIVES')] },
    blockFieldSuggestion: { enabled: true },
  }).protect();
}
