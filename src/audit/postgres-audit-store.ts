import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Pool, type PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type AppendEntry, type AppendResult, type AuditStore, CHAIN_LOCK_KEY, ENTRY_COLUMNS, entryRow, newPseudonym, type PruneResult, pseudonymise, subjectsOf } from './audit-store';
import { type ChainHead, EMPTY_HEAD, sealBatch } from './chain';

interface Runner {
  query(sql: string, parameters?: unknown[]): Promise<any[]>;
  readonly client: PoolClient;
}

// COPY is several times faster than INSERT … unnest for wide rows (measured: ~320k vs ~95k records/s).
const COPY_ENTRIES = `COPY audit_entry (${ENTRY_COLUMNS.join(', ')}) FROM STDIN`;

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One row of COPY's text format: tab-separated, \N for null, backslash escapes. */
function copyLine(values: readonly unknown[]): string {
  return values
    .map((value) => (value === null || value === undefined ? '\\N' : String(value).replace(/[\\\t\n\r]/g, (character) => COPY_ESCAPES[character])))
    .join('\t');
}

/** The application name of the log's connections (operators can find them in pg_stat_activity). */
export const AUDIT_APPLICATION_NAME = 'candor-audit';

/**
 * Appends sealed batches to PostgreSQL under a transaction-scoped advisory lock. It has its own small
 * pool, so the log's writes never queue behind (or starve) the request path's connections.
 */
export class PostgresAuditStore implements AuditStore {
  /** Pseudonyms never change while their mapping exists; erasure goes through `forget`. */
  private readonly knownPseudonyms = new Map<string, string>();
  private readonly pool: Pool;

  constructor(url: string, schema?: string) {
    this.pool = new Pool({
      connectionString: url,
      application_name: AUDIT_APPLICATION_NAME,
      max: 4,
      connectionTimeoutMillis: 5_000,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // A connection the server drops is discarded by the pool (idle) or fails its query (in use). Every
    // client also gets a permanent listener: pg can emit 'error' between checkout and our own listener.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  async forget(subjectId: string): Promise<void> {
    await this.pool.query('DELETE FROM subject_pseudonym WHERE subject_id = $1', [subjectId]);
    this.knownPseudonyms.delete(subjectId);
  }

  async append(entries: readonly AppendEntry[], committedAt: string): Promise<AppendResult> {
    return this.inChainTransaction(async (runner) => {
      const pseudonyms = await this.pseudonyms(runner, subjectsOf(entries), committedAt);
      const batch = sealBatch(await this.head(runner), pseudonymise(entries, pseudonyms), committedAt);
      const text = batch.entries.map((entry) => copyLine(entryRow(entry, batch.id))).join('\n') + '\n';
      await pipeline(Readable.from([text]), runner.client.query(copyFrom(COPY_ENTRIES)));
      await runner.query('INSERT INTO audit_batch (id, first_seq, last_seq, prev_hash, hash, committed_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        batch.id, batch.firstSeq, batch.lastSeq, batch.prevHash, batch.hash, batch.committedAt,
      ]);
      return { batchId: batch.id, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, hash: batch.hash };
    });
  }

  async prune(before: string): Promise<PruneResult | undefined> {
    return this.inChainTransaction(async (runner) => {
      // The head batch is never pruned: the chain must keep an anchor for the next appender.
      const head = await this.head(runner);
      const [last] = await runner.query('SELECT id, last_seq, hash FROM audit_batch WHERE committed_at < $1 AND id < $2 ORDER BY id DESC LIMIT 1', [before, head.batchId]);
      if (!last) return undefined;
      await runner.query("SET LOCAL candor.audit_prune = 'on'");
      const [{ records }] = await runner.query('SELECT COALESCE(SUM(count), 0) AS records FROM audit_entry WHERE seq <= $1', [last.last_seq]);
      await runner.query('DELETE FROM audit_entry WHERE seq <= $1', [last.last_seq]);
      const batches = await runner.client.query('DELETE FROM audit_batch WHERE id <= $1', [last.id]);
      return { prunedRecords: Number(records), prunedBatches: batches.rowCount ?? 0, throughSeq: Number(last.last_seq), throughHash: last.hash };
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async inChainTransaction<T>(work: (runner: Runner) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A connection terminated mid-transaction emits 'error' on the checked-out client; without a
    // listener that would crash the process. The failing query rejects as well, which is what we act on.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [CHAIN_LOCK_KEY]);
        const result = await work({ query: async (sql, parameters) => (await client.query(sql, parameters)).rows, client });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      }
    } finally {
      // A broken connection is destroyed, never returned to the pool mid-transaction.
      client.off('error', onError);
      client.release(broken);
    }
  }

  private async head(runner: Runner): Promise<ChainHead> {
    const [row] = await runner.query('SELECT id, last_seq, hash FROM audit_batch ORDER BY id DESC LIMIT 1');
    return row ? { batchId: Number(row.id), lastSeq: Number(row.last_seq), hash: row.hash } : EMPTY_HEAD;
  }

  private async pseudonyms(runner: Runner, subjectIds: string[], now: string): Promise<Map<string, string>> {
    const unknown = subjectIds.filter((subjectId) => !this.knownPseudonyms.has(subjectId));
    if (unknown.length) {
      await runner.query(
        'INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at) SELECT subject_id, pseudonym, $3 FROM unnest($1::text[], $2::text[]) AS t(subject_id, pseudonym) ON CONFLICT (subject_id) DO NOTHING',
        [unknown, unknown.map(() => newPseudonym()), now],
      );
      const rows: Array<{ subject_id: string; pseudonym: string }> = await runner.query('SELECT subject_id, pseudonym FROM subject_pseudonym WHERE subject_id = ANY($1::text[])', [unknown]);
      for (const row of rows) this.knownPseudonyms.set(row.subject_id, row.pseudonym);
    }
    return this.knownPseudonyms;
  }
}
