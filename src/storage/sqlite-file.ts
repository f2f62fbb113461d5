import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Creates the SQLite database file readable and writable by its owner only (0600), and the directories it
 * needs that are missing readable by their owner only (0700), before SQLite opens it: the file holds every
 * subject's personal data and the secret's fingerprint, and SQLite would create it by the umask (0644 under
 * the usual 022), readable by every local user. SQLite gives the write-ahead log and shared-memory files it
 * creates beside it the main file's mode. A file or directory that exists is left as it is: an operator who
 * made it chose its owner, group and mode (a group the backup agent reads through, say), and Candor changing
 * them on every start would break that set-up behind their back.
 */
export function createPrivateDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * What every connection Candor opens to the SQLite file sets, the server's and the access log's worker's:
 * `synchronous=FULL`, so a committed transaction survives a crash or power loss; `secure_delete`, so SQLite
 * overwrites what a statement deletes or replaces with zeros instead of leaving its bytes in the page (an
 * erased subject's name would otherwise stay readable in the file). SQLite sets secure_delete per
 * connection: one connection without it leaves its deletions behind.
 */
export function configureSqliteConnection(connection: { pragma(statement: string): unknown }): void {
  connection.pragma('synchronous = FULL');
  connection.pragma('secure_delete = ON');
}

/**
 * How long a SQLite connection (the DataSource's, the access log's worker's) waits for another's write lock
 * before its write fails: long enough for a batch of the log or a CLI command's transaction, short enough
 * that a lock never released is said rather than waited on.
 */
export const SQLITE_BUSY_TIMEOUT_MS = 10_000;

/**
 * Whether `error` is SQLite's SQLITE_BUSY (that wait ran out), as better-sqlite3 throws it, TypeORM wraps it
 * (`QueryFailedError`) or the log's worker passes its message on: only its message survives all three.
 */
export function isSqliteBusy(error: unknown): boolean {
  return error instanceof Error && /\bdatabase is locked\b/.test(error.message);
}
