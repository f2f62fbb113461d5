import { type RunningServer, startHttpServer } from '../../src/server/http-server';
import { type GraphQLResponse, type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';

/**
 * graphql-jit gives the same answers as graphql-js: two servers on one store and one set of services (same
 * data, same consent, same clock), one on each executor, get the same requests; their JSON bodies and statuses
 * are compared whole — data, errors with their codes, paths and locations, and `extensions.governance` — and
 * so are the access records each request left. Each case also checks the answer is the governed one, so two
 * executors that agree on a wrong answer still fail.
 */
const GRANTED = 'cus_0000_parity_a';
const REFUSED = 'cus_0000_parity_b';
const OBJECTED = 'cus_0000_parity_c';

interface Request {
  readonly key: string;
  readonly purpose?: string;
  readonly query: string;
  readonly variables?: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

describe.each(DRIVERS)('graphql-jit answers as graphql-js does, on %s', (driver) => {
  let candor: Harness;
  let jit: RunningServer;

  beforeAll(async () => {
    candor = await startCandor(driver, { executor: 'graphql-js' });
    jit = await startHttpServer({ ...candor.services, config: { ...candor.services.config, executor: 'graphql-jit' } }, candor.governed, { port: 0, host: '127.0.0.1' });
    for (const id of [GRANTED, REFUSED, OBJECTED]) await addCustomer(candor, id);
    await candor.services.consent.append({ subjectId: GRANTED, kind: 'grant', purpose: 'marketing', source: 'test' });
    await candor.services.consent.append({ subjectId: OBJECTED, kind: 'object', purpose: 'analytics', source: 'test' });
  });
  afterAll(async () => {
    await jit?.stop();
    await new Promise((resolve) => jit?.httpServer.close(resolve));
    await candor?.stop();
  });

  const send = async (url: string, { key, purpose, query, variables, headers = {} }: Request) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(purpose ? { 'x-purpose': purpose } : {}), ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, requestId: response.headers.get('x-request-id')!, body: (await response.json()) as GraphQLResponse['body'] };
  };
  /** The access records of one request, without what differs between any two requests (sequence, time, id). */
  const recordsOf = async (requestId: string) =>
    (await candor.services.accessLogReader.page({ requestId }, 500)).edges.map(({ node: { seq: _seq, at: _at, requestId: _id, ...record } }) => record);

  /**
   * Sends `request` to both servers; expects the same status, body and records, and that the graphql-jit
   * server ran it on `ranOn` (`none`: answered before execution); returns graphql-js's answer.
   */
  const expectSameAnswer = async (request: Request, ranOn: 'graphql-jit' | 'graphql-js' | 'none' = 'graphql-jit') => {
    const before = { ...jit.jit!.executions };
    const onJs = await send(candor.server.url, request);
    const onJit = await send(jit.url, request);
    expect({ status: onJit.status, body: onJit.body }).toEqual({ status: onJs.status, body: onJs.body });
    expect(await recordsOf(onJit.requestId)).toEqual(await recordsOf(onJs.requestId));
    const { executions } = jit.jit!;
    expect(executions.jit > before.jit ? 'graphql-jit' : executions.graphqlJs > before.graphqlJs ? 'graphql-js' : 'none').toBe(ranOn);
    return onJs;
  };

  const marketingList = `{ customers(limit: 3) { id email fullName } }`;

  /** Runs `check` while the first page of customers comes back with its middle record's id lost (a data fault). */
  const withTheMiddleIdLost = async (check: () => Promise<void>) => {
    const rows = await candor.services.domain.listCustomers({ limit: 3, offset: 0 });
    const list = jest.spyOn(candor.services.domain, 'listCustomers').mockResolvedValue(rows.map((row, index) => (index === 1 ? { ...row, id: null as unknown as string } : row)));
    try {
      await check();
    } finally {
      list.mockRestore();
    }
  };

  it('a nullable withheld field: null with one coded error naming its path', async () => {
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: `query One { customer(id: "${REFUSED}") { id email } }` });
    expect(answer.body.data).toEqual({ customer: { id: REFUSED, email: null } });
    expect(answer.body.errors).toEqual([
      {
        message: expect.stringContaining('Customer.email withheld'),
        locations: [{ line: 1, column: 52 }],
        path: ['customer', 'email'],
        extensions: { code: 'CONSENT_REQUIRED', governance: { coordinate: 'Customer.email', category: 'user.contact.email', purpose: 'marketing.communications', subjectId: REFUSED } },
      },
    ]);
  });

  it('withheld fields inside a list, decided per subject, errors in the same order', async () => {
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: marketingList });
    expect(answer.body.data?.customers).toEqual([
      { id: GRANTED, email: `${GRANTED}@secret.example`, fullName: `Test Person ${GRANTED}` },
      { id: REFUSED, email: null, fullName: null },
      { id: OBJECTED, email: null, fullName: null },
    ]);
    expect(answer.body.errors?.map((error) => error.path)).toEqual([
      ['customers', 1, 'email'],
      ['customers', 1, 'fullName'],
      ['customers', 2, 'email'],
      ['customers', 2, 'fullName'],
    ]);
  });

  it('aliases and fragments: each place a withheld leaf is read gets its error', async () => {
    const query = `query Places { customers(limit: 3) { id a: email ...F b: fullName } } fragment F on Customer { email }`;
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query });
    expect(answer.body.data?.customers).toEqual([
      { id: GRANTED, a: `${GRANTED}@secret.example`, email: `${GRANTED}@secret.example`, b: `Test Person ${GRANTED}` },
      { id: REFUSED, a: null, email: null, b: null },
      { id: OBJECTED, a: null, email: null, b: null },
    ]);
    // `email` is read at two places (its error is located by the executor), `fullName` at one (located by the guard).
    const columnOf = (text: string) => query.indexOf(text) + 1;
    expect(answer.body.errors?.map((error) => [error.path, error.locations, error.extensions?.code])).toEqual(
      [1, 2].flatMap((index) => [
        [['customers', index, 'a'], [{ line: 1, column: columnOf('a: email') }], 'CONSENT_REQUIRED'],
        [['customers', index, 'email'], [{ line: 1, column: columnOf('email }') }], 'CONSENT_REQUIRED'],
        [['customers', index, 'b'], [{ line: 1, column: columnOf('b: fullName') }], 'CONSENT_REQUIRED'],
      ]),
    );
    expect((await recordsOf(answer.requestId)).map((record) => [record.subjectId, record.coordinate, record.decision])).toEqual(
      [GRANTED, REFUSED, OBJECTED].flatMap((subjectId, index) => [
        [subjectId, 'Customer.email', index === 0 ? 'RELEASED' : 'WITHHELD'],
        [subjectId, 'Customer.fullName', index === 0 ? 'RELEASED' : 'WITHHELD'],
      ]),
    );
    const reported = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query, headers: { 'x-governance-withheld': 'extensions' } });
    expect(reported.body.errors).toBeUndefined();
    expect((reported.body.extensions?.governance as { withheld: Array<{ path: unknown[]; code: string }> }).withheld.map((entry) => [entry.path, entry.code])).toEqual(
      [1, 2].flatMap((index) => [
        [['customers', index, 'a'], 'CONSENT_REQUIRED'],
        [['customers', index, 'email'], 'CONSENT_REQUIRED'],
        [['customers', index, 'b'], 'CONSENT_REQUIRED'],
      ]),
    );
  });

  it('@skip/@include: documents with them run on graphql-js (graphql-jit collects skipped nodes otherwise); skipped leaves neither error, nor are recorded, nor reject', async () => {
    const skipped = `query Skipped($no: Boolean = false) { customer(id: "${GRANTED}") { id email } customer(id: "${GRANTED}") @include(if: $no) { phone } }`;
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: skipped }, 'graphql-js');
    expect(answer.body).toEqual({ data: { customer: { id: GRANTED, email: `${GRANTED}@secret.example` } } });
    expect((await recordsOf(answer.requestId)).map((record) => [record.subjectId, record.coordinate, record.decision])).toEqual([[GRANTED, 'Customer.email', 'RELEASED']]);
    // The phone, withheld for marketing (PURPOSE_NOT_DECLARED), is not selected: reject mode releases the rest.
    const rejecting = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: skipped, headers: { 'x-governance-mode': 'reject' } }, 'graphql-js');
    expect(rejecting.body.data).toEqual({ customer: { id: GRANTED, email: `${GRANTED}@secret.example` } });
    // graphql-jit would send the fragment's field under the skipped node; graphql-js does not, nor record it.
    const fragment = `query Fragment { a: customers(limit: 3) @skip(if: true) { ...F } a: customers(limit: 3) { id } } fragment F on Customer { email }`;
    const viaFragment = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: fragment }, 'graphql-js');
    expect(viaFragment.body).toEqual({ data: { a: [{ id: GRANTED }, { id: REFUSED }, { id: OBJECTED }] } });
    expect(await recordsOf(viaFragment.requestId)).toEqual([]);
  });

  it('response keys graphql-jit would confuse (joined with _, or shaped idx<n>) run on graphql-js: each place keeps its own selection', async () => {
    // graphql-jit names the resolve infos of `x.<list>.p` and `idx0_x.p` alike; the second would serve the first.
    const query = `query Confusable { x: customers(limit: 3) { p: payments { id } } idx0_x: customer(id: "${GRANTED}") { p: payments { amount } } }`;
    const answer = await expectSameAnswer({ key: KEYS.analytics, purpose: 'analytics.reporting', query }, 'graphql-js');
    expect(answer.body.data).toEqual({ x: [{ p: [{ id: `${GRANTED}_pay` }] }, { p: [{ id: `${REFUSED}_pay` }] }, { p: null }], idx0_x: { p: [{ amount: 9.99 }] } });
    expect(answer.body.errors?.map((error) => [error.path, error.extensions?.code])).toEqual([[['x', 2, 'p'], 'OBJECTED']]);
    // The payment's amount is read at one place only, and recorded once, for the customer read there.
    expect((await recordsOf(answer.requestId)).map((record) => [record.subjectId, record.coordinate, record.decision])).toEqual([
      [GRANTED, 'Customer.payments', 'RELEASED'],
      [GRANTED, 'Payment.amount', 'RELEASED'],
      [REFUSED, 'Customer.payments', 'RELEASED'],
      [OBJECTED, 'Customer.payments', 'WITHHELD'],
    ]);
  });

  it('the extensions reporting mode (X-Governance-Withheld: extensions)', async () => {
    // Customer.country is not declared for marketing: withheld for every subject, the one who consented too.
    const query = `{ customers(limit: 3) { id email fullName country } }`;
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query, headers: { 'x-governance-withheld': 'extensions' } });
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.extensions?.governance).toEqual({
      purpose: 'marketing.communications',
      withheld: [
        { path: ['customers', 0, 'country'], coordinate: 'Customer.country', code: 'PURPOSE_NOT_DECLARED', subjectId: GRANTED },
        ...[REFUSED, OBJECTED].flatMap((subjectId, index) => [
          { path: ['customers', index + 1, 'email'], coordinate: 'Customer.email', code: 'CONSENT_REQUIRED', subjectId },
          { path: ['customers', index + 1, 'fullName'], coordinate: 'Customer.fullName', code: 'CONSENT_REQUIRED', subjectId },
          { path: ['customers', index + 1, 'country'], coordinate: 'Customer.country', code: 'PURPOSE_NOT_DECLARED', subjectId },
        ]),
      ],
    });
  });

  it('explain mode (X-Governance-Explain: true): no value, every decision explained', async () => {
    const answer = await expectSameAnswer({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customers(limit: 3) { id birthDate email } }`, headers: { 'x-governance-explain': 'true' } });
    expect(answer.body.data?.customers.map((customer: Record<string, unknown>) => [customer.birthDate, customer.email])).toEqual([
      [null, null],
      [null, null],
      [null, null],
    ]);
    expect(answer.body.extensions?.governance).toEqual(expect.objectContaining({ mode: 'explain', purpose: 'analytics.reporting' }));
    expect(answer.body.extensions?.governance.explain.map((entry: { coordinate: string }) => entry.coordinate)).toEqual(['Customer.birthDate', 'Customer.email']);
  });

  it('reject mode (X-Governance-Mode: reject): the whole operation refused with the same offending fields', async () => {
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: marketingList, headers: { 'x-governance-mode': 'reject' } });
    expect(answer.status).toBe(403);
    expect(answer.body.data).toBeUndefined();
    expect(answer.body.errors?.[0].extensions).toEqual({
      code: 'GOVERNANCE_REJECTED',
      withheld: [
        { coordinate: 'Customer.email', reason: 'CONSENT_REQUIRED', subjects: 2 },
        { coordinate: 'Customer.fullName', reason: 'CONSENT_REQUIRED', subjects: 2 },
      ],
    });
  });

  it('masked releases (analytics) and relations refused by graphql-shield inside a list', async () => {
    const answer = await expectSameAnswer({ key: KEYS.partners, purpose: 'third_party_sharing', query: `{ customers(limit: 2) { id country payments { amount } } }` });
    expect(answer.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code])).toEqual(
      expect.arrayContaining([
        ['customers.0.payments', 'PURPOSE_NOT_DECLARED'],
        ['customers.1.payments', 'PURPOSE_NOT_DECLARED'],
      ]),
    );
    const masked = await expectSameAnswer({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customers(limit: 2) { id email phone } }` });
    expect(masked.body.errors).toBeUndefined();
    for (const id of [GRANTED, REFUSED]) expect(JSON.stringify(masked.body)).not.toContain(`${id}@secret.example`);
  });

  it('a non-null field error bubbles to the nearest nullable parent; the response does not say why the discarded fields were withheld', async () => {
    const [record] = await candor.services.domain.listCustomers({ limit: 1, offset: 0 });
    // The record has lost its id (Customer.id is ID!): `customer` (nullable) becomes null. `id` comes last, so
    // both executors withhold `email` and `fullName` first, but the object is gone: their errors, which name
    // the subject and the reason, go with it, as its records do.
    const one = jest.spyOn(candor.services.domain, 'findCustomer').mockResolvedValue({ ...record, id: null as unknown as string });
    try {
      const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${REFUSED}") { email fullName id } }` });
      expect(answer.body.data).toEqual({ customer: null });
      expect(answer.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code])).toEqual([['customer.id', 'INTERNAL_SERVER_ERROR']]);
      expect(answer.body.errors?.[0].message).toBe('Internal server error');
    } finally {
      one.mockRestore();
    }
  });

  it('documented difference: graphql-jit lists non-null errors after the others', async () => {
    const [record] = await candor.services.domain.listCustomers({ limit: 1, offset: 0 });
    // `b` has no subject to load, so it completes first: graphql-js lists its non-null error first, in the
    // order raised; graphql-jit keeps the errors of non-null fields apart and appends them. Same data, same errors.
    const one = jest.spyOn(candor.services.domain, 'findCustomer').mockImplementation(async (id) => ({ ...record, id: id === REFUSED ? (null as unknown as string) : id }));
    try {
      const request = { key: KEYS.marketing, purpose: 'marketing.communications', query: `{ a: customer(id: "${OBJECTED}") { email id } b: customer(id: "${REFUSED}") { email id } }` };
      const onJs = await send(candor.server.url, request);
      const onJit = await send(jit.url, request);
      expect([onJit.status, onJit.body.data]).toEqual([onJs.status, onJs.body.data]);
      expect(onJs.body.data).toEqual({ a: { email: null, id: OBJECTED }, b: null });
      const located = (body: GraphQLResponse['body']) => body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code]);
      // `b.email`'s error left with `b`.
      expect(located(onJs.body)).toEqual([
        ['b.id', 'INTERNAL_SERVER_ERROR'],
        ['a.email', 'CONSENT_REQUIRED'],
      ]);
      expect(located(onJit.body)).toEqual([
        ['a.email', 'CONSENT_REQUIRED'],
        ['b.id', 'INTERNAL_SERVER_ERROR'],
      ]);
      const byPath = (body: GraphQLResponse['body']) => [...body.errors!].sort((x, y) => x.path!.join('.').localeCompare(y.path!.join('.')));
      expect(byPath(onJit.body)).toEqual(byPath(onJs.body));
      // `b` was discarded: its decisions are not recorded; those of `a`, which the response holds, are.
      const recorded = await recordsOf(onJs.requestId);
      expect(recorded.map((entry) => [entry.subjectId, entry.coordinate, entry.decision])).toEqual([[OBJECTED, 'Customer.email', 'WITHHELD']]);
      expect(await recordsOf(onJit.requestId)).toEqual(recorded);
    } finally {
      one.mockRestore();
    }
  });

  it('after a non-null error, graphql-jit still resolves the fields graphql-js skips, but neither response names a discarded subject: same body, no record', async () => {
    // The middle record has lost its id; `customers` is [Customer!], so null propagates to the list. The leaf
    // guard decided every record's fields when the list resolved, the third's withheld (CONSENT_REQUIRED:
    // that subject's choice). graphql-js stops completing the list at the first non-null error raised
    // synchronously; graphql-jit completes every field, then propagates nulls. No value and no subject's
    // decision is in either response, so neither records one: not even the first record's fields,
    // released by the leaf guard before the list was discarded.
    await withTheMiddleIdLost(async () => {
      const request = { key: KEYS.marketing, purpose: 'marketing.communications', query: marketingList };
      const onJs = await send(candor.server.url, request);
      const onJit = await send(jit.url, request);
      expect(onJit.status).toBe(onJs.status);
      expect(onJit.body).toEqual(onJs.body);
      expect(onJs.body.data).toEqual({ customers: null });
      expect(onJs.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code])).toEqual([['customers.1.id', 'INTERNAL_SERVER_ERROR']]);
      expect(await recordsOf(onJs.requestId)).toEqual([]);
      expect(await recordsOf(onJit.requestId)).toEqual([]);
    });
  });

  it('after a non-null error, reject and explain modes judge and explain only the subjects the response still holds: same answer, same records', async () => {
    // graphql-jit decides the payments of records graphql-js never completes: what neither response holds is
    // neither judged (reject) nor explained nor recorded.
    await withTheMiddleIdLost(async () => {
      for (const query of ['{ customers(limit: 3) { id payments { amount } } }', '{ customers(limit: 3) { payments { amount } id } }']) {
        const request = { key: KEYS.analytics, purpose: 'analytics.reporting', query };
        const rejected = await expectSameAnswer({ ...request, headers: { 'x-governance-mode': 'reject' } });
        expect([rejected.status, rejected.body.data]).toEqual([200, { customers: null }]);
        const explained = await expectSameAnswer({ ...request, headers: { 'x-governance-explain': 'true' } });
        expect(explained.body.extensions?.governance.explain).toEqual([]);
      }
    });
  });

  it('a record without its subject id: its personal fields withheld (GOVERNANCE_UNAVAILABLE) and recorded under no subject, on both', async () => {
    await withTheMiddleIdLost(async () => {
      const answer = await expectSameAnswer({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 3) { email } }' });
      expect(answer.body.data?.customers[1]).toEqual({ email: null });
      expect(answer.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code, error.extensions?.governance?.subjectId])).toEqual([['customers.1.email', 'GOVERNANCE_UNAVAILABLE', null]]);
      const records = await recordsOf(answer.requestId);
      expect(records.filter((record) => (record as { subjectId: unknown }).subjectId === null)).toEqual([
        expect.objectContaining({ coordinate: 'Customer.email', decision: 'WITHHELD', reason: 'GOVERNANCE_UNAVAILABLE' }),
      ]);
      expect(records.map((record) => (record as { subjectId: unknown }).subjectId)).not.toContain('null');
    });
  });

  it('a client-made error on one root field leaves the others answering, their subjects recorded, on both', async () => {
    // Root fields are nullable: the refused alias is null with its error, the first list answers as it would alone.
    const request = { key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 10) { id email } x: customers(limit: 1001) { id } }' };
    const onJs = await send(candor.server.url, request);
    const onJit = await send(jit.url, request);
    expect(onJit.body).toEqual(onJs.body);
    expect([(onJs.body.data?.customers as unknown[]).length, onJs.body.data?.x]).toEqual([10, null]);
    expect(onJs.body.errors?.filter((error) => error.path?.[0] === 'x').map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    for (const requestId of [onJs.requestId, onJit.requestId]) {
      const records = (await recordsOf(requestId)) as Array<{ subjectId: string | null; decision: string; coordinate: string | null; reason: string }>;
      expect(new Set(records.filter((record) => record.decision !== 'REFUSED').map((record) => record.subjectId)).size).toBe(10);
      // The refused alias is recorded as a refusal of its field, naming no subject.
      expect(records.filter((record) => record.decision === 'REFUSED').map((record) => [record.coordinate, record.reason, record.subjectId])).toEqual([['Query.customers', 'BAD_USER_INPUT', null]]);
    }
  });

  it('a refused root field is null on both, the rest of the operation answering', async () => {
    const answer = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ auditIntegrity { verified } customers(limit: 1) { id } }` });
    expect(answer.body.data).toEqual({ auditIntegrity: null, customers: [{ id: expect.any(String) }] });
    expect(answer.body.errors?.map((error) => [error.path?.join('.'), error.extensions?.code])).toEqual([['auditIntegrity', 'FORBIDDEN']]);
  });

  it('an unexpected resolver error is masked with its path and locations, as graphql-js does', async () => {
    const list = jest.spyOn(candor.services.domain, 'listCustomers').mockRejectedValue(new Error('SELECT password FROM secrets'));
    try {
      const answer = await expectSameAnswer({ key: KEYS.support, purpose: 'essential.service', query: '{ customers { id } }' });
      expect(answer.body).toEqual({ data: { customers: null }, errors: [{ message: 'Internal server error', path: ['customers'], locations: [{ line: 1, column: 3 }], extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    } finally {
      list.mockRestore();
    }
  });

  it('refused operations, invalid variables (coerced again by graphql-js) and mutations answer alike', async () => {
    const forbidden = await expectSameAnswer({ key: KEYS.support, purpose: 'essential.service', query: `mutation { grantConsent(input: { subjectId: "${GRANTED}", purpose: "marketing", source: "x" }) { id } }` });
    expect(forbidden.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const invalid = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: 'query Q($id: ID!) { customer(id: $id) { email } }', variables: { id: { nested: true } } }, 'graphql-js');
    expect([invalid.status, invalid.body.errors?.[0].extensions?.code]).toEqual([400, 'BAD_USER_INPUT']);
    const missing = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: 'query Q($id: ID!) { customer(id: $id) { email } }' }, 'graphql-js');
    expect(missing.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const tooMany = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${REFUSED}") { ${Array.from({ length: 51 }, (_, index) => `a${index}: email`).join(' ')} } }` }, 'none');
    expect(tooMany.body.errors?.[0].extensions?.code).toBe('TOO_MANY_ALIASES');
  });

  it('a variable inside an argument literal runs on graphql-js: a null one where the input field needs a value is refused, nothing changed', async () => {
    const S = 'cus_0000_parity_literal';
    await addCustomer(candor, S);
    const grant = 'mutation G($e: Boolean) { grantConsent(input: { subjectId: "' + S + '", purpose: "marketing", source: "test", explicit: $e }) { kind explicit } }';
    const refused = await expectSameAnswer({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: grant, variables: { e: null } }, 'graphql-js');
    expect(refused.body).toEqual({
      data: { grantConsent: null },
      errors: [expect.objectContaining({ message: 'Argument "input" has an invalid value: a variable in it is null or missing where its field needs a value.', extensions: { code: 'BAD_USER_INPUT' } })],
    });
    expect((await candor.services.consent.states([S]))[0].consents).toEqual([]);
    const granted = await expectSameAnswer({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: grant, variables: { e: true } }, 'graphql-js');
    expect(granted.body.data).toEqual({ grantConsent: { kind: 'GRANT', explicit: true } });
  });

  it('variables graphql-js refuses run on graphql-js, also where graphql-jit would take them: [] for an input object', async () => {
    const refused = await expectSameAnswer({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: 'query L($f: AccessLogFilter) { accessLog(filter: $f, first: 1) { totalCount } }', variables: { f: [] } }, 'graphql-js');
    expect([refused.status, refused.body.errors?.[0].extensions?.code, refused.body.data]).toEqual([400, 'BAD_USER_INPUT', undefined]);
  });

  it('introspection, full and purpose-scoped, answers alike', async () => {
    const query = '{ __schema { types { name fields { name description } } } }';
    const full = await expectSameAnswer({ key: KEYS.analytics, query });
    // With a purpose, the scoped-introspection plugin answers before execution.
    const scoped = await expectSameAnswer({ key: KEYS.analytics, purpose: 'analytics.reporting', query }, 'none');
    const customerFields = (body: GraphQLResponse['body']) => body.data!.__schema.types.find((type: { name: string }) => type.name === 'Customer').fields.map((field: { name: string }) => field.name);
    expect(customerFields(full.body)).toContain('fullName');
    expect(customerFields(scoped.body)).not.toContain('fullName');
    expect(customerFields(scoped.body)).toContain('birthDate');
  });

  it('a subscription (the schema has none) is the client\'s error on both: 400 GRAPHQL_VALIDATION_FAILED, recorded as refused', async () => {
    for (const query of ['subscription S { customers(limit: 2) { id email } }', 'subscription { __typename }']) {
      const refused = await expectSameAnswer({ key: KEYS.marketing, purpose: 'marketing.communications', query }, 'none');
      expect([refused.status, refused.body.data, refused.body.errors?.map((error) => [error.extensions?.code, error.message])]).toEqual([
        400,
        undefined,
        [['GRAPHQL_VALIDATION_FAILED', 'the schema has no subscription operations: Candor serves queries and mutations']],
      ]);
      expect((await recordsOf(refused.requestId)).map(({ decision, reason }) => [decision, reason])).toEqual([['REFUSED', 'GRAPHQL_VALIDATION_FAILED']]);
    }
  });

  it('with introspection switched off, both refuse it the same way (Apollo validates against the gateway\'s schema too)', async () => {
    const closed = { ...candor.services.config, introspection: false };
    const servers = await Promise.all(
      (['graphql-js', 'graphql-jit'] as const).map((executor) => startHttpServer({ ...candor.services, config: { ...closed, executor } }, candor.governed, { port: 0, host: '127.0.0.1' })),
    );
    try {
      const answers = await Promise.all(servers.map((server) => send(server.url, { key: KEYS.analytics, query: '{ __schema { queryType { name } } }' })));
      expect({ status: answers[1].status, body: answers[1].body }).toEqual({ status: answers[0].status, body: answers[0].body });
      expect([answers[0].status, answers[0].body.errors?.[0].extensions?.code]).toEqual([400, 'GRAPHQL_VALIDATION_FAILED']);
      expect(servers[1].jit!.executions).toEqual({ jit: 0, graphqlJs: 0 });
    } finally {
      for (const server of servers) {
        await server.stop();
        await new Promise((resolve) => server.httpServer.close(resolve));
      }
    }
  });
});
