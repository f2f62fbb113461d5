import { type Harness, KEYS, startCandor, STORES_AND_EXECUTORS } from '../support/candor-harness';
import { addCustomer } from '../support/subjects';

/**
 * The analyst's side of governance over real HTTP: masked releases, explain (dry run) and reject mode,
 * each checked in the response and in the access log.
 */
const ANNA = 'cus_0000_modes_anna';
const BO = 'cus_0000_modes_bo';
const OBJECTOR = 'cus_0000_modes_objector';

describe.each(STORES_AND_EXECUTORS)('analyst modes on %s, executed by %s', (driver, executor) => {
  let candor: Harness;
  const recordsOf = async (requestId: string) =>
    (await candor.services.accessLogReader.page({ requestId }, 500)).edges.map(({ node }) => ({
      subjectId: node.subjectId,
      coordinate: node.coordinate,
      decision: node.decision,
      reason: node.reason,
      maskStrategy: node.maskStrategy ?? null,
    }));

  beforeAll(async () => {
    candor = await startCandor(driver, { executor });
    await addCustomer(candor, ANNA, { email: 'anna.berg@mail.example', phone: '+49 30 1234567' });
    await addCustomer(candor, BO, { email: 'bo@mail.example', phone: '+49 30 1234567', birthDate: '1984-11-30' });
    await addCustomer(candor, OBJECTOR, { email: 'objector@mail.example' });
    await candor.services.consent.append({ subjectId: OBJECTOR, kind: 'object', purpose: 'analytics.reporting', source: 'test' });
    await candor.services.consent.append({ subjectId: BO, kind: 'grant', purpose: 'marketing.advertising', source: 'test' });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  describe('masking', () => {
    it('releases the masked form the taxonomy allows, records MASKED with the strategy, and the log still verifies', async () => {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ a: customer(id: "${ANNA}") { email phone birthDate } b: customer(id: "${BO}") { email phone } }` });
      expect(response.status).toBe(200);
      expect(response.body.errors).toBeUndefined();
      const { a, b } = response.body.data as Record<string, Record<string, string>>;
      expect(a.email).toBe('a***@mail.example');
      expect(b.email).toBe('***@mail.example'); // a two-letter local part shows no letter at all
      expect(a.phone).toMatch(/^kh_[0-9a-f]{16}$/);
      expect(b.phone).toBe(a.phone); // equal values hash equally: a join key without the number
      expect(a.birthDate).toBe('1990-04-01'); // declared for analytics in full: not masked
      const records = await recordsOf(response.headers.get('x-request-id')!);
      expect(records).toEqual(
        expect.arrayContaining([
          { subjectId: ANNA, coordinate: 'Customer.email', decision: 'MASKED', reason: 'LEGAL_BASIS', maskStrategy: 'partial_email' },
          { subjectId: ANNA, coordinate: 'Customer.phone', decision: 'MASKED', reason: 'LEGAL_BASIS', maskStrategy: 'keyed_hash' },
          { subjectId: ANNA, coordinate: 'Customer.birthDate', decision: 'RELEASED', reason: 'LEGAL_BASIS', maskStrategy: null },
        ]),
      );
      const integrity = await candor.services.verifyAccessLog();
      expect([integrity.verified, integrity.firstBrokenSeq]).toEqual([true, null]);
    });

    it("a masked release needs the same ground as the value: an objection stops it, consent gates it", async () => {
      const objected = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${OBJECTOR}") { email } }` });
      expect(objected.body.data).toEqual({ customer: { email: null } });
      expect(objected.body.errors![0].extensions!.code).toBe('OBJECTED');
      const advertising = await candor.query({ key: KEYS.marketing, purpose: 'marketing.advertising', query: `{ bo: customer(id: "${BO}") { birthDate } anna: customer(id: "${ANNA}") { birthDate } }` });
      expect(advertising.body.data).toEqual({ bo: { birthDate: '1984' }, anna: { birthDate: null } });
      expect(advertising.body.errors!.map((error) => [error.path!.join('.'), error.extensions!.code])).toEqual([['anna.birthDate', 'CONSENT_REQUIRED']]);
    });
  });

  describe('explain (X-Governance-Explain: true)', () => {
    it('answers every decision in extensions, releases no personal value, and records the dry run', async () => {
      const response = await candor.query({
        key: KEYS.analytics,
        purpose: 'analytics.reporting',
        headers: { 'x-governance-explain': 'true' },
        query: `{ customers(limit: 3) { id fullName displayName email } }`,
      });
      expect(response.status).toBe(200);
      expect(response.body.errors).toBeUndefined();
      const rows = (response.body.data as { customers: Array<Record<string, unknown>> }).customers;
      expect(rows.map((row) => row.id)).toEqual([ANNA, BO, OBJECTOR]);
      for (const row of rows) expect([row.fullName, row.displayName, row.email]).toEqual([null, null, null]);
      const governance = response.body.extensions!.governance as { mode: string; purpose: string; explain: Array<{ coordinate: string; outcomes: unknown[] }> };
      expect([governance.mode, governance.purpose]).toEqual(['explain', 'analytics.reporting']);
      const explained = Object.fromEntries(governance.explain.map(({ coordinate, outcomes }) => [coordinate, outcomes]));
      expect(explained['Customer.fullName']).toEqual([{ decision: 'WITHHELD', reason: 'PURPOSE_NOT_DECLARED', legalBasis: 'legitimate_interests', subjects: 3, subjectIds: [ANNA, BO, OBJECTOR] }]);
      expect(explained['Customer.email']).toEqual([
        { decision: 'MASKED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', mask: 'partial_email', subjects: 2, subjectIds: [ANNA, BO] },
        { decision: 'WITHHELD', reason: 'OBJECTED', legalBasis: 'legitimate_interests', subjects: 1, subjectIds: [OBJECTOR] },
      ]);
      expect(explained['Customer.displayName']).toEqual([
        { decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', subjects: 2, subjectIds: [ANNA, BO] },
        { decision: 'WITHHELD', reason: 'OBJECTED', legalBasis: 'legitimate_interests', subjects: 1, subjectIds: [OBJECTOR] },
      ]);
      const records = await recordsOf(response.headers.get('x-request-id')!);
      expect(records).toHaveLength(9);
      expect(new Set(records.map((record) => `${record.decision} ${record.reason}`))).toEqual(new Set(['WITHHELD EXPLAIN_ONLY']));
    });

    it('decides a relation without resolving it: nothing of the related records leaves a dry run', async () => {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', headers: { 'x-governance-explain': 'true' }, query: `{ customer(id: "${ANNA}") { id payments { id currency } watchHistory { title } } }` });
      expect([response.status, response.body.errors, response.body.data]).toEqual([200, undefined, { customer: { id: ANNA, payments: null, watchHistory: null } }]);
      const explained = (response.body.extensions!.governance as { explain: Array<{ coordinate: string }> }).explain.map(({ coordinate }) => coordinate);
      expect(explained.sort()).toEqual(['Customer.payments', 'Customer.watchHistory']);
      const records = await recordsOf(response.headers.get('x-request-id')!);
      expect(records.map((record) => [record.coordinate, record.decision, record.reason]).sort()).toEqual([
        ['Customer.payments', 'WITHHELD', 'EXPLAIN_ONLY'],
        ['Customer.watchHistory', 'WITHHELD', 'EXPLAIN_ONLY'],
      ]);
      // A relation the decision withholds is told in extensions too, never as an error of the dry run.
      const objected = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', headers: { 'x-governance-explain': 'true' }, query: `{ customer(id: "${OBJECTOR}") { id payments { id } } }` });
      expect([objected.status, objected.body.errors, objected.body.data]).toEqual([200, undefined, { customer: { id: OBJECTOR, payments: null } }]);
      const [payments] = (objected.body.extensions!.governance as { explain: Array<{ coordinate: string; outcomes: Array<{ decision: string; reason: string }> }> }).explain;
      expect([payments.coordinate, payments.outcomes.map(({ decision, reason }) => [decision, reason])]).toEqual(['Customer.payments', [['WITHHELD', 'OBJECTED']]]);
    });

    it('summarises large lists by counts', async () => {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', headers: { 'x-governance-explain': 'true' }, query: `{ customers(limit: 100) { id displayName } }` });
      const [displayName] = (response.body.extensions!.governance as { explain: Array<{ outcomes: Array<{ subjects: number; subjectIds?: string[] }> }> }).explain;
      expect(displayName.outcomes.reduce((sum, outcome) => sum + outcome.subjects, 0)).toBe(100);
      for (const outcome of displayName.outcomes) expect(outcome.subjectIds === undefined).toBe(outcome.subjects > 20);
    });

    it('refuses to dry-run a mutation, and refuses a malformed mode header — both recorded', async () => {
      const mutation = await candor.query({
        key: KEYS.compliance,
        purpose: 'essential.legal_obligation',
        headers: { 'x-governance-explain': 'true' },
        query: `mutation { grantConsent(input: { subjectId: "${ANNA}", purpose: "marketing.communications", source: "test" }) { id } }`,
      });
      expect(mutation.status).toBe(400);
      expect(mutation.body.errors![0].extensions!.code).toBe('EXPLAIN_QUERIES_ONLY');
      expect(mutation.body.data ?? null).toBeNull();
      expect(await candor.services.consent.states([ANNA])).toEqual([expect.objectContaining({ consents: [] })]);
      const malformed = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', headers: { 'x-governance-explain': 'yes please' }, query: '{ customers(limit: 1) { id } }' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.errors![0].extensions!.code).toBe('BAD_GOVERNANCE_HEADER');
      for (const [response, code] of [[mutation, 'EXPLAIN_QUERIES_ONLY'], [malformed, 'BAD_GOVERNANCE_HEADER']] as const) {
        expect((await recordsOf(response.headers.get('x-request-id')!)).map((record) => [record.decision, record.reason])).toEqual([['REFUSED', code]]);
      }
    });

    it.each([
      ['a report', `{ report(kind: SUBJECT_ACCESS, subjectId: "${ANNA}") { json } }`, 'report'],
      ['a read of the log', '{ auditIntegrity { verified } }', 'auditIntegrity'],
    ])('does not run an operation of its own (%s) in a dry run: it would hand over what it returns', async (_case, query, field) => {
      const operation = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', headers: { 'x-governance-explain': 'true' }, query });
      expect(operation.body.data).toEqual({ [field]: null });
      expect(operation.body.errors!.map((error) => [error.extensions!.code, error.path])).toEqual([['EXPLAIN_QUERIES_ONLY', [field]]]);
      const records = await recordsOf(operation.headers.get('x-request-id')!);
      expect(records.map((record) => [record.decision, record.reason, record.coordinate])).toEqual([['REFUSED', 'EXPLAIN_QUERIES_ONLY', `Query.${field}`]]);
      // Without the header, it runs.
      const run = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query });
      expect([run.status, run.body.errors]).toEqual([200, undefined]);
    });
  });

  describe('reject mode', () => {
    const marketingQuery = (id: string) => `{ customer(id: "${id}") { fullName email } }`;

    it('refuses the whole operation when any selected field would be withheld (403), naming coordinates and reasons', async () => {
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', headers: { 'x-governance-mode': 'reject' }, query: marketingQuery(ANNA) });
      expect(response.status).toBe(403);
      expect(response.body.data).toBeUndefined();
      expect(JSON.stringify(response.body)).not.toContain('anna.berg');
      expect(JSON.stringify(response.body)).not.toContain('Test Person');
      const [error] = response.body.errors!;
      expect(error.extensions!.code).toBe('GOVERNANCE_REJECTED');
      expect(error.message).toBe('rejected: 2 selected field(s) would be withheld for marketing.communications (X-Governance-Mode: reject)');
      expect(error.extensions!.withheld).toEqual(
        expect.arrayContaining([
          { coordinate: 'Customer.fullName', reason: 'CONSENT_REQUIRED', subjects: 1 },
          { coordinate: 'Customer.email', reason: 'CONSENT_REQUIRED', subjects: 1 },
        ]),
      );
      const records = await recordsOf(response.headers.get('x-request-id')!);
      expect(records).toEqual(
        expect.arrayContaining([
          { subjectId: null, coordinate: null, decision: 'REFUSED', reason: 'GOVERNANCE_REJECTED', maskStrategy: null },
          { subjectId: ANNA, coordinate: 'Customer.email', decision: 'WITHHELD', reason: 'CONSENT_REQUIRED', maskStrategy: null },
        ]),
      );
    });

    it('counts the fields that would be withheld, a field withheld for two reasons (two subjects\') once', async () => {
      const objector = 'cus_0000_modes_marketing_objector';
      await addCustomer(candor, objector, { email: 'marketing.objector@mail.example' });
      await candor.services.consent.append({ subjectId: objector, kind: 'object', purpose: 'marketing.communications', source: 'test' });
      const query = `{ anna: customer(id: "${ANNA}") { email } objector: customer(id: "${objector}") { email } }`;
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', headers: { 'x-governance-mode': 'reject' }, query });
      const [error] = response.body.errors!;
      expect(error.extensions!.withheld).toEqual(
        expect.arrayContaining([
          { coordinate: 'Customer.email', reason: 'CONSENT_REQUIRED', subjects: 1 },
          { coordinate: 'Customer.email', reason: 'OBJECTED', subjects: 1 },
        ]),
      );
      expect(error.message).toBe('rejected: 1 selected field(s) would be withheld for marketing.communications (X-Governance-Mode: reject)');
    });

    it('answers normally when nothing is withheld; releases in a rejected operation are recorded as withheld', async () => {
      await candor.services.consent.append({ subjectId: BO, kind: 'grant', purpose: 'marketing.communications', source: 'test' });
      const released = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', headers: { 'x-governance-mode': 'reject' }, query: marketingQuery(BO) });
      expect(released.status).toBe(200);
      expect(released.body.data).toEqual({ customer: { fullName: `Test Person ${BO}`, email: 'bo@mail.example' } });
      const mixed = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', headers: { 'x-governance-mode': 'reject' }, query: `{ a: customer(id: "${ANNA}") { email } b: customer(id: "${BO}") { email } }` });
      expect(mixed.status).toBe(403);
      const records = await recordsOf(mixed.headers.get('x-request-id')!);
      expect(records.filter((record) => record.subjectId === BO)).toEqual([{ subjectId: BO, coordinate: 'Customer.email', decision: 'WITHHELD', reason: 'GOVERNANCE_REJECTED', maskStrategy: null }]);
    });

    it('records what a rejected operation would have read of the log, the inbox or a ledger as withheld: nothing was sent', async () => {
      for (const [read, coordinate, subjectId] of [
        ['inbox(first: 1) { id }', 'Query.inbox', null],
        ['accessLog(first: 1) { totalCount }', 'Query.accessLog', null],
        [`consentHistory(subjectId: "${ANNA}") { id }`, 'Query.consentHistory', ANNA],
      ] as const) {
        const response = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', headers: { 'x-governance-mode': 'reject' }, query: `{ ${read} customers(limit: 1) { email } }` });
        expect([response.status, response.body.data]).toEqual([403, undefined]);
        const records = await recordsOf(response.headers.get('x-request-id')!);
        expect(records.filter((record) => record.coordinate === coordinate)).toEqual([expect.objectContaining({ subjectId, decision: 'WITHHELD', reason: 'GOVERNANCE_REJECTED' })]);
        expect(records.filter((record) => record.decision === 'RELEASED')).toEqual([]);
      }
    });

    it(`an actor with the reject-withheld role is always in reject mode; a request cannot loosen it`, async () => {
      const key = await candor.services.actors.create({ id: 'nightly-export', name: 'Nightly export', team: 'Data', purposes: ['marketing.communications'], roles: ['reject-withheld'] });
      for (const headers of [{}, { 'x-governance-mode': 'release' }] as Array<Record<string, string>>) {
        const response = await candor.query({ key, purpose: 'marketing.communications', headers, query: marketingQuery(ANNA) });
        expect(response.status).toBe(403);
        expect(response.body.errors![0].extensions!.code).toBe('GOVERNANCE_REJECTED');
        // It says what set reject mode: the role, not a header the client did not send.
        expect(response.body.errors![0].message).toMatch(/ \(the actor's reject-withheld role\)$/);
      }
    });
  });
});
