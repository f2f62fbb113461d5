import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config';
import { openServices, seedDemo } from '../../src/server/services';
import { MIGRATIONS } from '../../src/storage/data-source';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';

describe.each(DRIVERS)('the migrations on %s', (driver) => {
  let database: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    dataSource =
      driver === 'postgres'
        ? new DataSource({ type: 'postgres', url: database.url, migrations: MIGRATIONS })
        : new DataSource({ type: 'better-sqlite3', database: database.url.replace(/^sqlite:/, ''), migrations: MIGRATIONS });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  const tables = async (): Promise<string[]> =>
    (
      await dataSource.query(
        driver === 'postgres'
          ? "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'migrations'"
          : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('migrations', 'sqlite_sequence')",
      )
    )
      .map((row: { name: string }) => row.name)
      .sort();

  it('run up, then down one by one to an empty database, then up again', async () => {
    await dataSource.runMigrations({ transaction: 'each' });
    const created = await tables();
    expect(created).toEqual(expect.arrayContaining(['audit_entry', 'customer', 'erased_subject', 'subject_pseudonym']));
    for (let step = 0; step < MIGRATIONS.length; step++) await dataSource.undoLastMigration({ transaction: 'each' });
    expect(await tables()).toEqual([]);
    await dataSource.runMigrations({ transaction: 'each' });
    expect(await tables()).toEqual(created);
  });

  if (driver === 'postgres')
    it('migrate and serve inside the schema DATABASE_URL names (?schema=), leaving public alone', async () => {
      const scratch = await createTestDatabase('postgres');
      const admin = new Client({ connectionString: scratch.url });
      await admin.connect();
      try {
        await admin.query('CREATE SCHEMA candor_app');
        const services = await openServices(loadConfig({ DATABASE_URL: `${scratch.url}?schema=candor_app`, NODE_ENV: 'test' }, {}));
        try {
          await seedDemo(services);
          await services.accessLog.append([{ at: new Date(), requestId: 'in-schema', actor: null, purpose: null, operationName: null, subjectId: 'cus_in_schema', coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
          expect((await services.verifyAccessLog()).verified).toBe(true);
        } finally {
          await services.close();
        }
        const tablesIn = async (schema: string) => (await admin.query('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema])).rows.map((row: { tablename: string }) => row.tablename);
        expect(await tablesIn('public')).toEqual([]);
        expect(await tablesIn('candor_app')).toEqual(expect.arrayContaining(['audit_entry', 'audit_batch', 'customer', 'consent_state', 'erased_subject', 'subject_pseudonym']));
      } finally {
        await admin.end();
        await scratch.drop();
      }
    });

  it('migrate up again from every point a rollback can stop at', async () => {
    await dataSource.runMigrations({ transaction: 'each' });
    const created = await tables();
    for (let steps = 1; steps < MIGRATIONS.length; steps++) {
      for (let step = 0; step < steps; step++) await dataSource.undoLastMigration({ transaction: 'each' });
      await dataSource.runMigrations({ transaction: 'each' });
      expect([steps, await tables()]).toEqual([steps, created]);
    }
  });
});
