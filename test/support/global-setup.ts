import { Client } from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Probes PostgreSQL once for the whole run. An unreachable PostgreSQL fails the run: half of the storage
 * and HTTP suites would otherwise not run while the run still looked green. Only an explicit
 * `CANDOR_TEST_SQLITE_ONLY=1` (a laptop without PostgreSQL) runs the SQLite half alone, said loudly.
 */
export default async function globalSetup(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await createIfMissing(url);
    await client.connect();
    await client.query('SELECT 1');
    process.env.CANDOR_TEST_POSTGRES = '1';
  } catch (error) {
    const reason = `PostgreSQL is unreachable at ${url}: ${(error as Error).message}`;
    if (process.env.CANDOR_TEST_SQLITE_ONLY !== '1') throw new Error(`${reason} (set TEST_DATABASE_URL, or CANDOR_TEST_SQLITE_ONLY=1 to run the SQLite half alone)`);
    process.env.CANDOR_TEST_POSTGRES = '0';
    process.stderr.write(`\n*** ${reason}: CANDOR_TEST_SQLITE_ONLY=1, so the PostgreSQL tests are NOT RUN ***\n\n`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A stock PostgreSQL has no database named as TEST_DATABASE_URL's (`test`): it is created, through the
 * server's `postgres` database, so that `npm test` needs nothing set up beyond PostgreSQL itself.
 */
async function createIfMissing(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const admin = new Client({ connectionString: maintenance.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } catch {
    // Unreachable, or no right to create it: the probe that follows says what is wrong.
  } finally {
    await admin.end().catch(() => undefined);
  }
}
