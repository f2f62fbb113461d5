import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { type AccessRecordInput, createAuditStore, entriesOf } from '../../src/audit/access-log';
import { type AuditStore, CHAIN_LOCK_KEY, pseudonymise } from '../../src/audit/audit-store';
import { sealBatch, EMPTY_HEAD, type ChainHead } from '../../src/audit/chain';
import type { PostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { auditPartitions, auditPrune, type Output } from '../../src/cli/audit.command';
import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';
import { MIGRATIONS } from '../../src/storage/data-source';
import { type Harness, startCandor } from '../support/candor-harness';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';
import { eventually } from '../support/eventually';

/** `subjects` × 3 decisions of one request. */
function records(requestId: string, subjects = 2): AccessRecordInput[] {
  return Array.from({ length: subjects * 3 }, (_, index) => ({
    at: new Date('2026-08-01T00:00:00.000Z'), requestId, actor: { id: 'partition-test', name: 'Partition Test', team: 'Tests' }, purpose: 'essential.service',
    operationName: 'PartitionTest', subjectId: `cus_part_${Math.floor(index / 3)}`, coordinate: `Customer.field${index % 3}`, category: 'user.contact.email',
    decision: 'RELEASED' as const, reason: 'LEGAL_BASIS', legalBasis: 'contract',
  }));
}

function captured(): Output & { text: string } {
  const output = { text: '', interactive: false, out: (text: string) => void (output.text += text), err: (text: string) => void (output.text += text) };
  return output;
}

/**
 * The configuration of the servers of these logs. Their pseudonyms were written by hand with no mapping, as an
 * erasure leaves them: the migration that remembers those binds them with the database's secret, which a run
 * under the development secret on a database that has recorded none may not take for it.
 */
const configOf = (url: string) => loadConfig({ DATABASE_URL: url, NODE_ENV: 'test', CANDOR_SECRET: 'the-secret-of-the-partitioned-log' }, {});

/** The log as the tamper-evident-access-log migration stored it, before partitioning: batches committed in Aug, Sep and Oct 2026. */
async function writeUnpartitionedLog(url: string): Promise<void> {
  // The migrations before partitioning (later ones expect the partitioned tables).
  const dataSource = new DataSource({ type: 'postgres', url, migrations: MIGRATIONS.slice(0, MIGRATIONS.findIndex((migration) => migration.name === 'TimePartitionedAccessLog1764460000000')) });
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
    let head: ChainHead = EMPTY_HEAD;
    for (const [index, committedAt] of ['2026-08-15T12:00:00.000Z', '2026-09-15T12:00:00.000Z', '2026-10-15T12:00:00.000Z'].entries()) {
      const pseudonyms = new Map([0, 1].map((subject) => [`cus_part_${subject}`, `psn_part_${subject}`]));
      const batch = sealBatch(head, pseudonymise(entriesOf(records(`old-${index}`)), pseudonyms), committedAt);
      for (const entry of batch.entries) {
        await dataSource.query(
          `INSERT INTO audit_entry (seq, count, batch_id, at, request_id, actor_id, actor_name, actor_team, purpose, operation_name, subject_pseudonym, items, digests)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
          [entry.seq, entry.items.length, batch.id, entry.at, entry.requestId, entry.actorId, entry.actorName, entry.actorTeam, entry.purpose, entry.operationName, entry.subjectPseudonym, entry.itemsJson, JSON.stringify(entry.digests)],
        );
      }
      await dataSource.query('INSERT INTO audit_batch (id, first_seq, last_seq, prev_hash, hash, committed_at) VALUES ($1, $2, $3, $4, $5, $6)', [batch.id, batch.firstSeq, batch.lastSeq, batch.prevHash, batch.hash, batch.committedAt]);
      head = { batchId: batch.id, lastSeq: batch.lastSeq, hash: batch.hash };
    }
  } finally {
    await dataSource.destroy();
  }
}

(DRIVERS.includes('postgres') ? describe : describe.skip)('the access log partitioned by month on PostgreSQL', () => {
  let database: TestDatabase;
  let services: Awaited<ReturnType<typeof openServices>>;
  const now = new Date('2026-11-29T10:00:00.000Z');
  /** The partitions holding rows of a log table, oldest first. */
  const partitionOf = async (table: 'audit_entry' | 'audit_batch') =>
    (await services.dataSource.query(`SELECT tableoid::regclass::text AS partition FROM ${table} GROUP BY 1 ORDER BY min(${table === 'audit_entry' ? 'seq' : 'id'})`)).map(
      (row: { partition: string }) => row.partition,
    );
  const verified = () => services.verifyAccessLog();

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    await writeUnpartitionedLog(database.url);
    services = await openServices(configOf(database.url), { clock: () => now });
  });
  afterAll(async () => {
    await services?.close();
    await database?.drop();
  });

  it('migrates an existing log into monthly partitions, every batch in the month it was committed, and it still verifies', async () => {
    expect(await partitionOf('audit_batch')).toEqual(['audit_batch_p2026_08', 'audit_batch_p2026_09', 'audit_batch_p2026_10']);
    expect(await partitionOf('audit_entry')).toEqual(['audit_entry_p2026_08', 'audit_entry_p2026_09', 'audit_entry_p2026_10']);
    expect(await verified()).toEqual(expect.objectContaining({ verified: true, records: 18 }));
    const output = captured();
    expect(await auditPartitions(services, undefined, output)).toBe(0);
    // Months from the oldest record through three months after the migration ran (the real clock: at least this one).
    const months = output.text.split('\n').slice(1, -1).map((line) => line.split(/\s+/)[0]);
    expect(months.slice(0, 4)).toEqual(['2026_08', '2026_09', '2026_10', '2026_11']);
    expect(output.text).toMatch(/^month\s+from\s+to \(excl\.\)\s+batches\s+records\s+last seq\n2026_08\s+2026-08-01T00:00:00\.000Z\s+2026-09-01T00:00:00\.000Z\s+1\s+6\s+6\n/);
  });

  it('writes new batches into the partition of their commit time, creating a missing month on the way', async () => {
    const store = services.accessLog.store as PostgresAuditStore;
    const far = await store.append(entriesOf(records('far-ahead')), '2027-09-10T00:00:00.000Z');
    const [row] = await services.dataSource.query('SELECT tableoid::regclass::text AS partition FROM audit_batch WHERE id = $1', [far.batchId]);
    expect(row.partition).toBe('audit_batch_p2027_09');
    // 18 migrated, 1 recording the `audit partitions` run, 6 new.
    expect(await verified()).toEqual(expect.objectContaining({ verified: true, records: 25 }));
  });

  it('prune drops the months that hold only pruned batches whole, deletes the rest row by row, and verify still passes', async () => {
    const output = captured();
    expect(await auditPrune(services, '2026-10-01T00:00:00.000Z', output)).toBe(0);
    expect(output.text).toBe('pruned 12 records in 2 batches through seq 12 (dropped the partitions of 2026_08, 2026_09 whole); signed a prune checkpoint\n');
    expect(await partitionOf('audit_batch')).toEqual(['audit_batch_p2026_10', 'audit_batch_p2026_11', 'audit_batch_p2027_09']);
    const tables = await services.dataSource.query("SELECT count(*) AS n FROM pg_class WHERE relname IN ('audit_entry_p2026_08', 'audit_batch_p2026_09')");
    expect(Number(tables[0].n)).toBe(0);
    // Kept: October's 6, the `audit partitions` record, the 6 of 2027 and the prune's own record.
    expect(await verified()).toEqual(expect.objectContaining({ verified: true, records: 14, firstBrokenSeq: null }));
  });

  it('refuses to drop a partition outside prune, and verify reports the records of a detached one as missing', async () => {
    await expect(services.dataSource.query('DROP TABLE audit_entry_p2026_10')).rejects.toThrow(/append-only: dropping .*audit_entry_p2026_10 refused/);
    await expect(services.dataSource.query('TRUNCATE audit_entry_p2026_10')).rejects.toThrow(/append-only/);
    await expect(services.dataSource.query('DELETE FROM audit_entry_p2026_10')).rejects.toThrow(/append-only/);
    await services.dataSource.query('ALTER TABLE audit_entry DETACH PARTITION audit_entry_p2026_10');
    expect(await verified()).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: 13 }));
    await services.dataSource.query("ALTER TABLE audit_entry ATTACH PARTITION audit_entry_p2026_10 FOR VALUES FROM ('2026-10-01T00:00:00.000Z') TO ('2026-11-01T00:00:00.000Z')");
    expect(await verified()).toEqual(expect.objectContaining({ verified: true }));
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('prune while batches are copied ahead of the chain lock', () => {
  it('holds new copies back instead of deadlocking with them when it drops a partition, and both complete', async () => {
    const database = await createTestDatabase('postgres');
    await writeUnpartitionedLog(database.url);
    const services = await openServices(configOf(database.url), { clock: () => new Date('2026-11-29T10:00:00.000Z') });
    const store = services.accessLog.store as PostgresAuditStore;
    const holder = new Client({ connectionString: database.url });
    await holder.connect();
    // The log's connections waiting for a lock (asked outside the holder's transaction: its statistics snapshot is fixed).
    const waiting = async () =>
      Number((await services.dataSource.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'candor-audit' AND wait_event_type = 'Lock'"))[0].n);
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
      // Prune first in line for the chain lock, then a batch: had prune taken the chain lock first, the batch
      // would copy its rows and wait for that lock while prune, holding it, waited for the rows' table.
      const output = captured();
      const pruned = auditPrune(services, '2026-10-01T00:00:00.000Z', output);
      await eventually(async () => (await waiting()) === 1, 'prune waiting for the chain lock');
      const appended = store.append(entriesOf(records('while-pruning')), '2026-11-29T10:00:00.000Z');
      await eventually(async () => (await waiting()) === 2, 'the batch waiting behind prune');
      await holder.query('COMMIT');
      const [exitCode, append] = await Promise.all([pruned, appended]);
      expect([exitCode, output.text]).toEqual([0, 'pruned 12 records in 2 batches through seq 12 (dropped the partitions of 2026_08, 2026_09 whole); signed a prune checkpoint\n']);
      expect(append.firstSeq).toBe(19);
      expect(await services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, firstBrokenSeq: null }));
    } finally {
      await holder.end().catch(() => undefined);
      await services.close();
      await database.drop();
    }
  });
});

describe.each(DRIVERS)('commit times along the chain on %s', (driver) => {
  let candor: Harness;
  let store: AuditStore;
  const committedAt = async (batchId: number) => {
    const parameter = driver === 'postgres' ? '$1' : '?';
    const [batch] = await candor.services.dataSource.query(`SELECT committed_at FROM audit_batch WHERE id = ${parameter}`, [batchId]);
    const entries = await candor.services.dataSource.query(`SELECT DISTINCT committed_at FROM audit_entry WHERE batch_id = ${parameter}`, [batchId]);
    return [batch.committed_at, ...entries.map((entry: { committed_at: string }) => entry.committed_at)];
  };

  beforeAll(async () => {
    candor = await startCandor(driver, { seed: false });
    store = candor.services.accessLog.store;
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('never decrease: a batch committed after one with a later clock takes that time, entries with their batch', async () => {
    const ahead = await store.append(entriesOf(records('clock-ahead')), '2031-05-29T10:00:00.000Z');
    const behind = await store.append(entriesOf(records('clock-behind')), '2031-05-29T09:00:00.000Z');
    expect(await committedAt(ahead.batchId)).toEqual(['2031-05-29T10:00:00.000Z', '2031-05-29T10:00:00.000Z']);
    expect(await committedAt(behind.batchId)).toEqual(['2031-05-29T10:00:00.000Z', '2031-05-29T10:00:00.000Z']);
    const later = await store.append(entriesOf(records('clock-later')), '2031-05-29T11:00:00.000Z');
    expect(await committedAt(later.batchId)).toEqual(['2031-05-29T11:00:00.000Z', '2031-05-29T11:00:00.000Z']);
    expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
  });

  if (driver === 'postgres') {
    it('a prepared batch is sealed again with the later time another instance committed under', async () => {
      const pipelined = store as PostgresAuditStore;
      const other = createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore;
      try {
        const prepared = await pipelined.prepare(entriesOf(records('prepared-early')), '2031-05-29T12:00:00.000Z');
        await other.append(entriesOf(records('other-instance')), '2031-05-29T12:00:05.000Z');
        const committed = await pipelined.commit(prepared);
        expect(await committedAt(committed.batchId)).toEqual(['2031-05-29T12:00:05.000Z', '2031-05-29T12:00:05.000Z']);
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
      } finally {
        await other.close();
      }
    });

    it('several instances creating the same months at once all succeed, and each month exists once', async () => {
      const others = [0, 1].map(() => createAuditStore(candor.services.config.database, candor.services.pseudonymBindingKey) as PostgresAuditStore);
      try {
        const start = new Date('2028-01-15T00:00:00.000Z');
        await Promise.all([store, ...others].map((instance) => (instance as PostgresAuditStore).partitions.ensure(start, 5)));
        const months = (await others[0].partitions.list()).map((partition) => partition.month).filter((month) => month.startsWith('2028'));
        expect(months).toEqual(['2028_01', '2028_02', '2028_03', '2028_04', '2028_05', '2028_06']);
      } finally {
        await Promise.all(others.map((other) => other.close()));
      }
    });
  } else {
    it('`audit partitions` says SQLite keeps one table and does nothing', async () => {
      const output = captured();
      expect(await auditPartitions(candor.services, '2', output)).toBe(0);
      expect(output.text).toBe('the SQLite access log is one table: partitions are a PostgreSQL feature, nothing to do\n');
    });
  }

  it('`audit partitions --ahead` refuses a value that is not a whole number of months', async () => {
    await expect(auditPartitions(candor.services, 'soon', captured())).rejects.toThrow('--ahead must be a whole number of months from 0 to 120, got "soon"');
  });
});
