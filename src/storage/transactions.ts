import type { DataSource, EntityManager } from 'typeorm';

/**
 * TypeORM's better-sqlite3 driver runs every query runner on one shared connection, so two concurrent
 * `dataSource.transaction` calls would nest as savepoints of each other and commit or roll back together.
 * On SQLite, transactions of one process therefore run one at a time, each holding the write lock from its
 * start; PostgreSQL gives each its own connection.
 */
const queues = new WeakMap<DataSource, Promise<unknown>>();

export function inTransaction<T>(dataSource: DataSource, work: (manager: EntityManager) => Promise<T>): Promise<T> {
  if (dataSource.options.type !== 'better-sqlite3') return dataSource.transaction(work);
  return inTurn(dataSource, () =>
    dataSource.transaction(async (manager) => {
      await manager.query(TAKE_SQLITE_WRITE_LOCK);
      return work(manager);
    }),
  );
}

/**
 * A write that changes nothing, first in every SQLite transaction: it takes the database's write lock,
 * waiting up to the busy timeout while the log's writer or a CLI command holds it. TypeORM begins
 * transactions deferred; one that read first and wrote after another connection committed would fail at
 * once (SQLITE_BUSY_SNAPSHOT, which no waiting resolves) — under a steady stream of access-log batches,
 * most consent changes did. (The table is TypeORM's own, which every migrated store has.)
 */
const TAKE_SQLITE_WRITE_LOCK = 'DELETE FROM migrations WHERE 0';

/**
 * Runs a read between this process's SQLite transactions, never inside one: on the shared connection a
 * read would see a transaction's writes before they commit — a consent grant that is then rolled back, and
 * a field released on it. (PostgreSQL reads only what committed.)
 */
export function committedRead<T>(dataSource: DataSource, read: () => Promise<T>): Promise<T> {
  return betweenTransactions(dataSource, read);
}

/**
 * Runs `work` between this process's SQLite transactions, on the shared connection while none is open on it
 * (a checkpoint refuses to run on a connection inside a transaction). PostgreSQL: `work` as it is.
 */
export function betweenTransactions<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  return dataSource.options.type === 'better-sqlite3' ? inTurn(dataSource, work) : work();
}

/** Runs `work` when the SQLite connection's earlier turns have ended. */
function inTurn<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(dataSource) ?? Promise.resolve();
  const run = previous.then(work, work);
  queues.set(
    dataSource,
    run.catch(() => undefined),
  );
  return run;
}
