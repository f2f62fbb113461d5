import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { type FragmentDefinitionNode, type GraphQLNamedType, type GraphQLObjectType, type GraphQLSchema, GraphQLError, getNamedType, isInterfaceType, isObjectType, Kind, Lexer, type OperationDefinitionNode, type SelectionNode, type SelectionSetNode, Source, TokenKind, type ValidationRule, type ValueNode } from 'graphql';
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
 * plus no field suggestions (they would let a caller probe the schema); and Candor's own limit on the items
 * an operation's lists ask for together (`listItems`), which needs the request's variables.
 * Batched HTTP operations are refused altogether (Apollo's default, kept).
 */
export function queryLimits(limits: CandorConfig['limits']): { plugins: ApolloServerPlugin[]; validationRules: ValidationRule[] } {
  const armor = new ApolloArmor({
    maxDepth: { n: limits.depth, ...reject('QUERY_TOO_DEEP') },
    maxAliases: { n: limits.aliases, ...reject('TOO_MANY_ALIASES') },
    costLimit: { maxCost: limits.cost, ...reject('QUERY_TOO_COSTLY') },
    // Tokens are counted before anything else, in the context factory (`exceedsTokenLimit`), so the refusal is
    // coded and recorded like the other refusals; armor's parser plugin would surface as a generic error.
    maxTokens: { enabled: false },
    maxDirectives: { n: limits.directives, ...reject('TOO_MANY_DIRECTIVES') },
    blockFieldSuggestion: { enabled: true },
  }).protect();
  return { plugins: [...armor.plugins, listItemsLimit(limits.listItems)], validationRules: armor.validationRules };
}

/** Refuses a query whose lists ask for more than `limit` items together (QUERY_TOO_COSTLY). */
function listItemsLimit(limit: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, request, schema }) {
          const queryType = schema.getQueryType();
          if (operation?.operation !== 'query' || !queryType) return;
          const fragments = Object.fromEntries(document.definitions.filter((definition) => definition.kind === Kind.FRAGMENT_DEFINITION).map((fragment) => [fragment.name.value, fragment]));
          const items = listItems(operation, fragments, request.variables ?? {}, schema, queryType);
          if (items > limit) {
            throw new GraphQLError(`the operation asks for ${items} items from its lists together, more than ${limit} (CANDOR_MAX_LIST_ITEMS): ask for smaller pages — a list inside a list counts once per item of the enclosing one`, {
              extensions: { code: 'QUERY_TOO_COSTLY', http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}

/** The arguments that size a list (`customers(limit:)`, `payments(limit:)`, `accessLog(first:)`, `inbox(first:)`). */
const PAGE_SIZE_ARGUMENTS = ['limit', 'first'];

/**
 * How many items an operation's lists ask for together: each paged field's page size (as written, from a
 * variable, or the field's default), once per occurrence — aliases and fragments spread several times
 * included — and, for a paged list inside another, once per item of the enclosing lists
 * (`customers(limit: 100) { payments(limit: 20) }` asks for 100 + 100 × 20). graphql-armor's cost estimate
 * counts a selection once whatever its page size, so fifty aliased `customers(limit: 1000)` cost as little
 * as one; this bounds what one operation can read (and record).
 */
export function listItems(
  operation: OperationDefinitionNode,
  fragments: Readonly<Record<string, FragmentDefinitionNode>>,
  variables: Readonly<Record<string, unknown>>,
  schema: GraphQLSchema,
  rootType: GraphQLObjectType,
): number {
  const valueOf = (node: ValueNode | undefined, fallback: unknown): number => {
    const value =
      node === undefined ? fallback : node.kind === Kind.INT ? Number(node.value) : node.kind === Kind.VARIABLE ? (sent(node.name.value) ?? defaultOf(node.name.value) ?? fallback) : fallback;
    return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
  };
  /**
   * A variable's value as the request sent it: its own property only — `$constructor` or `$toString` not sent
   * would otherwise read as the object's inherited function, count as nothing, and run with its default.
   */
  const sent = (variable: string): unknown => (Object.hasOwn(variables, variable) ? variables[variable] : undefined);
  /** A variable's default as written in the operation (the Int and Boolean ones are what is read here). */
  const defaultOf = (variable: string): unknown => {
    const fallback = operation.variableDefinitions?.find((candidate) => candidate.variable.name.value === variable)?.defaultValue;
    return fallback?.kind === Kind.INT ? Number(fallback.value) : fallback?.kind === Kind.BOOLEAN ? fallback.value : undefined;
  };
  /** Whether `@skip`/`@include` leave the selection out of the execution (as graphql-js reads them). */
  const leftOut = (selection: SelectionNode): boolean =>
    (selection.directives ?? []).some((directive) => {
      if (directive.name.value !== 'skip' && directive.name.value !== 'include') return false;
      const condition = directive.arguments?.find((argument) => argument.name.value === 'if')?.value;
      const value = condition?.kind === Kind.BOOLEAN ? condition.value : condition?.kind === Kind.VARIABLE ? (sent(condition.name.value) ?? defaultOf(condition.name.value)) : undefined;
      return directive.name.value === 'skip' ? value === true : value === false;
    });
  /** The type a fragment's selection applies to (its type condition, or the enclosing type without one). */
  const conditionType = (name: string | undefined, enclosing: GraphQLNamedType) => (name === undefined ? enclosing : (schema.getType(name) ?? enclosing));
  /** The items `selectionSet` asks for, on `parentType`, once for each of `copies` enclosing items. */
  const count = (selectionSet: SelectionSetNode, parentType: GraphQLNamedType, copies: number, spreading: ReadonlySet<string>): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (leftOut(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        const field = isObjectType(parentType) || isInterfaceType(parentType) ? parentType.getFields()[selection.name.value] : undefined;
        if (!field) continue;
        const argument = field.args.find((candidate) => PAGE_SIZE_ARGUMENTS.includes(candidate.name));
        const pageSize = argument ? valueOf(selection.arguments?.find((given) => given.name.value === argument.name)?.value, argument.defaultValue) : undefined;
        if (pageSize !== undefined) total += copies * pageSize;
        // A paged list's items each hold what is selected inside it; any other field, one of it per enclosing item.
        if (selection.selectionSet) total += count(selection.selectionSet, getNamedType(field.type), pageSize === undefined ? copies : copies * pageSize, spreading);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += count(selection.selectionSet, conditionType(selection.typeCondition?.name.value, parentType), copies, spreading);
      } else if (!spreading.has(selection.name.value) && fragments[selection.name.value]) {
        // Validation refuses cycles; the guard only keeps this walk finite whatever it is given.
        const fragment = fragments[selection.name.value];
        total += count(fragment.selectionSet, conditionType(fragment.typeCondition.name.value, parentType), copies, new Set([...spreading, selection.name.value]));
      }
    }
    return total;
  };
  return count(operation.selectionSet, rootType, 1, new Set());
}
