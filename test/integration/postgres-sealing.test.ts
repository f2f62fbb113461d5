import { AccessLog, type AccessRecordInput, createAuditStore, entriesOf } from '../../src/audit/access-log';
import type { PostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { WorkerClient } from '../../src/audit/worker-client';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
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
function crashSealersOnEachRequest() {
  const request = WorkerClient.prototype.request;
  return jest.spyOn(WorkerClient.prototype, 'request').mockImplementation(function (this: WorkerClient<any, any>, ...args) {
    void this.start().terminate();
    return request.apply(this, args);
  });
}

(DRIVERS.includes('postgres') ? describe : describe.skip)('the PostgreSQL access log, sealed in worker threads', () => {
  let candor: Harness;
  let store: PostgresAuditStore;
  const recordsOf = async (requestId: string) => Number((await candor.services.dataSource.query('SELECT COUNT(*) AS n FROM audit_record WHERE request_id = $1', [requestId]))[0].n);
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
    const other = createAuditStore(candor.services.config.database) as PostgresAuditStore;
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
      crash.mockRestore();
    }
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
      crash.mockRestore();
    }
    const after = await query();
    expect([after.status, after.body.errors]).toEqual([200, undefined]);
    expect(await recordsOf(after.headers.get('x-request-id')!)).toBe(3);
    await expectVerified();
  });
});
