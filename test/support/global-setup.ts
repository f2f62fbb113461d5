import { Client } from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Probes PostgreSQL once for the whole run. Under CI (`CI=true`) an unreachable PostgreSQL fails the run;
 * elsewhere the PostgreSQL half of the suite is reported as not run (and not silently passed).
 */
export default async function globalSetup(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.env.CANDOR_TEST_POSTGRES = '1';
  } catch (error) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL is unreachable at ${url} and CI=true: ${(error as Error).message}`);
    process.env.CANDOR_TEST_POSTGRES = '0';
    process.stderr.write(`\n*** PostgreSQL unreachable at ${url}: the PostgreSQL tests are NOT RUN (${(error as Error).message}) ***\n\n`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
