import { GraphQLID, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { loadConfig } from '../../src/config';
import { readGovernance } from '../../src/graphql/governance-catalog';
import { GOVERNANCE_EXTENSION, SUBJECT_EXTENSION } from '../../src/graphql/governed.decorator';
import { enforceGovernance, GOVERNANCE_CONTEXT_KEY } from '../../src/policy/enforcement';
import { recordedDecision } from '../../src/policy/request-governance';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { executorsOf, serviceGovernance } from '../support/request-governance';

/**
 * A request logs each (subject, field) pair once, however often the field is read: aliases, a subject
 * listed twice, a field selected again in a fragment. The pairs are bits of 32-bit words, one run of words
 * per subject, so the schema here has more than 32 fields per type and the test reads fields on both
 * sides of each word boundary, for subjects at different positions.
 */
const FIELDS_PER_TYPE = 70;
const fieldName = (index: number) => `f${index}`;

function governedSchema() {
  const governed = (category: string, purposes: string[] = []) => ({ [GOVERNANCE_EXTENSION]: { category, purposes, roles: [] } });
  const fields: Record<string, { type: typeof GraphQLString | GraphQLNonNull<typeof GraphQLID>; extensions: Record<string, unknown> }> = {
    id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') },
  };
  for (let index = 0; index < FIELDS_PER_TYPE; index++) fields[fieldName(index)] = { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) };
  const Person = new GraphQLObjectType({ name: 'Person', extensions: { [SUBJECT_EXTENSION]: 'id' }, fields });
  const Query = new GraphQLObjectType({
    name: 'Query',
    fields: {
      people: {
        type: new GraphQLList(Person),
        args: { ids: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLID))) } },
        extensions: governed('system.operations'),
        resolve: (_root, args: { ids: string[] }) => args.ids.map((id) => ({ id, ...Object.fromEntries(Array.from({ length: FIELDS_PER_TYPE }, (_, index) => [fieldName(index), `${id}-${index}`])) })),
      },
    },
  });
  const schema = new GraphQLSchema({ query: Query });
  return enforceGovernance(schema, readGovernance(schema), loadConfiguredTaxonomy(loadConfig({}, {})));
}

const governed = governedSchema();
const EXECUTORS = executorsOf(governed.schema);

describe.each(Object.keys(EXECUTORS) as Array<keyof typeof EXECUTORS>)('each (subject, field) pair is logged once, on %s', (executor) => {
  const recordsOf = async (query: string) => {
    const governance = serviceGovernance(governed.compiled);
    const result = await EXECUTORS[executor](query, { [GOVERNANCE_CONTEXT_KEY]: governance });
    expect(result.errors).toBeUndefined();
    return governance.recordsBySubject((field, decision) => `${field.coordinate} ${recordedDecision(decision)}`);
  };

  it('across word boundaries, aliases, repeated subjects and fragments', async () => {
    // The fields of compiled indexes 0, 15, 31, 32, 33, 47, 63, 64 and 66 straddle the first two 32-bit words and reach into a third.
    const named = (index: number) => {
      const field = governed.compiled.fields[index];
      expect(field.coordinate).toMatch(/^Person\.f\d+$/);
      return field.fieldName;
    };
    const read = [0, 15, 31, 32, 33, 47, 63, 64, 66].map(named);
    const [second] = [1].map(named);
    const selection = `${read.join(' ')} again: ${read[3]} ...more`;
    const records = await recordsOf(`{ people(ids: ["a", "b", "a", "c"]) { ${selection} } others: people(ids: ["c", "b"]) { ${read[8]} ${second} } }
      fragment more on Person { ${read[2]} ${read[7]} }`);
    const expected = (extra: string[] = []) => [...read, ...extra].map((name) => `Person.${name} RELEASED`).sort();
    expect(records.map(({ subjectId, items }) => [subjectId, [...items].sort()]).sort(([a], [b]) => String(a).localeCompare(String(b)))).toEqual([
      ['a', expected()],
      ['b', expected([second])],
      ['c', expected([second])],
    ]);
  });
});
