import { GraphQLID, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { loadConfig } from '../../src/config';
import { readGovernance } from '../../src/graphql/governance-catalog';
import { GOVERNANCE_EXTENSION, SUBJECT_EXTENSION } from '../../src/graphql/governed.decorator';
import { enforceGovernance, GOVERNANCE_CONTEXT_KEY } from '../../src/policy/enforcement';
import { recordedDecision } from '../../src/policy/request-governance';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { executorsOf, serviceGovernance } from '../support/request-governance';

/**
 * A non-null field error discards its nearest nullable ancestor; the decisions made for that object's
 * fields must not stay in the log unless their subject is still in the response somewhere. The leaf guard
 * decides every record's leaves when their list resolves; graphql-js then stops completing at the error,
 * graphql-jit completes everything and propagates nulls after. Each case runs on both and expects the same
 * records from both.
 */
const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));

interface Person {
  readonly id: string;
  /** Null makes `Person.badge` (String!) fail, discarding the person's object. */
  readonly badge: string | null;
  readonly email: string;
  readonly name: string;
  readonly friendIds: readonly string[];
}

const PEOPLE: Record<string, Person> = {
  ok: { id: 'ok', badge: 'b-ok', email: 'ok@example.test', name: 'Ok', friendIds: ['friend', 'broken'] },
  broken: { id: 'broken', badge: null, email: 'broken@example.test', name: 'Broken', friendIds: ['friend'] },
  friend: { id: 'friend', badge: 'b-friend', email: 'friend@example.test', name: 'Friend', friendIds: [] },
};

function governedSchema() {
  const governed = (category: string, purposes: string[] = [], roles: string[] = []) => ({ [GOVERNANCE_EXTENSION]: { category, purposes, roles } });
  // The same record object wherever it is asked for, as a DataLoader hands it out.
  const byIds = (ids: readonly string[]) => Promise.resolve(ids.map((id) => PEOPLE[id]));
  const Person: GraphQLObjectType = new GraphQLObjectType({
    name: 'Person',
    extensions: { [SUBJECT_EXTENSION]: 'id' },
    fields: () => ({
      id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') },
      badge: { type: new GraphQLNonNull(GraphQLString), extensions: governed('system.operations') },
      email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) },
      name: { type: GraphQLString, extensions: governed('user.name', ['essential.service']) },
      friends: { type: new GraphQLList(Person), extensions: governed('user.account', ['essential.service']), resolve: (person: Person) => byIds(person.friendIds) },
    }),
  });
  const ids = { ids: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLID))) } };
  const Query = new GraphQLObjectType({
    name: 'Query',
    fields: {
      people: { type: new GraphQLList(Person), args: ids, extensions: governed('system.operations'), resolve: (_root, args: { ids: string[] }) => byIds(args.ids) },
      everyone: { type: new GraphQLList(new GraphQLNonNull(Person)), args: ids, extensions: governed('system.operations'), resolve: (_root, args: { ids: string[] }) => byIds(args.ids) },
      person: { type: new GraphQLNonNull(Person), args: { id: { type: new GraphQLNonNull(GraphQLID) } }, extensions: governed('system.operations'), resolve: (_root, args: { id: string }) => PEOPLE[args.id] },
      adminStats: { type: new GraphQLNonNull(GraphQLString), extensions: governed('system.operations', [], ['admin']), resolve: () => 'stats' },
    },
  });
  const schema = new GraphQLSchema({ query: Query });
  return enforceGovernance(schema, readGovernance(schema), taxonomy);
}

const governed = governedSchema();
const EXECUTORS = executorsOf(governed.schema);

describe.each(Object.keys(EXECUTORS) as Array<keyof typeof EXECUTORS>)('records of objects discarded by null propagation, on %s', (executor) => {
  /** Runs `query`, drops what the response lost (as the audit plugin does), and lists the records per subject. */
  const recordsAfter = async (query: string) => {
    const governance = serviceGovernance(governed.compiled);
    const result = await EXECUTORS[executor](query, { [GOVERNANCE_CONTEXT_KEY]: governance });
    governance.dropRecordsOfSubjectsAbsentFrom(result.data);
    const records = Object.fromEntries(governance.recordsBySubject((field, decision) => `${field.coordinate} ${recordedDecision(decision)}`).map(({ subjectId, items }) => [subjectId, items.sort()]));
    return { data: result.data, errors: (result.errors ?? []).map((error) => error.path?.join('.')), records, refusals: governance.refusals.map(({ field }) => field.coordinate) };
  };

  it('keeps every record when the response holds every object', async () => {
    const { errors, records } = await recordsAfter('{ people(ids: ["ok", "friend"]) { email name badge } }');
    expect(errors).toEqual([]);
    expect(records).toEqual({ ok: ['Person.email RELEASED', 'Person.name RELEASED'], friend: ['Person.email RELEASED', 'Person.name RELEASED'] });
  });

  it('drops the records of a list item discarded by its non-null error, and keeps its siblings’', async () => {
    const { data, errors, records } = await recordsAfter('{ people(ids: ["ok", "broken", "friend"]) { email name badge } }');
    expect(data).toEqual({ people: [{ email: 'ok@example.test', name: 'Ok', badge: 'b-ok' }, null, { email: 'friend@example.test', name: 'Friend', badge: 'b-friend' }] });
    expect(errors).toEqual(['people.1.badge']);
    expect(records).toEqual({ ok: ['Person.email RELEASED', 'Person.name RELEASED'], friend: ['Person.email RELEASED', 'Person.name RELEASED'] });
  });

  it('drops every item’s records when the error nulls the whole list ([Person!])', async () => {
    const { data, records } = await recordsAfter('{ everyone(ids: ["ok", "broken", "friend"]) { email badge } }');
    expect(data).toEqual({ everyone: null });
    expect(records).toEqual({});
  });

  it('keeps a subject still held at another path, with all its records (subject granular: may over-report)', async () => {
    // The same record object at two aliased paths: `lost` is discarded, `kept` is not. `name` was only read at `lost`.
    const { data, records } = await recordsAfter('{ lost: people(ids: ["broken"]) { n: name badge } kept: people(ids: ["broken"]) { e: email } }');
    expect(data).toEqual({ lost: [null], kept: [{ e: 'broken@example.test' }] });
    expect(records).toEqual({ broken: ['Person.email RELEASED', 'Person.name RELEASED'] });
    // In the other order too: the path read last is the discarded one, the subject is held at the first.
    const reversed = await recordsAfter('{ kept: people(ids: ["broken"]) { e: email } lost: people(ids: ["broken"]) { n: name badge } }');
    expect(reversed.data).toEqual({ kept: [{ e: 'broken@example.test' }], lost: [null] });
    expect(reversed.records).toEqual({ broken: ['Person.email RELEASED', 'Person.name RELEASED'] });
  });

  it('follows response keys, not field names: an alias that survives keeps its subject', async () => {
    const { data, records } = await recordsAfter('{ people: people(ids: ["ok"]) { email } others: people(ids: ["broken"]) { email badge } }');
    expect(data).toEqual({ people: [{ email: 'ok@example.test' }], others: [null] });
    expect(records).toEqual({ ok: ['Person.email RELEASED'] });
  });

  it('nested relations: a discarded friend loses its records; a discarded parent takes its relation and its friends’ records along', async () => {
    const friendBroken = await recordsAfter('{ people(ids: ["ok"]) { email friends { email badge } } }');
    expect(friendBroken.data).toEqual({ people: [{ email: 'ok@example.test', friends: [{ email: 'friend@example.test', badge: 'b-friend' }, null] }] });
    expect(friendBroken.records).toEqual({ ok: ['Person.email RELEASED', 'Person.friends RELEASED'], friend: ['Person.email RELEASED'] });

    const parentBroken = await recordsAfter('{ people(ids: ["broken"]) { email friends { name } badge } }');
    expect(parentBroken.data).toEqual({ people: [null] });
    expect(parentBroken.records).toEqual({});
  });

  it('a subject two root fields return is decided on its state, even while the first is still reading it', async () => {
    // Both preloads meet "ok"; the second must wait for the first one's read (slow, as a store's is), not
    // decide the subject unknown (GOVERNANCE_UNAVAILABLE).
    const governance = serviceGovernance(governed.compiled, {
      loadSubjectStates: async (subjectIds) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return subjectIds.map((subjectId) => ({ subjectId, restricted: false, consents: [], objections: [] }));
      },
    });
    const result = await EXECUTORS[executor]('{ people(ids: ["ok"]) { email } person(id: "ok") { name } }', { [GOVERNANCE_CONTEXT_KEY]: governance });
    expect([result.data, result.errors]).toEqual([{ people: [{ email: 'ok@example.test' }], person: { name: 'Ok' } }, undefined]);
    expect(governance.recordsBySubject((field, decision) => `${field.coordinate} ${recordedDecision(decision)}`)).toEqual([{ subjectId: 'ok', items: ['Person.email RELEASED', 'Person.name RELEASED'] }]);
  });

  it('withheld fields reported in extensions: a discarded subject leaves the list with its records', async () => {
    // Person.email is not declared for marketing: withheld (PURPOSE_NOT_DECLARED) for every subject.
    const governance = serviceGovernance(governed.compiled, { purpose: { key: 'marketing.communications', legalBasis: 'consent' }, withheldReporting: 'extensions' });
    const result = await EXECUTORS[executor]('{ people(ids: ["ok", "broken"]) { email badge } }', { [GOVERNANCE_CONTEXT_KEY]: governance });
    expect(result.data).toEqual({ people: [{ email: null, badge: 'b-ok' }, null] });
    expect(governance.withheld.map(({ subjectId }) => subjectId).sort()).toEqual(['broken', 'ok']);
    expect([...governance.dropRecordsOfSubjectsAbsentFrom(result.data)]).toEqual(['broken']);
    expect(governance.withheld).toEqual([{ path: ['people', 0, 'email'], coordinate: 'Person.email', code: 'PURPOSE_NOT_DECLARED', subjectId: 'ok' }]);
  });

  it('data null (a non-null root field failed): no field record stays, the refusal does', async () => {
    const lostRoot = await recordsAfter('{ person(id: "broken") { email badge } }');
    expect([lostRoot.data, lostRoot.records]).toEqual([null, {}]);

    const refused = await recordsAfter('{ people(ids: ["ok"]) { email } adminStats }');
    expect([refused.data, refused.errors, refused.records, refused.refusals]).toEqual([null, ['adminStats'], {}, ['Query.adminStats']]);
  });
});
