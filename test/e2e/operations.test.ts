import { request as httpRequest } from 'node:http';
import { Client } from 'pg';
import { LOG_FAILURE_NOT_READY_MS } from '../../src/server/http-server';
import { SharedRateLimiter } from '../../src/server/rate-limiter';
import { startCheckpointTimer } from '../../src/server/checkpoint-timer';
import { CLIENT_CLOSED_REQUEST } from '../../src/server/observability';
import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';
import { KEYS, startCandor, TEST_STORE_DEADLINE_MS } from '../support/candor-harness';
import { type ChildServer, runCli, startChildServer } from '../support/child-server';
import { createTestDatabase, DRIVERS } from '../support/databases';
import { eventually } from '../support/eventually';
import { expectEveryReleaseRecorded, governedLoad } from '../support/load';

describe.each(DRIVERS)('operating Candor on %s', (driver) => {
  it('answers /healthz and /readyz, exposes Prometheus metrics, and logs one JSON line per request with its id', async () => {
    const database = await createTestDatabase(driver);
    const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_LOG_LEVEL: 'info' });
    try {
      const base = server.url.replace('/graphql', '');
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready' });
      const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.marketing}`, 'x-purpose': 'marketing.communications' }, body: JSON.stringify({ query: '{ customers(limit: 10) { email } }' }) });
      const requestId = response.headers.get('x-request-id')!;
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/candor_decisions_total\{decision="WITHHELD",reason="CONSENT_REQUIRED"\} \d+/);
      expect(metrics).toMatch(/candor_audit_flush_seconds_count \d+/);
      expect(metrics).toMatch(/candor_http_requests_total\{status="200"\} \d+/);
      await fetch(`${base}/privacy?t=not-a-token-secret`);
      const lines = () => server.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      // The page's own line is written: the token must not be in it (nor anywhere else).
      await eventually(async () => lines().some((line) => line.msg === 'request' && line.path === '/privacy'), 'the log line of the privacy page request');
      expect(lines()).toEqual(expect.arrayContaining([expect.objectContaining({ msg: 'request', requestId, method: 'POST', path: '/graphql', status: 200 })]));
      expect(server.output()).not.toContain('not-a-token-secret');
      expect(server.output()).not.toContain('@example.com');
      // A page whose name was made to resolve here (DNS rebinding) sends its own name as Host: refused, with the demo keys.
      const byName = (host: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const url = new URL(server.url);
          const body = JSON.stringify({ query: '{ customers(limit: 1) { email } }' });
          const request = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { host, 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, 'x-purpose': 'essential.service' } }, (response) => {
            let text = '';
            response.on('data', (chunk) => (text += chunk));
            response.on('end', () => resolve({ status: response.statusCode!, body: text }));
          });
          request.on('error', reject);
          request.end(body);
        });
      const rebound = await byName(`rebind.attacker.example:${new URL(server.url).port}`);
      expect([rebound.status, JSON.parse(rebound.body).errors[0].extensions.code, rebound.body.includes('@')]).toEqual([403, 'HOST_NOT_ALLOWED', false]);
      expect((await byName(`localhost:${new URL(server.url).port}`)).status).toBe(200);
    } finally {
      await server.kill();
      await database.drop();
    }
  });

  it('counts in candor_decisions_total the records the log committed: refusals too, and none of a response withdrawn when the log failed', async () => {
    const candor = await startCandor(driver);
    const counted = async (decision: string, reason: string) =>
      (await candor.services.metrics.decisions.get()).values.find(({ labels }) => labels.decision === decision && labels.reason === reason)?.value ?? 0;
    const read = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 2) { email } }' });
    try {
      expect((await read()).status).toBe(200);
      await candor.services.accessLog.drain();
      const released = await counted('RELEASED', 'LEGAL_BASIS');
      expect(released).toBe(2);
      // A refusal is recorded after its answer, by the refusal recorder rather than the response's plugin.
      expect((await candor.query({ key: 'not-a-key', purpose: 'essential.service', query: '{ customers(limit: 1) { id } }' })).status).toBe(401);
      await candor.services.accessLog.drain();
      expect(await counted('REFUSED', 'UNAUTHENTICATED')).toBe(1);
      const failing = jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValue(new Error('disk full'));
      expect((await read()).status).toBe(503);
      failing.mockRestore();
      expect(await counted('RELEASED', 'LEGAL_BASIS')).toBe(released);
    } finally {
      await candor.stop();
    }
  });

  it("tells the operator when the log's store starts refusing commits: one warning an outage, every failed batch counted", async () => {
    const candor = await startCandor(driver, { captureLogs: true });
    const store = candor.services.accessLog.store as unknown as Record<'prepare' | 'append', () => Promise<unknown>>;
    const refuse = () => jest.spyOn(store, 'prepare' in store ? 'prepare' : 'append').mockRejectedValue(new Error('UNIQUE constraint failed: audit_entry.seq'));
    const read = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 2) { email } }' });
    const warnings = () => candor.logs().split('\n').filter((line) => line.includes('the access log could not commit a batch')).map((line) => JSON.parse(line));
    const failedBatches = async () => (await candor.services.metrics.auditFailedBatches.get()).values[0]?.value ?? 0;
    try {
      let refusing = refuse();
      expect([(await read()).status, (await read()).status]).toEqual([503, 503]);
      refusing.mockRestore();
      expect(warnings()).toEqual([expect.objectContaining({ level: 40, error: 'UNIQUE constraint failed: audit_entry.seq', records: 2 })]);
      expect(await failedBatches()).toBe(2);
      expect((await read()).status).toBe(200);
      refusing = refuse();
      expect((await read()).status).toBe(503);
      refusing.mockRestore();
      expect([warnings().length, await failedBatches()]).toEqual([2, 3]);
      // As Prometheus scrapes it, under its documented name.
      const scraped = await (await fetch(candor.server.url.replace('/graphql', '/metrics'))).text();
      expect(scraped).toMatch(/^candor_audit_failed_batches_total 3$/m);
    } finally {
      await candor.stop();
    }
  });

  it("leaves a command's output to the command when the log's store refuses a commit: the warning is the server's", async () => {
    const database = await createTestDatabase(driver);
    let logged = '';
    const services = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_LOG_LEVEL: 'info' }, {}), { logDestination: { write: (line: string) => void (logged += line) } });
    try {
      const store = services.accessLog.store as unknown as Record<'prepare' | 'append', () => Promise<unknown>>;
      jest.spyOn(store, 'prepare' in store ? 'prepare' : 'append').mockRejectedValue(new Error('disk full'));
      const record = { at: new Date(), requestId: 'command-run', actor: null, purpose: null, operationName: 'audit verify', subjectId: null, coordinate: null, category: null, decision: 'RELEASED' as const, reason: 'ACCESS_LOG_READ', legalBasis: 'legal_obligation' };
      await expect(services.accessLog.append([record])).rejects.toThrow('disk full');
      expect([logged, (await services.metrics.auditFailedBatches.get()).values[0]?.value]).toEqual(['', 1]);
    } finally {
      await services.close();
      await database.drop();
    }
  });

  it('answers within the store deadline when a store stalls: /readyz not ready, a request refused as GOVERNANCE_UNAVAILABLE', async () => {
    const candor = await startCandor(driver, { seed: false });
    const never = () => new Promise<never>(() => undefined);
    try {
      const stalledQuery = jest.spyOn(candor.services.dataSource, 'query').mockImplementation(never);
      const started = Date.now();
      const readiness = await fetch(candor.server.url.replace('/graphql', '/readyz'));
      expect([readiness.status, await readiness.json()]).toEqual([503, { status: 'not ready', problems: ['the database does not answer'] }]);
      stalledQuery.mockRestore();
      const stalledActors = jest.spyOn(candor.services.actors, 'authenticate').mockImplementation(never);
      const refused = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 1) { id } }' });
      expect([refused.status, refused.body.errors?.[0]?.extensions?.code, refused.body.errors?.[0]?.message]).toEqual([503, 'GOVERNANCE_UNAVAILABLE', 'the actor store is unavailable']);
      stalledActors.mockRestore();
      // Two deadlines of the harness's servers, with room for a loaded machine; without them, never.
      expect(Date.now() - started).toBeLessThan(2 * TEST_STORE_DEADLINE_MS + 5_000);
    } finally {
      await candor.stop();
    }
  });

  it('logs a masked error with its request id, its class and driver code, never its message', async () => {
    const candor = await startCandor(driver, { captureLogs: true });
    try {
      const failing = jest.spyOn(candor.services.domain, 'listCustomers').mockRejectedValueOnce(Object.assign(new Error('column "secret@example.com" does not exist'), { code: '42703' }));
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 1) { id } }' });
      failing.mockRestore();
      expect(response.body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([['INTERNAL_SERVER_ERROR', 'Internal server error']]);
      const lines = candor.logs().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      expect(lines).toEqual(expect.arrayContaining([expect.objectContaining({ msg: 'an error was masked as INTERNAL_SERVER_ERROR', requestId: response.headers.get('x-request-id'), error: 'Error', code: '42703', path: 'customers' })]));
      expect(candor.logs()).not.toContain('secret@example.com');
    } finally {
      await candor.stop();
    }
  });

  it("keeps a client's operation name out of the log unless it is a GraphQL name, as the access log does", async () => {
    const candor = await startCandor(driver, { captureLogs: true });
    try {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ __typename }', operationName: 'Bad Name! secret@example.com' });
      expect(response.status).toBe(400);
      expect(candor.logs()).not.toContain('secret@example.com');
    } finally {
      await candor.stop();
    }
  });

  it('logs and counts a request its client abandoned, as 499', async () => {
    const candor = await startCandor(driver);
    const closed = async () => (await candor.services.metrics.requests.get()).values.find(({ labels }) => labels.status === String(CLIENT_CLOSED_REQUEST))?.value ?? 0;
    try {
      let answer: () => void = () => undefined;
      const slowLog = jest.spyOn(candor.services.accessLog, 'appendEntries').mockImplementation(() => new Promise((resolve) => (answer = () => resolve(undefined))));
      const abandoned = fetch(candor.server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, 'x-purpose': 'essential.service' },
        body: JSON.stringify({ query: '{ customers(limit: 1) { email } }' }),
        signal: AbortSignal.timeout(500),
      });
      await expect(abandoned).rejects.toThrow();
      await eventually(async () => (await closed()) === 1, 'the abandoned request counted');
      answer();
      slowLog.mockRestore();
      await candor.services.accessLog.drain();
      expect(await closed()).toBe(1);
    } finally {
      await candor.stop();
    }
  });

  it('fails to stop, saying what to do, when the final checkpoint cannot be signed (there is no next tick)', async () => {
    const candor = await startCandor(driver);
    const timer = startCheckpointTimer(candor.services, 0);
    const down = jest.spyOn(candor.services.accessLogReader, 'headSeq').mockRejectedValue(new Error('connection terminated'));
    try {
      await expect(timer.stop()).rejects.toThrow('could not sign the final access-log checkpoint (connection terminated): sign one with `npx candor audit checkpoint create` once the store answers');
    } finally {
      down.mockRestore();
      await candor.stop();
    }
  });

  it('is not ready once a newer Candor migrated the database under it (a rolling upgrade), and no process of the older build starts on it', async () => {
    const candor = await startCandor(driver, { seed: false });
    try {
      await candor.services.dataSource.query("INSERT INTO migrations (timestamp, name) VALUES (9999999999999, 'FromANewerBuild9999999999999')");
      const response = await fetch(candor.server.url.replace('/graphql', '/readyz'));
      // Anyone who reaches /readyz reads it: it does not say where the database is.
      const problem = 'the database was migrated by a newer Candor (FromANewerBuild9999999999999): this build is older than its schema — run the newer version';
      expect([response.status, await response.json()]).toEqual([503, { status: 'not ready', problems: [problem] }]);
      await expect(openServices(loadConfig({ DATABASE_URL: candor.database.url, NODE_ENV: 'test' }, {}), { serving: true })).rejects.toThrow(/was migrated by a newer Candor/);
      for (const command of [['actor', 'list'], ['migrate']]) {
        const cli = await runCli(command, { DATABASE_URL: candor.database.url });
        expect([command, cli.code, cli.stderr]).toEqual([command, 1, expect.stringMatching(/^candor: the database at .+ was migrated by a newer Candor/)]);
      }
    } finally {
      await candor.stop();
    }
  });

  it('is not ready when the access log store does not answer', async () => {
    const candor = await startCandor(driver, { seed: false });
    try {
      const ping = jest.spyOn(candor.services.accessLog, 'ping').mockRejectedValue(new Error('down'));
      const response = await fetch(candor.server.url.replace('/graphql', '/readyz'));
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: 'not ready', problems: ['the access log store does not answer'] });
      ping.mockRestore();
    } finally {
      await candor.stop();
    }
  });

  it('is not ready while the access log’s commits fail, though its store answers; ready again once one succeeds', async () => {
    const candor = await startCandor(driver);
    const readiness = async () => {
      const response = await fetch(candor.server.url.replace('/graphql', '/readyz'));
      return [response.status, await response.json()];
    };
    const read = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 1) { email } }' });
    try {
      const store = candor.services.accessLog.store as { commit?: unknown };
      // The step that writes: commit on PostgreSQL (sealed ahead), append on SQLite.
      const failing = jest.spyOn(store as never, (typeof store.commit === 'function' ? 'commit' : 'append') as never).mockRejectedValue(new Error('disk full') as never);
      try {
        expect((await read()).status).toBe(503);
        expect(await readiness()).toEqual([503, { status: 'not ready', problems: ['the access log’s latest commit failed in the last 10 s: governed requests got AUDIT_UNAVAILABLE'] }]);
        // After the window, traffic may try again (a balancer would otherwise never send the instance any).
        expect(candor.services.accessLog.failedWithin(LOG_FAILURE_NOT_READY_MS, Date.now() + LOG_FAILURE_NOT_READY_MS)).toBe(false);
      } finally {
        failing.mockRestore();
      }
      expect((await read()).status).toBe(200);
      expect(await readiness()).toEqual([200, { status: 'ready' }]);
    } finally {
      await candor.stop();
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('two instances on one PostgreSQL', () => {
  it.each([
    ['cluster', 'share one rate limit per actor (the default)', [200, 200, 200, 200, 429, 429]],
    ['instance', 'each keep their own rate limit when told to', [200, 200, 200, 200, 200, 200]],
  ])('with CANDOR_RATE_LIMIT_SCOPE=%s %s', async (scope, _, expected) => {
    const database = await createTestDatabase('postgres');
    const servers: ChildServer[] = [];
    try {
      const env = { DATABASE_URL: database.url, CANDOR_RATE_LIMIT_PER_MINUTE: '4', CANDOR_RATE_LIMIT_SCOPE: scope };
      for (let index = 0; index < 2; index++) servers.push(await startChildServer(env));
      const ask = (server: ChildServer) =>
        fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, 'x-purpose': 'essential.service' }, body: JSON.stringify({ query: '{ __typename }' }) });
      const statuses = [];
      for (const server of [servers[0], servers[0], servers[0], servers[1], servers[1], servers[1]]) statuses.push((await ask(server)).status);
      expect(statuses).toEqual(expected);
    } finally {
      for (const server of servers) await server.kill();
      await database.drop();
    }
  });

  it("cancels a rate-limit statement stuck behind a locked bucket: refused, no token taken, other actors' requests served", async () => {
    const candor = await startCandor('postgres', { env: { CANDOR_RATE_LIMIT_PER_MINUTE: '100' } });
    const locker = new Client({ connectionString: candor.database.url });
    await locker.connect();
    const ask = (key: string, purpose: string) => candor.query({ key, purpose, query: '{ __typename }' });
    const tokensOf = async (actorId: string) => Number((await locker.query('SELECT tokens FROM actor_rate_bucket WHERE actor_id = $1', [actorId])).rows[0].tokens);
    try {
      expect((await ask(KEYS.support, 'essential.service')).status).toBe(200);
      const before = await tokensOf('support-desk');
      await locker.query('BEGIN');
      await locker.query("SELECT * FROM actor_rate_bucket WHERE actor_id = 'support-desk' FOR UPDATE");
      const stuck = await Promise.all(Array.from({ length: 8 }, () => ask(KEYS.support, 'essential.service')));
      expect(stuck.map((response) => [response.status, response.body.errors?.[0].extensions?.code])).toEqual(stuck.map(() => [503, 'GOVERNANCE_UNAVAILABLE']));
      // The stuck statements were cancelled: the pool serves another actor while the bucket is still locked.
      expect((await ask(KEYS.analytics, 'analytics.reporting')).status).toBe(200);
      await locker.query('ROLLBACK');
      // Refused requests took nothing (a little refill since, at 100 a minute, is all that changed).
      expect(await tokensOf('support-desk')).toBeGreaterThanOrEqual(before);
    } finally {
      await locker.end();
      await candor.stop();
    }
  });

  it('refuses (503, GOVERNANCE_UNAVAILABLE, recorded) when the shared rate limit cannot be read: a budget not read is not granted', async () => {
    const candor = await startCandor('postgres');
    const unreadable = jest.spyOn(SharedRateLimiter.prototype, 'take').mockRejectedValue(new Error('relation "actor_rate_bucket" does not exist'));
    try {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 1) { email } }' });
      expect([response.status, response.body.data, response.body.errors?.[0]]).toEqual([
        503,
        undefined,
        expect.objectContaining({ message: "the rate limit's store is unavailable", extensions: expect.objectContaining({ code: 'GOVERNANCE_UNAVAILABLE' }) }),
      ]);
      const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')! }, 10);
      expect(recorded.edges.map((edge) => [edge.node.actor?.id, edge.node.decision, edge.node.reason])).toEqual([['support-desk', 'REFUSED', 'GOVERNANCE_UNAVAILABLE']]);
    } finally {
      unreadable.mockRestore();
      await candor.stop();
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)("the server's statements on PostgreSQL", () => {
  it('are cancelled by PostgreSQL past CANDOR_QUERY_TIMEOUT_MS: the request fails within it, and nothing keeps running', async () => {
    const candor = await startCandor('postgres', { env: { CANDOR_QUERY_TIMEOUT_MS: '1500' } });
    const read = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 2) { id } }' });
    const sleepingBackends = async () => Number((await candor.services.dataSource.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'"))[0].n);
    try {
      expect((await read()).body.errors).toBeUndefined();
      // A domain read that would run for a minute.
      const stalled = jest.spyOn(candor.services.domain, 'listCustomers').mockImplementationOnce(() => candor.services.dataSource.query('SELECT pg_sleep(60)'));
      const started = Date.now();
      const answer = await read();
      stalled.mockRestore();
      expect(answer.body.errors?.map((error) => error.extensions?.code)).toEqual(['INTERNAL_SERVER_ERROR']);
      expect(Date.now() - started).toBeLessThan(1_500 + 5_000);
      expect(await sleepingBackends()).toBe(0);
      for (let index = 0; index < 5; index++) expect((await read()).body.errors).toBeUndefined();
    } finally {
      await candor.stop();
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('three instances on one PostgreSQL', () => {
  it('see every consent change made through any of them at once, and keep one chain', async () => {
    const database = await createTestDatabase('postgres');
    const servers: ChildServer[] = [];
    try {
      for (let index = 0; index < 3; index++) servers.push(await startChildServer({ DATABASE_URL: database.url }));
      const post = (url: string, key: string, purpose: string, query: string) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-purpose': purpose }, body: JSON.stringify({ query }) }).then((response) => response.json() as Promise<any>);
      const [subject] = (await post(servers[0].url, KEYS.support, 'essential.service', '{ customers(limit: 1) { id } }')).data.customers;
      const emailEverywhere = () => Promise.all(servers.map(async (server) => (await post(server.url, KEYS.marketing, 'marketing.communications', `{ customer(id: "${subject.id}") { email } }`)).data.customer.email));
      // Governed traffic spread over the three instances all along, as a balancer would send it.
      let changing = true;
      const traffic = governedLoad(
        servers.map((server) => server.url),
        { concurrency: 6, maxMs: 120_000, until: () => !changing },
      );
      // Each change flips what every instance answers, and the very next request to each already says so:
      // no instance keeps consent across requests.
      for (const [index, change] of [['0', 'grantConsent'], ['1', 'withdrawConsent'], ['2', 'grantConsent'], ['0', 'withdrawConsent']].entries()) {
        const through = servers[Number(change[0])];
        const changed = await post(through.url, KEYS.compliance, 'essential.legal_obligation', `mutation { ${change[1]}(input: { subjectId: "${subject.id}", purpose: "marketing.communications", source: "multi-instance-test-${index}" }) { id } }`);
        expect(changed.errors).toBeUndefined();
        const granted = change[1] === 'grantConsent';
        expect([index, await emailEverywhere()]).toEqual([index, servers.map(() => (granted ? expect.stringContaining('@') : null))]);
      }
      changing = false;
      const load = await traffic;
      expect(load.failures).toBe(0);
      expect(await expectEveryReleaseRecorded(database.url, load)).toBeGreaterThan(10);
      const verify = await runCli(['audit', 'verify'], { DATABASE_URL: database.url });
      expect(verify.code).toBe(0);
    } finally {
      for (const server of servers) await server.kill();
      await database.drop();
    }
  });
});
