import { request as httpRequest } from 'node:http';
import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { permittedSubjectsCondition } from '../../src/consent/permitted-subjects';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { PaymentEntity } from '../../src/domain/payment.entity';
import { decide, type RequestPurpose } from '../../src/policy/decide';
import { SANDBOX_DEFAULT_HEADERS } from '../../src/server/http-server';
import { type Harness, KEYS, startCandor, STORES_AND_EXECUTORS, TEST_STORE_DEADLINE_MS } from '../support/candor-harness';
import { addCustomer } from '../support/subjects';

const A = 'cus_0000_a';
const B = 'cus_0000_b';
const C = 'cus_0000_c';

describe.each(STORES_AND_EXECUTORS)('the governed query path on %s, executed by %s', (driver, executor) => {
  let candor: Harness;

  beforeAll(async () => {
    candor = await startCandor(driver, { executor });
    for (const id of [A, B, C]) await addCustomer(candor, id);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  const manageConsent = async (mutation: string, input: Record<string, unknown>) => {
    const response = await candor.query({
      key: KEYS.compliance,
      purpose: 'essential.legal_obligation',
      query: `mutation Manage($input: ${inputTypeOf(mutation)}!) { ${mutation}(input: $input) { id kind purpose subjectId } }`,
      variables: { input },
    });
    expect(response.body.errors).toBeUndefined();
    return response.body.data![mutation];
  };
  const emailOf = (subjectId: string, key: string = KEYS.marketing, purpose = 'marketing.communications') =>
    candor.query({ key, purpose, query: `query Email($id: ID!) { customer(id: $id) { id email } }`, variables: { id: subjectId } });
  const records = async (requestId: string) => (await candor.services.accessLogReader.page({ requestId }, 500)).edges.map((edge) => edge.node);

  describe('refusals before execution', () => {
    it.each([
      ['no key', {}, 401, 'UNAUTHENTICATED'],
      ['an unknown key', { key: 'not-a-key' }, 401, 'UNAUTHENTICATED'],
      ['no purpose', { key: KEYS.support }, 400, 'PURPOSE_REQUIRED'],
      ['an unknown purpose', { key: KEYS.support, purpose: 'espionage' }, 400, 'PURPOSE_UNKNOWN'],
      ['a grouping purpose', { key: KEYS.marketing, purpose: 'marketing' }, 400, 'PURPOSE_NOT_REQUESTABLE'],
      ['a purpose the actor is not entitled to', { key: KEYS.support, purpose: 'marketing.communications' }, 403, 'PURPOSE_NOT_PERMITTED'],
    ] as const)('refuses %s with %s %s, records it, and still sets X-Request-Id', async (_case, auth, status, code) => {
      const response = await candor.query({ ...auth, query: '{ customers { id email } }' });
      expect(response.status).toBe(status);
      expect(response.body.data).toBeUndefined();
      expect(response.body.errors).toEqual([expect.objectContaining({ extensions: { code } })]);
      const requestId = response.headers.get('x-request-id')!;
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await records(requestId)).toEqual([expect.objectContaining({ decision: 'REFUSED', reason: code, subjectId: null })]);
    });

    it('ignores a client-sent X-Request-Id and generates its own', async () => {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 1) { id } }', headers: { 'x-request-id': 'client-chosen' } });
      expect(response.headers.get('x-request-id')).not.toBe('client-chosen');
    });

    it('answers introspection with a valid key and no purpose, but not without a key', async () => {
      const query = '{ __schema { queryType { name } } }';
      expect((await candor.query({ key: KEYS.analytics, query })).body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
      expect((await candor.query({ query })).status).toBe(401);
      const sneaky = await candor.query({ key: KEYS.analytics, query: '{ __typename ...F } fragment F on Query { customers { email } }' });
      expect(sneaky.body.errors?.[0].extensions?.code).toBe('PURPOSE_REQUIRED');
    });
  });

  describe('per-field decisions', () => {
    it('withholds a field without consent with a coded error that names coordinate, category, purpose and subject, never the value', async () => {
      const response = await emailOf(A);
      expect(response.status).toBe(200);
      expect(response.body.data).toEqual({ customer: { id: A, email: null } });
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          path: ['customer', 'email'],
          extensions: { code: 'CONSENT_REQUIRED', governance: { coordinate: 'Customer.email', category: 'user.contact.email', purpose: 'marketing.communications', subjectId: A } },
        }),
      ]);
      expect(JSON.stringify(response.body)).not.toContain('secret.example');
    });

    it('follows consent across requests: grant → released, withdraw → withheld, grant again → released', async () => {
      await manageConsent('grantConsent', { subjectId: A, purpose: 'marketing.communications', source: 'test' });
      expect((await emailOf(A)).body).toEqual({ data: { customer: { id: A, email: `${A}@secret.example` } } });
      await manageConsent('withdrawConsent', { subjectId: A, purpose: 'marketing.communications', source: 'test' });
      expect((await emailOf(A)).body.errors?.[0].extensions?.code).toBe('CONSENT_REQUIRED');
      await manageConsent('grantConsent', { subjectId: A, purpose: 'marketing', source: 'test' });
      expect((await emailOf(A)).body.data?.customer.email).toBe(`${A}@secret.example`);
    });

    it('honours an objection and its withdrawal for a legitimate-interests purpose', async () => {
      const birthDate = () => candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${B}") { birthDate } }` });
      expect((await birthDate()).body).toEqual({ data: { customer: { birthDate: '1990-04-01' } } });
      await manageConsent('objectToProcessing', { subjectId: B, purpose: 'analytics', source: 'test' });
      const objected = await birthDate();
      expect(objected.body.data).toEqual({ customer: { birthDate: null } });
      expect(objected.body.errors?.[0].extensions?.code).toBe('OBJECTED');
      await manageConsent('withdrawObjection', { subjectId: B, purpose: 'analytics', source: 'test' });
      expect((await birthDate()).body.data).toEqual({ customer: { birthDate: '1990-04-01' } });
    });

    it('requires explicit consent for special-category data, whatever the basis', async () => {
      const needs = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${C}") { accessibilityNeeds email } }` });
      const before = await needs();
      expect(before.body.data).toEqual({ customer: { accessibilityNeeds: null, email: `${C}@secret.example` } });
      expect(before.body.errors?.[0].extensions?.code).toBe('EXPLICIT_CONSENT_REQUIRED');
      await manageConsent('grantConsent', { subjectId: C, purpose: 'essential.service', source: 'test', explicit: false });
      expect((await needs()).body.errors?.[0].extensions?.code).toBe('EXPLICIT_CONSENT_REQUIRED');
      await manageConsent('grantConsent', { subjectId: C, purpose: 'essential.service', source: 'accessibility-settings', explicit: true });
      expect((await needs()).body).toEqual({ data: { customer: { accessibilityNeeds: 'audio description', email: `${C}@secret.example` } } });
    });

    it('stops processing under a restriction, except for a legal obligation, until it is lifted', async () => {
      await manageConsent('restrictProcessing', { subjectId: B, restricted: true, source: 'test' });
      const service = await emailOf(B, KEYS.support, 'essential.service');
      expect(service.body.errors?.[0].extensions?.code).toBe('PROCESSING_RESTRICTED');
      const legal = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ customer(id: "${B}") { payments { amount paidAt } } }` });
      expect(legal.body).toEqual({ data: { customer: { payments: [{ amount: 9.99, paidAt: '2025-12-01T00:00:00.000Z' }] } } });
      await manageConsent('restrictProcessing', { subjectId: B, restricted: false, source: 'test' });
      expect((await emailOf(B, KEYS.support, 'essential.service')).body.errors).toBeUndefined();
    });

    it('withholds fields not declared for the purpose, relations included (graphql-shield)', async () => {
      const response = await candor.query({ key: KEYS.partners, purpose: 'third_party_sharing', query: `{ customer(id: "${A}") { country payments { amount } watchHistory { title } } }` });
      expect(response.body.data).toEqual({ customer: { country: null, payments: null, watchHistory: null } });
      expect(response.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code]).sort()).toEqual([
        ['customer.country', 'CONSENT_REQUIRED'],
        ['customer.payments', 'PURPOSE_NOT_DECLARED'],
        ['customer.watchHistory', 'PURPOSE_NOT_DECLARED'],
      ]);
    });

    it('collapses aliases, fragments and repeats of a withheld field into one record, and withholds every copy', async () => {
      const response = await candor.query({
        key: KEYS.marketing,
        purpose: 'marketing.communications',
        operationName: 'Sneaky',
        query: `query Sneaky { customer(id: "${B}") { a: email b: email email ...Mail ... on Customer { c: email } } } fragment Mail on Customer { d: email email }`,
      });
      expect(response.body.data).toEqual({ customer: { a: null, b: null, email: null, c: null, d: null } });
      expect(new Set(response.body.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['CONSENT_REQUIRED']));
      expect(JSON.stringify(response.body)).not.toContain('secret.example');
      const logged = await records(response.headers.get('x-request-id')!);
      expect(logged).toEqual([
        expect.objectContaining({
          subjectId: B,
          coordinate: 'Customer.email',
          category: 'user.contact.email',
          decision: 'WITHHELD',
          reason: 'CONSENT_REQUIRED',
          legalBasis: 'consent',
          purpose: 'marketing.communications',
          actor: { id: 'campaign-manager', name: 'Campaign Manager', team: 'Marketing' },
          operationName: 'Sneaky',
        }),
      ]);
    });

    it('decides per subject in one list: two subjects never share a decision', async () => {
      await manageConsent('grantConsent', { subjectId: A, purpose: 'marketing.communications', source: 'test' });
      await manageConsent('withdrawConsent', { subjectId: B, purpose: 'marketing', source: 'test' });
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 2) { id email fullName } }' });
      expect(response.body.data?.customers).toEqual([
        { id: A, email: `${A}@secret.example`, fullName: `Test Person ${A}` },
        { id: B, email: null, fullName: null },
      ]);
      expect(response.body.errors?.every((error) => error.extensions?.governance.subjectId === B)).toBe(true);
      const logged = await records(response.headers.get('x-request-id')!);
      expect(logged.map((record) => [record.subjectId, record.coordinate, record.decision]).sort()).toEqual([
        [A, 'Customer.email', 'RELEASED'],
        [A, 'Customer.fullName', 'RELEASED'],
        [B, 'Customer.email', 'WITHHELD'],
        [B, 'Customer.fullName', 'WITHHELD'],
      ]);
    });

    it('can report withheld leaves once in extensions instead of one error each (X-Governance-Withheld)', async () => {
      // B has not consented to marketing (CONSENT_REQUIRED); Customer.country is not declared for it at all (PURPOSE_NOT_DECLARED).
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${B}") { id email e2: email fullName country } }`, headers: { 'x-governance-withheld': 'extensions' } });
      expect(response.body.errors).toBeUndefined();
      expect(response.body.data).toEqual({ customer: { id: B, email: null, e2: null, fullName: null, country: null } });
      expect((response.body as any).extensions.governance).toEqual({
        purpose: 'marketing.communications',
        withheld: [
          { path: ['customer', 'email'], coordinate: 'Customer.email', code: 'CONSENT_REQUIRED', subjectId: B },
          { path: ['customer', 'e2'], coordinate: 'Customer.email', code: 'CONSENT_REQUIRED', subjectId: B },
          { path: ['customer', 'fullName'], coordinate: 'Customer.fullName', code: 'CONSENT_REQUIRED', subjectId: B },
          { path: ['customer', 'country'], coordinate: 'Customer.country', code: 'PURPOSE_NOT_DECLARED', subjectId: B },
        ],
      });
      // The codes reported are the reasons recorded, one record per coordinate.
      expect((await records(response.headers.get('x-request-id')!)).map((record) => [record.coordinate, record.decision, record.reason]).sort()).toEqual([
        ['Customer.country', 'WITHHELD', 'PURPOSE_NOT_DECLARED'],
        ['Customer.email', 'WITHHELD', 'CONSENT_REQUIRED'],
        ['Customer.fullName', 'WITHHELD', 'CONSENT_REQUIRED'],
      ]);
      const bad = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ __typename }', headers: { 'x-governance-withheld': 'silently' } });
      expect([bad.status, bad.body.errors?.[0].extensions?.code]).toEqual([400, 'BAD_GOVERNANCE_HEADER']);
    });

    it('refuses a request sending two Authorization headers (UNAUTHENTICATED, recorded), whichever comes first', async () => {
      const url = new URL(candor.server.url);
      for (const keys of [[KEYS.marketing, KEYS.support], [KEYS.support, KEYS.marketing]]) {
        // Node's fetch would join the two into one line: the request is written by hand, each on a line of its own.
        const answer = await new Promise<{ status: number; body: any; requestId: string }>((resolve, reject) => {
          const request = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST' }, (response) => {
            let text = '';
            response.on('data', (chunk) => (text += chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text), requestId: String(response.headers['x-request-id']) }));
          });
          request.setHeader('content-type', 'application/json');
          request.setHeader('x-purpose', 'marketing.communications');
          request.setHeader('authorization', keys.map((key) => `Bearer ${key}`));
          request.on('error', reject);
          request.end(JSON.stringify({ query: `{ customer(id: "${A}") { email } }` }));
        });
        expect([answer.status, answer.body.data, answer.body.errors?.map((error: any) => [error.extensions?.code, error.message])]).toEqual([401, undefined, [['UNAUTHENTICATED', 'send one Authorization header: this request sent several']]]);
        await candor.services.accessLog.drain();
        expect((await records(answer.requestId)).map((record) => [record.decision, record.reason, record.actor.id])).toEqual([['REFUSED', 'UNAUTHENTICATED', null]]);
      }
    });

    it('records released and withheld personal fields but not non-personal ones', async () => {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${A}") { id birthDate fullName payments { id currency amount } } }` });
      const logged = await records(response.headers.get('x-request-id')!);
      expect(logged.map((record) => `${record.coordinate}:${record.decision}:${record.reason}`).sort()).toEqual([
        'Customer.birthDate:RELEASED:LEGAL_BASIS',
        'Customer.fullName:WITHHELD:PURPOSE_NOT_DECLARED',
        'Customer.payments:RELEASED:LEGAL_BASIS',
        'Payment.amount:RELEASED:LEGAL_BASIS',
      ]);
    });
  });

  describe('operations and input', () => {
    it('refuses a mutation to an actor without the role (FORBIDDEN) and records the refusal', async () => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `mutation { grantConsent(input: { subjectId: "${A}", purpose: "marketing", source: "x" }) { id } }` });
      expect(response.body.data).toEqual({ grantConsent: null });
      expect(response.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
      expect(await records(response.headers.get('x-request-id')!)).toEqual([expect.objectContaining({ decision: 'REFUSED', reason: 'FORBIDDEN', coordinate: 'Mutation.grantConsent' })]);
    });

    it.each([
      ['an unknown subject', { subjectId: 'cus_nobody', purpose: 'marketing', source: 'x' }, 'unknown subject'],
      ['an unknown purpose', { subjectId: A, purpose: 'marketing.spam', source: 'x' }, 'unknown purpose'],
      ['an empty source', { subjectId: A, purpose: 'marketing', source: ' ' }, 'source is required'],
      ['an expiry in the past', { subjectId: A, purpose: 'marketing', source: 'x', expiresAt: '2000-01-01T00:00:00Z' }, 'future'],
      ['an unparsable expiry', { subjectId: A, purpose: 'marketing', source: 'x', expiresAt: 'tomorrow' }, 'ISO-8601'],
    ])('rejects a grant with %s as BAD_USER_INPUT and writes nothing', async (_case, input, message) => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const response = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: 'mutation Grant($input: GrantConsentInput!) { grantConsent(input: $input) { id } }', variables: { input } });
      expect(response.body.errors?.[0]).toEqual(expect.objectContaining({ message: expect.stringContaining(message), extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }));
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
    });

    it('commits concurrent consent changes independently: a rejected one never takes others with it', async () => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const grant = (subjectId: string) =>
        candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: 'mutation Grant($input: GrantConsentInput!) { grantConsent(input: $input) { id } }', variables: { input: { subjectId, purpose: 'personalize.content', source: 'concurrency-test' } } });
      const responses = await Promise.all([A, B, 'cus_nobody', C, A, B, C].map(grant));
      expect(responses.map((response) => response.body.errors?.[0]?.extensions?.code ?? 'OK')).toEqual(['OK', 'OK', 'BAD_USER_INPUT', 'OK', 'OK', 'OK', 'OK']);
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before + 6);
    });

    /** A request's records as (coordinate, subject, decision, reason). */
    const recordsOfRequest = async (requestId: string | null) =>
      (await candor.services.accessLogReader.page({ requestId: requestId! }, 50)).edges.map(({ node }) => [node.coordinate, node.subjectId, node.decision, node.reason]);

    it('refuses a page larger than 1000 as BAD_USER_INPUT, recorded as a refusal of the field (under its alias)', async () => {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ page: customers(limit: 1001) { id } }' });
      expect(response.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(await recordsOfRequest(response.headers.get('x-request-id'))).toEqual([['Query.customers', null, 'REFUSED', 'BAD_USER_INPUT']]);
    });

    it('refuses a null argument where the schema needs a value as BAD_USER_INPUT, not as an internal error', async () => {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: 'query($n: Int) { customers(limit: $n) { id } }', variables: { n: null } });
      expect(response.body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([['BAD_USER_INPUT', 'Argument "limit" of non-null type "Int!" must not be null.']]);
      // Refused by the executor before the field's rule ran: recorded all the same.
      expect(await recordsOfRequest(response.headers.get('x-request-id'))).toEqual([['Query.customers', null, 'REFUSED', 'BAD_USER_INPUT']]);
    });

    it("refuses Apollo's persisted-query mistakes as BAD_REQUEST: a hash that does not match the document, an unknown version", async () => {
      const persisted = (extension: Record<string, unknown>) =>
        fetch(candor.server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, 'x-purpose': 'essential.service' },
          body: JSON.stringify({ query: '{ customers(limit: 1) { id } }', extensions: { persistedQuery: extension } }),
        }).then(async (response) => [response.status, ((await response.json()) as { errors: Array<{ extensions: { code: string }; message: string }> }).errors.map((error) => [error.extensions.code, error.message])]);
      expect(await persisted({ version: 1, sha256Hash: '0'.repeat(64) })).toEqual([400, [['BAD_REQUEST', 'provided sha does not match query']]]);
      expect(await persisted({ version: 2, sha256Hash: '0'.repeat(64) })).toEqual([400, [['BAD_REQUEST', 'Unsupported persisted query version']]]);
    });

    it('returns the ledger entry from a consent mutation, itself governed under the legal obligation', async () => {
      const response = await candor.query({
        key: KEYS.compliance,
        purpose: 'essential.legal_obligation',
        query: `mutation { grantConsent(input: { subjectId: "${C}", purpose: "third_party_sharing", source: "support-call", expiresAt: "2099-01-01T00:00:00Z" }) { subjectId kind purpose explicit source expiresAt } }`,
      });
      expect(response.body).toEqual({
        data: { grantConsent: { subjectId: C, kind: 'GRANT', purpose: 'third_party_sharing', explicit: false, source: 'support-call', expiresAt: '2099-01-01T00:00:00.000Z' } },
      });
    });
  });

  describe('onlyPermitted and batching', () => {
    it.each(['marketing.communications', 'marketing.advertising', 'third_party_sharing', 'analytics.reporting', 'essential.service', 'essential.legal_obligation', 'personalize.content'])(
      'filters in SQL exactly the subjects decide() rules 3, 4 and 6 allow for %s',
      async (purposeKey) => {
        const purpose = candor.services.taxonomy.purposes.get(purposeKey)!;
        const requestPurpose: RequestPurpose = { key: purpose.key, legalBasis: purpose.legalBasis! };
        const now = new Date();
        const everyone = await candor.services.dataSource.getRepository(CustomerEntity).find({ order: { id: 'ASC' } });
        const states = await candor.services.consent.states(everyone.map((customer) => customer.id));
        const ordinaryField = { category: 'user.contact.email', personal: true, special: false, purposes: [purposeKey] };
        const expected = states.filter((subjectState) => decide({ field: ordinaryField, purpose: requestPurpose, subjectState, now }).effect === 'allow').map((subjectState) => subjectState.subjectId);
        const leftOut: string[] = [];
        const filtered = await candor.services.domain.listCustomers({ limit: 1000, offset: 0, filter: { ...permittedSubjectsCondition(requestPurpose, 'customer.id', now), leftOut: (ids) => leftOut.push(...ids) } });
        expect(filtered.map((customer) => customer.id)).toEqual(expected);
        expect(expected.length).toBeGreaterThan(0);
        // The filter is told everyone else it looked at.
        expect(leftOut).toEqual(everyone.map((customer) => customer.id).filter((id) => !expected.includes(id)));
      },
    );

    it('applies onlyPermitted within the page: of the customers from offset, those whose choices allow the purpose, all released', async () => {
      const page = '(limit: 60, offset: 20)';
      const everyone = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customers${page} { id } }` });
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customers${page.replace(')', ', onlyPermitted: true)')} { id email } }` });
      expect(response.body.errors).toBeUndefined();
      const kept = response.body.data?.customers as Array<{ id: string; email: string | null }>;
      // Some left out (the seeded choices vary), none from outside the page, every e-mail released.
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length).toBeLessThan(60);
      const pageIds = (everyone.body.data?.customers as Array<{ id: string }>).map((customer) => customer.id);
      expect(kept.map((customer) => customer.id)).toEqual(pageIds.filter((id) => kept.some((customer) => customer.id === id)));
      expect(kept.every((customer) => customer.email !== null)).toBe(true);
    });

    it('records every subject of the page, even when no personal field is selected: kept (their choices allow the purpose) or left out (they do not)', async () => {
      const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 40, onlyPermitted: true) { id } }' });
      const kept = (response.body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
      const page = ((await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 40) { id } }' })).body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length).toBeLessThan(page.length);
      const recorded = (await records(response.headers.get('x-request-id')!)).filter((record) => record.subjectId !== null);
      const told = (id: string) => (kept.includes(id) ? ['RELEASED', 'FILTERED_ON_CHOICES'] : ['WITHHELD', 'FILTERED_OUT_ON_CHOICES']);
      expect(recorded.map((record) => [record.subjectId, record.coordinate, record.category, record.decision, record.reason, record.legalBasis]).sort()).toEqual(
        page.map((id) => [id, 'Query.customers', 'user.privacy_preferences', ...told(id), 'consent']).sort(),
      );
      // Without the filter the list tells nothing of anyone's choices, and nothing of the kind is recorded.
      const unfiltered = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 5) { id } }' });
      expect((await records(unfiltered.headers.get('x-request-id')!)).filter((record) => record.reason === 'FILTERED_ON_CHOICES')).toEqual([]);
    });

    it('records every subject of the page in reject mode too: whether the operation is rejected tells whom the filter kept', async () => {
      // Customer.country is not declared for marketing: each customer kept makes one withheld decision, so a rejection
      // (and its subject count) says how many of the page allow the purpose — with a page of one, whether that one does.
      const page = ((await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 40) { id } }' })).body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
      const kept = ((await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 40, onlyPermitted: true) { id } }' })).body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.length).toBeLessThan(page.length);
      const rejected = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 40, onlyPermitted: true) { country } }', headers: { 'x-governance-mode': 'reject' } });
      expect(rejected.body.errors?.[0].extensions).toEqual(expect.objectContaining({ code: 'GOVERNANCE_REJECTED', withheld: [{ coordinate: 'Customer.country', reason: 'PURPOSE_NOT_DECLARED', subjects: kept.length }] }));
      const told = (await records(rejected.headers.get('x-request-id')!)).filter((record) => record.category === 'user.privacy_preferences');
      expect(told.map((record) => [record.subjectId, record.decision, record.reason]).sort()).toEqual(
        page.map((id) => [id, ...(kept.includes(id) ? ['RELEASED', 'FILTERED_ON_CHOICES'] : ['WITHHELD', 'FILTERED_OUT_ON_CHOICES'])]).sort(),
      );
    });

    it('reads the domain and the consent state a constant number of times, whatever the page size', async () => {
      // Three pages of watch history in aliases, and empty pages: one read of each relation, whatever the pages.
      const query = (limit: number) =>
        `{ customers(limit: ${limit}) { id fullName displayName email phone birthDate country postalAddress favoriteGenres accessibilityNeeds watchHistory(limit: 3) { title watchedAt seconds } again: watchHistory(limit: 3) { title } older: watchHistory(limit: 3, offset: 3) { title } oldest: watchHistory(limit: 3, offset: 6) { title } none: watchHistory(limit: 0, offset: 9) { title } payments { id amount currency paidAt cardLast4 } noPayments: payments(limit: 0) { id } } }`;
      const readsFor = async (limit: number) => {
        candor.sql.reset();
        const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: query(limit) });
        expect(response.body.data?.customers).toHaveLength(limit);
        return candor.sql.domainAndConsentReads().length;
      };
      const small = await readsFor(10);
      const large = await readsFor(200);
      expect(small).toBeGreaterThan(0);
      expect(large).toBe(small);
      // customers, consent states, which of the subjects are erased, payments, watch history
      expect(small).toBeLessThanOrEqual(5);
    });
  });

  describe("a customer's relations, a page at a time", () => {
    const D = 'cus_0000_d';
    /** D's payment ids, newest first: the one addCustomer gives (December 2025), then 24 from January 2024 on. */
    const newestFirst = [`${D}_pay`, ...Array.from({ length: 24 }, (_, index) => `${D}_pay_${String(23 - index).padStart(2, '0')}`)];
    beforeAll(async () => {
      await addCustomer(candor, D);
      await candor.services.dataSource.getRepository(PaymentEntity).insert(
        Array.from({ length: 24 }, (_, index) => ({ id: `${D}_pay_${String(index).padStart(2, '0')}`, customerId: D, amount: index, currency: 'EUR', paidAt: new Date(Date.UTC(2024, 0, 1 + index)).toISOString(), cardLast4: '4242' })),
      );
    });
    const paymentsOf = (selection: string) => candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${D}") { ${selection} } }` });

    it('returns the newest first: the default page of 10, and each alias the page it asks for', async () => {
      const response = await paymentsOf('first: payments { id } second: payments(limit: 10, offset: 10) { id } rest: payments(limit: 500, offset: 20) { id } none: payments(limit: 0) { id } past: payments(offset: 25) { id }');
      expect(response.body.errors).toBeUndefined();
      const ids = (alias: string) => (response.body.data!.customer[alias] as Array<{ id: string }>).map((payment) => payment.id);
      expect(['first', 'second', 'rest', 'none', 'past'].map(ids)).toEqual([newestFirst.slice(0, 10), newestFirst.slice(10, 20), newestFirst.slice(20), [], []]);
    });

    it.each([
      ['limit: 501', 'limit must be between 0 and 500', 'limit'],
      ['limit: -1', 'limit must be between 0 and 500', 'limit'],
      ['offset: -1', 'offset must not be negative', 'offset'],
    ])('refuses payments(%s) as BAD_USER_INPUT naming the argument, and releases nothing of it', async (argumentsGiven, message, argument) => {
      const response = await paymentsOf(`id payments(${argumentsGiven}) { id amount }`);
      expect(response.body.data).toEqual({ customer: { id: D, payments: null } });
      expect(response.body.errors).toEqual([expect.objectContaining({ message, path: ['customer', 'payments'], extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', argument }) })]);
    });

    it('counts a list inside a list once per enclosing item against CANDOR_MAX_LIST_ITEMS', async () => {
      // 300 customers + 300 × 10 payments + 300 × 10 watch events = 6,300 > 5,000: refused before anything runs.
      const refused = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: '{ customers(limit: 300) { id payments { id } watchHistory { title } } }' });
      expect(refused.status).toBe(400);
      expect(refused.body.errors?.[0]).toEqual(
        expect.objectContaining({ message: 'the operation asks for 6300 items from its lists together, more than 5000 (CANDOR_MAX_LIST_ITEMS): ask for smaller pages — a list inside a list counts once per item of the enclosing one', extensions: expect.objectContaining({ code: 'QUERY_TOO_COSTLY' }) }),
      );
      const smallerPages = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: '{ customers(limit: 300) { id payments(limit: 5) { id } watchHistory(limit: 3) { title } } }' });
      // Run, governed as usual (seeded subjects who objected or restricted get their coded errors).
      expect(smallerPages.status).toBe(200);
      expect(smallerPages.body.data?.customers.length).toBeGreaterThan(200);
      expect(smallerPages.body.errors?.map((error) => error.extensions?.code).filter((code) => !['OBJECTED', 'PROCESSING_RESTRICTED'].includes(code as string))).toEqual([]);
    });
  });

  describe('fail closed', () => {
    it('withholds governed fields with GOVERNANCE_UNAVAILABLE when the consent store cannot be read', async () => {
      const states = jest.spyOn(candor.services.consent, 'states').mockRejectedValue(new Error('connection terminated'));
      try {
        const response = await emailOf(A, KEYS.support, 'essential.service');
        expect(response.body.data).toEqual({ customer: { id: A, email: null } });
        expect(response.body.errors?.[0].extensions?.code).toBe('GOVERNANCE_UNAVAILABLE');
      } finally {
        states.mockRestore();
      }
    });

    it('withholds governed fields when the consent store is slower than the configured deadline', async () => {
      const slowerThanDeadline = TEST_STORE_DEADLINE_MS + 1_500;
      const slow = jest.spyOn(candor.services.consent, 'states').mockImplementation((ids) => new Promise((resolve) => setTimeout(() => resolve(ids.map((subjectId) => ({ subjectId, restricted: false, consents: [], objections: [] }))), slowerThanDeadline)));
      try {
        // Had the deadline not fired, the answer (no consent needed for essential.service) would release the e-mail.
        const response = await emailOf(A, KEYS.support, 'essential.service');
        expect(response.body.data).toEqual({ customer: { id: A, email: null } });
        expect(response.body.errors?.[0].extensions?.code).toBe('GOVERNANCE_UNAVAILABLE');
      } finally {
        slow.mockRestore();
      }
    });

    it('answers AUDIT_UNAVAILABLE (503) and no data when the access log cannot be written', async () => {
      const append = jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValue(new Error('disk full'));
      try {
        const response = await emailOf(A, KEYS.support, 'essential.service');
        expect(response.status).toBe(503);
        expect(response.body.data).toBeUndefined();
        expect(response.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'AUDIT_UNAVAILABLE' } })]);
        expect(JSON.stringify(response.body)).not.toContain('secret.example');
        // A list filtered on the subjects' choices carries no personal field, but tells of their choices: withdrawn too.
        const filtered = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 5, onlyPermitted: true) { id } }' });
        expect([filtered.status, filtered.body.data, filtered.body.errors?.map((error) => error.extensions?.code)]).toEqual([503, undefined, ['AUDIT_UNAVAILABLE']]);
        // ...even when it kept nobody: an empty page tells that none of its customers agreed.
        for (const id of ['cus_0000_0left_1', 'cus_0000_0left_2']) await addCustomer(candor, id);
        const nobody = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 2, onlyPermitted: true) { id } }' });
        expect([nobody.status, nobody.body.data, nobody.body.errors?.map((error) => error.extensions?.code)]).toEqual([503, undefined, ['AUDIT_UNAVAILABLE']]);
      } finally {
        append.mockRestore();
      }
    });

    it('masks unexpected errors as INTERNAL_SERVER_ERROR without message details or stack', async () => {
      const list = jest.spyOn(candor.services.domain, 'listCustomers').mockRejectedValue(new Error('SELECT password FROM secrets'));
      try {
        const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers { id } }' });
        expect(response.body.errors).toEqual([expect.objectContaining({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
        expect(JSON.stringify(response.body)).not.toMatch(/password|stack/);
      } finally {
        list.mockRestore();
      }
    });

    it('answers malformed JSON with a coded 400 and no stack trace', async () => {
      const response = await fetch(candor.server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}` }, body: '{"query": ' });
      expect(response.status).toBe(400);
      expect(response.headers.get('x-request-id')).toBeTruthy();
      expect(await response.json()).toEqual({ errors: [{ message: 'malformed request body', extensions: { code: 'BAD_REQUEST' } }] });
    });
  });

  it('serves Apollo Sandbox from a browser with the analytics key and purpose pre-filled', async () => {
    const response = await fetch(candor.server.url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('embeddable-sandbox');
    // Shared headers, as the landing page embeds them in its initial state: sent with operations and introspection.
    expect(html).toContain(`"sharedHeaders":${JSON.stringify(SANDBOX_DEFAULT_HEADERS)}`);
    expect(SANDBOX_DEFAULT_HEADERS).toEqual({ Authorization: 'Bearer demo-analytics-key', 'X-Purpose': 'analytics.reporting' });
  });

  it(`ran its operations on ${executor}`, () => {
    // graphql-js is Apollo's own execution (no gateway); graphql-jit counts what it executed.
    if (executor === 'graphql-js') expect(candor.server.jit).toBeUndefined();
    else expect(candor.server.jit!.executions.jit).toBeGreaterThanOrEqual(20);
  });
});

describe.each(STORES_AND_EXECUTORS)('CANDOR_WITHHELD_REPORTING=extensions, the server-wide default, on %s, executed by %s', (driver, executor) => {
  const REFUSED = 'cus_0000_reporting_a';
  const GRANTED = 'cus_0000_reporting_b';
  let candor: Harness;

  beforeAll(async () => {
    // No demo data: the two subjects alone are the customers listed.
    candor = await startCandor(driver, { executor, seed: false, env: { CANDOR_WITHHELD_REPORTING: 'extensions' } });
    await candor.services.actors.seedDemoActors();
    for (const id of [REFUSED, GRANTED]) await addCustomer(candor, id);
    await candor.services.consent.append({ subjectId: GRANTED, kind: 'grant', purpose: 'marketing', source: 'test' });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  const list = (headers?: Record<string, string>) => candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 2) { id email fullName country } }', headers });
  const data = {
    customers: [
      { id: REFUSED, email: null, fullName: null, country: null },
      { id: GRANTED, email: `${GRANTED}@secret.example`, fullName: `Test Person ${GRANTED}`, country: null },
    ],
  };

  it('reports withheld fields once in extensions, with their codes, and no error each, without any header', async () => {
    expect(candor.services.config.withheldReporting).toBe('extensions');
    const response = await list();
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data).toEqual(data);
    // Customer.country is not declared for marketing: withheld for both, the subject who consented too.
    expect(response.body.extensions?.governance).toEqual({
      purpose: 'marketing.communications',
      withheld: [
        { path: ['customers', 0, 'email'], coordinate: 'Customer.email', code: 'CONSENT_REQUIRED', subjectId: REFUSED },
        { path: ['customers', 0, 'fullName'], coordinate: 'Customer.fullName', code: 'CONSENT_REQUIRED', subjectId: REFUSED },
        { path: ['customers', 0, 'country'], coordinate: 'Customer.country', code: 'PURPOSE_NOT_DECLARED', subjectId: REFUSED },
        { path: ['customers', 1, 'country'], coordinate: 'Customer.country', code: 'PURPOSE_NOT_DECLARED', subjectId: GRANTED },
      ],
    });
    // Recorded as with errors: each decision once.
    const records = (await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')! }, 50)).edges.map(({ node }) => [node.subjectId, node.coordinate, node.decision, node.reason]);
    expect(records.sort()).toEqual(
      [
        [REFUSED, 'Customer.country', 'WITHHELD', 'PURPOSE_NOT_DECLARED'],
        [REFUSED, 'Customer.email', 'WITHHELD', 'CONSENT_REQUIRED'],
        [REFUSED, 'Customer.fullName', 'WITHHELD', 'CONSENT_REQUIRED'],
        [GRANTED, 'Customer.country', 'WITHHELD', 'PURPOSE_NOT_DECLARED'],
        [GRANTED, 'Customer.email', 'RELEASED', 'CONSENT_GIVEN'],
        [GRANTED, 'Customer.fullName', 'RELEASED', 'CONSENT_GIVEN'],
      ].sort(),
    );
  });

  it('still answers one coded error per withheld field to a request that asks for them (X-Governance-Withheld: errors)', async () => {
    const response = await list({ 'x-governance-withheld': 'errors' });
    expect(response.body.data).toEqual(data);
    expect(response.body.extensions?.governance).toBeUndefined();
    expect(response.body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([
      [['customers', 0, 'email'], 'CONSENT_REQUIRED'],
      [['customers', 0, 'fullName'], 'CONSENT_REQUIRED'],
      [['customers', 0, 'country'], 'PURPOSE_NOT_DECLARED'],
      [['customers', 1, 'country'], 'PURPOSE_NOT_DECLARED'],
    ]);
  });
});

function inputTypeOf(mutation: string): string {
  return {
    grantConsent: 'GrantConsentInput',
    withdrawConsent: 'PurposeStatementInput',
    objectToProcessing: 'PurposeStatementInput',
    withdrawObjection: 'PurposeStatementInput',
    restrictProcessing: 'RestrictProcessingInput',
  }[mutation]!;
}
