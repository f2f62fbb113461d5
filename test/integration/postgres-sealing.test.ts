import { Client } from 'pg';
import { CHAIN_HEAD_MOVED } from '../../migrations/1764480000000-copy-ahead-of-the-chain-lock';
import { AccessLog, type AccessRecordInput, createAuditStore, entriesOf } from '../../src/audit/access-log';
import { CHAIN_LOCK_KEY } from '../../src/audit/audit-store';
import { GENESIS_HASH } from '../../src/audit/chain';
import { PostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { WorkerClient } from '../../src/audit/worker-client';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { eventually } from '../support/eventually';
import { silentProxy } from '../support/silent-proxy';
import { abandonedSessionBounds, sessionOptions } from '../../src/storage/postgres-sessions';
import { DRIVERS } from '../support/databases';

/** `subjects` × `fields` decisions of one request. */
function records(requestId: string, subjects: number, fields = 10): AccessRecordInput[] {
  const at = new Date();
  return Array.from({ length: subjects * fields }, (_, index) => ({
    at, requestId, actor: { id: 'sealing-test', name: 'Sealing Test', team: 'Tests' }, purpose: 'essential.service', operationName: 'SealingTest',
    subjectId: `cus_seal_${Math.floor(index / fields)}`, coordinate: `Customer.field${index % fields}`, category: 'user.contact.email', decision: 'RELEASED' as const, reason: 'LEGAL_BASIS', legalBasis: 'contract',
  }));
}

/**
 * Makes every seal request go to a worker that is being terminated, as a crash mid-seal would. (Ending it
 * just after the request was sent races with a small seal that answers first.)
 */
/** Each sealing request's worker is ended as it is asked; `exited` resolves once every ended worker is gone. */
function crashSealersOnEachRequest() {
  const request = WorkerClient.prototype.request;
  const exits: Promise<number>[] = [];
  const spy = jest.spyOn(WorkerClient.prototype, 'request').mockImplementation(function (this: WorkerClient<any, any>, ...args) {
    exits.push(this.start().terminate());
    return request.apply(this, args);
  });
  return { restore: () => spy.mockRestore(), exited: () => Promise.all(exits) };
}

(DRIVERS.includes('postgres') ? describe : describe.skip)('the PostgreSQL access log, sealed in worker threads', () => {
  let candor: Harness;
  let store: PostgresAuditStore;
  const recordsOf = async (requestId: string) => Number((await candor.services.dataSource.query('SELECT COUNT(*) AS n FROM audit_record WHERE request_id = $1', [requestId]))[0].n);
  /**
   * The log's connections waiting for an advisory lock while holding the entries' table, running a statement
   * like `statement` (a LIKE pattern). Asked on the harness's pool: a test holding a lock in a transaction
   * of its own would see a statistics snapshot that does not change.
   */
  const waitingHoldingEntries = async (statement: string) =>
    (
      await candor.services.dataSource.query(
        `SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.relation = 'audit_entry'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted
         WHERE a.application_name = 'candor-audit' AND a.wait_event_type = 'Lock' AND a.wait_event = 'advisory' AND a.query LIKE $1`,
        [statement],
      )
    ).length;
  const expectVerified = async () => expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, firstBrokenSeq: null }));

  beforeAll(async () => {
    candor = await startCandor('postgres');
    store = candor.services.accessLog.store as PostgresAuditStore;
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('commits concurrent large requests, split between sealing threads and pipelined, gap-free and verifiable', async () => {
    const log = new AccessLog(store);
    const results = await Promise.all(Array.from({ length: 12 }, (_, request) => log.append(records(`large-${request}`, 60))));
    expect(new Set(results.map((result) => result!.batchId)).size).toBeGreaterThan(1);
    for (let request = 0; request < 12; request++) expect(await recordsOf(`large-${request}`)).toBe(600);
    await expectVerified();
  });

  it('seals a batch again under the lock when another appender moved the head after it was prepared', async () => {
    const other = createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore;
    try {
      const prepared = await store.prepare(entriesOf(records('mine', 30)), new Date().toISOString());
      const theirs = await other.append(entriesOf(records('theirs', 5)), new Date().toISOString());
      expect(prepared.batch.firstSeq).toBe(theirs.firstSeq); // both expected the same place in the chain
      const mine = await store.commit(prepared);
      expect([mine.batchId, mine.firstSeq, mine.lastSeq]).toEqual([theirs.batchId + 1, theirs.lastSeq + 1, theirs.lastSeq + 300]);
      // Prepared after a batch that then commits second: both are sealed again after the real head.
      const earlier = await store.prepare(entriesOf(records('earlier', 2)), new Date().toISOString());
      const later = await store.prepare(entriesOf(records('later', 3)), new Date().toISOString());
      const committedLater = await store.commit(later);
      const committedEarlier = await store.commit(earlier);
      expect([committedLater.firstSeq, committedEarlier.firstSeq]).toEqual([mine.lastSeq + 1, mine.lastSeq + 31]);
      expect(await store.append(entriesOf(records('after', 1)), new Date().toISOString())).toEqual(expect.objectContaining({ firstSeq: committedEarlier.lastSeq + 1 }));
    } finally {
      await other.close();
    }
    await expectVerified();
  });

  it('seals a batch again when another appender committed its sequence numbers in the same millisecond (the copies do not collide)', async () => {
    const other = createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore;
    try {
      const at = new Date().toISOString();
      const colliding = await store.prepare(entriesOf(records('colliding', 2)), at);
      const taken = await other.append(entriesOf(records('taking', 2)), at);
      expect(taken.firstSeq).toBe(colliding.batch.firstSeq);
      const committed = await store.commit(colliding);
      expect([committed.batchId, committed.firstSeq]).toEqual([taken.batchId + 1, taken.lastSeq + 1]);
      expect(await recordsOf('colliding')).toBe(20);
    } finally {
      await other.close();
    }
    await expectVerified();
  });

  it('commits under the lock directly while another appender keeps moving the head, and copies ahead again once it stops', async () => {
    const other = createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore;
    const append = (appender: PostgresAuditStore, requestId: string) => appender.append(entriesOf(records(requestId, 2)), new Date().toISOString());
    // Two appends alone: the second finds the head where this store left it, whatever earlier tests did.
    await append(store, 'alone-1');
    await append(store, 'alone-2');
    const ahead = jest.spyOn(store as unknown as { commitAhead(): unknown }, 'commitAhead');
    const underLock = jest.spyOn(store as unknown as { commitUnderLock(): unknown }, 'commitUnderLock');
    try {
      for (let round = 0; round < 4; round++) {
        await append(store, `mine-${round}`);
        await append(other, `theirs-${round}`);
      }
      // Round 0 copies ahead; round 1 copies ahead, finds the head moved and falls back; then under the lock.
      expect([ahead.mock.calls.length, underLock.mock.calls.length]).toEqual([2, 3]);
      await append(store, 'mine-4'); // under the lock, sealed again after the other's last batch
      await append(store, 'mine-5'); // under the lock, and the head was where expected
      await append(store, 'mine-6'); // ahead again
      expect([ahead.mock.calls.length, underLock.mock.calls.length]).toEqual([3, 5]);
    } finally {
      ahead.mockRestore();
      underLock.mockRestore();
      await other.close();
    }
    for (const requestId of ['mine-0', 'theirs-3', 'mine-6']) expect(await recordsOf(requestId)).toBe(20);
    await expectVerified();
  });

  it('takes the entries\' table before the chain lock on the path under the lock too (the order prune relies on)', async () => {
    const other = createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore;
    const holder = new Client({ connectionString: (candor.services.config.database as { url: string }).url });
    await holder.connect();
    try {
      // Another appender moves the head: this store's next commit falls back, and the one after commits under the lock.
      await other.append(entriesOf(records('moves-head', 1)), new Date().toISOString());
      await store.append(entriesOf(records('falls-back', 1)), new Date().toISOString());
      const underLock = jest.spyOn(store as unknown as { commitUnderLock(): unknown }, 'commitUnderLock');
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
      const appended = store.append(entriesOf(records('under-held-lock', 1)), new Date().toISOString());
      await eventually(
        async () => (await waitingHoldingEntries('LOCK TABLE audit_entry IN ROW EXCLUSIVE MODE%')) === 1,
        'a commit under the lock holding the table while it waits for the chain',
      );
      await holder.query('COMMIT');
      await appended;
      expect(underLock).toHaveBeenCalledTimes(1);
      underLock.mockRestore();
    } finally {
      await holder.end();
      await other.close();
    }
    expect(await recordsOf('under-held-lock')).toBe(10);
    await expectVerified();
  });

  it('copies the next batches while the chain lock is held elsewhere, then commits them in order as soon as it is free', async () => {
    const database = candor.services.config.database as { url: string };
    const holder = new Client({ connectionString: database.url });
    await holder.connect();
    const log = new AccessLog(store);
    // Commits waiting for a lock with their rows already copied (COPY's lock on the table).
    const waitingWithRows = () => waitingHoldingEntries('%candor_audit_expect_head%');
    const appends: Array<Promise<unknown>> = [];
    const prepared: Array<Promise<unknown>> = [];
    const prepare = jest.spyOn(store, 'prepare').mockImplementation(function (this: typeof store, ...args) {
      const batch = PostgresAuditStore.prototype.prepare.apply(this, args);
      prepared.push(batch);
      return batch;
    });
    const commit = jest.spyOn(store, 'commit');
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
      appends.push(log.append(records('held-1', 20)));
      await eventually(async () => (await waitingWithRows()) === 1, 'the first commit waiting with its rows');
      appends.push(log.append(records('held-2', 20)));
      await eventually(async () => (await waitingWithRows()) === 2, 'the second commit waiting with its rows');
      // Two commits in flight: the third batch is sealed, and its commit waits for the first to end.
      appends.push(log.append(records('held-3', 20)));
      await eventually(async () => prepared.length === 3, 'the third batch handed to sealing');
      await prepared[2];
      await new Promise((resolve) => setImmediate(resolve));
      expect(commit).toHaveBeenCalledTimes(2);
      expect(await waitingWithRows()).toBe(2);
      expect(await recordsOf('held-1')).toBe(0);
    } finally {
      prepare.mockRestore();
      commit.mockRestore();
      await holder.query('COMMIT');
      await holder.end();
    }
    const results = (await Promise.all(appends)) as Array<{ batchId: number; firstSeq: number; lastSeq: number }>;
    expect(results.map((result) => [result.batchId - results[0].batchId, result.lastSeq - result.firstSeq + 1])).toEqual([[0, 200], [1, 200], [2, 200]]);
    expect(results.map((result) => result.firstSeq)).toEqual([results[0].firstSeq, results[0].lastSeq + 1, results[1].lastSeq + 1]);
    await expectVerified();
  });

  it("fails appends within its query timeout when the log's connection goes silent, and appends again once it answers", async () => {
    const database = new URL((candor.services.config.database as { url: string }).url);
    const proxy = await silentProxy({ host: database.hostname, port: Number(database.port || 5432) });
    const throughProxy = new URL(database);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    const silenced = new PostgresAuditStore({ driver: 'postgres', url: throughProxy.toString() }, candor.services.pseudonymBindingKey, { lockWaitMs: 500, queryTimeoutMs: 1_000 });
    const log = new AccessLog(silenced);
    try {
      await log.append(records('before-silence', 1));
      proxy.silence(true);
      // It fails (the records may or may not have landed: over-recording is the safe side), it does not hang.
      await expect(log.append(records('during-silence', 1))).rejects.toThrow();
      proxy.silence(false);
      await eventually(
        () => log.append(records('after-silence', 1)).then(() => true, () => false),
        'appends going through again',
      );
    } finally {
      await silenced.close();
      await proxy.close();
    }
    expect(await recordsOf('after-silence')).toBeGreaterThanOrEqual(10);
    await expectVerified();
  });

  it('a session its instance left holding the chain lock (the network went silent) is ended by the server within the bound: the other appenders go on', async () => {
    const database = candor.services.config.database as Extract<typeof candor.services.config.database, { driver: 'postgres' }>;
    const target = new URL(database.url);
    const proxy = await silentProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const throughProxy = new URL(target);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    // The log's connections ask for these bounds (abandonedSessionBounds of their query timeout); 1 s here.
    const abandoned = new Client({ connectionString: throughProxy.toString(), options: sessionOptions(database, abandonedSessionBounds(1_000)) });
    abandoned.on('error', () => undefined);
    const bounded = new PostgresAuditStore(database, candor.services.pseudonymBindingKey, { lockWaitMs: 5_000 });
    try {
      await abandoned.connect();
      await abandoned.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
      proxy.silence(true);
      // Without the bounds PostgreSQL keeps the session, and its lock, until TCP keepalive gives up on the
      // proxy (never: the proxy is alive): this append would wait out its 5 s and fail.
      const log = new AccessLog(bounded);
      await log.append(records('after-the-abandoned-session', 2));
      expect(await recordsOf('after-the-abandoned-session')).toBe(20);
    } finally {
      await bounded.close();
      await proxy.close();
      await abandoned.end().catch(() => undefined);
    }
    await expectVerified();
  });

  it("appends nothing from an instance whose clock is more than 10 s off PostgreSQL's (its commit times would stamp every later batch of every instance), and again once they agree", async () => {
    const database = candor.services.config.database as Extract<typeof candor.services.config.database, { driver: 'postgres' }>;
    let aheadMs = 120 * 86_400_000;
    const skewed = new PostgresAuditStore(database, candor.services.pseudonymBindingKey, { wallClock: () => Date.now() + aheadMs });
    const headBefore = await candor.services.accessLogReader.headSeq();
    try {
      const log = new AccessLog(skewed);
      await expect(log.append(records('from-the-future', 1))).rejects.toThrow(/^this instance's clock is 10368000\.\d s ahead of PostgreSQL's: it appends nothing to the access log until they agree within 10 s/);
      expect(await candor.services.accessLogReader.headSeq()).toBe(headBefore);
      // Within the bound (a clock compared again when it steps back), it appends, at its own time.
      aheadMs = 2_000;
      await log.append(records('close-enough', 1));
      expect(await recordsOf('close-enough')).toBe(10);
    } finally {
      await skewed.close();
    }
    await expectVerified();
  });

  it('fails an append that waits for the chain lock longer than its bound, and appends again once the lock is free', async () => {
    const database = candor.services.config.database as { url: string };
    const bounded = new PostgresAuditStore({ driver: 'postgres', url: database.url }, candor.services.pseudonymBindingKey, { lockWaitMs: 300 });
    const holder = new Client({ connectionString: database.url });
    await holder.connect();
    try {
      const log = new AccessLog(bounded);
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
      // 55P03: lock_not_available, PostgreSQL's own "canceling statement due to lock timeout".
      await expect(log.append(records('lock-held-too-long', 2))).rejects.toMatchObject({ code: '55P03' });
      await holder.query('COMMIT');
      await log.append(records('lock-free-again', 2));
      expect(await recordsOf('lock-held-too-long')).toBe(0);
      expect(await recordsOf('lock-free-again')).toBe(20);
    } finally {
      await holder.end();
      await bounded.close();
    }
    await expectVerified();
  });

  it('refuses, under the chain lock, a batch that does not follow the head it names (CHAIN_HEAD_MOVED)', async () => {
    const query = (sql: string) => candor.services.dataSource.query(sql);
    const [head] = await query('SELECT id, last_seq, hash, committed_at FROM audit_batch ORDER BY id DESC LIMIT 1');
    const expectHead = (batch: number, lastSeq: number, hash: string, at: string) => query(`SELECT candor_audit_expect_head(${batch}, ${lastSeq}, '${hash}', '${at}')`);
    await expect(expectHead(head.id, head.last_seq, head.hash, head.committed_at)).resolves.toBeDefined();
    await expect(expectHead(head.id, head.last_seq, head.hash, '9999-12-31T00:00:00.000Z')).resolves.toBeDefined();
    for (const [batch, lastSeq, hash, at] of [
      [Number(head.id) - 1, head.last_seq, head.hash, head.committed_at],
      [head.id, Number(head.last_seq) + 1, head.hash, head.committed_at],
      [head.id, head.last_seq, GENESIS_HASH, head.committed_at],
      [head.id, head.last_seq, head.hash, '2000-01-01T00:00:00.000Z'], // committed before its predecessor
      [0, 0, GENESIS_HASH, head.committed_at], // the log is not empty
    ]) {
      await expect(expectHead(batch, lastSeq, hash, at)).rejects.toMatchObject({ driverError: expect.objectContaining({ code: CHAIN_HEAD_MOVED }) });
    }
  });

  it('rejects an append whose sealing fails, and keeps appending', async () => {
    const log = new AccessLog(store);
    // JSON cannot serialise a BigInt: the worker's sealing throws.
    const broken = records('unsealable', 1).map((record, index) => (index === 0 ? { ...record, reason: 1n as unknown as string } : record));
    await expect(log.append(broken)).rejects.toThrow(/^access log sealing failed: .*BigInt/);
    expect(await recordsOf('unsealable')).toBe(0);
    await expect(log.append(records('after-failure', 50))).resolves.toEqual(expect.objectContaining({ batchId: expect.any(Number) }));
    await expectVerified();
  });

  it('rejects, never hangs, the requests whose sealing worker crashed, and starts a new worker for the next', async () => {
    const log = new AccessLog(store);
    const crash = crashSealersOnEachRequest();
    try {
      const results = await Promise.allSettled([log.append(records('crashed-1', 60)), log.append(records('crashed-2', 1))]);
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/access log sealing failed: worker exited/);
    } finally {
      crash.restore();
    }
    // A request sent before a worker's death is known (its exit event) goes down with it; the next one, after, starts a new worker.
    await crash.exited();
    expect((await recordsOf('crashed-1')) + (await recordsOf('crashed-2'))).toBe(0);
    await expect(log.append(records('after-crash', 60))).resolves.toEqual(expect.objectContaining({ batchId: expect.any(Number) }));
    expect(await recordsOf('after-crash')).toBe(600);
    await expectVerified();
  });

  it('answers AUDIT_UNAVAILABLE (503) and no governed data while the sealing workers crash, and recovers', async () => {
    const query = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 3) { id email } }' });
    const crash = crashSealersOnEachRequest();
    try {
      const response = await query();
      expect(response.status).toBe(503);
      expect(response.body.data).toBeUndefined();
      expect(response.body.errors).toEqual([expect.objectContaining({ extensions: { code: 'AUDIT_UNAVAILABLE' } })]);
      expect(JSON.stringify(response.body)).not.toContain('@');
    } finally {
      crash.restore();
    }
    await crash.exited();
    const after = await query();
    expect([after.status, after.body.errors]).toEqual([200, undefined]);
    expect(await recordsOf(after.headers.get('x-request-id')!)).toBe(3);
    await expectVerified();
  });
});
