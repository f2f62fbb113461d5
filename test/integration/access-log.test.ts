import { AccessLog } from '../../src/audit/access-log';
import { AuditBatchEntity, AuditEntryEntity, SubjectPseudonymEntity } from '../../src/audit/audit.entities';
import { batchHash, decodeItems, GENESIS_HASH, sealBatch } from '../../src/audit/chain';
import { In, LessThanOrEqual, MoreThanOrEqual } from 'typeorm';
import { writeCheckpoint } from '../../src/audit/checkpoints';
import { verifyAccessLog } from '../../src/audit/verify';
import { AccessLogReader } from '../../src/audit/access-log-reader';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { runCli } from '../support/child-server';
import { forgeLoneRecord, tamper } from '../support/raw-sql';
import { addCustomer } from '../support/subjects';
import { covers } from '../../src/taxonomy/keys';
import { eraseSubject } from '../../src/privacy/erasure';

const A = 'cus_0000_log_a';
const B = 'cus_0000_log_b';

describe.each(DRIVERS)('the access log on %s', (driver) => {
  let candor: Harness;
  const requestIds: Record<string, string> = {};

  const auditor = (query: string, variables?: Record<string, unknown>) => candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query, variables });
  const accessLog = async (filter: Record<string, unknown>, first = 100, after?: string) => {
    const response = await auditor(
      `query Log($filter: AccessLogFilter, $first: Int!, $after: String) { accessLog(filter: $filter, first: $first, after: $after) {
         totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
         edges { cursor node { seq at requestId actor { id name team } purpose operationName subjectId coordinate category decision reason legalBasis consentReceiptId } } } }`,
      { filter, first, after },
    );
    expect(response.body.errors).toBeUndefined();
    return response.body.data!.accessLog;
  };

  beforeAll(async () => {
    candor = await startCandor(driver);
    await addCustomer(candor, A);
    await addCustomer(candor, B);
    const support = await candor.query({ key: KEYS.support, purpose: 'essential.service', operationName: 'Support', query: `query Support { customer(id: "${A}") { email phone } }` });
    requestIds.support = support.headers.get('x-request-id')!;
    const marketing = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', operationName: 'Campaign', query: `query Campaign { a: customer(id: "${A}") { email } b: customer(id: "${B}") { email } }` });
    requestIds.marketing = marketing.headers.get('x-request-id')!;
    const refused = await candor.query({ key: KEYS.support, purpose: 'marketing.communications', query: '{ customers { email } }' });
    requestIds.refused = refused.headers.get('x-request-id')!;
  });
  afterAll(async () => {
    await candor?.stop();
  });

  describe('guarantees', () => {
    it('numbers records gap-free and chains every batch to the previous one', async () => {
      const records: Array<{ seq: number; batch_id: number; digest: string }> = (await candor.services.dataSource.query('SELECT seq, batch_id, digest FROM audit_record ORDER BY seq')).map(
        (row: Record<string, unknown>) => ({ seq: Number(row.seq), batch_id: Number(row.batch_id), digest: String(row.digest) }),
      );
      const batches = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'ASC' } });
      expect(records.map((record) => record.seq)).toEqual(records.map((_, index) => index + 1));
      let previous = GENESIS_HASH;
      for (const batch of batches) {
        const digests = records.filter((record) => record.batch_id === batch.id).map((record) => record.digest);
        expect(batch.prevHash).toBe(previous);
        expect(batch.hash).toBe(batchHash(previous, digests));
        expect(digests).toHaveLength(batch.lastSeq - batch.firstSeq + 1);
        previous = batch.hash;
      }
      expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, records: records.length, firstBrokenSeq: null }));
    });

    it('stores a random pseudonym, never the subject id, and maps it back for auditors', async () => {
      const stored = await candor.services.dataSource.getRepository(AuditEntryEntity).findBy({ requestId: requestIds.marketing });
      expect(stored).toHaveLength(2); // one entry per subject
      const mapping = await candor.services.dataSource.getRepository(SubjectPseudonymEntity).findBy({ subjectId: A });
      expect(mapping).toHaveLength(1);
      expect(mapping[0].pseudonym).toMatch(/^psn_[0-9a-f]{24}$/);
      expect(stored.map((record) => record.subjectPseudonym)).toContain(mapping[0].pseudonym);
      expect(JSON.stringify(stored)).not.toContain(A);
      const view = await accessLog({ requestId: requestIds.marketing });
      expect(view.edges.map((edge: any) => edge.node.subjectId).sort()).toEqual([A, B]);
    });

    it('shares one transaction between requests that arrive while another commits (group commit)', async () => {
      const log = new AccessLog(candor.services.accessLog.store);
      const before = await candor.services.dataSource.getRepository(AuditBatchEntity).count();
      const record = (index: number) => ({ at: new Date(), requestId: `group-${index}`, actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED' as const, reason: 'UNAUTHENTICATED', legalBasis: null });
      const results = await Promise.all(Array.from({ length: 40 }, (_, index) => log.append([record(index)])));
      // The first request commits alone; the 39 that queued meanwhile share the next transaction.
      expect(await candor.services.dataSource.getRepository(AuditBatchEntity).count()).toBe(before + 2);
      expect(new Set(results.map((result) => result?.batchId)).size).toBe(2);
    });

    it('records the refusal when the actor store cannot be read (GOVERNANCE_UNAVAILABLE, 503, nothing runs)', async () => {
      const outage = jest.spyOn(candor.services.actors, 'authenticate').mockRejectedValueOnce(new Error('actor store down'));
      try {
        const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${A}") { email } }` });
        expect([response.status, response.body.data, response.body.errors?.map((error) => error.extensions?.code)]).toEqual([503, undefined, ['GOVERNANCE_UNAVAILABLE']]);
        const page = await accessLog({ requestId: response.headers.get('x-request-id') });
        expect(page.edges.map((edge: any) => [edge.node.decision, edge.node.reason, edge.node.actor.id])).toEqual([['REFUSED', 'GOVERNANCE_UNAVAILABLE', null]]);
      } finally {
        outage.mockRestore();
      }
    });

    it('answers an actor-store outage without waiting on a log that does not answer either (the database is down)', async () => {
      const outage = jest.spyOn(candor.services.actors, 'authenticate').mockRejectedValueOnce(new Error('actor store down'));
      const stalledLog = jest.spyOn(candor.services.accessLog, 'append').mockReturnValueOnce(new Promise(() => undefined));
      try {
        const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${A}") { email } }` });
        expect([response.status, response.body.errors?.map((error) => error.extensions?.code)]).toEqual([503, ['GOVERNANCE_UNAVAILABLE']]);
        expect(stalledLog).toHaveBeenCalledTimes(1);
      } finally {
        outage.mockRestore();
        stalledLog.mockRestore();
      }
    });

    it('a record the store cannot hold fails its own request only, never the batch it would have shared', async () => {
      const log = new AccessLog(candor.services.accessLog.store);
      const record = (requestId: string, operationName: string | null, subjectId: string | null = null) =>
        ({ at: new Date(), requestId, actor: null, purpose: null, operationName, subjectId, coordinate: null, category: null, decision: 'REFUSED' as const, reason: 'UNAUTHENTICATED', legalBasis: null });
      const outcomes = await Promise.allSettled([
        log.append([record('storable-1', 'Fine')]),
        log.append([record('unstorable-nul', 'a\u0000b')]),
        log.append([record('storable-2', null)]),
        log.append([record('unstorable-subject', null, 'x'.repeat(41))]),
        log.append([record('storable-3', 'Fine')]),
        // Hashed as `\ud83d`, stored as U+FFFD: it would never verify again.
        log.append([{ ...record('unstorable-surrogate', null), actor: { id: 'jwt:mallory', name: 'Mallory \ud83d', team: 'Red' } }]),
      ]);
      expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? String(outcome.reason) : outcome.status))).toEqual([
        'fulfilled',
        'UnstorableRecordError: access record not storable: operationName contains a NUL character',
        'fulfilled',
        'UnstorableRecordError: access record not storable: subjectId is longer than 40 characters',
        'fulfilled',
        'UnstorableRecordError: access record not storable: actorName holds a lone UTF-16 surrogate (not text)',
      ]);
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
      const stored = await candor.services.dataSource.getRepository(AuditEntryEntity).findBy([{ requestId: 'storable-1' }, { requestId: 'storable-2' }, { requestId: 'storable-3' }, { requestId: 'unstorable-nul' }]);
      expect(stored.map((entry) => entry.requestId).sort()).toEqual(['storable-1', 'storable-2', 'storable-3']);
    });

    it('records a refused request whose operation name is no GraphQL name without it, and serves its neighbours', async () => {
      const refusedRequest = (operationName: string) =>
        fetch(candor.server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }', operationName }) });
      const [refused, served, badName] = await Promise.all([
        refusedRequest('x\u0000y'),
        candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${A}") { email } }` }),
        refusedRequest('not a name'),
      ]);
      expect([refused.status, badName.status, served.status]).toEqual([401, 401, 200]);
      expect(served.body.data).toEqual({ customer: { email: expect.any(String) } });
      for (const response of [refused, badName]) {
        const page = await accessLog({ requestId: response.headers.get('x-request-id') });
        expect(page.edges.map((edge: any) => [edge.node.decision, edge.node.reason, edge.node.operationName])).toEqual([['REFUSED', 'UNAUTHENTICATED', null]]);
      }
    });

    // SQLite has no such trigger: verification catches tampering there (the tamper-evidence tests below).
    if (driver === 'postgres')
      it('refuses UPDATE and DELETE on the log outside a prune (PostgreSQL trigger)', async () => {
        await expect(candor.services.dataSource.query("UPDATE audit_entry SET items = '[]' WHERE seq = 1")).rejects.toThrow(/append-only/);
        await expect(candor.services.dataSource.query('DELETE FROM audit_batch WHERE id = 1')).rejects.toThrow(/append-only/);
        await expect(candor.services.dataSource.query('TRUNCATE audit_entry')).rejects.toThrow(/append-only/);
      });
  });

  describe('tamper evidence', () => {
    it.each([
      ['one byte of one record changed', 'digest mismatch'],
      ['one record deleted', 'missing sequence number'],
      ['two records reordered', 'digest mismatch'],
    ])('detects %s at the right sequence number', async (kind, problem) => {
      // The marketing request stored one single-record entry per subject, at consecutive sequence numbers.
      const [target, next] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.marketing }, order: { seq: 'ASC' } });
      const seq = target.seq;
      expect([target.count, next.count, next.seq]).toEqual([1, 1, seq + 1]);
      if (kind.startsWith('one byte')) await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items.replace('Customer.email', 'Customer.emaiL'), seq]]]);
      else if (kind.startsWith('one record')) await tamper(candor, [['DELETE FROM audit_entry WHERE seq = ?', [seq]]]);
      else
        await tamper(candor, [
          ['UPDATE audit_entry SET seq = ? WHERE seq = ?', [-1, seq]],
          ['UPDATE audit_entry SET seq = ? WHERE seq = ?', [seq, seq + 1]],
          ['UPDATE audit_entry SET seq = ? WHERE seq = ?', [seq + 1, -1]],
        ]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: seq }));
        expect(report.problem).toContain(problem);
        expect(report.problem).toMatch(/expected .+ found/);
      } finally {
        await tamper(candor, [['DELETE FROM audit_entry WHERE seq IN (?, ?, ?)', [seq, seq + 1, -1]]]);
        await candor.services.dataSource.getRepository(AuditEntryEntity).insert([target, next]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('reports an entry emptied of its records (it does not read it forever) and quotes what it found inert', async () => {
      const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.marketing }, order: { seq: 'ASC' }, take: 1 });
      await tamper(candor, [['UPDATE audit_entry SET count = 0, items = ?, digests = ? WHERE seq = ?', ['[]', '[]', target.seq]]]);
      try {
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: target.seq, problem: `record ${target.seq}: entry holds 0 records, expected at least 1` }));
        // A forged digest that would print a "verified" line over the break on a terminal.
        const forged = `["\\u001b[2K\\u001b[1Gverified 46 records\\u001b[8m"]`;
        await tamper(candor, [['UPDATE audit_entry SET count = ?, items = ?, digests = ? WHERE seq = ?', [target.count, target.items, forged, target.seq]]]);
        const report = await candor.services.verifyAccessLog();
        expect([report.firstBrokenSeq, report.problem]).toEqual([target.seq, expect.stringContaining('found \uFFFD[2K\uFFFD[1Gverified 46 records\uFFFD[8m)')]);
      } finally {
        await tamper(candor, [['UPDATE audit_entry SET count = ?, items = ?, digests = ? WHERE seq = ?', [target.count, target.items, target.digests, target.seq]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects an element no digest covers added to a stored record (a released field shown with a masking strategy)', async () => {
      const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.support }, order: { seq: 'ASC' }, take: 1 });
      expect(target.items).toMatch(/"RELEASED"[^\]]*\]\]$/);
      await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items.replace(/\]\]$/, ',"partial_email"]]'), target.seq]]]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: target.seq }));
        expect(report.problem).toContain('items not stored as sealed');
      } finally {
        await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items, target.seq]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('a batch whose commit time was moved earlier takes no later batch with it into a prune; moved without its entries, it is a break and prune refuses', async () => {
      for (let request = 0; request < 2; request++) await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${A}") { email } }` });
      const batches = candor.services.dataSource.getRepository(AuditBatchEntity);
      const [first] = await batches.find({ order: { id: 'ASC' }, take: 1 });
      const [head, target] = await batches.find({ order: { id: 'DESC' }, take: 2 });
      // Every batch there was still there (each prune run adds its own record's batch after them).
      const count = () => batches.countBy({ id: LessThanOrEqual(head.id) });
      const before = await count();
      // Before every other batch, in the same month (its partition on PostgreSQL); a prune before the first
      // batch's time may then remove nothing: a prefix of the chain, not every batch older than the date.
      const moved = new Date(Date.parse(first.committedAt) - 1).toISOString();
      const prune = () => runCli(['audit', 'prune', '--before', first.committedAt], { DATABASE_URL: candor.database.url });
      const restore = [['UPDATE audit_batch SET committed_at = ? WHERE id = ?', [target.committedAt, target.id]], ['UPDATE audit_entry SET committed_at = ? WHERE batch_id = ?', [target.committedAt, target.id]]] as Array<[string, unknown[]]>;
      await tamper(candor, [
        ['UPDATE audit_batch SET committed_at = ? WHERE id = ?', [moved, target.id]],
        ['UPDATE audit_entry SET committed_at = ? WHERE batch_id = ?', [moved, target.id]],
      ]);
      try {
        expect((await candor.services.verifyAccessLog()).verified).toBe(true); // commit times are not hashed
        const pruned = await prune();
        expect([pruned.code, pruned.stdout]).toEqual([0, 'nothing to prune: no batch comes before the first one committed at or after that date (the newest batch is always kept)\n']);
        expect(await count()).toBe(before);
        // The batch alone moved: its entries no longer carry its time — a break, and prune does nothing.
        await tamper(candor, [['UPDATE audit_entry SET committed_at = ? WHERE batch_id = ?', [target.committedAt, target.id]]]);
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: target.firstSeq }));
        expect(report.problem).toContain(`expected its batch's ${moved}`);
        const refused = await prune();
        expect([refused.code, refused.stdout]).toEqual([1, '']);
        expect(refused.stderr).toContain(`nothing pruned: the access log is broken at seq ${target.firstSeq}`);
        expect(await count()).toBe(before);
        expect(head.id).toBeGreaterThan(target.id);
      } finally {
        await tamper(candor, restore);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects records removed from the end of the log after a signed checkpoint covered them', async () => {
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${A}") { email } }` });
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      const batches = candor.services.dataSource.getRepository(AuditBatchEntity);
      const entries = candor.services.dataSource.getRepository(AuditEntryEntity);
      const [head] = await batches.find({ order: { id: 'DESC' }, take: 1 });
      const removed = await entries.find({ where: { batchId: head.id } });
      await tamper(candor, [
        ['DELETE FROM audit_entry WHERE batch_id = ?', [head.id]],
        ['DELETE FROM audit_batch WHERE id = ?', [head.id]],
      ]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: head.firstSeq }));
        expect(report.problem).toBe(`missing sequence number ${head.firstSeq} (expected the log to reach ${checkpoint.seq}, as signed checkpoint ${checkpoint.id} says; found its end at ${head.firstSeq - 1})`);
      } finally {
        await batches.insert(head);
        await entries.insert(removed);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('reports the first missing record, not a later one left behind, when the tail a checkpoint covered was cut unevenly', async () => {
      // One request about two subjects: one batch of two entries.
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ a: customer(id: "${A}") { email } b: customer(id: "${B}") { email } }` });
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      const batches = candor.services.dataSource.getRepository(AuditBatchEntity);
      const entries = candor.services.dataSource.getRepository(AuditEntryEntity);
      const [head] = await batches.find({ order: { id: 'DESC' }, take: 1 });
      const [first, kept] = await entries.find({ where: { batchId: head.id }, order: { seq: 'ASC' } });
      expect([first.seq, kept?.seq > first.seq, checkpoint.seq]).toEqual([head.firstSeq, true, head.lastSeq]);
      // The batch and its first entry gone, its second left without a batch.
      await tamper(candor, [
        ['DELETE FROM audit_entry WHERE seq = ?', [first.seq]],
        ['DELETE FROM audit_batch WHERE id = ?', [head.id]],
      ]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: head.firstSeq }));
        expect(report.problem).toContain(`missing sequence number ${head.firstSeq}`);
      } finally {
        await batches.insert(head);
        await entries.insert(first);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects an entry planted inside another, wherever the read pages end', async () => {
      const entries = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ order: { seq: 'ASC' } });
      const host = entries.find((entry) => entry.count >= 2)!;
      const planted = { ...host, seq: host.seq + 1, count: 1, items: JSON.stringify(JSON.parse(host.items).slice(0, 1)), digests: JSON.stringify(JSON.parse(host.digests).slice(0, 1)) };
      await candor.services.dataSource.getRepository(AuditEntryEntity).insert(planted)
      try {
        for (const pageSize of [1, 1_000]) {
          const report = await verifyAccessLog(candor.services.dataSource, candor.services.checkpointSigner, candor.services.pseudonymBindingKey, { pageSize });
          expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: host.seq + 1 }));
          expect(report.problem).toBe(`record ${host.seq + 1}: stored twice (expected the next entry to start at ${host.seq + host.count}, found one starting at ${host.seq + 1})`);
        }
      } finally {
        await tamper(candor, [['DELETE FROM audit_entry WHERE seq = ? AND count = 1', [host.seq + 1]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    // PostgreSQL indexes entries' sequence numbers without a unique constraint; SQLite's primary key refuses the copy.
    if (driver === 'postgres')
      it('detects an entry stored twice, wherever the read pages end', async () => {
        const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.marketing }, order: { seq: 'ASC' } });
        await tamper(candor, [['INSERT INTO audit_entry SELECT * FROM audit_entry WHERE seq = ?', [target.seq]]]);
        try {
          for (const pageSize of [1, 1_000]) {
            const report = await verifyAccessLog(candor.services.dataSource, candor.services.checkpointSigner, candor.services.pseudonymBindingKey, { pageSize });
            expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: target.seq }));
            expect(report.problem).toBe(`record ${target.seq}: stored twice (expected the next entry to start at ${target.seq + target.count}, found one starting at ${target.seq})`);
          }
        } finally {
          await tamper(candor, [['DELETE FROM audit_entry WHERE seq = ?', [target.seq]]]);
          await candor.services.dataSource.getRepository(AuditEntryEntity).insert(target);
        }
        expect((await candor.services.verifyAccessLog()).verified).toBe(true);
      });

    if (driver === 'postgres')
      it('detects an entry of no records planted at a genuine entry\'s sequence number (its items would be served)', async () => {
        const [genuine] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.marketing }, order: { seq: 'ASC' }, take: 1 });
        const forgedItems = JSON.stringify([['Customer.email', 'user.contact.email', 'RELEASED', 'CONSENT_GIVEN', 'consent', null]]);
        await tamper(candor, [
          [
            `INSERT INTO audit_entry (seq, count, batch_id, at, request_id, actor_id, actor_name, actor_team, purpose, operation_name, subject_pseudonym, items, digests, committed_at)
             VALUES (?, 0, ?, ?, 'forged', 'mallory', 'Mallory', 'Evil', ?, 'Forged', ?, ?, '[]', ?)`,
            [genuine.seq, genuine.batchId, genuine.at, genuine.purpose, genuine.subjectPseudonym, forgedItems, genuine.committedAt],
          ],
        ]);
        try {
          for (const pageSize of [1, 1_000]) {
            const report = await verifyAccessLog(candor.services.dataSource, candor.services.checkpointSigner, candor.services.pseudonymBindingKey, { pageSize });
            expect([report.verified, report.firstBrokenSeq, report.problem]).toEqual([false, genuine.seq, `record ${genuine.seq}: entry holds 0 records, expected at least 1`]);
          }
        } finally {
          await tamper(candor, [["DELETE FROM audit_entry WHERE request_id = 'forged'", []]]);
        }
        expect((await candor.services.verifyAccessLog()).verified).toBe(true);
      });

    /** Appends one record as its own batch (each append is awaited, so no other record shares its batch). */
    const appendAlone = (requestId: string, subjectId: string | null = null, reason = 'UNAUTHENTICATED') =>
      candor.services.accessLog.append([{ at: new Date(), requestId, actor: null, purpose: null, operationName: null, subjectId, coordinate: null, category: null, decision: 'REFUSED', reason, legalBasis: null }]);
    const batchesFrom = (firstId: number) => candor.services.dataSource.getRepository(AuditBatchEntity).find({ where: { id: MoreThanOrEqual(firstId) }, order: { id: 'ASC' } });
    const entriesOfBatches = (ids: number[]) => candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { batchId: In(ids) }, order: { seq: 'ASC' } });

    it('detects batches rewritten and merged around a signed checkpoint', async () => {
      for (const name of ['merged-1', 'merged-2']) await appendAlone(name);
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      await appendAlone('merged-3');
      const checkpointed = await candor.services.dataSource.getRepository(AuditBatchEntity).findOneByOrFail({ lastSeq: checkpoint.seq });
      const originals = await batchesFrom(checkpointed.id - 1);
      expect(originals.map((batch) => batch.lastSeq - batch.firstSeq)).toEqual([0, 0, 0]);
      const originalEntries = await entriesOfBatches(originals.map((batch) => batch.id));
      // Sealed again as one batch, with a record rewritten, chained to the batch before: a consistent chain
      // whose batch ends no longer include the checkpoint's sequence number.
      const [first] = originals;
      const forged = sealBatch(
        { batchId: first.id - 1, lastSeq: first.firstSeq - 1, hash: first.prevHash },
        originalEntries.map((entry, index) => ({ ...entry, items: decodeItems(entry.items).map((item) => (index === 0 ? { ...item, reason: 'BAD_REQUEST' } : item)) })),
        first.committedAt,
      );
      const storeForged = async () => {
        await candor.services.dataSource.getRepository(AuditBatchEntity).insert({ id: forged.id, firstSeq: forged.firstSeq, lastSeq: forged.lastSeq, prevHash: forged.prevHash, hash: forged.hash, committedAt: forged.committedAt });
        await candor.services.dataSource.getRepository(AuditEntryEntity).insert(
          forged.entries.map((entry) => ({ ...entry, count: entry.items.length, batchId: forged.id, items: entry.itemsJson, digests: JSON.stringify(entry.digests), committedAt: forged.committedAt })),
        );
      };
      const removeBatches = (ids: number[]) => tamper(candor, [[`DELETE FROM audit_entry WHERE batch_id IN (${ids.join(',')})`, []], [`DELETE FROM audit_batch WHERE id IN (${ids.join(',')})`, []]]);
      await removeBatches(originals.map((batch) => batch.id));
      await storeForged();
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: checkpoint.seq }));
        expect(report.problem).toBe(
          `checkpoint ${checkpoint.id}: seq ${checkpoint.seq} is inside batch ${forged.id} (${forged.firstSeq}–${forged.lastSeq}), but checkpoints are taken at a batch's end: the batches were rewritten`,
        );
      } finally {
        await removeBatches([forged.id]);
        await candor.services.dataSource.getRepository(AuditBatchEntity).insert(originals);
        await candor.services.dataSource.getRepository(AuditEntryEntity).insert(originalEntries);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects a batch whose last sequence number was lowered under its records', async () => {
      // Four records of one request about one subject: one entry, one batch of its own (what earlier tests
      // recorded after their answers is committed first, so it shares no batch with them).
      await candor.services.accessLog.drain();
      // One time for all four: records whose times differ (a millisecond ticked between them) are two entries.
      const at = new Date();
      await candor.services.accessLog.append(
        ['Customer.email', 'Customer.phone', 'Customer.fullName', 'Customer.country'].map((coordinate) => ({
          at,
          requestId: 'shrunk',
          actor: null,
          purpose: 'essential.service',
          operationName: null,
          subjectId: A,
          coordinate,
          category: 'user',
          decision: 'RELEASED' as const,
          reason: 'LEGAL_BASIS',
          legalBasis: 'contract',
        })),
      );
      const [entry] = await candor.services.dataSource.getRepository(AuditEntryEntity).findBy({ requestId: 'shrunk' });
      const [batch] = await batchesFrom(entry.batchId);
      expect([batch.firstSeq, batch.lastSeq - batch.firstSeq]).toEqual([entry.seq, 3]);
      await tamper(candor, [['UPDATE audit_batch SET last_seq = ? WHERE id = ?', [batch.firstSeq + 1, batch.id]]]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: batch.firstSeq + 2 }));
        expect(report.problem).toBe(`batch ${batch.id}: its records run to ${batch.lastSeq}, past its last sequence number ${batch.firstSeq + 1}`);
      } finally {
        await tamper(candor, [['UPDATE audit_batch SET last_seq = ? WHERE id = ?', [batch.lastSeq, batch.id]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects an entry below the verified range, which no batch holds', async () => {
      const [host] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ order: { seq: 'ASC' }, take: 1 });
      await candor.services.dataSource.getRepository(AuditEntryEntity).insert({ ...host, seq: 0 });
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: 0, problem: 'record 0 is not covered by any batch' }));
      } finally {
        await tamper(candor, [['DELETE FROM audit_entry WHERE seq = ?', [0]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('verifying from a sequence number whose batch was deleted reports that number missing', async () => {
      for (const name of ['from-1', 'from-2', 'from-3']) await appendAlone(name);
      const [, middle] = await batchesFrom((await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 3 }))[2].id);
      const [removed] = await entriesOfBatches([middle.id]);
      await tamper(candor, [['DELETE FROM audit_entry WHERE batch_id = ?', [middle.id]], ['DELETE FROM audit_batch WHERE id = ?', [middle.id]]]);
      try {
        const report = await candor.services.verifyAccessLog({ fromSeq: middle.firstSeq });
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: middle.firstSeq }));
        expect(report.problem).toBe(`missing sequence number ${middle.firstSeq} (expected ${middle.firstSeq}, found batch ${middle.id + 1} starting at ${middle.firstSeq + 1})`);
      } finally {
        await candor.services.dataSource.getRepository(AuditBatchEntity).insert(middle);
        await candor.services.dataSource.getRepository(AuditEntryEntity).insert(removed);
      }
      expect((await candor.services.verifyAccessLog({ fromSeq: middle.firstSeq })).verified).toBe(true);
    });

    it('a verify running while batches commit reports no break (it verifies up to the head it read first)', async () => {
      // A batch commits right when verify looks for entries no batch holds: the moment a live log raced it.
      const query = candor.services.dataSource.query.bind(candor.services.dataSource);
      const spy = jest.spyOn(candor.services.dataSource, 'query').mockImplementation(async (sql, parameters) => {
        if (sql.includes('NOT EXISTS (SELECT 1 FROM audit_batch')) await appendAlone(`live-${Date.now()}`);
        return query(sql, parameters);
      });
      try {
        const headBefore = (await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 }))[0];
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: true, headSeq: headBefore.lastSeq }));
        expect((await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 }))[0].id).toBe(headBefore.id + 1);
      } finally {
        spy.mockRestore();
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects a rewritten chain through the signed checkpoint', async () => {
      await candor.services.accessLog.append([{ at: new Date(), requestId: 'checkpointed', actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      // An attacker with database access rewrites the record and recomputes its digest and the batch hash: the
      // chain is consistent again, and only the signed checkpoint still knows the head it had.
      const { batch, entry, forgedHash, forgery } = await forgeLoneRecord(candor, checkpoint.seq);
      expect([entry.seq, entry.count, batch.firstSeq]).toEqual([checkpoint.seq, 1, checkpoint.seq]);
      await tamper(candor, forgery);
      try {
        const report = await candor.services.verifyAccessLog();
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: checkpoint.seq }));
        expect(report.problem).toBe(`checkpoint ${checkpoint.id}: head hash at seq ${checkpoint.seq} is ${forgedHash}, the signed checkpoint says ${checkpoint.headHash}`);
        // Nor can the attacker move the checkpoint along: they do not hold the signing key.
        await tamper(candor, [['UPDATE audit_checkpoint SET head_hash = ? WHERE id = ?', [forgedHash, checkpoint.id]]]);
        expect((await candor.services.verifyAccessLog()).problem).toContain('signature does not verify');
      } finally {
        await tamper(candor, [
          ['UPDATE audit_entry SET items = ?, digests = ? WHERE seq = ?', [entry.items, entry.digests, entry.seq]],
          ['UPDATE audit_batch SET hash = ? WHERE id = ?', [batch.hash, batch.id]],
          ['UPDATE audit_checkpoint SET head_hash = ? WHERE id = ?', [checkpoint.headHash, checkpoint.id]],
        ]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('reports an altered record before a later checkpoint whose signature was broken too (the lowest break, not the checkpoint)', async () => {
      await candor.services.accessLog.append([{ at: new Date(), requestId: 'checkpointed-later', actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { requestId: requestIds.marketing }, order: { seq: 'ASC' }, take: 1 });
      expect(target.seq).toBeLessThan(checkpoint.seq);
      await tamper(candor, [
        ['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items.replace('Customer.email', 'Customer.emaiL'), target.seq]],
        ['UPDATE audit_checkpoint SET at = ? WHERE id = ?', ['2001-01-01T00:00:00.000Z', checkpoint.id]],
      ]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect([report.verified, report.firstBrokenSeq, report.problem]).toEqual([false, target.seq, expect.stringContaining('digest mismatch')]);
        // The record put back, the checkpoint's broken signature is the break.
        await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items, target.seq]]]);
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: checkpoint.seq, problem: expect.stringContaining('signature does not verify') }));
      } finally {
        await tamper(candor, [
          ['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items, target.seq]],
          ['UPDATE audit_checkpoint SET at = ? WHERE id = ?', [checkpoint.at, checkpoint.id]],
        ]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it('detects a checkpoint whose key id was altered (no signature covers it; prune, rotate and export read it)', async () => {
      const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
      await tamper(candor, [['UPDATE audit_checkpoint SET key_id = ? WHERE id = ?', ['deadbeefdeadbeef', checkpoint.id]]]);
      try {
        const report = await candor.services.verifyAccessLog();
        expect([report.verified, report.firstBrokenSeq, report.problem]).toEqual([
          false,
          checkpoint.seq,
          `checkpoint ${checkpoint.id} (seq ${checkpoint.seq}) names key deadbeefdeadbeef, but is signed with key ${candor.services.checkpointSigner.keyId}: its key id was altered`,
        ]);
      } finally {
        await tamper(candor, [['UPDATE audit_checkpoint SET key_id = ? WHERE id = ?', [checkpoint.keyId, checkpoint.id]]]);
      }
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });
  });

  describe('query API', () => {
    it.each([
      ['subjectId', () => ({ subjectId: B }), (node: any) => node.subjectId === B],
      ['actorId', () => ({ actorId: 'support-desk' }), (node: any) => node.actor.id === 'support-desk'],
      ['team', () => ({ team: 'Marketing' }), (node: any) => node.actor.team === 'Marketing'],
      ['purpose', () => ({ purpose: 'essential.service' }), (node: any) => node.purpose === 'essential.service'],
      ['coordinate', () => ({ coordinate: 'Customer.phone' }), (node: any) => node.coordinate === 'Customer.phone'],
      ['category', () => ({ category: 'user.contact.email' }), (node: any) => node.category === 'user.contact.email'],
      ['decision', () => ({ decision: 'REFUSED' }), (node: any) => node.decision === 'REFUSED'],
      ['reason', () => ({ reason: 'CONSENT_REQUIRED' }), (node: any) => node.reason === 'CONSENT_REQUIRED'],
      ['requestId', () => ({ requestId: requestIds.support }), (node: any) => node.requestId === requestIds.support],
    ])('filters by %s', async (_name, filter, matches) => {
      const page = await accessLog(filter());
      expect(page.edges.length).toBeGreaterThan(0);
      expect(page.edges.every((edge: any) => matches(edge.node))).toBe(true);
      expect(page.totalCount).toBe(page.edges.length);
    });

    it('filters by time: from inclusive, to exclusive', async () => {
      // The marketing request came after the support request: its time splits the log in two.
      const pivot = (await accessLog({ requestId: requestIds.marketing })).edges[0].node.at;
      const to = await accessLog({ to: pivot }, 500);
      const from = await accessLog({ from: pivot }, 500); // as of its start: the read of `to` is in it
      expect(from.edges.every((edge: any) => edge.node.at >= pivot)).toBe(true);
      expect(to.edges.every((edge: any) => edge.node.at < pivot)).toBe(true);
      expect(from.edges.map((edge: any) => edge.node.requestId)).toContain(requestIds.marketing);
      expect(to.edges.map((edge: any) => edge.node.requestId)).toContain(requestIds.support);
      // Together they hold every record once.
      const seqs = [...to.edges, ...from.edges].map((edge: any) => edge.node.seq).sort((a: number, b: number) => a - b);
      expect([to.pageInfo.hasNextPage, from.pageInfo.hasNextPage]).toEqual([false, false]);
      expect(seqs).toEqual(seqs.map((_: number, index: number) => index + 1));
      expect((await accessLog({ to: '2000-01-01T00:00:00Z' })).totalCount).toBe(0);
      expect((await accessLog({ from: '2999-01-01' })).totalCount).toBe(0);
    });

    it('refuses a filter value holding a NUL character as BAD_USER_INPUT on every store (PostgreSQL text cannot hold one)', async () => {
      for (const field of ['subjectId', 'requestId', 'team', 'coordinate', 'purpose']) {
        const response = await auditor('query Log($filter: AccessLogFilter) { accessLog(filter: $filter) { totalCount } }', { filter: { [field]: 'a\u0000b' } });
        expect(response.body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([['BAD_USER_INPUT', `filter.${field} holds a NUL character, which no recorded value does`]]);
      }
    });

    it('returns each record with its full context and never a value', async () => {
      const page = await accessLog({ requestId: requestIds.support });
      expect(page.edges.map((edge: any) => edge.node)).toEqual([
        expect.objectContaining({ requestId: requestIds.support, actor: { id: 'support-desk', name: 'Support Desk', team: 'Customer Support' }, purpose: 'essential.service', operationName: 'Support', subjectId: A, coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract', consentReceiptId: null }),
        expect.objectContaining({ coordinate: 'Customer.phone', category: 'user.contact.phone_number', decision: 'RELEASED' }),
      ]);
      expect(JSON.stringify(page)).not.toContain('secret.example');
      const refused = await accessLog({ requestId: requestIds.refused });
      expect(refused.edges.map((edge: any) => edge.node)).toEqual([expect.objectContaining({ decision: 'REFUSED', reason: 'PURPOSE_NOT_PERMITTED', subjectId: null, coordinate: null })]);
    });

    it('paginates with cursors over a snapshot taken when the first page was read', async () => {
      const first = await accessLog({}, 3);
      expect(first.edges).toHaveLength(3);
      expect(first.pageInfo.hasNextPage).toBe(true);
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${B}") { email } }` }); // newer records
      const seen = [...first.edges];
      let page = first;
      while (page.pageInfo.hasNextPage) {
        page = await accessLog({}, 3, page.pageInfo.endCursor);
        expect(page.totalCount).toBe(first.totalCount);
        seen.push(...page.edges);
      }
      expect(seen).toHaveLength(first.totalCount);
      const seqs = seen.map((edge: any) => edge.node.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
    });

    it('pages a filter on the records themselves the same way', async () => {
      const seen: any[] = [];
      let page = await accessLog({ decision: 'RELEASED' }, 2);
      const totalCount = page.totalCount;
      for (;;) {
        seen.push(...page.edges);
        expect(page.totalCount).toBe(totalCount);
        if (!page.pageInfo.hasNextPage) break;
        page = await accessLog({ decision: 'RELEASED' }, 2, page.pageInfo.endCursor);
      }
      expect(seen).toHaveLength(totalCount);
      expect(new Set(seen.map((edge) => edge.node.decision))).toEqual(new Set(['RELEASED']));
      const seqs = seen.map((edge) => edge.node.seq);
      expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
      // A cursor's count serves the filter it was counted for: under another filter the count is made again.
      const unfiltered = await accessLog({}, 2, seen[1].cursor);
      expect(unfiltered.totalCount).toBeGreaterThan(totalCount);
    });

    describe('cursors', () => {
      const logQuery = 'query Log($filter: AccessLogFilter, $first: Int!, $after: String) { accessLog(filter: $filter, first: $first, after: $after) { totalCount edges { node { seq } } } }';
      const payloadOf = (cursor: string) => JSON.parse(Buffer.from(cursor.split('.')[0], 'base64url').toString('utf8'));
      const expectRefused = async (after: string) => {
        const response = await auditor(logQuery, { filter: { decision: 'RELEASED' }, first: 2, after });
        expect(response.body.data).toEqual({ accessLog: null });
        expect(response.body.errors?.map((error) => [error.extensions?.code, error.extensions?.argument, error.message])).toEqual([['BAD_USER_INPUT', 'after', '`after` is not a cursor returned by accessLog']]);
        // Nothing was read: the log says the read was refused, not that it happened.
        const own = await accessLog({ requestId: response.headers.get('x-request-id') });
        expect(own.edges.map((edge: any) => [edge.node.coordinate, edge.node.decision, edge.node.reason, edge.node.subjectId])).toEqual([['Query.accessLog', 'REFUSED', 'BAD_USER_INPUT', null]]);
      };

      it('refuses an empty cursor', async () => {
        await expectRefused('');
      });

      it('still pages with a genuine cursor', async () => {
        const first = await accessLog({ decision: 'RELEASED' }, 2);
        const next = await accessLog({ decision: 'RELEASED' }, 2, first.pageInfo.endCursor);
        expect(next.totalCount).toBe(first.totalCount);
        expect(next.edges[0].node.seq).toBeGreaterThan(first.edges[1].node.seq);
      });

      it.each([
        // [seq, asOf, entrySeq, totalCount, countedFilter]: the count every later page reports, and the head it reads to.
        ['totalCount', (payload: any[]) => [payload[0], payload[1], payload[2], payload[3] + 1_000_000, payload[4]]],
        ['asOf', (payload: any[]) => [payload[0], payload[1] + 1_000, payload[2], payload[3], payload[4]]],
      ])('refuses a cursor whose %s was altered, with its tag or without (BAD_USER_INPUT, no data)', async (_field, alter) => {
        const { cursor } = (await accessLog({ decision: 'RELEASED' }, 2)).edges[1];
        const forged = Buffer.from(JSON.stringify(alter(payloadOf(cursor)))).toString('base64url');
        await expectRefused(`${forged}.${cursor.split('.')[1]}`);
        await expectRefused(forged); // the unsigned format cursors had before they were authenticated
      });

      it('refuses a cursor made under another CANDOR_SECRET, and one with a part added', async () => {
        const elsewhere = new AccessLogReader(candor.services.dataSource, 'another-candor-secret-of-this-test', candor.services.domain.subjectStatus, candor.services.taxonomy);
        // Refusals name no subject: under another secret, no subject's mapping holds (it refuses to attribute them).
        const { edges } = await elsewhere.page({ decision: 'REFUSED' }, 2);
        await expectRefused(edges[1].cursor);
        const { cursor } = (await accessLog({ decision: 'RELEASED' }, 2)).edges[1];
        await expectRefused(`${cursor}.${cursor.split('.')[1]}`);
      });
    });

    it('answers the Relay page info: startCursor the first edge\'s, hasPreviousPage false (forward only)', async () => {
      const first = await accessLog({}, 3);
      expect(first.pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: first.edges[0].cursor, endCursor: first.edges[2].cursor });
      const next = await accessLog({}, 3, first.pageInfo.endCursor);
      expect(next.pageInfo).toEqual(expect.objectContaining({ hasPreviousPage: false, startCursor: next.edges[0].cursor }));
      const none = await accessLog({ requestId: 'no-such-request' }, 3);
      expect(none.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null });
    });

    it('answers first: 0 with no edges, the count, and whether records follow the cursor', async () => {
      const all = await accessLog({ requestId: requestIds.support }, 10);
      expect(all.edges).toHaveLength(2);
      const counted = await accessLog({ requestId: requestIds.support }, 0);
      expect(counted).toEqual({ totalCount: 2, pageInfo: { hasNextPage: true, hasPreviousPage: false, startCursor: null, endCursor: null }, edges: [] });
      expect((await accessLog({ requestId: requestIds.support }, 0, all.edges[0].cursor)).pageInfo.hasNextPage).toBe(true);
      expect(await accessLog({ requestId: requestIds.support }, 0, all.edges[1].cursor)).toEqual(expect.objectContaining({ totalCount: 2, pageInfo: expect.objectContaining({ hasNextPage: false }), edges: [] }));
      expect((await accessLog({ requestId: 'no-such-request' }, 0)).pageInfo.hasNextPage).toBe(false);
    });

    describe('afterSeq', () => {
      const seqsOf = (page: any) => page.edges.map((edge: any) => edge.node.seq);
      const nodesAfter = (page: any, afterSeq: number) => page.edges.map((edge: any) => edge.node).filter((node: any) => node.seq > afterSeq);
      /** The support request's first record: its entry holds two (email, phone), so the bound falls inside an entry. */
      const insideAnEntry = async () => {
        const [email, phone] = (await accessLog({ requestId: requestIds.support })).edges.map((edge: any) => edge.node.seq);
        const entry = await candor.services.dataSource.getRepository(AuditEntryEntity).findOneByOrFail({ seq: email });
        expect([entry.count, phone]).toEqual([2, email + 1]);
        return email;
      };

      it('returns exactly the records after it, and counts them, also from inside an entry', async () => {
        const afterSeq = await insideAnEntry();
        const before = await accessLog({}, 500);
        const after = await accessLog({ afterSeq }, 500);
        // Gap-free from afterSeq + 1 to the head of its own snapshot (which holds the read of `before` too).
        expect(seqsOf(after)).toEqual(seqsOf(after).map((_: number, index: number) => afterSeq + 1 + index));
        const readBefore = nodesAfter(before, afterSeq);
        expect(after.edges.map((edge: any) => edge.node).slice(0, readBefore.length)).toEqual(readBefore);
        expect([after.totalCount, after.pageInfo.hasNextPage]).toEqual([after.edges.length, false]);
        expect(await accessLog({ afterSeq: 1_000_000_000_000 })).toEqual(expect.objectContaining({ totalCount: 0, edges: [] }));
        expect((await accessLog({ afterSeq: 0 }, 500)).edges[0].node.seq).toBe(1);
      });

      it.each([
        ['a filter on the entries (actor)', () => ({ actorId: 'support-desk' })],
        ['a filter on the records (coordinate)', () => ({ coordinate: 'Customer.email' })],
        ['a request', () => ({ requestId: requestIds.support })],
      ])('combines with %s, in the records and in the count', async (_name, filter) => {
        const afterSeq = await insideAnEntry();
        const all = await accessLog(filter(), 500);
        const after = await accessLog({ ...filter(), afterSeq }, 500);
        const expected = nodesAfter(all, afterSeq);
        expect(expected.length).toBeGreaterThan(0);
        expect(expected.length).toBeLessThan(all.edges.length);
        expect(after.edges.map((edge: any) => edge.node)).toEqual(expected);
        expect(after.totalCount).toBe(expected.length);
      });

      it('pages, each page counting the same records after it', async () => {
        const afterSeq = await insideAnEntry();
        const seen: any[] = [];
        let page = await accessLog({ afterSeq }, 2);
        const { totalCount } = page;
        for (;;) {
          seen.push(...page.edges);
          expect(page.totalCount).toBe(totalCount);
          if (!page.pageInfo.hasNextPage) break;
          page = await accessLog({ afterSeq }, 2, page.pageInfo.endCursor);
        }
        expect(seen.map((edge) => edge.node.seq)).toEqual(Array.from({ length: totalCount }, (_, index) => afterSeq + 1 + index));
        // A cursor behind afterSeq (read without it) resumes from afterSeq.
        const behind = (await accessLog({}, 1)).pageInfo.endCursor;
        expect(seqsOf(await accessLog({ afterSeq }, 2, behind))).toEqual([afterSeq + 1, afterSeq + 2]);
      });

      it('resumes from afterSeq, not from a cursor read strictly behind it', async () => {
        const afterSeq = (await insideAnEntry()) + 1;
        const behind = (await accessLog({}, 1)).edges[0];
        expect(behind.node.seq).toBeLessThan(afterSeq);
        const resumed = await accessLog({ afterSeq }, 2, behind.cursor);
        expect(seqsOf(resumed)).toEqual([afterSeq + 1, afterSeq + 2]);
      });

      it.each([
        ['negative', -1],
        ['not a whole number', 1.5],
      ])('refuses an afterSeq that is %s as BAD_USER_INPUT', async (_case, afterSeq) => {
        const response = await auditor('query Log($filter: AccessLogFilter) { accessLog(filter: $filter) { totalCount } }', { filter: { afterSeq } });
        // A variable that is no integer is refused before execution (no data), a negative one by the field (null).
        expect(response.body.data?.accessLog ?? null).toBeNull();
        expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
        await expect(candor.services.accessLogReader.page({ afterSeq })).rejects.toMatchObject({ message: 'filter.afterSeq must be a non-negative integer', extensions: { code: 'BAD_USER_INPUT', argument: 'filter.afterSeq' } });
      });
    });

    it('records every read of the log', async () => {
      const response = await auditor('query ReadLog { accessLog(first: 1) { totalCount } }');
      const own = await accessLog({ requestId: response.headers.get('x-request-id') });
      expect(own.edges.map((edge: any) => edge.node)).toEqual([expect.objectContaining({ coordinate: 'Query.accessLog', decision: 'RELEASED', reason: 'ACCESS_LOG_READ', operationName: 'ReadLog', subjectId: null })]);
    });

    it('reports integrity', async () => {
      const response = await auditor('{ auditIntegrity { verified records headSeq headHash firstBrokenSeq problem } }');
      expect(response.body.data!.auditIntegrity).toEqual(expect.objectContaining({ verified: true, firstBrokenSeq: null, problem: null, headHash: expect.stringMatching(/^[0-9a-f]{64}$/) }));
      expect(response.body.data!.auditIntegrity.records).toBe(response.body.data!.auditIntegrity.headSeq);
    });

    it.each([
      ['accessLog', '{ accessLog { totalCount } }'],
      ['auditIntegrity', '{ auditIntegrity { verified } }'],
    ])('refuses %s to everyone but auditors (FORBIDDEN) and records the refusal', async (field, query) => {
      for (const [key, purpose] of [[KEYS.support, 'essential.service'], [KEYS.analytics, 'analytics.reporting']]) {
        const response = await candor.query({ key, purpose, query });
        expect(response.body.data).toEqual({ [field]: null });
        expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
        const recorded = await accessLog({ requestId: response.headers.get('x-request-id') });
        expect(recorded.edges.map((edge: any) => [edge.node.coordinate, edge.node.decision, edge.node.reason])).toEqual([[`Query.${field}`, 'REFUSED', 'FORBIDDEN']]);
      }
    });

    it.each([
      ['first above 500', { first: 501 }],
      ['first below 0', { first: -1 }],
      ['a forged cursor', { after: 'not-a-cursor' }],
      ['an unparsable date', { filter: { from: 'yesterday' } }],
      // `new Date` reads these as 2001-12-01 and 2026-03-02: an auditor would get the wrong window silently.
      ['a bare number as a date', { filter: { from: '12' } }],
      ['a day the month does not have', { filter: { to: '2026-02-30' } }],
      ['an unknown decision', { filter: { decision: 'LEAKED' } }],
    ])('rejects %s as BAD_USER_INPUT', async (_case, variables) => {
      const response = await auditor('query Log($filter: AccessLogFilter, $first: Int = 50, $after: String) { accessLog(filter: $filter, first: $first, after: $after) { totalCount } }', variables);
      expect(response.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('keeps verifying after an erasure deletes a subject’s pseudonym mapping, which unlinks their records', async () => {
      await candor.services.accessLog.forgetSubject(B);
      expect((await accessLog({ subjectId: B })).totalCount).toBe(0);
      const marketing = await accessLog({ requestId: requestIds.marketing });
      expect(marketing.edges.map((edge: any) => edge.node.subjectId).sort()).toEqual([A, null].sort());
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    });

    it.each([
      ['purpose', 'essential', 'essential.serv', 'essential.service'],
      ['category', 'user.contact', 'user.cont', 'user.contact'],
    ] as const)('filters by %s as a taxonomy key: the key and the keys under it, not a mere prefix of the text', async (field, key, textPrefix, suggested) => {
      const log = await accessLog({}, 500);
      expect(log.pageInfo.hasNextPage).toBe(false);
      const all = log.edges.map((edge: any) => edge.node);
      const under = all.filter((node: any) => node[field] !== null && covers(key, node[field]));
      // More than the key itself: the filter must reach the keys under it.
      expect(new Set(under.map((node: any) => node[field])).size).toBeGreaterThan(1);
      const filtered = await accessLog({ [field]: key }, 500);
      expect(filtered.totalCount).toBe(filtered.edges.length);
      // Reading the log is recorded (purpose essential.legal_obligation): compare up to the first read's head.
      const headSeq = all.at(-1).seq;
      expect(filtered.edges.map((edge: any) => edge.node.seq).filter((seq: number) => seq <= headSeq)).toEqual(under.map((node: any) => node.seq));
      // A mere prefix of a key, or a key in capitals, names no key and no record: refused as the typo it is
      // (an empty answer would read as "never used for that"), with the key it is closest to.
      const refusal = async (value: string) =>
        (await auditor('query Log($filter: AccessLogFilter) { accessLog(filter: $filter) { totalCount } }', { filter: { [field]: value } })).body.errors?.map((error) => [error.extensions?.code, error.extensions?.reason, error.extensions?.argument, error.message]);
      const unknown = (value: string, meant: string) => [['BAD_USER_INPUT', 'UNKNOWN_KEY', `filter.${field}`, `filter.${field}: "${value}" is no ${field} of the taxonomy, and no record of the log carries it (did you mean "${meant}"?)`]];
      expect(await refusal(textPrefix)).toEqual(unknown(textPrefix, suggested));
      expect(await refusal(key.toUpperCase())).toEqual(unknown(key.toUpperCase(), key));
      for (const far of ['zz-nothing-like-it', 'z'.repeat(5_000)]) {
        expect(await refusal(far)).toEqual([['BAD_USER_INPUT', 'UNKNOWN_KEY', `filter.${field}`, `filter.${field}: "${far}" is no ${field} of the taxonomy, and no record of the log carries it`]]);
      }
      // A key of the taxonomy that matches nothing is answered: no records.
      expect((await accessLog({ [field]: key, requestId: 'no-such-request' })).totalCount).toBe(0);
    });

    it('answers a purpose or category the taxonomy no longer holds while records of it remain, even where none match', async () => {
      const retired = { purpose: 'retired_purpose.newsletter', category: 'retired_category.hobby' };
      await candor.services.accessLog.append([
        { at: new Date(), requestId: 'retired-keys', actor: null, purpose: retired.purpose, operationName: null, subjectId: null, coordinate: 'Customer.hobby', category: retired.category, decision: 'RELEASED', reason: 'CONSENT_GIVEN', legalBasis: 'consent' },
      ]);
      for (const [field, value] of Object.entries(retired)) {
        expect(candor.services.taxonomy[field === 'purpose' ? 'purposes' : 'categories'].has(value)).toBe(false);
        const found = await accessLog({ [field]: value });
        expect([found.totalCount, found.edges.map((edge: any) => edge.node.requestId)]).toEqual([1, ['retired-keys']]);
        // Matching nothing in a period, it is still a key the log holds: no records, not a refusal.
        expect((await accessLog({ [field]: value, to: '2000-01-01T00:00:00Z' })).totalCount).toBe(0);
      }
    });

    it.each([
      ['after', { from: '2026-06-02T00:00:00Z', to: '2026-06-01T00:00:00Z' }],
      ['at', { from: '2026-06-01T00:00:00+02:00', to: '2026-05-31T22:00:00Z' }],
    ])('refuses a period whose start is %s its end as BAD_USER_INPUT', async (_case, filter) => {
      const response = await auditor('query Log($filter: AccessLogFilter) { accessLog(filter: $filter) { totalCount } }', { filter });
      expect(response.body.errors?.map((error) => [error.extensions?.code, error.extensions?.argument, error.message])).toEqual([['BAD_USER_INPUT', 'filter.from', 'filter.from must be before filter.to (`to` is exclusive)']]);
    });

    it('refuses an unknown subject, and an erased one, as UNKNOWN_SUBJECT rather than answer no records', async () => {
      const erased = 'cus_0000_log_erased';
      await addCustomer(candor, erased);
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${erased}") { email } }` });
      await eraseSubject(candor.services, erased, { id: 'privacy-desk', name: 'Privacy desk', team: 'Privacy' }, 'erasure-of-this-test');
      const query = 'query Log($filter: AccessLogFilter) { accessLog(filter: $filter) { totalCount } }';
      const refusal = async (subjectId: string) => (await auditor(query, { filter: { subjectId } })).body.errors?.map((error) => [error.extensions?.code, error.extensions?.reason, error.extensions?.argument, error.message]);
      expect(await refusal('cus_0000_log_typo')).toEqual([['BAD_USER_INPUT', 'UNKNOWN_SUBJECT', 'filter.subjectId', 'filter.subjectId: unknown subject "cus_0000_log_typo"']]);
      expect(await refusal(erased)).toEqual([['BAD_USER_INPUT', 'UNKNOWN_SUBJECT', 'filter.subjectId', `filter.subjectId: subject "${erased}" is erased: its records stay in the log, attributed to no one`]]);
      // An empty id (an unset template variable) is an id no customer has, not the filter left out.
      expect(await refusal('')).toEqual([['BAD_USER_INPUT', 'UNKNOWN_SUBJECT', 'filter.subjectId', 'filter.subjectId: unknown subject ""']]);
      const emptyStart = await auditor(query, { filter: { from: '' } });
      expect(emptyStart.body.errors?.map((error) => [error.extensions?.code, error.extensions?.argument])).toEqual([['BAD_USER_INPUT', 'filter.from']]);
      expect((await accessLog({ subjectId: A })).totalCount).toBeGreaterThan(0);
    });
  });
});
