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
