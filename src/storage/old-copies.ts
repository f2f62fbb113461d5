import type Database from 'better-sqlite3';
import type { DataSource } from 'typeorm';
import { betweenTransactions } from './transactions';

/**
 * What became of the old copies, in the database's own files, of what an erasure deleted or overwrote
 * (backups, archives and replicas are the operator's: docs/operations.md):
 * - `overwritten`: SQLite, the pages the erasure changed hold zeros where the data was (`secure_delete`), and
 *   the write-ahead log, which keeps the pages' earlier images, was copied into the file and emptied. Copies
 *   SQLite left in a page's unused space when it moved rows between pages before the erasure can remain
 *   (measured: about one row in a hundred of a table whose rows grew); only a VACUUM rebuilds every page;
 * - `kept-until-checkpoint`: SQLite, another connection (a long read, a report, another process) held the
 *   log, so the earlier images stay in the log and in the file's pages until a checkpoint completes: the next
 *   erasure's, or the one the last connection to close runs;
 * - `kept-until-vacuum`: PostgreSQL keeps the old row versions in the tables until VACUUM (their bytes until
 *   VACUUM FULL), which can run long and lock the tables: left to the operator.
 */
export const OLD_COPIES = ['overwritten', 'kept-until-checkpoint', 'kept-until-vacuum'] as const;
export type OldCopies = (typeof OLD_COPIES)[number];

/** Each outcome in a sentence, for whoever erased (the CLI's answer, the GraphQL enum's values). */
export const OLD_COPIES_MEANING: Readonly<Record<OldCopies, string>> = {
  overwritten: 'SQLite: the erased values were overwritten in the database file, and its write-ahead log emptied. Copies SQLite left when it moved rows between pages before remain until a VACUUM.',
  'kept-until-checkpoint': 'SQLite: another connection held the write-ahead log; old copies remain in the file and the log until a checkpoint completes (the next erasure runs one, as does the last connection to close).',
  'kept-until-vacuum': 'PostgreSQL: the old row versions remain in the tables until the operator runs VACUUM on them, their bytes until VACUUM FULL (docs/operations.md names the tables).',
};

/** How long `overwriteOldCopies` tries for a complete checkpoint while other connections hold the log. */
const CHECKPOINT_TRIES_MS = 2_000;
const CHECKPOINT_RETRY_MS = 50;

/**
 * Overwrites, on SQLite, the old copies of what committed transactions deleted: checkpoints the write-ahead log
 * into the file and truncates it. A checkpoint waits for the other connections' writes and reads; each try
 * here waits for none (the event loop would stall for the busy timeout), and the tries go on for a moment.
 * Never throws: a checkpoint that fails leaves the copies where they were, and says so.
 */
export async function overwriteOldCopies(dataSource: DataSource): Promise<OldCopies> {
  if (dataSource.options.type === 'postgres') return 'kept-until-vacuum';
  const connection = (dataSource.driver as unknown as { databaseConnection: Database.Database }).databaseConnection;
  const giveUpAt = Date.now() + CHECKPOINT_TRIES_MS;
  for (;;) {
    const emptied = await betweenTransactions(dataSource, async () => checkpointWithoutWaiting(connection)).catch(() => false);
    if (emptied) return 'overwritten';
    if (Date.now() >= giveUpAt) return 'kept-until-checkpoint';
    await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_RETRY_MS));
  }
}

/** Whether a `TRUNCATE` checkpoint completed at once: copied every frame of the log into the file and truncated it. */
function checkpointWithoutWaiting(connection: Database.Database): boolean {
  const busyTimeout = connection.pragma('busy_timeout', { simple: true }) as number;
  connection.pragma('busy_timeout = 0');
  try {
    const [{ busy }] = connection.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    return busy === 0;
  } finally {
    connection.pragma(`busy_timeout = ${busyTimeout}`);
  }
}
