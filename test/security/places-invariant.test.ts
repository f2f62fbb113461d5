import fc from 'fast-check';
import { In } from 'typeorm';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { PaymentEntity } from '../../src/domain/payment.entity';
import { WatchEventEntity } from '../../src/domain/watch-event.entity';
import { decide, type Decision, type FieldPolicy } from '../../src/policy/decide';
import { recordedDecision } from '../../src/policy/request-governance';
import { type Harness, startCandor, STORES_AND_EXECUTORS } from '../support/candor-harness';
import { ACTORS, consentChange, ledgerOf } from '../support/consent-histories';
import { addCustomer } from '../support/subjects';

/**
 * The release invariant per *place*: one query selects different leaves of Customer (and of the Payment and
 * WatchEvent records below it) at several places — aliased root fields, aliased leaves, named and inline
 * fragments, nested relations. At every place, for every record there, each selected leaf is released,
 * masked or withheld exactly as decide() says for that record's subject, and the request's access records
 * are exactly one per (subject, coordinate) decided anywhere in the response, in the decision's form.
 */
const SUBJECTS = Array.from({ length: 4 }, (_, index) => `cus_0000_place_${index}`);
const CUSTOMER_LEAVES = ['id', 'fullName', 'displayName', 'email', 'phone', 'birthDate', 'country', 'postalAddress', 'favoriteGenres', 'accessibilityNeeds', 'createdAt'];
const PAYMENT_LEAVES = ['id', 'amount', 'currency', 'paidAt', 'cardLast4'];
const WATCH_LEAVES = ['title', 'watchedAt', 'seconds'];
const RELATIONS = { payments: { type: 'Payment', leaves: PAYMENT_LEAVES }, watchHistory: { type: 'WatchEvent', leaves: WATCH_LEAVES } } as const;
type Relation = keyof typeof RELATIONS;
const ROOT_ALIASES = ['first', 'second', 'third'];
const NUM_RUNS = 30;

/** Where a selection item stands in its selection set: directly, in an inline fragment, or in a named fragment. */
type Wrapper = 'direct' | 'inline' | 'named';
interface Leaf {
  readonly field: string;
  /** '' for none; else the alias is this prefix and the field's name capitalised (letters only). */
  readonly alias: string;
  readonly wrapper: Wrapper;
}
interface RelationItem {
  readonly relation: Relation;
  readonly alias: string;
  readonly wrapper: Wrapper;
  readonly leaves: ReadonlyArray<Omit<Leaf, 'wrapper'> & { wrapper: 'direct' | 'inline' }>;
}
interface RootSelection {
  readonly root: { kind: 'list'; limit: number } | { kind: 'one'; subject: string };
  readonly leaves: readonly Leaf[];
  readonly relations: readonly RelationItem[];
}

const responseKeyOf = (item: { field: string; alias: string }) => (item.alias ? `${item.alias}${item.field[0].toUpperCase()}${item.field.slice(1)}` : item.field);
const leafArbitrary = <W extends string>(fields: readonly string[], wrappers: readonly W[], maxLength: number) =>
  fc.uniqueArray(fc.record({ field: fc.constantFrom(...fields), alias: fc.constantFrom('', 'x', 'y'), wrapper: fc.constantFrom(...wrappers) }), {
    minLength: 1,
    maxLength,
    // The same response key may stand in several wrappers (graphql-js merges them); once per wrapper.
    selector: (leaf) => `${responseKeyOf(leaf)}|${leaf.wrapper}`,
  });
const relationArbitrary = (relation: Relation) =>
  fc.record({
    relation: fc.constant(relation),
    alias: fc.constantFrom('', 'x'),
    wrapper: fc.constantFrom<Wrapper>('direct', 'inline', 'named'),
    leaves: leafArbitrary(RELATIONS[relation].leaves, ['direct', 'inline'] as const, 3),
  });
const rootArbitrary: fc.Arbitrary<RootSelection> = fc.record({
  root: fc.oneof(fc.record({ kind: fc.constant('list' as const), limit: fc.integer({ min: 1, max: SUBJECTS.length }) }), fc.record({ kind: fc.constant('one' as const), subject: fc.constantFrom(...SUBJECTS) })),
  leaves: leafArbitrary(CUSTOMER_LEAVES, ['direct', 'inline', 'named'] as const, 4),
  relations: fc.array(fc.oneof(relationArbitrary('payments'), relationArbitrary('watchHistory')), { maxLength: 2 }),
});

/** The document: each root aliased, its items placed directly, in `... on Customer`, or in its own named fragment. */
function documentOf(roots: readonly RootSelection[]): string {
  const fragments: string[] = [];
  const leafText = (leaf: { field: string; alias: string }) => (leaf.alias ? `${responseKeyOf(leaf)}: ${leaf.field}` : leaf.field);
  const relationText = (item: RelationItem) => {
    const type = RELATIONS[item.relation].type;
    const direct = item.leaves.filter((leaf) => leaf.wrapper === 'direct').map(leafText);
    const inline = item.leaves.filter((leaf) => leaf.wrapper === 'inline').map(leafText);
    const head = item.alias ? `${responseKeyOf({ field: item.relation, alias: item.alias })}: ${item.relation}` : item.relation;
    return `${head} { ${[...direct, ...(inline.length ? [`... on ${type} { ${inline.join(' ')} }`] : [])].join(' ')} }`;
  };
  const rootTexts = roots.map((root, position) => {
    const alias = ROOT_ALIASES[position];
    const call = root.root.kind === 'list' ? `customers(limit: ${root.root.limit})` : `customer(id: "${root.root.subject}")`;
    const texts = (wrapper: Wrapper) => [...root.leaves.filter((leaf) => leaf.wrapper === wrapper).map(leafText), ...root.relations.filter((item) => item.wrapper === wrapper).map(relationText)];
    const parts = texts('direct');
    if (texts('inline').length) parts.push(`... on Customer { ${texts('inline').join(' ')} }`);
    if (texts('named').length) {
      const name = `On${alias[0].toUpperCase()}${alias.slice(1)}`;
      parts.push(`...${name}`);
      fragments.push(`fragment ${name} on Customer { ${texts('named').join(' ')} }`);
    }
    return `${alias}: ${call} { ${parts.join(' ')} }`;
  });
  return [`query Places { ${rootTexts.join(' ')} }`, ...fragments].join(' ');
}

/** A stored or returned record: a governed leaf's field name is its property. */
type Row = Record<string, unknown>;
const bySubjectAndCoordinate = (a: { subjectId: string | null; coordinate: string | null }, b: { subjectId: string | null; coordinate: string | null }) =>
  `${a.subjectId}|${a.coordinate}`.localeCompare(`${b.subjectId}|${b.coordinate}`);

describe.each(STORES_AND_EXECUTORS)('the release invariant per place on %s, executed by %s (property-based)', (driver, executor) => {
  let candor: Harness;
  const storedPayments = new Map<string, Row[]>();
  const storedWatches = new Map<string, Row[]>();

  beforeAll(async () => {
    candor = await startCandor(driver, { executor });
    // addCustomer gives each subject one payment and no watch history: more of both, unevenly (none for one).
    for (const [index, subject] of SUBJECTS.entries()) {
      await addCustomer(candor, subject, { fullName: `Person ${index}`, email: `person${index}@secret.example`, birthDate: `198${index}-0${index + 1}-1${index}` });
      if (index % 2 === 0) {
        await candor.services.dataSource.getRepository(PaymentEntity).insert({ id: `${subject}_pay2`, customerId: subject, amount: 12.5 + index, currency: 'EUR', paidAt: `2026-0${index + 1}-01T00:00:00.000Z`, cardLast4: `100${index}` });
      }
      const watches = Array.from({ length: index === 1 ? 0 : index + 1 }, (_, n) => ({
        id: `${subject}_w${n}`,
        customerId: subject,
        title: `Title ${index}.${n}`,
        watchedAt: `2026-03-0${n + 1}T20:00:00.000Z`,
        seconds: 600 * (n + 1) + index,
      }));
      if (watches.length) await candor.services.dataSource.getRepository(WatchEventEntity).insert(watches);
    }
    // As the loaders order them: newest first, then by id.
    const byCustomer = async (entity: typeof PaymentEntity | typeof WatchEventEntity, into: Map<string, Row[]>, newestBy: string) => {
      const rows = (await candor.services.dataSource.getRepository<{ customerId: string }>(entity).findBy({ customerId: In(SUBJECTS) })) as unknown as Array<Row & { customerId: string }>;
      rows.sort((a, b) => (a[newestBy] === b[newestBy] ? String(a.id).localeCompare(String(b.id)) : String(b[newestBy]).localeCompare(String(a[newestBy]))));
      for (const row of rows) into.set(row.customerId, [...(into.get(row.customerId) ?? []), row]);
    };
    await byCustomer(PaymentEntity, storedPayments, 'paidAt');
    await byCustomer(WatchEventEntity, storedWatches, 'watchedAt');
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('holds at every place of random multi-place queries over random consent histories', async () => {
    const seen = { allow: 0, mask: 0, deny: 0, relationAllow: 0, relationDeny: 0, nestedLeaves: 0, multiPlace: 0 };
    const storedCustomers = new Map((await candor.services.dataSource.getRepository(CustomerEntity).findBy({ id: In(SUBJECTS) })).map((customer) => [customer.id, customer as unknown as Row]));
    const fields = candor.governed.fields;
    const policyOf = (coordinate: string): FieldPolicy => {
      const field = fields.get(coordinate);
      if (!field) throw new Error(`no governed field ${coordinate}`);
      return field.policy;
    };
    await fc.assert(
      fc.asyncProperty(fc.array(consentChange(SUBJECTS), { maxLength: 6 }), fc.constantFrom(...ACTORS), fc.array(rootArbitrary, { minLength: 1, maxLength: 3 }), async (changes, [key, purposeKey], roots) => {
        const ledger = ledgerOf(changes, Date.now());
        if (ledger.length) await candor.services.consent.appendMany(ledger);
        const query = documentOf(roots);
        const response = await candor.query({ key, purpose: purposeKey, query });
        expect([query, response.status]).toEqual([query, 200]);
        const purpose = candor.services.taxonomy.purposes.get(purposeKey)!;
        const states = new Map((await candor.services.consent.states(SUBJECTS)).map((state) => [state.subjectId, state]));
        const decisionOf = (coordinate: string, subject: string): Decision =>
          decide({ field: policyOf(coordinate), purpose: { key: purpose.key, legalBasis: purpose.legalBasis! }, subjectState: states.get(subject)!, now: new Date() });

        const actualErrors = (response.body.errors ?? []).map((error) => `${(error.path ?? []).join('.')} ${String(error.extensions?.code)}`).sort();
        const expectedErrors: string[] = [];
        /** Expected access records, by subject and coordinate. */
        const expectedRecords = new Map<string, { subjectId: string; coordinate: string; category: string; decision: string; reason: string; legalBasis: string | null; consentReceiptId: string | null; maskStrategy: string | null }>();
        /** The record a decision on `coordinate` for `subject` is logged as. */
        const expectRecord = (subject: string, coordinate: string, policy: FieldPolicy, decision: Decision) =>
          expectedRecords.set(`${subject}|${coordinate}`, {
            subjectId: subject,
            coordinate,
            category: policy.category,
            decision: recordedDecision(decision),
            reason: decision.reason,
            legalBasis: decision.legalBasis,
            consentReceiptId: decision.consentReceiptId ?? null,
            maskStrategy: decision.effect === 'mask' ? decision.mask! : null,
          });
        const data = response.body.data!;
        if (roots.length > 1) seen.multiPlace++;

        /** One leaf at one place of one record: its value is as decided for the record's subject. */
        const checkLeaf = (type: string, field: string, subject: string, stored: Row, value: unknown, path: Array<string | number>) => {
          const coordinate = `${type}.${field}`;
          const policy = policyOf(coordinate);
          const decision = decisionOf(coordinate, subject);
          const where = [query, path.join('.')];
          if (policy.personal) {
            seen[decision.effect]++;
            expectRecord(subject, coordinate, policy, decision);
          }
          if (decision.effect === 'allow') {
            expect([...where, value]).toEqual([...where, stored[field]]);
          } else if (decision.effect === 'mask') {
            // Exactly the strategy's output, and never the stored value.
            expect([...where, value]).toEqual([...where, candor.services.masker(decision.mask!, stored[field])]);
            if (value !== null) expect([...where, value]).not.toEqual([...where, stored[field]]);
          } else {
            expect([...where, value]).toEqual([...where, null]);
            expectedErrors.push(`${path.join('.')} ${decision.reason}`);
          }
        };

        /** A relation of one Customer record: shield's decision for the parent's subject, then its records' leaves. */
        const checkRelation = (relation: Relation, leaves: ReadonlyMap<string, string>, subject: string, value: unknown, path: Array<string | number>) => {
          const coordinate = `Customer.${relation}`;
          const policy = policyOf(coordinate);
          const decision = decisionOf(coordinate, subject);
          const where = [query, path.join('.')];
          expectRecord(subject, coordinate, policy, decision);
          if (decision.effect !== 'allow') {
            seen.relationDeny++;
            expect([...where, value]).toEqual([...where, null]);
            expectedErrors.push(`${path.join('.')} ${decision.reason}`);
            return;
          }
          seen.relationAllow++;
          const stored = (relation === 'payments' ? storedPayments : storedWatches).get(subject) ?? [];
          expect([...where, Array.isArray(value) ? (value as unknown[]).length : value]).toEqual([...where, stored.length]);
          (value as Row[]).forEach((item, index) => {
            for (const [key, field] of leaves) {
              seen.nestedLeaves++;
              checkLeaf(RELATIONS[relation].type, field, subject, stored[index], item[key], [...path, index, key]);
            }
          });
        };

        roots.forEach((root, position) => {
          const alias = ROOT_ALIASES[position];
          const records: Array<{ subject: string; value: Row; path: Array<string | number> }> =
            root.root.kind === 'list'
              ? (() => {
                  const rows = data[alias] as Row[];
                  // Customers by id: the test's subjects come before every seeded customer.
                  expect([query, alias, rows.length]).toEqual([query, alias, root.root.limit]);
                  return rows.map((value, index) => ({ subject: SUBJECTS[index], value, path: [alias, index] }));
                })()
              : [{ subject: root.root.subject, value: data[alias] as Row, path: [alias] }];
          // The selection's response keys (items of one key in several wrappers merge), and each relation's merged leaves.
          const leaves = new Map(root.leaves.map((leaf) => [responseKeyOf(leaf), leaf.field]));
          const relations = new Map<string, { relation: Relation; leaves: Map<string, string> }>();
          for (const item of root.relations) {
            const responseKey = responseKeyOf({ field: item.relation, alias: item.alias });
            const merged = relations.get(responseKey) ?? { relation: item.relation, leaves: new Map<string, string>() };
            for (const leaf of item.leaves) merged.leaves.set(responseKeyOf(leaf), leaf.field);
            relations.set(responseKey, merged);
          }
          for (const { subject, value, path } of records) {
            expect([query, path.join('.'), value === null ? null : typeof value]).toEqual([query, path.join('.'), 'object']);
            const stored = storedCustomers.get(subject)!;
            for (const [responseKey, field] of leaves) checkLeaf('Customer', field, subject, stored, value[responseKey], [...path, responseKey]);
            for (const [responseKey, relation] of relations) checkRelation(relation.relation, relation.leaves, subject, value[responseKey], [...path, responseKey]);
          }
        });

        // Errors: exactly one per withheld leaf or relation, at its path, coded with the decision's reason.
        expect([query, actualErrors]).toEqual([query, expectedErrors.sort()]);

        // Access records: exactly one per (subject, coordinate) decided anywhere, as decided.
        const requestId = response.headers.get('x-request-id');
        expect(requestId).toBeTruthy();
        const page = await candor.services.accessLogReader.page({ requestId }, 500);
        expect(page.pageInfo.hasNextPage).toBe(false);
        const actualRecords = page.edges
          .map(({ node }) => ({
            subjectId: node.subjectId,
            coordinate: node.coordinate,
            category: node.category,
            decision: node.decision,
            reason: node.reason,
            legalBasis: node.legalBasis,
            consentReceiptId: node.consentReceiptId ?? null,
            maskStrategy: node.maskStrategy ?? null,
          }))
          .sort(bySubjectAndCoordinate);
        const expected = [...expectedRecords.values()].sort(bySubjectAndCoordinate);
        expect([query, actualRecords]).toEqual([query, expected]);
      }),
      { seed: 20261130, numRuns: NUM_RUNS, endOnFailure: true },
    );
    // The runs exercised every outcome, at several places, through relations both ways (not vacuous).
    expect(seen.allow).toBeGreaterThan(30);
    expect(seen.deny).toBeGreaterThan(30);
    expect(seen.mask).toBeGreaterThan(0);
    expect(seen.relationAllow).toBeGreaterThan(0);
    expect(seen.relationDeny).toBeGreaterThan(0);
    expect(seen.nestedLeaves).toBeGreaterThan(0);
    expect(seen.multiPlace).toBeGreaterThan(5);
  });

  it(`ran its operations on ${executor}`, () => {
    if (executor === 'graphql-js') expect(candor.server.jit).toBeUndefined();
    else expect(candor.server.jit!.executions.jit).toBeGreaterThanOrEqual(NUM_RUNS);
  });
});
