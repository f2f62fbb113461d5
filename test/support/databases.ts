import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DEFAULT_TEST_DATABASE_URL } from './global-setup';

export type Driver = 'sqlite' | 'postgres';

/** The drivers this run covers: SQLite always, PostgreSQL when global setup reached it. */
export const DRIVERS: Driver[] = process.env.CANDOR_TEST_POSTGRES === '1' ? ['sqlite', 'postgres'] : ['sqlite'];

export interface TestDatabase {
  readonly driver: Driver;
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of its own: a temp SQLite file, or a new PostgreSQL database. */
export async function createTestDatabase(driver: Driver): Promise<TestDatabase> {
  if (driver === 'sqlite') {
    const directory = mkdtempSync(join(tmpdir(), 'candor-test-'));
    return { driver, url: `sqlite:${join(directory, 'candor.sqlite')}`, drop: async () => rmSync(directory, { recursive: true, force: true }) };
  }
  const adminUrl = process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const name = `candor_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    driver,
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
