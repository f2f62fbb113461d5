/**
 * The SQLite access-log appender, run in a worker thread with its own connection. SQLite commits with
 * `synchronous=FULL` block on fsync; here they block this thread, not the server's event loop, and the
 * busy wait for the write lock (held by another connection or process) cannot stall request handling.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { type AppendEntry, type AppendResult, commitTimeAfter, ENTRY_COLUMNS, entryRow, insertCheckpoint, LATEST_CHECKPOINT_KEY, newPseudonym, planStillHolds, type PrunePlan, type PruneResult, PseudonymCache, pseudonymise, subjectsOf } from './audit-store';
import { configureSqliteConnection, createPrivateDatabaseFile, SQLITE_BUSY_TIMEOUT_MS } from '../storage/sqlite-file';
import { type ChainHead, EMPTY_HEAD, sealBatch } from './chain';
import { erasedPseudonymBinding, pseudonymBinding } from './pseudonym-binding';

export type WorkerRequest =
  | { readonly id: number; readonly kind: 'append'; readonly entries: readonly AppendEntry[]; readonly committedAt: string }
  | { readonly id: number; readonly kind: 'prune'; readonly plan: PrunePlan }
  | { readonly id: number; readonly kind: 'forget'; readonly subjectId: string }
  | { readonly id: number; readonly kind: 'ping' };
export type WorkerResponse = { readonly id: number; readonly result?: AppendResult | PruneResult | null; readonly error?: string };

/** SQLite's bind-parameter limit is 32766; 14 columns × 500 rows stays well below it. */
const INSERT_CHUNK = 500;

/** `bindingKey`: what the mappings it makes are bound under (`pseudonymBindingKey`). */
export function openAppender(path: string, bindingKey: Buffer) {
  createPrivateDatabaseFile(path);
  const db = new Database(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  db.pragma('journal_mode = WAL');
  configureSqliteConnection(db);
  const headStatement = db.prepare('SELECT id, last_seq, hash, committed_at FROM audit_batch ORDER BY id DESC LIMIT 1');
  const insertBatch = db.prepare('INSERT INTO audit_batch (id, first_seq, last_seq, prev_hash, hash, committed_at) VALUES (?, ?, ?, ?, ?, ?)');
  const findPseudonym = db.prepare('SELECT pseudonym FROM subject_pseudonym WHERE subject_id = ?');
  const isErased = db.prepare('SELECT 1 FROM erased_subject WHERE subject_id = ?');
  const deleteMapping = db.prepare('DELETE FROM subject_pseudonym WHERE subject_id = ? RETURNING pseudonym');
  const insertErasedPseudonym = db.prepare('INSERT INTO erased_pseudonym (pseudonym, binding) VALUES (?, ?) ON CONFLICT (pseudonym) DO NOTHING');
  /** Accounts for records naming `pseudonym` while no mapping does: an erasure's (`erased_pseudonym`). */
  const rememberErasedPseudonym = (pseudonym: string) => insertErasedPseudonym.run(pseudonym, erasedPseudonymBinding(bindingKey, pseudonym));
  const rememberErased = db.prepare('INSERT INTO erased_subject (subject_id, erased_at) VALUES (?, ?) ON CONFLICT (subject_id) DO NOTHING');
  const insertPseudonym = db.prepare('INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at, binding) VALUES (?, ?, ?, ?) ON CONFLICT (subject_id) DO NOTHING');
  const insertSql = (rows: number) => `INSERT INTO audit_entry (${ENTRY_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rows }, () => `(${ENTRY_COLUMNS.map(() => '?').join(', ')})`).join(', ')}`;
  const insertChunk = db.prepare(insertSql(INSERT_CHUNK));
  const knownPseudonyms = new PseudonymCache();
  // Changes whenever another connection commits — another process's erasure (`candor subject erase`) included.
  const dataVersion = () => db.pragma('data_version', { simple: true }) as number;
  let cachedAtDataVersion = dataVersion();

  const head = (): ChainHead & { committedAt: string | null } => {
    const row = headStatement.get() as { id: number; last_seq: number; hash: string; committed_at: string } | undefined;
    return row ? { batchId: Number(row.id), lastSeq: Number(row.last_seq), hash: row.hash, committedAt: row.committed_at } : { ...EMPTY_HEAD, committedAt: null };
  };
  const pseudonymOf = (subjectId: string, now: string): string => {
    let pseudonym = knownPseudonyms.get(subjectId);
    if (pseudonym === undefined) {
      // An erased subject gets a pseudonym that maps to no one (under the write lock: no erasure races this),
      // remembered as an erasure's in the batch's transaction.
      if (isErased.get(subjectId) !== undefined) {
        const unmapped = newPseudonym();
        rememberErasedPseudonym(unmapped);
        return unmapped;
      }
      const created = newPseudonym();
      insertPseudonym.run(subjectId, created, now, pseudonymBinding(bindingKey, created, subjectId));
      pseudonym = (findPseudonym.get(subjectId) as { pseudonym: string }).pseudonym;
      knownPseudonyms.set(subjectId, pseudonym);
    }
    return pseudonym;
  };

  // better-sqlite3's `.immediate` runs the function inside BEGIN IMMEDIATE: the chain lock on SQLite.
  const append = db.transaction((entries: readonly AppendEntry[], requestedAt: string): AppendResult => {
    // Under the write lock no erasure can commit until this batch has: whatever another connection
    // changed since the cache was filled, the mappings are read again.
    const version = dataVersion();
    if (version !== cachedAtDataVersion) {
      knownPseudonyms.clear();
      cachedAtDataVersion = version;
    }
    const current = head();
    const committedAt = commitTimeAfter(requestedAt, current.committedAt);
    const pseudonyms = new Map(subjectsOf(entries).map((subjectId) => [subjectId, pseudonymOf(subjectId, committedAt)]));
    const batch = sealBatch(current, pseudonymise(entries, pseudonyms), committedAt);
    const rows = batch.entries.map((entry) => entryRow(entry, batch.id, committedAt));
    let start = 0;
    for (; start + INSERT_CHUNK <= rows.length; start += INSERT_CHUNK) insertChunk.run(rows.slice(start, start + INSERT_CHUNK).flat());
    if (start < rows.length) db.prepare(insertSql(rows.length - start)).run(rows.slice(start).flat());
    insertBatch.run(batch.id, batch.firstSeq, batch.lastSeq, batch.prevHash, batch.hash, batch.committedAt);
    return { batchId: batch.id, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, hash: batch.hash };
  });

  const prune = db.transaction((plan: PrunePlan): PruneResult | null => {
    // The head batch is never pruned: the chain must keep an anchor for the next appender.
    const last = db.prepare('SELECT id, last_seq, hash FROM audit_batch WHERE id = ? AND committed_at < ? AND id < ?').get(plan.throughBatchId, plan.before, head().batchId) as
      | { id: number; last_seq: number; hash: string }
      | undefined;
    const latest = db.prepare(LATEST_CHECKPOINT_KEY).get() as { kind: string; key_id: string; successor_key: string | null } | undefined;
    if (!last || !planStillHolds(plan, last, latest)) return null;
    // The signed checkpoint commits with the deletion, or neither does.
    const [insert, values] = insertCheckpoint(plan.checkpoint, () => '?');
    db.prepare(insert).run(...values);
    const { records } = db.prepare('SELECT COALESCE(SUM(count), 0) AS records FROM audit_entry WHERE seq <= ?').get(last.last_seq) as { records: number };
    db.prepare('DELETE FROM audit_entry WHERE seq <= ?').run(last.last_seq);
    const batches = db.prepare('DELETE FROM audit_batch WHERE id <= ?').run(last.id);
    return { prunedRecords: Number(records), prunedBatches: batches.changes, throughSeq: Number(last.last_seq) };
  });

  // The mapping goes and the subject is remembered as erased, together.
  const forget = db.transaction((subjectId: string, erasedAt: string) => {
    for (const { pseudonym } of deleteMapping.all(subjectId) as Array<{ pseudonym: string }>) rememberErasedPseudonym(pseudonym);
    rememberErased.run(subjectId, erasedAt);
  });

  const pingStatement = db.prepare('SELECT 1 AS ok');
  return {
    ping: () => (pingStatement.get(), null),
    append: (entries: readonly AppendEntry[], committedAt: string) => {
      try {
        return append.immediate(entries, committedAt);
      } catch (error) {
        // The mappings this batch inserted were rolled back with it, but not out of the cache: a later batch
        // would name its subjects by pseudonyms that map to no one.
        knownPseudonyms.clear();
        throw error;
      }
    },
    prune: (plan: PrunePlan) => prune.immediate(plan),
    forget: (subjectId: string) => {
      forget.immediate(subjectId, new Date().toISOString());
      knownPseudonyms.delete(subjectId);
    },
    close: () => db.close(),
  };
}

if (parentPort && workerData?.candorAuditDatabase) {
  // A Buffer reaches a worker as a Uint8Array.
  const appender = openAppender(workerData.candorAuditDatabase as string, Buffer.from(workerData.candorPseudonymBindingKey as Uint8Array));
  const port = parentPort;
  port.on('message', (request: WorkerRequest) => {
    try {
      const result =
        request.kind === 'append'
          ? appender.append(request.entries, request.committedAt)
          : request.kind === 'prune'
            ? appender.prune(request.plan)
            : request.kind === 'forget'
              ? (appender.forget(request.subjectId), null)
              : appender.ping();
      port.postMessage({ id: request.id, result } satisfies WorkerResponse);
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message } satisfies WorkerResponse);
    }
  });
}
