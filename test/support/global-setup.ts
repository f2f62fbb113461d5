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
