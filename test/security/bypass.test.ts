import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { type Harness, KEYS, startCandor, STORES_AND_EXECUTORS } from '../support/candor-harness';
import { startHttpServer } from '../../src/server/http-server';
import { addCustomer } from '../support/subjects';
import { eventually } from '../support/eventually';

/**
 * The bypass suite: a subject has not consented to marketing e-mail, so `Customer.email` is withheld under
 * `marketing.communications`. No GraphQL trick may return the value or leak it anywhere in the response.
 */
const W = 'cus_0000_bypass';
const SECRET = `${W}@secret.example`;

describe.each(STORES_AND_EXECUTORS)('bypass attempts on %s, executed by %s', (driver, executor) => {
  let candor: Harness;
  const headers = { authorization: `Bearer ${KEYS.marketing}`, 'x-purpose': 'marketing.communications' };
  const attempt = (query: string, variables?: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    fetch(candor.server.url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ query, variables, ...extra }) });
  const expectNoLeak = async (response: Response) => {
    const text = await response.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('secret.example');
    for (const [, value] of response.headers) expect(value).not.toContain('secret.example');
    return text ? JSON.parse(text) : undefined;
  };

  /** The refusal is recorded after it is sent: wait for it (up to `eventually`'s 10 s). */
  const expectRecordedRefusal = async (response: Response | string, code: string, actorId: string | null = null) => {
    const requestId = typeof response === 'string' ? response : response.headers.get('x-request-id')!;
    const recorded = () => candor.services.accessLogReader.page({ requestId }, 10);
    await eventually(async () => (await recorded()).totalCount > 0, `the refusal of ${requestId} recorded`);
    const page = await recorded();
    expect(page.edges.map((edge) => [edge.node.decision, edge.node.reason, edge.node.actor?.id ?? null])).toEqual([['REFUSED', code, actorId]]);
  };

  beforeAll(async () => {
    candor = await startCandor(driver, { executor, captureLogs: true });
    await addCustomer(candor, W);
    // Consent for everything else: only marketing e-mail is refused.
    await candor.services.consent.append({ subjectId: W, kind: 'grant', purpose: 'marketing.advertising', source: 'test' });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it.each([
    ['many aliases', `{ customer(id: "${W}") { ${Array.from({ length: 40 }, (_, index) => `a${index}: email`).join(' ')} } }`],
    ['named fragments', `query { customer(id: "${W}") { ...A } } fragment A on Customer { ...B email } fragment B on Customer { mail: email }`],
    ['inline fragments', `{ customer(id: "${W}") { ... on Customer { ... on Customer { email } } } }`],
    ['variables and directives', `query Q($id: ID!, $yes: Boolean!) { customer(id: $id) { email @include(if: $yes) again: email @skip(if: false) } }`],
    ['__typename aliasing', `{ customer(id: "${W}") { email: __typename realEmail: email } }`],
    ['a list of customers', `{ customers(limit: 5) { id email } }`],
    ['the field through onlyPermitted', `{ customers(limit: 1000, onlyPermitted: true) { id email } }`],
  ])('%s', async (_name, query) => {
    const response = await attempt(query, { id: W, yes: true });
    const body = await expectNoLeak(response);
    // The query ran and decided W's e-mail: answered, withheld with its own coded error, never merely failed.
    expect(response.status).toBe(200);
    const withheld = (body.errors ?? []).map((error: { path: Array<string | number>; extensions: { code: string } }) => [error.path.join('.'), error.extensions.code]);
    if (query.includes('onlyPermitted')) {
      // W never agreed to marketing e-mail: not in the list at all, and everyone listed gets their e-mail.
      expect(body.data.customers.length).toBeGreaterThan(0);
      expect(body.data.customers.map((customer: { id: string }) => customer.id)).not.toContain(W);
      expect(body.data.customers.filter((customer: { email: string | null }) => customer.email === null)).toEqual([]);
      // ...and recorded as left out: listing the page unfiltered tells the caller as much.
      const told = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')!, subjectId: W }, 10);
      expect(told.edges.map((edge) => [edge.node.coordinate, edge.node.decision, edge.node.reason])).toEqual([['Query.customers', 'WITHHELD', 'FILTERED_OUT_ON_CHOICES']]);
    } else if (body.data.customers) {
      const index = body.data.customers.findIndex((customer: { id: string }) => customer.id === W);
      expect([index >= 0, body.data.customers[index]?.email]).toEqual([true, null]);
      expect(withheld).toContainEqual([`customers.${index}.email`, 'CONSENT_REQUIRED']);
    } else {
      const keys = Object.entries(body.data.customer).filter(([, value]) => value !== 'Customer');
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.filter(([, value]) => value !== null)).toEqual([]);
      // One coded error per withheld response key (the same key selected twice is one key).
      expect(withheld.sort()).toEqual(keys.map(([key]) => [`customer.${key}`, 'CONSENT_REQUIRED']).sort());
    }
  });

  it('an argument that would filter on the withheld field does not exist', async () => {
    const body = await expectNoLeak(await attempt(`{ customers(where: { email: "${SECRET}" }) { id } }`));
    expect(body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(body.data).toBeUndefined();
  });

  describe('batched HTTP operations (array body)', () => {
    const batch = (operations: unknown[], url = candor.server.url) =>
      fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(operations) });

    it('govern each operation on its own: own decisions, own records', async () => {
      const response = await batch([{ query: `{ customer(id: "${W}") { email } }` }, { query: `query Named { customer(id: "${W}") { alias: email country } }` }]);
      const results = await expectNoLeak(response);
      expect(response.status).toBe(200);
      expect(results).toHaveLength(2);
      expect(results[0].data).toEqual({ customer: { email: null } });
      expect(results[0].errors[0].extensions.code).toBe('CONSENT_REQUIRED');
      expect(results[1].data.customer.alias).toBeNull();
      const requestId = response.headers.get('x-request-id')!;
      for (const [position, operationName] of [[1, null], [2, 'Named']] as const) {
        const page = await candor.services.accessLogReader.page({ requestId: `${requestId}/${position}`, coordinate: 'Customer.email' }, 10);
        expect(page.edges.map((edge) => [edge.node.subjectId, edge.node.decision, edge.node.reason, edge.node.operationName])).toEqual([[W, 'WITHHELD', 'CONSENT_REQUIRED', operationName]]);
      }
    });

    it('a batch over the limit is refused whole, without executing, and recorded', async () => {
      const response = await batch(Array.from({ length: 6 }, () => ({ query: `{ customer(id: "${W}") { email } }` })));
      const body = await expectNoLeak(response);
      expect(response.status).toBe(400);
      expect(JSON.stringify(body)).not.toContain('"data"');
      expect(body.errors[0].extensions.code).toBe('BATCH_TOO_LARGE');
      await expectRecordedRefusal(response, 'BATCH_TOO_LARGE');
    });

    it('a nested or malformed element is refused on its own; the others still run governed', async () => {
      const response = await batch([[{ query: `{ customer(id: "${W}") { email } }` }], { query: `{ customer(id: "${W}") { email } }` }, 5]);
      const results = await expectNoLeak(response);
      expect(results[0]).toEqual({ errors: [{ message: 'element 1 of the batch is a list, not an operation: each element is an object with "query" (and "variables", "operationName")', extensions: { code: 'BAD_REQUEST' } }] });
      expect(results[1].errors[0].extensions.code).toBe('CONSENT_REQUIRED');
      expect(results[2].errors[0].message).toBe('element 3 of the batch is a number, not an operation: each element is an object with "query" (and "variables", "operationName")');
      // Apollo refused the element after Candor built its context: recorded under the actor it authenticated.
      const requestId = response.headers.get('x-request-id')!;
      await expectRecordedRefusal(`${requestId}/1`, 'BAD_REQUEST', 'campaign-manager');
    });

    it('an operation whose variables are sent as a string is refused and recorded under its actor', async () => {
      const response = await fetch(candor.server.url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ query: `query Q($id: ID!) { customer(id: $id) { email } }`, variables: JSON.stringify({ id: W }) }),
      });
      const body = await expectNoLeak(response);
      expect([response.status, body.errors[0].extensions.code]).toEqual([400, 'BAD_REQUEST']);
      await expectRecordedRefusal(response, 'BAD_REQUEST', 'campaign-manager');
    });

    it('with CANDOR_MAX_BATCH_OPERATIONS=1 every batch is refused (BATCH_NOT_ALLOWED)', async () => {
      const strict = await startHttpServer({ ...candor.services, config: { ...candor.services.config, limits: { ...candor.services.config.limits, batchOperations: 1 } } }, candor.governed, { port: 0, host: '127.0.0.1' });
      try {
        const response = await batch([{ query: `{ customer(id: "${W}") { email } }` }], strict.url);
        const body = await expectNoLeak(response);
        expect(response.status).toBe(400);
        expect(body.errors[0].extensions.code).toBe('BATCH_NOT_ALLOWED');
        await expectRecordedRefusal(response, 'BATCH_NOT_ALLOWED');
      } finally {
        await strict.stop();
        await new Promise((resolve) => strict.httpServer.close(resolve));
      }
    });
  });

  it('GET requests are governed the same way (and need the CSRF preflight header)', async () => {
    const url = `${candor.server.url}?query=${encodeURIComponent(`{ customer(id: "${W}") { email } }`)}`;
    const blocked = await fetch(url, { headers });
    expect(blocked.status).toBe(400);
    await expectNoLeak(blocked);
    await expectRecordedRefusal(blocked, 'BAD_REQUEST');
    const preflighted = await fetch(url, { headers: { ...headers, 'apollo-require-preflight': 'true' } });
    const body = await expectNoLeak(preflighted);
    expect(body.data).toEqual({ customer: { email: null } });
    expect(body.errors[0].extensions.code).toBe('CONSENT_REQUIRED');
    // One actor's view under one purpose and the subjects' choices of the moment: no cache may keep or replay it.
    expect([blocked.headers.get('cache-control'), preflighted.headers.get('cache-control')]).toEqual(['no-store', 'no-store']);
  });

  it('automatic persisted queries are governed the same way', async () => {
    const query = `{ customer(id: "${W}") { email } }`;
    const persistedQuery = { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') };
    const handshake = await attempt('', undefined, { query: undefined, extensions: { persistedQuery } });
    const unknown = await expectNoLeak(handshake);
    expect(unknown.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    // The protocol's handshake (the client sends the document next) is no refused operation: not recorded.
    expect((await candor.services.accessLogReader.page({ requestId: handshake.headers.get('x-request-id') }, 10)).totalCount).toBe(0);
    const registered = await expectNoLeak(await attempt(query, undefined, { extensions: { persistedQuery } }));
    expect(registered.data).toEqual({ customer: { email: null } });
    const replayed = await expectNoLeak(await attempt('', undefined, { query: undefined, extensions: { persistedQuery } }));
    expect(replayed.data).toEqual({ customer: { email: null } });
  });

  it('introspection shows governance, never values', async () => {
    const body = await expectNoLeak(await attempt('{ __schema { types { name fields { name description } } } }'));
    expect(JSON.stringify(body)).toContain('Category: user.contact.email');
  });

  it.each([
    ['too many aliases', `{ customer(id: "${W}") { ${Array.from({ length: 51 }, (_, index) => `a${index}: email`).join(' ')} } }`, 'TOO_MANY_ALIASES'],
    ['too many directives', `{ customer(id: "${W}") { email ${Array.from({ length: 60 }, () => '@include(if: true)').join(' ')} } }`, 'TOO_MANY_DIRECTIVES'],
    // Page sizes add up across aliases, fragments spread again and variables (5,000 at most by default).
    ['six pages of 1,000 under aliases', `{ ${Array.from({ length: 6 }, (_, index) => `p${index}: customers(limit: 1000, offset: ${index * 1000}) { email }`).join(' ')} }`, 'QUERY_TOO_COSTLY'],
    ['a page spread six times', `query Q($n: Int = 1000) { ...P ...P ...P a: customers(limit: $n) { id } ... on Query { ...P ...P } } fragment P on Query { customers(limit: $n) { email } }`, 'QUERY_TOO_COSTLY'],
  ])('a document that is %s is refused with its own code, recorded, and leaks nothing', async (_case, query, code) => {
    const response = await attempt(query);
    const body = await expectNoLeak(response);
    expect(body.errors[0].extensions.code).toBe(code);
    expect(body.data).toBeUndefined();
    const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10);
    expect(recorded.edges.map((edge) => [edge.node.decision, edge.node.reason])).toEqual([['REFUSED', code]]);
  });

  it('five pages of 1,000 are one operation (the list limit counts what is asked, not more)', async () => {
    const response = await attempt(`{ ${Array.from({ length: 5 }, (_, index) => `p${index}: customers(limit: 1000, offset: ${index * 1000}) { id }`).join(' ')} }`);
    const body = await expectNoLeak(response);
    expect([response.status, body.errors]).toEqual([200, undefined]);
  });

  it('documents deeper, longer, costlier, with more aliases or directives than configured limits are refused with their codes, no data, and recorded', async () => {
    const limited = await startCandor(driver, { executor, env: { CANDOR_MAX_DEPTH: '2', CANDOR_MAX_TOKENS: '40', CANDOR_MAX_COST: '10', CANDOR_MAX_ALIASES: '2', CANDOR_MAX_DIRECTIVES: '2' } });
    try {
      const answer = async (query: string) => {
        const response = await limited.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query });
        return { status: response.status, data: response.body.data, codes: response.body.errors?.map((error) => error.extensions?.code), requestId: response.headers.get('x-request-id')! };
      };
      /** Refused before anything ran: a 400, no `data` at all, the one error of `code`, and the refusal recorded. */
      const expectRefused = async (query: string, code: string) => {
        const { status, data, codes, requestId } = await answer(query);
        expect([status, data, codes]).toEqual([400, undefined, [code]]);
        await eventually(async () => (await limited.services.accessLogReader.page({ requestId }, 10)).totalCount > 0, `the refusal of ${requestId} recorded`);
        expect((await limited.services.accessLogReader.page({ requestId }, 10)).edges.map((edge) => [edge.node.decision, edge.node.reason])).toEqual([['REFUSED', code]]);
      };
      await expectRefused('{ customers { watchHistory { title } } }', 'QUERY_TOO_DEEP');
      await expectRefused(`{ customers { ${Array.from({ length: 60 }, () => 'id').join(' ')} } }`, 'TOO_MANY_TOKENS');
      // A GET whose document comes after 1,000 other parameters (Express's query parser stops at 1,000).
      const long = encodeURIComponent(`{ customers { ${Array.from({ length: 60 }, () => 'id').join(' ')} } }`);
      const hidden = await fetch(`${limited.server.url}?${'&'.repeat(1_000)}query=${long}`, {
        headers: { authorization: `Bearer ${KEYS.analytics}`, 'x-purpose': 'analytics.reporting', 'apollo-require-preflight': 'true' },
      });
      const hiddenBody = (await hidden.json()) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
      expect([hidden.status, hiddenBody.data, hiddenBody.errors?.[0].extensions?.code]).toEqual([400, undefined, 'TOO_MANY_TOKENS']);
      await expectRefused('{ customers { id displayName birthDate country favoriteGenres createdAt email phone fullName postalAddress } }', 'QUERY_TOO_COSTLY');
      // Three aliases, three directives: over the limits of 2 (the defaults, 50, would let them through).
      await expectRefused('{ customers(limit: 1) { a: id b: id c: id } }', 'TOO_MANY_ALIASES');
      await expectRefused('{ customers(limit: 1) { id @include(if: true) @skip(if: false) createdAt @include(if: true) } }', 'TOO_MANY_DIRECTIVES');
      // One alias, one directive fewer: at the limits, they run.
      const atLimit = await answer('{ customers(limit: 1) { a: id b: id } }');
      expect([atLimit.status, atLimit.codes, atLimit.data?.customers.map((customer: Record<string, string>) => Object.keys(customer))]).toEqual([200, undefined, [['a', 'b']]]);
      const twoDirectives = await answer('{ customers(limit: 1) { id @include(if: true) @skip(if: false) } }');
      expect([twoDirectives.status, twoDirectives.codes, twoDirectives.data?.customers.map((customer: Record<string, string>) => Object.keys(customer))]).toEqual([200, undefined, [['id']]]);
    } finally {
      await limited.stop();
    }
  });

  it.each([
    // A body that cannot be read is refused before the actor is known; a readable one of the wrong type after.
    ['malformed JSON', '{"query": ', 'application/json', 400, null],
    ['a wrong content type', 'query=%7B__typename%7D', 'application/x-www-form-urlencoded', 400, 'campaign-manager'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x71, 0xff, 0xfe, 0x22, 0x7d]), 'application/json', 400, null],
    ['a body over 1 MB', JSON.stringify({ query: `{ __typename }`, padding: 'x'.repeat(1_100_000) }), 'application/json', 413, null],
  ])('%s gets a coded 4xx, no stack trace, and its refusal is recorded', async (_case, body, type, status, actorId) => {
    const response = await fetch(candor.server.url, { method: 'POST', headers: { ...headers, 'content-type': type, 'apollo-require-preflight': 'true' }, body });
    expect(response.status).toBe(status);
    const text = await response.text();
    // A stack trace inside JSON has its line breaks escaped: its frames are what give it away.
    expect(text).not.toMatch(/\n\s+at |\\n\s+at |"stacktrace"|node_modules|\.[jt]s:\d+:\d+/);
    const code = JSON.parse(text).errors[0].extensions.code;
    expect(code).toMatch(/^(BAD_REQUEST|PAYLOAD_TOO_LARGE)$/);
    await expectRecordedRefusal(response, code, actorId);
  });

  it('a request target that is no URL gets a coded 400 with its request id, not the framework’s HTML page', async () => {
    const { port } = new URL(candor.server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET http://[bad/graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
    expect(JSON.parse(body).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it.each([
    ['an unparseable document', () => attempt('{ customer(id: '), 'GRAPHQL_PARSE_FAILED', 400],
    ['a field the schema lacks', () => attempt(`{ customer(id: "${W}") { password } }`), 'GRAPHQL_VALIDATION_FAILED', 400],
    ['an unknown operation name', () => attempt('query A { __typename }', undefined, { operationName: 'B' }), 'OPERATION_RESOLUTION_FAILURE', 400],
    // Apollo reads "" as a name no operation has; graphql-jit read it as no name and ran the only operation.
    ['an empty operation name', () => attempt(`{ customer(id: "${W}") { email } }`, undefined, { operationName: '' }), 'OPERATION_RESOLUTION_FAILURE', 400],
    [
      'a mutation sent by GET with an empty operation name',
      () => fetch(`${candor.server.url}?operationName=&query=${encodeURIComponent(`mutation { grantConsent(input: { subjectId: "${W}", purpose: "marketing.communications", source: "x" }) { id } }`)}`, { headers: { ...headers, 'apollo-require-preflight': 'true' } }),
      'OPERATION_RESOLUTION_FAILURE',
      400,
    ],
    ['variables of the wrong type', () => attempt('query Q($id: ID!) { customer(id: $id) { email } }', { id: { nested: true } }), 'BAD_USER_INPUT', 400],
    ['a mutation sent by GET', () => fetch(`${candor.server.url}?query=${encodeURIComponent(`mutation { grantConsent(input: { subjectId: "${W}", purpose: "marketing.communications", source: "x" }) { id } }`)}`, { headers: { ...headers, 'apollo-require-preflight': 'true' } }), 'BAD_REQUEST', 405],
    ['an operation name longer than the log takes', () => attempt(`query ${'Q'.repeat(129)} { customer(id: "${W}") { email } }`), 'OPERATION_NAME_TOO_LONG', 400],
  ])('an operation that never executes (%s) is recorded as refused under its actor', async (_case, send, code, status) => {
    const response = await send();
    const body = await expectNoLeak(response);
    expect([response.status, body.errors[0].extensions.code, body.data]).toEqual([status, code, undefined]);
    const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10);
    expect(recorded.edges.map((edge) => [edge.node.decision, edge.node.reason, edge.node.actor?.id, edge.node.purpose])).toEqual([['REFUSED', code, 'campaign-manager', 'marketing.communications']]);
  });

  it('stores what a client names at a bounded length: an operation name of 128 characters is recorded, a purpose of 10,000 is cut', async () => {
    const name = 'Q'.repeat(128);
    const named = await attempt(`query ${name} { customer(id: "${W}") { displayName } }`);
    expect(named.status).toBe(200);
    const recorded = await candor.services.accessLogReader.page({ requestId: named.headers.get('x-request-id') }, 10);
    expect(recorded.edges.map((edge) => edge.node.operationName)).toEqual([name]);
    const long = await fetch(candor.server.url, { method: 'POST', headers: { ...headers, 'x-purpose': 'p'.repeat(10_000), 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
    expect(long.status).toBe(400);
    // The answer quotes it as recorded, not in full.
    expect(((await long.json()) as { errors: Array<{ message: string }> }).errors[0].message).toBe(`"${'p'.repeat(127)}…" is not a purpose of the taxonomy`);
    const refusal = await candor.services.accessLogReader.page({ requestId: long.headers.get('x-request-id') }, 10);
    expect(refusal.edges.map((edge) => [edge.node.reason, edge.node.purpose])).toEqual([['PURPOSE_UNKNOWN', `${'p'.repeat(127)}…`]]);
    const overLimit = await attempt(`query ${name}Q { customer(id: "${W}") { displayName } }`);
    const tooLong = await candor.services.accessLogReader.page({ requestId: overLimit.headers.get('x-request-id') }, 10);
    expect(tooLong.edges.map((edge) => [edge.node.reason, edge.node.operationName])).toEqual([['OPERATION_NAME_TOO_LONG', null]]);
  });

  it('rate-limits an actor beyond its budget (RATE_LIMITED, 429) and records it, up to the same budget', async () => {
    const limited = await startCandor(driver, { executor, env: { CANDOR_RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      const statuses = [];
      for (let index = 0; index < 5; index++) statuses.push((await limited.query({ key: KEYS.support, purpose: 'essential.service', query: '{ __typename }' })).status);
      for (let index = 0; index < 3; index++) statuses.push((await limited.query({ key: KEYS.support, purpose: 'essential.service', query: '{ __typename }' })).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
      // Refusals its sender pays nothing for are recorded up to the actor's own limit, then once that they stop.
      const recorded = await limited.services.accessLogReader.page({ actorId: 'support-desk', decision: 'REFUSED' }, 10);
      expect(recorded.edges.map((edge) => edge.node.reason)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED', 'REFUSALS_UNRECORDED']);
    } finally {
      await limited.stop();
    }
  });

  it("records a client's anonymous refusals up to its budget, then once that it stops, and again once the budget refills", async () => {
    let now = new Date('2026-11-29T12:00:00.000Z');
    const limited = await startCandor(driver, { executor, clock: () => now, env: { CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE: '3' } });
    const recordedReasons = async (expected: number) => {
      // Refusals Apollo makes before Candor's context are recorded once their answer is sent: wait for them.
      for (let attempt = 0; attempt < 50; attempt++) {
        const page = await limited.services.accessLogReader.page({ decision: 'REFUSED' }, 50);
        if (page.totalCount >= expected) return page.edges.map((edge) => [edge.node.actor?.id ?? null, edge.node.reason]);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`fewer than ${expected} refusals recorded`);
    };
    const malformed = () => fetch(limited.server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    try {
      const statuses = [];
      // A client naming other addresses in X-Forwarded-For is still one client: no proxy is trusted here.
      for (let index = 0; index < 5; index++) statuses.push((await limited.query({ query: '{ __typename }', headers: { 'x-forwarded-for': `203.0.113.${index}` } })).status);
      statuses.push((await malformed()).status);
      // An actor's refusal is the actor's own budget's business: recorded whatever the client's anonymous budget.
      statuses.push((await limited.query({ key: KEYS.support, query: '{ customers { id } }' })).status);
      // The client's answers do not change, recorded or not.
      expect(statuses).toEqual([401, 401, 401, 401, 401, 400, 400]);
      const unauthenticated = [null, 'UNAUTHENTICATED'];
      expect(await recordedReasons(5)).toEqual([unauthenticated, unauthenticated, unauthenticated, [null, 'REFUSALS_UNRECORDED'], ['support-desk', 'PURPOSE_REQUIRED']]);
      const metrics = await (await fetch(limited.server.url.replace(/graphql$/, 'metrics'))).text();
      expect(metrics).toMatch(/^candor_unrecorded_refusals_total 2$/m);

      now = new Date(now.getTime() + 20_000); // a third of a minute: one refusal's worth
      expect((await limited.query({ query: '{ __typename }' })).status).toBe(401);
      expect((await recordedReasons(6)).slice(5)).toEqual([unauthenticated]);
    } finally {
      await limited.stop();
    }
  });

  it('behind a trusted proxy, keeps a budget per client that X-Forwarded-For names (CANDOR_TRUSTED_PROXIES)', async () => {
    const proxied = await startCandor(driver, { executor, env: { CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE: '1', CANDOR_TRUSTED_PROXIES: 'loopback' } });
    // The balancer appends the address it saw: what a client put before it is not trusted (203.0.113.9 below).
    const fromClient = (forwardedFor: string) => proxied.query({ query: '{ __typename }', headers: { 'x-forwarded-for': forwardedFor } });
    try {
      const statuses = [];
      for (const forwardedFor of ['198.51.100.1', '198.51.100.1', '198.51.100.1', '203.0.113.9, 198.51.100.1', '198.51.100.2', '2001:db8:1:2::5', '2001:db8:1:2::6']) statuses.push((await fromClient(forwardedFor)).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401]);
      const unauthenticated = [null, 'UNAUTHENTICATED'];
      // 198.51.100.1: one recorded, then once that its further ones are not; the second client and the IPv6
      // client (one /64 for both of its addresses) each have their own budget.
      const refusals = () => proxied.services.accessLogReader.page({ decision: 'REFUSED' }, 50);
      await eventually(async () => (await refusals()).totalCount >= 5, 'five refusals recorded');
      expect((await refusals()).edges.map((edge) => [edge.node.actor?.id ?? null, edge.node.reason])).toEqual([unauthenticated, [null, 'REFUSALS_UNRECORDED'], unauthenticated, unauthenticated, [null, 'REFUSALS_UNRECORDED']]);
    } finally {
      await proxied.stop();
    }
  });

  it(`ran its operations on ${executor}`, () => {
    // graphql-js is Apollo's own execution (no gateway); graphql-jit counts what it executed.
    if (executor === 'graphql-js') expect(candor.server.jit).toBeUndefined();
    else expect(candor.server.jit!.executions.jit).toBeGreaterThanOrEqual(10);
  });

  // Last: every attempt above has been made and logged.
  it('writes no withheld value into any log line, at any level', () => {
    const logs = candor.logs();
    expect(logs).toContain('"msg":"request"');
    expect(logs).not.toContain('secret.example');
    expect(logs).not.toContain(SECRET);
  });
});
