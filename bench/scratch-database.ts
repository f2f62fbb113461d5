import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

export interface ScratchDatabase {
  readonly driver: 'sqlite' | 'postgres';
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database of its own for a test file or a benchmark: a temporary SQLite file, or a new
 * PostgreSQL database created through `adminUrl` and dropped afterwards.
 */
export async function createScratchDatabase(driver: 'sqlite' | 'postgres', adminUrl: string): Promise<ScratchDatabase> {
  if (driver === 'sqlite') {
    const directory = mkdtempSync(join(tmpdir(), 'candor-scratch-'));
    return { driver, url: `sqlite:${join(directory, 'candor.sqlite')}`, drop: async () => rmSync(directory, { recursive: true, force: true }) };
  }
  const name = `candor_scratch_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { driver, url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
