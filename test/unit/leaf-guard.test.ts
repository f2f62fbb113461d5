import { type ExecutionResult, GraphQLError, GraphQLID, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString, GraphQLUnionType, parse } from 'graphql';
import { loadConfig } from '../../src/config';
import { readGovernance } from '../../src/graphql/governance-catalog';
import { GOVERNANCE_EXTENSION, SUBJECT_EXTENSION } from '../../src/graphql/governed.decorator';
import { enforceGovernance, GOVERNANCE_CONTEXT_KEY } from '../../src/policy/enforcement';
import { DENIAL_EXPLANATIONS } from '../../src/policy/codes';
import { recordedDecision } from '../../src/policy/request-governance';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { compileQuery, isCompiledQuery } from 'graphql-jit';
import { executorsOf, serviceGovernance } from '../support/request-governance';

/**
 * The leaf guard decides the selected leaves of each record when the field returning the record resolves —
 * whatever returns it: a root field, a relation, a nested object read straight from its parent, a list of
 * promises — and hands the executor the record itself when everything is released.
 */
const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));
const governed = (category: string, purposes: string[] = []) => ({ [GOVERNANCE_EXTENSION]: { category, purposes, roles: [] } });

class PersonRecord {
  partner: PersonRecord | null = null;

  constructor(
    readonly id: string,
    readonly email: string,
    readonly card: { holder: string; number: string },
  ) {}

  /** A computed leaf: an accessor of the class, which a copy must shadow rather than assign to. */
  get health(): string {
    return `${this.id}-health`;
  }
}

/** What the `friends` relation saw as its parent, per request. */
const parentsSeenByRelation: unknown[] = [];

function schemaOf() {
  const Card = new GraphQLObjectType({
    name: 'Card',
    extensions: { [SUBJECT_EXTENSION]: 'holder' },
    fields: {
      holder: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') },
      number: { type: GraphQLString, extensions: governed('user.financial', ['essential.service']) },
    },
  });
  const Person: GraphQLObjectType = new GraphQLObjectType({
    name: 'Person',
    extensions: { [SUBJECT_EXTENSION]: 'id' },
    fields: () => ({
      id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') },
      email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) },
      health: { type: GraphQLString, extensions: governed('user.health_and_medical', ['essential.service']) },
      // A nested object without a resolver of its own: its leaves are guarded where it is read.
      card: { type: Card, extensions: governed('user.financial', ['essential.service']) },
      partner: { type: Person, extensions: governed('user.behavior', ['essential.service']) },
      friends: {
        type: new GraphQLList(Person),
        extensions: governed('user.behavior', ['essential.service']),
        resolve: (parent: PersonRecord) => {
          parentsSeenByRelation.push(parent);
          return [people.b];
        },
      },
    }),
  });
  const Query = new GraphQLObjectType({
    name: 'Query',
    fields: {
      people: { type: new GraphQLList(Person), extensions: governed('system.operations'), resolve: () => [people.a, people.b] },
      person: { type: Person, args: { id: { type: new GraphQLNonNull(GraphQLID) } }, extensions: governed('system.operations'), resolve: (_root, args: { id: 'a' | 'b' }) => people[args.id] },
      // Records handed over as promises inside the list: guarded once they settle.
      promisedPeople: { type: new GraphQLList(Person), extensions: governed('system.operations'), resolve: () => [Promise.resolve(people.a), Promise.resolve(people.b)] },
      // An array in a record's place: the executors read its named properties as the record's fields.
      arrayPerson: { type: Person, extensions: governed('system.operations'), resolve: () => ARRAY_RECORD },
      arrayPeople: { type: new GraphQLList(Person), extensions: governed('system.operations'), resolve: () => [ARRAY_RECORD] },
      // Any iterable is a list to the executors.
      peopleSet: { type: new GraphQLList(Person), extensions: governed('system.operations'), resolve: () => new Set([people.a, people.b]) },
    },
  });
  const schema = new GraphQLSchema({ query: Query });
  return enforceGovernance(schema, readGovernance(schema), taxonomy);
}

const people = {
  a: new PersonRecord('a', 'a@example.com', { holder: 'a', number: '4111-a' }),
  b: new PersonRecord('b', 'b@example.com', { holder: 'b', number: '4111-b' }),
};
people.a.partner = people.b;
const ARRAY_RECORD = Object.assign([], { id: 'b', email: 'b@example.com', health: 'b-raw-health' });
/** Health data needs explicit consent: `a` gave it, `b` did not. */
const explicitConsentOf = (subjectId: string) => (subjectId === 'a' ? [{ purpose: 'essential.service', granted: true, explicit: true, expiresAt: null }] : []);

const schema = schemaOf();
const EXECUTORS = executorsOf(schema.schema);

/** Runs `execute` with a request's governance (essential.service; explicit consent from `a` only); its result and records by subject. */
async function governedRun(execute: (contextValue: object) => Promise<ExecutionResult>, mode?: 'explain') {
  const governance = serviceGovernance(schema.compiled, {
    mode,
    loadSubjectStates: async (subjectIds) => subjectIds.map((subjectId) => ({ subjectId, restricted: false, consents: explicitConsentOf(subjectId), objections: [] })),
  });
  const result = await execute({ [GOVERNANCE_CONTEXT_KEY]: governance });
  const records = governance.recordsBySubject((field, decision) => `${field.coordinate} ${recordedDecision(decision)}`);
  return { result, records: Object.fromEntries(records.map(({ subjectId, items }) => [subjectId, items.sort()])) };
}

/** A governed Person type with an id and a personal e-mail, for the schema shapes the build refuses. */
const personType = () =>
  new GraphQLObjectType({
    name: 'Person',
    extensions: { [SUBJECT_EXTENSION]: 'id' },
    fields: { id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') }, email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) } },
  });

describe.each(Object.keys(EXECUTORS) as Array<keyof typeof EXECUTORS>)('the leaf guard, on %s', (executor) => {
  const run = (query: string, mode?: 'explain') => governedRun((contextValue) => EXECUTORS[executor](query, contextValue), mode);

  beforeEach(() => {
    parentsSeenByRelation.length = 0;
  });

  it('withholds per record in a list, records each selected leaf once, and hands over released records themselves', async () => {
    const { result, records } = await run('{ people { id email health friends { id } } }');
    expect(result.data).toEqual({
      people: [
        { id: 'a', email: 'a@example.com', health: 'a-health', friends: [{ id: 'b' }] },
        { id: 'b', email: 'b@example.com', health: null, friends: [{ id: 'b' }] },
      ],
    });
    expect(result.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([[['people', 1, 'health'], 'EXPLICIT_CONSENT_REQUIRED']]);
    expect(records).toEqual({
      a: ['Person.email RELEASED', 'Person.friends RELEASED', 'Person.health RELEASED'],
      b: ['Person.email RELEASED', 'Person.friends RELEASED', 'Person.health WITHHELD'],
    });
    // The released record itself; the other a copy of the same class, holding the error in place of the value.
    expect(parentsSeenByRelation[0]).toBe(people.a);
    expect(parentsSeenByRelation[1]).not.toBe(people.b);
    expect(parentsSeenByRelation[1]).toBeInstanceOf(PersonRecord);
    expect(people.b.health).toBe('b-health');
  });

  it('reports a withheld field as the GraphQLError graphql-js would build for it: the same class, message, locations, path and extensions', async () => {
    // `health` of b is withheld at one place (the error is built located) and at two aliases of one place (located by the executor).
    const query = '{ person(id: "b") { id health } people { id one: health two: health } }';
    const { result } = await run(query);
    const column = (text: string, from = 0) => query.indexOf(text, from) + 1;
    const peopleAt = query.indexOf('people');
    const expected = [
      { path: ['person', 'health'], column: column('health') },
      { path: ['people', 1, 'one'], column: column('one', peopleAt) },
      { path: ['people', 1, 'two'], column: column('two', peopleAt) },
    ];
    expect(result.errors).toHaveLength(expected.length);
    for (const { path, column: at } of expected) {
      const error = result.errors!.find((candidate) => JSON.stringify(candidate.path) === JSON.stringify(path));
      expect(error).toBeInstanceOf(GraphQLError);
      const extensions = { code: 'EXPLICIT_CONSENT_REQUIRED', governance: { coordinate: 'Person.health', category: 'user.health_and_medical', purpose: 'essential.service', subjectId: 'b' } };
      expect(error!.toJSON()).toEqual({ message: `Person.health withheld: ${DENIAL_EXPLANATIONS.EXPLICIT_CONSENT_REQUIRED}`, locations: [{ line: 1, column: at }], path, extensions });
      expect(String(error)).toContain(`Person.health withheld: ${DENIAL_EXPLANATIONS.EXPLICIT_CONSENT_REQUIRED}`);
    }
  });

  it('guards an array in a record’s place as the record the executors read it as', async () => {
    for (const root of ['arrayPerson', 'arrayPeople']) {
      const { result, records } = await run(`{ ${root} { id health } }`);
      expect(JSON.stringify(result)).not.toContain('b-raw-health');
      expect(result.errors?.map((error) => error.extensions?.code)).toEqual(['EXPLICIT_CONSENT_REQUIRED']);
      expect(records).toEqual({ b: ['Person.health WITHHELD'] });
    }
  });

  it('guards a list given as any iterable, record by record', async () => {
    const { result, records } = await run('{ peopleSet { id health } }');
    expect(result.data).toEqual({ peopleSet: [{ id: 'a', health: 'a-health' }, { id: 'b', health: null }] });
    expect(records).toEqual({ a: ['Person.health RELEASED'], b: ['Person.health WITHHELD'] });
  });

  it('guards the leaves of a nested object read straight from its parent', async () => {
    const { result, records } = await run('{ people { card { holder number } } }');
    expect(result.data).toEqual({ people: [{ card: { holder: 'a', number: '4111-a' } }, { card: { holder: 'b', number: '4111-b' } }] });
    expect(records).toEqual({ a: ['Card.number RELEASED', 'Person.card RELEASED'], b: ['Card.number RELEASED', 'Person.card RELEASED'] });
  });

  it('guards records a list holds as promises: their subjects were not preloaded, so nothing of them is released', async () => {
    const { result, records } = await run('{ promisedPeople { email health } }');
    expect(result.data).toEqual({ promisedPeople: [{ email: null, health: null }, { email: null, health: null }] });
    expect(new Set(result.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['GOVERNANCE_UNAVAILABLE']));
    expect(records).toEqual({ a: ['Person.email WITHHELD', 'Person.health WITHHELD'], b: ['Person.email WITHHELD', 'Person.health WITHHELD'] });
  });

  it('releases no leaf in a dry run, nested ones included, and records every decision', async () => {
    const { result, records } = await run('{ people { id email card { number } } }', 'explain');
    expect(result.data).toEqual({ people: [{ id: 'a', email: null, card: null }, { id: 'b', email: null, card: null }] });
    expect(records.a).toEqual(['Person.card RELEASED', 'Person.email RELEASED']);
  });
});

it('refuses an interface or union over a type whose leaves it guards: records of several types would meet one guard', () => {
  const Person = personType();
  const Thing = new GraphQLObjectType({ name: 'Thing', fields: { id: { type: GraphQLID, extensions: governed('system.operations') } } });
  const Anything = new GraphQLUnionType({ name: 'Anything', types: [Person, Thing], resolveType: () => 'Person' });
  const schema = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: { anything: { type: Anything, extensions: governed('system.operations'), resolve: () => null } } }) });
  expect(() => enforceGovernance(schema, readGovernance(schema), taxonomy)).toThrow('Anything is an interface or union through which Person');
  // Nor one from which such a type is reached further down: each runtime type could select other leaves at one place.
  const Box = new GraphQLObjectType({ name: 'Box', fields: { id: { type: GraphQLID, extensions: governed('system.operations') }, owner: { type: Person, extensions: governed('system.operations'), resolve: () => null } } });
  const Boxes = new GraphQLUnionType({ name: 'Boxes', types: [Box, Thing], resolveType: () => 'Box' });
  const nested = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: { boxes: { type: Boxes, extensions: governed('system.operations'), resolve: () => null } } }) });
  expect(() => enforceGovernance(nested, readGovernance(nested), taxonomy)).toThrow('Boxes is an interface or union through which Person');
});

it('refuses a root field without a resolver of its own: graphql-shield wraps declared resolvers only', () => {
  const schema = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: { person: { type: personType(), extensions: governed('system.operations') } } }) });
  expect(() => enforceGovernance(schema, readGovernance(schema), taxonomy)).toThrow('Query.person is a root field without a resolver of its own');
});

/**
 * graphql-jit run directly (JitExecutor sends these documents to graphql-js): even where it hands a field
 * another place's resolve info, or reads fields graphql-js would skip, no leaf leaves undecided.
 */
describe('the leaf guard under graphql-jit quirks', () => {
  const onJit = (query: string) => {
    const compiled = compileQuery(schema.schema, parse(query));
    if (!isCompiledQuery(compiled)) throw new Error(`graphql-jit did not compile ${query}`);
    return governedRun(async (contextValue) => compiled.query(undefined, contextValue, {}));
  };

  it('decides each place by its own selection where two places share one resolve info (response keys joined alike)', async () => {
    // graphql-jit names both `x.<list>.y` and `idx0_x.y` "y_idx0_x": the second place's info, with its field nodes, served the first.
    const { result, records } = await onJit('{ x: people { y: friends { id health } } idx0_x: person(id: "a") { y: partner { id } } }');
    expect(result.data).toEqual({ x: [{ y: [{ id: 'b', health: null }] }, { y: [{ id: 'b', health: null }] }], idx0_x: { y: { id: 'b' } } });
    expect(records.b).toEqual(['Person.friends RELEASED', 'Person.health WITHHELD']);
  });

  it('decides and records the leaves of a fragment under a skipped node that graphql-jit merges with a kept one and sends', async () => {
    const { result, records } = await onJit('{ a: people @skip(if: true) { ...F } a: people { id } } fragment F on Person { health }');
    // graphql-js sends only the ids; graphql-jit sends `health` too — decided (b's withheld) and recorded.
    expect(result.data).toEqual({ a: [{ id: 'a', health: 'a-health' }, { id: 'b', health: null }] });
    expect(records).toEqual({ a: ['Person.health RELEASED'], b: ['Person.health WITHHELD'] });
  });
});

/** A person whose `contact` (a record of its own) is of `category`: nested, or a relation with a resolver of its own. */
function personWithContact(category: string, contact: 'nested' | 'relation'): GraphQLSchema {
  const Contact: GraphQLObjectType = new GraphQLObjectType({
    name: 'Contact',
    extensions: { [SUBJECT_EXTENSION]: 'id' },
    fields: { id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') } },
  });
  const Person = new GraphQLObjectType({
    name: 'Person',
    extensions: { [SUBJECT_EXTENSION]: 'id' },
    fields: {
      id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') },
      contact: { type: Contact, extensions: governed(category, ['analytics.reporting']), ...(contact === 'relation' ? { resolve: () => null } : {}) },
    },
  });
  return new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: { person: { type: Person, extensions: governed('system.operations'), resolve: () => null } } }) });
}

it('refuses a nested record whose category has a mask: a record has no masked form', () => {
  const schema = personWithContact('user.contact.email', 'nested');
  expect(() => enforceGovernance(schema, readGovernance(schema), taxonomy)).toThrow('Person.contact returns Contact records, but its category user.contact.email has a mask');
});

it('refuses a relation whose category has a mask: the records it resolves to have no masked form', () => {
  // As the nested record above, but with a resolver of its own: a relation, guarded by graphql-shield.
  const schema = personWithContact('user.contact.email', 'relation');
  expect(taxonomy.categories.get('user.contact.email')?.mask).toBeDefined();
  expect(() => enforceGovernance(schema, readGovernance(schema), taxonomy)).toThrow('Person.contact is a relation, but its category user.contact.email has a mask: masks apply to leaf fields only');
  // Without the mask's category, the same relation is guarded by graphql-shield.
  const unmasked = personWithContact('user.behavior', 'relation');
  expect(enforceGovernance(unmasked, readGovernance(unmasked), taxonomy).enforcement.get('Person.contact')).toBe('shield');
});

it('refuses a field returning guarded records through a resolver of its own that no declaration covers: the leaf guard would replace it unguarded by shield', () => {
  const Person = personType();
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        person: { type: Person, extensions: governed('system.operations'), resolve: () => null },
        other: { type: Person, extensions: governed('system.operations'), resolve: () => null },
      },
    }),
  });
  // Declarations read from another build of the schema, missing one root field: it has a resolver, and Person's leaves a guard.
  const declarations = readGovernance(schema).filter((field) => field.coordinate !== 'Query.other');
  expect(() => enforceGovernance(schema, declarations, taxonomy)).toThrow('Query.other returns Person through a resolver the leaf guard does not wrap');
  // Declared, the same field is guarded by graphql-shield and the guard of Person's leaves.
  expect(enforceGovernance(schema, readGovernance(schema), taxonomy).enforcement.get('Query.other')).toBe('shield');
});
