import type { Pool, PoolClient } from 'pg';
import { isQueryReadTimeout } from '../storage/postgres-sessions';

/**
 * Runs `work` in a transaction on a client of `pool`: `begin` opens it (it may hold more statements, e.g.
 * taking a lock, whose results `work` receives), COMMIT on success, ROLLBACK on failure. `finish` may
 * give (or wait, then give) statements that go with the COMMIT, in its round trip: if one fails, the
 * server skips the COMMIT and the transaction is rolled back.
 */
export async function inPoolTransaction<T>(pool: Pool, begin: string, work: (client: PoolClient, begun: unknown) => Promise<T>, finish?: (result: T) => string | Promise<string>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection terminated mid-transaction emits 'error' on the checked-out client; without a
  // listener that would crash the process. The failing query rejects as well, which is what we act on.
  const onError = (error: Error) => (broken = error);
  client.on('error', onError);
  try {
    try {
      const result = await work(client, await client.query(begin));
      await client.query(finish ? `${await finish(result)}; COMMIT` : 'COMMIT');
      return result;
    } catch (error) {
      // A statement pg gave up waiting for leaves the connection's state unknown, and a ROLLBACK on it would
      // wait as long again: the connection is destroyed instead, and the server rolls the transaction back as
      // the session ends (its statement and idle-transaction bounds end it if the network hides the close).
      if (isQueryReadTimeout(error)) broken = error as Error;
      else await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    }
  } finally {
    // A broken connection is destroyed, never returned to the pool mid-transaction.
    client.off('error', onError);
    client.release(broken);
  }
}
