import { execute, GraphQLError, GraphQLID, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString, parse } from 'graphql';
import { divergesOnGraphqlJit, fieldPlacesOf, JitExecutor, jitGateway } from '../../src/server/jit-executor';

/** A small schema with a withheld-style field (resolves to a located, coded error), a failing one and a list. */
function testSchema(calls: { items: number }) {
  const Item = new GraphQLObjectType({
    name: 'Item',
    fields: {
      id: { type: new GraphQLNonNull(GraphQLID) },
      secret: {
        type: GraphQLString,
        // A coded error in a leaf's place that already carries its path, as the leaf guard builds one for a leaf selected once.
        resolve: (item: { id: string }, _args, _context, info) =>
          item.id === 'b' ? new GraphQLError('Item.secret withheld', { nodes: info.fieldNodes, path: pathOf(info.path), extensions: { code: 'CONSENT_REQUIRED' } }) : `secret of ${item.id}`,
      },
      broken: {
        type: GraphQLString,
        resolve: () => {
          throw new Error('driver detail');
        },
      },
    },
  });
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        items: {
          type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(Item))),
          args: { first: { type: new GraphQLNonNull(GraphQLID) } },
          resolve: async (_root, args: { first: string }, context: { prefix: string }) => {
            calls.items++;
            return [{ id: 'a' }, { id: 'b' }].filter((item) => item.id >= args.first).map((item) => ({ id: item.id, tag: context.prefix }));
          },
        },
      },
    }),
  });
}

function pathOf(path: { prev?: unknown; key: string | number } | undefined): Array<string | number> {
  const segments: Array<string | number> = [];
  for (let current = path as { prev?: unknown; key: string | number } | undefined; current; current = current.prev as typeof current) segments.unshift(current.key);
  return segments;
}

const QUERY = 'query Items($first: ID!) { items(first: $first) { id secret broken } }';

describe('JitExecutor', () => {
  const calls = { items: 0 };
  const schema = testSchema(calls);
  const run = (executor: JitExecutor, query: string, variables: Record<string, unknown>, operationName?: string, documentKey = query) =>
    executor.execute({ document: parse(query), documentKey, operationName, variables, contextValue: { prefix: 'p' } });
  const onGraphQLJs = (query: string, variables: Record<string, unknown>, operationName?: string) =>
    execute({ schema, document: parse(query), variableValues: variables, operationName, contextValue: { prefix: 'p' } });
  const json = (value: unknown) => JSON.parse(JSON.stringify(value));

  it('answers as graphql-js: data, returned coded errors kept as they are, thrown ones with path and locations', async () => {
    const executor = new JitExecutor(schema);
    const result = await run(executor, QUERY, { first: 'a' });
    expect(executor.executions).toEqual({ jit: 1, graphqlJs: 0 });
    expect(json(result)).toEqual(json(await onGraphQLJs(QUERY, { first: 'a' })));
    expect(result.errors?.map((error) => [error.path?.join('.'), error.extensions.code ?? null, error.locations?.[0]])).toEqual([
      ['items.0.broken', null, { line: 1, column: 61 }],
      ['items.1.secret', 'CONSENT_REQUIRED', { line: 1, column: 54 }],
      ['items.1.broken', null, { line: 1, column: 61 }],
    ]);
    // Every error is a graphql-js GraphQLError with extensions (Apollo's formatting reads extensions.code).
    for (const error of result.errors ?? []) expect([error instanceof GraphQLError, typeof error.extensions]).toEqual([true, 'object']);
  });

  it('compiles each (document, operation name) once and runs it with each request’s variables and context', async () => {
    const executor = new JitExecutor(schema);
    const before = calls.items;
    const first = await run(executor, QUERY, { first: 'a' });
    const second = await run(executor, QUERY, { first: 'b' });
    expect([first.data?.items, second.data?.items].map((items) => (items as unknown[]).length)).toEqual([2, 1]);
    expect(calls.items - before).toBe(2);
    expect(executor.size).toBe(1);
    expect(executor.holds(QUERY)).toBe(true);
    await run(executor, QUERY, { first: 'a' }, 'Items');
    expect(executor.size).toBe(2);
  });

  it('runs nothing for an empty operation name, as graphql-js, also once the document is compiled for no name', async () => {
    const executor = new JitExecutor(schema);
    const before = calls.items;
    expect((await run(executor, QUERY, { first: 'a' })).data).toBeDefined(); // compiled and cached for no name
    const empty = await run(executor, QUERY, { first: 'a' }, '');
    expect(json(empty)).toEqual(json(await onGraphQLJs(QUERY, { first: 'a' }, '')));
    expect([empty.data, empty.errors?.[0].message]).toEqual([undefined, 'Unknown operation named "".']);
    expect(calls.items - before).toBe(1); // the first run only: neither the empty name's nor graphql-js's resolves anything
  });

  it('keeps at most maxEntries documents, dropping the least recently used', async () => {
    const executor = new JitExecutor(schema, { maxEntries: 2 });
    const documents = ['query A($first: ID!) { items(first: $first) { id } }', 'query B($first: ID!) { items(first: $first) { secret } }', 'query C($first: ID!) { items(first: $first) { id secret } }'];
    await run(executor, documents[0], { first: 'a' });
    await run(executor, documents[1], { first: 'a' });
    await run(executor, documents[0], { first: 'a' }); // A is now the most recently used
    await run(executor, documents[2], { first: 'a' });
    expect(executor.size).toBe(2);
    expect(documents.map((document) => executor.holds(document))).toEqual([true, false, true]);
  });

  it('counts the field places a document compiles: a fragment once per spread, every operation', () => {
    expect(fieldPlacesOf(parse('{ items(first: "a") { id secret } }'))).toBe(3);
    expect(fieldPlacesOf(parse('query A { items(first: "a") { ...F ...F x: id } } query B { items(first: "b") { ... on Item { id } } } fragment F on Item { id secret }'))).toBe(1 + 2 + 2 + 1 + 1 + 1);
  });

  it('keeps at most maxPlaces field places, dropping the least recently used; a document larger alone runs on graphql-js', async () => {
    // Each document weighs 10 (its own share) + its field places.
    const executor = new JitExecutor(schema, { maxPlaces: 31 });
    const small = ['query A($first: ID!) { items(first: $first) { id } }', 'query B($first: ID!) { items(first: $first) { secret } }'];
    const large = `query C($first: ID!) { items(first: $first) { ${Array.from({ length: 8 }, (_, index) => `k${index}: id`).join(' ')} } }`;
    await run(executor, small[0], { first: 'a' });
    await run(executor, small[1], { first: 'a' });
    expect([executor.size, executor.keptPlaces]).toEqual([2, 24]);
    await run(executor, small[0], { first: 'a' }); // A is now the most recently used
    const before = { ...executor.executions };
    await run(executor, large, { first: 'a' }); // 19 places: B goes, A stays
    expect([executor.executions.jit - before.jit, executor.keptPlaces]).toEqual([1, 12 + 19]);
    expect([...small, large].map((document) => executor.holds(document))).toEqual([true, false, true]);
    const tooLarge = `query D($first: ID!) { items(first: $first) { ${Array.from({ length: 25 }, (_, index) => `k${index}: id`).join(' ')} } }`;
    const result = await run(executor, tooLarge, { first: 'b' });
    expect([executor.executions.graphqlJs - before.graphqlJs, result.data]).toEqual([1, { items: [Object.fromEntries(Array.from({ length: 25 }, (_, index) => [`k${index}`, 'b']))] }]);
  });

  it('runs a document graphql-jit refuses to compile on graphql-js, and remembers that', async () => {
    const failures: Array<string | undefined> = [];
    const executor = new JitExecutor(schema, { onCompileFailure: (operationName) => failures.push(operationName) });
    // graphql-jit refuses an operation name the document does not hold; graphql-js answers with its own error.
    const result = await run(executor, QUERY, { first: 'a' }, 'Missing');
    expect(json(result)).toEqual(json(await onGraphQLJs(QUERY, { first: 'a' }, 'Missing')));
    expect(result.errors?.[0].message).toBe('Unknown operation named "Missing".');
    await run(executor, QUERY, { first: 'a' }, 'Missing');
    expect(failures).toEqual(['Missing']);
    expect(executor.executions).toEqual({ jit: 0, graphqlJs: 2 });
  });

  it('runs on graphql-js the documents graphql-jit would answer otherwise: @skip/@include, and response keys its resolve-info names can confuse', async () => {
    for (const query of [
      'query Items($first: ID!, $no: Boolean = false) { items(first: $first) { id secret @include(if: $no) } }',
      'query Items($first: ID!) { items(first: $first) { ...F @skip(if: true) id } } fragment F on Item { secret }',
      'query Items($first: ID!) { idx0_items: items(first: $first) { id } }',
      'query Items($first: ID!) { items(first: $first) { idx0: id } }',
    ]) {
      expect([query, divergesOnGraphqlJit(parse(query))]).toEqual([query, true]);
      const executor = new JitExecutor(schema);
      const result = await run(executor, query, { first: 'a' });
      expect(executor.executions).toEqual({ jit: 0, graphqlJs: 1 });
      expect(json(result)).toEqual(json(await onGraphQLJs(query, { first: 'a' })));
    }
    for (const query of [QUERY, '{ __typename items(first: "a") { __typename id idx: id index0: secret } }', '{ __schema { types { name } } __type(name: "Item") { name } }', '{ grant(input: { explicit: true, tags: ["a"] }) }']) {
      expect([query, divergesOnGraphqlJit(parse(query))]).toEqual([query, false]);
    }
    // A variable inside an argument's object or list literal: graphql-jit passes it to the resolver unchecked.
    for (const query of ['mutation G($e: Boolean) { grant(input: { explicit: $e }) }', 'query Q($t: String) { find(tags: ["a", $t]) }', 'query Q($t: String) { find(where: { any: [{ tag: $t }] }) }']) {
      expect([query, divergesOnGraphqlJit(parse(query))]).toEqual([query, true]);
    }
  });

  it('leaves variables it cannot coerce to graphql-js, whose errors name the variable definition', async () => {
    const executor = new JitExecutor(schema);
    const before = calls.items;
    const result = await run(executor, QUERY, { first: { nested: true } });
    expect(json(result)).toEqual(json(await onGraphQLJs(QUERY, { first: { nested: true } })));
    expect(result.errors?.[0].nodes?.[0].kind).toBe('VariableDefinition');
    expect(calls.items - before).toBe(0);
    expect(executor.executions).toEqual({ jit: 0, graphqlJs: 1 });
  });
});

describe('jitGateway', () => {
  it('reports the schema to Apollo on load and executes through its executor', async () => {
    const schema = testSchema({ items: 0 });
    const gateway = jitGateway(schema);
    const reported: GraphQLSchema[] = [];
    const unsubscribe = gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
      reported.push(apiSchema);
      expect(coreSupergraphSdl).toContain('type Item');
    });
    const { executor } = await gateway.load({ apollo: {} });
    expect(reported).toEqual([schema]);
    const document = parse('{ items(first: "a") { id } }');
    const result = await executor!({ document, queryHash: 'hash', request: { variables: {} }, context: {} } as unknown as Parameters<NonNullable<typeof executor>>[0]);
    expect(result).toEqual({ data: { items: [{ id: 'a' }, { id: 'b' }] } });
    expect(gateway.executor.holds('hash')).toBe(true);
    unsubscribe();
    await gateway.stop();
  });
});
