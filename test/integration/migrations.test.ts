import { DataSource } from 'typeorm';
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
});
