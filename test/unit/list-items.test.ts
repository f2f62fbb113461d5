import 'reflect-metadata';
import { buildSchema, type FragmentDefinitionNode, type GraphQLSchema, Kind, type OperationDefinitionNode, parse } from 'graphql';
import { loadConfig } from '../../src/config';
import { buildCandorSchema } from '../../src/graphql/schema';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { exceedsTokenLimit, listItems } from '../../src/server/query-limits';

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await buildCandorSchema(loadConfiguredTaxonomy(loadConfig({}, {})));
});

/** The items `query`'s operation asks for from its lists together, with `variables`. */
function itemsOf(query: string, variables: Record<string, unknown> = {}): number {
  const document = parse(query);
  const operation = document.definitions.find((definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION)!;
  const fragments = Object.fromEntries(
    document.definitions.filter((definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION).map((fragment) => [fragment.name.value, fragment]),
  );
  return listItems(operation, fragments, variables, schema, schema.getQueryType()!);
}

describe('listItems: what an operation asks of its lists together', () => {
  it.each<[string, string, Record<string, unknown>, number]>([
    ['a root list', '{ customers(limit: 100) { id } }', {}, 100],
    ['a root list at its default page', '{ customers { id } }', {}, 20],
    ['a sent variable over its default', 'query($n: Int = 1) { customers(limit: $n) { id } }', { n: 400 }, 400],
    ['lists paged by `first`', '{ accessLog(first: 200) { __typename } inbox(first: 30) { id } }', {}, 230],
    ['aliases, each counted', '{ a: customers(limit: 100) { id } b: customers(limit: 50) { id } }', {}, 150],
    ['a paged relation: once per enclosing item', '{ customers(limit: 100) { payments(limit: 5) { id } } }', {}, 100 + 100 * 5],
    ['relations at their default page (10)', '{ customers(limit: 10) { payments { id } watchHistory { title } } }', {}, 10 + 10 * 10 + 10 * 10],
    ['a relation of one customer: once', '{ customer(id: "x") { payments(limit: 500) { id } } }', {}, 500],
    ['page sizes from variables and their defaults', 'query($n: Int = 7, $m: Int!) { customers(limit: $m) { payments(limit: $n) { id } } }', { m: 10 }, 10 + 10 * 7],
    ['a fragment spread twice counts twice', 'fragment P on Customer { payments(limit: 3) { id } } { customers(limit: 2) { ...P ...P } }', {}, 2 + 2 * 3 + 2 * 3],
    ['an inline fragment inside a list', '{ customers(limit: 4) { ... on Customer { watchHistory(limit: 2) { title } } } }', {}, 4 + 4 * 2],
    ['a zero or negative page asks for nothing', '{ customers(limit: 0) { payments(limit: 5) { id } } a: customers(limit: -3) { id } }', {}, 0],
    ['lists without a page size do not count', '{ customers(limit: 2) { favoriteGenres } }', {}, 2],
    ['what @skip or @include leaves out does not count', '{ customers(limit: 5) { a: payments @include(if: false) { id } b: payments @skip(if: true) { id } c: payments(limit: 1) @skip(if: false) { id } } }', {}, 5 + 5],
    ['a variable named like an inherited property, not sent, reads its default', 'query($constructor: Int = 500, $toString: Int = 3) { customers(limit: $toString) { payments(limit: $constructor) { id } } }', {}, 3 + 3 * 500],
    ['the inbox paged on: `after` is no page size, `first` counts', '{ inbox(unansweredOnly: false, first: 300, after: "1200") { id } }', {}, 300],
    ['the inbox paged on at its default page (50)', 'query($after: ID) { inbox(after: $after) { id } }', { after: '7' }, 50],
    ['nor from variables or their defaults', 'query($no: Boolean!, $yes: Boolean = true) { customers(limit: 5) { payments @include(if: $no) { id } ... on Customer @skip(if: $yes) { watchHistory { title } } } }', { no: false }, 5],
  ])('%s', (_, query, variables, expected) => {
    expect(itemsOf(query, variables)).toBe(expected);
  });
});

describe('KILL listItems, lists three deep', () => {
  it('a list inside a list inside a list counts once per item of both enclosing lists', () => {
    const nested = buildSchema('type Query { as(limit: Int = 10): [A] } type A { bs(limit: Int = 10): [B] } type B { cs(limit: Int = 10): [C] } type C { x: Int }');
    const operation = parse('{ as(limit: 2) { bs(limit: 3) { cs(limit: 4) { x } } } }').definitions[0] as OperationDefinitionNode;
    expect(listItems(operation, {}, {}, nested, nested.getQueryType()!)).toBe(2 + 2 * 3 + 2 * 3 * 4);
  });
});

describe('KILL exceedsTokenLimit', () => {
  it('refuses more tokens than the limit, not the limit itself; a lexer error is the parser\'s to report', () => {
    expect(exceedsTokenLimit('{ a b }', 4)).toBe(false);
    expect(exceedsTokenLimit('{ a b }', 3)).toBe(true);
    expect(exceedsTokenLimit('"unterminated', 5)).toBe(false);
  });
});
