import { createSubjectToken } from '../../src/privacy/subject-link';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { eventually } from '../support/eventually';
import { addCustomer } from '../support/subjects';

/** The actor budget these servers run with: a refused actor's next token is 60 / 2 = 30 s away. */
const ACTOR_REQUESTS_PER_MINUTE = 2;

describe.each(DRIVERS)('HTTP answers that tell the client what to do instead, on %s', (driver) => {
  let candor: Harness;
  let base: string;
  const linkOf = (subjectId: string) => createSubjectToken(candor.services.config.secret, subjectId, new Date(Date.now() + 3_600_000));

  beforeAll(async () => {
    candor = await startCandor(driver, { env: { CANDOR_RATE_LIMIT_PER_MINUTE: String(ACTOR_REQUESTS_PER_MINUTE) } });
    base = candor.server.url.replace('/graphql', '');
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('answers HEAD on a valid privacy link as it answers GET, without the page', async () => {
    const S = 'cus_0000_http_head';
    await addCustomer(candor, S);
    const url = `${base}/privacy?t=${linkOf(S)}`;
    const get = await fetch(url);
    const head = await fetch(url, { method: 'HEAD' });
    expect([get.status, get.headers.get('content-type')]).toEqual([200, expect.stringContaining('text/html')]);
    expect([head.status, head.headers.get('content-type'), head.headers.get('cache-control'), await head.text()]).toEqual([200, get.headers.get('content-type'), 'no-store', '']);
  });

  it('keeps the page, its forms, links and redirects under the path of PUBLIC_URL, which a proxy in front strips: the link never leaves it', async () => {
    const prefixed = await startCandor(driver, { seed: false, env: { PUBLIC_URL: 'https://privacy.example/candor/' } });
    try {
      const S = 'cus_0000_http_prefixed';
      await addCustomer(prefixed, S);
      const token = createSubjectToken(prefixed.services.config.secret, S, new Date(Date.now() + 3_600_000));
      await prefixed.services.consent.append({ subjectId: S, kind: 'grant', purpose: 'marketing.communications', source: 'test' });
      const origin = prefixed.server.url.replace('/graphql', '');
      const html = await (await fetch(`${origin}/privacy?t=${token}`)).text();
      const addresses = [...html.matchAll(/(?:action|href)="([^"]*)"/g)].map(([, address]) => address).filter((address) => !address.startsWith('mailto:') && !address.startsWith('https://'));
      expect(addresses.length).toBeGreaterThan(3);
      expect(addresses.filter((address) => !address.startsWith('/candor/privacy'))).toEqual([]);
      const choice = await fetch(`${origin}/privacy/choice`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, purpose: 'marketing.communications', action: 'withdraw' }) });
      expect([choice.status, choice.headers.get('location')]).toEqual([303, expect.stringMatching(/^\/candor\/privacy\?t=/)]);
      const refused = await (await fetch(`${origin}/privacy/receipt?t=${token}&id=none`)).text();
      expect(refused).toContain(`href="/candor/privacy?t=${encodeURIComponent(token)}"`);
    } finally {
      await prefixed.stop();
    }
  });

  it.each([
    ['a Content-Encoding it cannot decode', { 'content-encoding': 'x-unknown' }, 'unsupported Content-Encoding "x-unknown": send the body uncompressed, or gzip, deflate or br'],
    ['a charset other than UTF-8', { 'content-type': 'application/json; charset=iso-8859-1' }, 'unsupported charset "iso-8859-1": send UTF-8'],
    // body-parser itself would decode these.
    ['UTF-16', { 'content-type': 'application/json; charset=UTF-16' }, 'unsupported charset "utf-16": send UTF-8'],
    ['UTF-32, quoted', { 'content-type': 'application/json; charset="utf-32le"' }, 'unsupported charset "utf-32le": send UTF-8'],
  ])('refuses a GraphQL body in %s with 415 UNSUPPORTED_MEDIA_TYPE saying what to send, and records the refusal', async (_case, headers, message) => {
    const response = await fetch(candor.server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, ...headers }, body: '{"query":"{ __typename }"}' });
    expect([response.status, await response.json()]).toEqual([415, { errors: [{ message, extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' } }] }]);
    const requestId = response.headers.get('x-request-id');
    const reasons = async () => (await candor.services.accessLogReader.page({ requestId }, 10)).edges.map((edge) => [edge.node.decision, edge.node.reason]);
    await eventually(async () => (await reasons()).length > 0, 'the refusal recorded');
    expect(await reasons()).toEqual([['REFUSED', 'UNSUPPORTED_MEDIA_TYPE']]);
  });

  it.each(['/healthz', '/readyz', '/metrics'])('refuses POST on %s with 405, an Allow header and a coded error naming the methods it takes', async (path) => {
    const response = await fetch(`${base}${path}`, { method: 'POST' });
    expect([response.status, response.headers.get('allow'), await response.json()]).toEqual([
      405,
      'GET, HEAD',
      { errors: [{ message: `POST is not allowed on ${path}: use GET or HEAD`, extensions: { code: 'METHOD_NOT_ALLOWED' } }] },
    ]);
    expect((await fetch(`${base}${path}`, { method: 'HEAD' })).status).not.toBe(405);
  });

  it.each([
    ['PUT', { 'content-type': 'application/json' }],
    // Without a Content-Type, Apollo would call it a cross-site request forgery.
    ['DELETE', {}],
    ['PATCH', {}],
    // GET runs a query: HEAD is no lighter way to ask one.
    ['HEAD', {}],
  ])('refuses %s on /graphql with 405, Allow: GET, POST and a coded error, and records the refusal', async (method, headers: Record<string, string>) => {
    const response = await fetch(candor.server.url, { method, headers: { authorization: `Bearer ${KEYS.support}`, ...headers } });
    expect([response.status, response.headers.get('allow')]).toEqual([405, 'GET, POST']);
    if (method !== 'HEAD') expect(await response.json()).toEqual({ errors: [{ message: `${method} is not allowed on /graphql: use GET or POST`, extensions: { code: 'METHOD_NOT_ALLOWED' } }] });
    const requestId = response.headers.get('x-request-id');
    expect((await candor.services.accessLogReader.page({ requestId }, 10)).edges.map((edge) => [edge.node.decision, edge.node.reason])).toEqual([['REFUSED', 'METHOD_NOT_ALLOWED']]);
  });

  it("tells an actor over its budget when its next request is within it (Retry-After: the seconds until a token refills)", async () => {
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<Harness['query']>> | undefined;
    for (let index = 0; index <= ACTOR_REQUESTS_PER_MINUTE; index++) {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: '{ __typename }' });
      statuses.push(response.status);
      if (response.status === 429) refused = response;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect([refused!.headers.get('retry-after'), refused!.body.errors?.[0].extensions?.code]).toEqual([String(60 / ACTOR_REQUESTS_PER_MINUTE), 'RATE_LIMITED']);
    // A batch whose every operation is refused so says it too.
    const batch = await fetch(candor.server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.analytics}`, 'x-purpose': 'analytics.reporting' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect([batch.status, batch.headers.get('retry-after')]).toEqual([429, String(60 / ACTOR_REQUESTS_PER_MINUTE)]);
  });

  it('records every refusal of the privacy page, by its code and page operation, naming no actor and no subject', async () => {
    const S = 'cus_0000_http_page_refusals';
    await addCustomer(candor, S);
    const expiredLink = createSubjectToken(candor.services.config.secret, S, new Date(Date.now() - 1_000));
    // [path, request, status, recorded reason, recorded operation, what the page says (where checked)]
    const cases: Array<[string, RequestInit | undefined, number, string, string, string?]> = [
      ['/privacy?t=not-a-link', undefined, 400, 'LINK_INVALID', 'privacy-page view'],
      [`/privacy/export?t=${expiredLink}`, undefined, 410, 'LINK_EXPIRED', 'privacy-page export'],
      [`/privacy/nowhere?t=${linkOf(S)}`, undefined, 404, 'NOT_FOUND', 'privacy-page'],
      [`/privacy/receipt?t=${linkOf(S)}&id=none`, undefined, 404, 'RECEIPT_NOT_FOUND', 'privacy-page receipt'],
      ['/privacy/choice', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: linkOf(S), purpose: 'no.such.purpose', action: 'grant' }).toString() }, 400, 'BAD_USER_INPUT', 'privacy-page choice'],
      // A body the form parser refuses is refused before any page operation is matched.
      ['/privacy/question', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `t=${linkOf(S)}&body=${'x'.repeat(70_000)}` }, 413, 'PAYLOAD_TOO_LARGE', 'privacy-page', 'Your message is too long'],
      // A form of more fields than the page's forms send (the parser's limit is 1,000).
      ['/privacy/question', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `t=${linkOf(S)}&body=hi${'&x=1'.repeat(1_000)}` }, 413, 'PAYLOAD_TOO_LARGE', 'privacy-page', 'We could not read that'],
      // Named by the route matched, as Express matches it (any case, a trailing slash), not by the path's text.
      ['/privacy/Choice/', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 't=not-a-link' }, 400, 'LINK_INVALID', 'privacy-page choice'],
      // A page asked with a method it does not take; a form's body that is not form-encoded (its link is not read).
      [`/privacy/choice?t=${linkOf(S)}`, undefined, 405, 'METHOD_NOT_ALLOWED', 'privacy-page choice'],
      [`/privacy?t=${linkOf(S)}`, { method: 'PUT' }, 405, 'METHOD_NOT_ALLOWED', 'privacy-page view'],
      ['/privacy/question', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `t=${linkOf(S)}&body=hello` }, 415, 'UNSUPPORTED_MEDIA_TYPE', 'privacy-page question'],
    ];
    for (const [path, init, status, reason, operationName, says] of cases) {
      const response = await fetch(`${base}${path}`, init);
      expect([path, response.status, response.headers.get('content-type')]).toEqual([path, status, expect.stringContaining('text/html')]);
      if (says !== undefined) expect(await response.text()).toContain(says);
      if (status === 405) expect(response.headers.get('allow')).toBe(operationName === 'privacy-page choice' ? 'POST' : 'GET, HEAD');
      const requestId = response.headers.get('x-request-id');
      const records = async () => (await candor.services.accessLogReader.page({ requestId }, 10)).edges.map(({ node }) => [node.decision, node.reason, node.operationName, node.actor.id, node.subjectId, node.coordinate]);
      await eventually(async () => (await records()).length > 0, `the refusal of ${path} recorded`);
      expect([path, await records()]).toEqual([path, [['REFUSED', reason, operationName, null, null, null]]]);
    }
  });

  it('answers a privacy page request that fails with 503, logs its cause for operators, and records no refusal: a choice may have applied', async () => {
    const S = 'cus_0000_http_page_failure';
    await addCustomer(candor, S);
    const logDown = jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValueOnce(new Error('log down'));
    const logged = jest.spyOn(candor.services.logger, 'error');
    try {
      const response = await fetch(`${base}/privacy?t=${linkOf(S)}`);
      expect([response.status, await response.text()]).toEqual([503, expect.stringContaining('Something went wrong')]);
      const requestId = response.headers.get('x-request-id');
      expect(logged).toHaveBeenCalledWith(expect.objectContaining({ requestId, error: 'Error' }), 'a privacy page request failed');
      expect((await candor.services.accessLogReader.page({ requestId }, 10)).edges).toEqual([]);
    } finally {
      logDown.mockRestore();
      logged.mockRestore();
    }
  });

  it('tells a privacy link asked for too often when to ask again (Retry-After on its 429 page)', async () => {
    const S = 'cus_0000_http_slow_down';
    await addCustomer(candor, S);
    const url = `${base}/privacy/receipt?t=${linkOf(S)}&id=none`;
    // The page's budget is 60 at once, then one a second: 80 requests at once outrun it whatever each then costs
    // (sent one after another, each recording a view, they may not on a loaded machine).
    const responses = await Promise.all(Array.from({ length: 80 }, () => fetch(url)));
    const refused = responses.filter((response) => response.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(responses.map((response) => response.status))).toEqual(new Set([404, 429]));
    for (const response of refused) {
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60).toBe(true);
    }
  });
});
