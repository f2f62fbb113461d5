import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config';
import { openServices, seedDemo } from '../../src/server/services';
import { createDataSource, migrate, MIGRATIONS } from '../../src/storage/data-source';
import { runCli } from '../support/child-server';
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

        // With server settings of the operator's own in the URL (options=), every connection still works in the
        // schema: pg let the URL's options replace Candor's, and the log's records went to public's tables.
        const withOptions = await openServices(loadConfig({ DATABASE_URL: `${scratch.url}?schema=candor_app&options=${encodeURIComponent('-c statement_timeout=60000')}`, NODE_ENV: 'test' }, {}));
        try {
          await withOptions.accessLog.append([{ at: new Date(), requestId: 'with-options', actor: null, purpose: null, operationName: null, subjectId: 'cus_with_options', coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
          expect((await withOptions.accessLogReader.page({ requestId: 'with-options' }, 10)).edges.map(({ node }) => node.subjectId)).toEqual(['cus_with_options']);
          expect(await withOptions.dataSource.query('SELECT current_schema() AS schema, current_setting($1) AS timeout', ['statement_timeout'])).toEqual([{ schema: 'candor_app', timeout: '1min' }]);
        } finally {
          await withOptions.close();
        }
        expect(await tablesIn('public')).toEqual([]);
        expect((await admin.query("SELECT count(*)::int AS n FROM candor_app.subject_pseudonym WHERE subject_id = 'cus_with_options'")).rows).toEqual([{ n: 1 }]);
      } finally {
        await admin.end();
        await scratch.drop();
      }
    });

  /**
   * Runs `work` on a PostgreSQL database of its own holding `schemas`, with an admin connection and `open`,
   * which initialises a DataSource for the Candor installation in a schema; closes and drops it all after.
   */
  async function withInstallations(schemas: string[], work: (admin: Client, open: (schema: string) => Promise<DataSource>) => Promise<void>): Promise<void> {
    const scratch = await createTestDatabase('postgres');
    const admin = new Client({ connectionString: scratch.url });
    await admin.connect();
    const opened: DataSource[] = [];
    try {
      await admin.query(schemas.map((schema) => `CREATE SCHEMA ${schema}`).join('; '));
      await work(admin, async (schema) => {
        const source = createDataSource(loadConfig({ DATABASE_URL: `${scratch.url}?schema=${schema}`, NODE_ENV: 'test' }, {}).database);
        opened.push(source);
        await source.initialize();
        return source;
      });
    } finally {
      for (const source of opened) if (source.isInitialized) await source.destroy();
      await admin.end();
      await scratch.drop();
    }
  }

  if (driver === 'postgres')
    it('migrate two Candor schemas of one database, each by two runs at once, each guarding its own log only', () =>
      withInstallations(['candor_a', 'candor_b', 'other_app'], async (admin, open) => {
        const opened = new Map<string, DataSource>();
        const run = async (schema: string) => {
          const source = await open(schema);
          opened.set(schema, source);
          return migrate(source);
        };
        // Two instances of each of two installations start at once: per schema, one applies every migration, the other finds none left.
        const applied = await Promise.all([run('candor_a'), run('candor_b'), run('candor_a'), run('candor_b')]);
        expect([applied[0].length + applied[2].length, applied[1].length + applied[3].length]).toEqual([MIGRATIONS.length, MIGRATIONS.length]);
        for (const schema of ['candor_a', 'candor_b']) await expect(admin.query(`DROP TABLE ${schema}.audit_checkpoint`)).rejects.toThrow('the access log is append-only');
        // Another application's table of a log table's name is its own business.
        await admin.query('CREATE TABLE other_app.audit_entry (id integer)');
        await admin.query('DROP TABLE other_app.audit_entry');
        // Rolled back in turns — one installation below the per-schema guard, then the other all the way:
        // neither's guard stands in the other's way.
        // By schema: the four runs open their connections in whatever order they finish.
        const [a, b] = [opened.get('candor_a')!, opened.get('candor_b')!];
        const below = MIGRATIONS.length - MIGRATIONS.findIndex((migration) => migration.name === 'DropGuardPerSchema1764600000000');
        for (let step = 0; step < below; step++) await b.undoLastMigration({ transaction: 'each' });
        for (const source of [a, b]) while ((await source.query('SELECT count(*) AS applied FROM migrations'))[0].applied > 0) await source.undoLastMigration({ transaction: 'each' });
        const tablesLeft = await admin.query("SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('candor_a', 'candor_b', 'candor_guard') AND tablename <> 'migrations'");
        expect(tablesLeft.rows).toEqual([]);
      }));

  if (driver === 'postgres')
    it('removing an installation (DROP SCHEMA … CASCADE) needs the prune flag; another installation keeps its guard', () =>
      withInstallations(['candor_a', 'candor_b'], async (admin, open) => {
        const a = await open('candor_a');
        await migrate(a);
        await migrate(await open('candor_b'));
        await expect(admin.query('DROP SCHEMA candor_a CASCADE')).rejects.toThrow(/append-only: dropping candor_a\.\S+ refused/);
        await a.destroy();
        await admin.query("BEGIN; SET LOCAL candor.audit_prune = 'on'; DROP SCHEMA candor_a CASCADE; COMMIT");
        expect((await admin.query("SELECT 1 FROM pg_namespace WHERE nspname = 'candor_a'")).rows).toEqual([]);
        await expect(admin.query('DROP TABLE candor_b.audit_checkpoint')).rejects.toThrow('the access log is append-only');
        await expect(admin.query('DROP SCHEMA candor_b CASCADE')).rejects.toThrow(/append-only: dropping candor_b\.\S+ refused/);
        // A schema of the removed one's name is no Candor installation.
        await admin.query('CREATE SCHEMA candor_a; CREATE TABLE candor_a.audit_entry (id integer); DROP SCHEMA candor_a CASCADE');
      }));

  if (driver === 'postgres')
    it('a candor_guard schema another role made first is not trusted: the guard migration fails, naming the role, and runs once a superuser dropped it', () =>
      withInstallations(['candor_a'], async (admin, open) => {
        const intruder = `candor_intruder_${process.pid}`;
        await admin.query(`CREATE ROLE ${intruder}`);
        try {
          // Made ahead by a role that could then empty the list of guarded schemas, or own the guard's function.
          await admin.query(`CREATE SCHEMA candor_guard AUTHORIZATION ${intruder}; SET ROLE ${intruder}; CREATE TABLE candor_guard.installation (schema_name text PRIMARY KEY); RESET ROLE`);
          const a = await open('candor_a');
          await expect(migrate(a)).rejects.toThrow(
            `schema candor_guard already exists, and role ${intruder} (not a superuser) owns it or something in it: it cannot be trusted to guard the access log. Inspect it, drop it as a superuser (DROP SCHEMA candor_guard CASCADE) and migrate again`,
          );
          expect((await admin.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', ['candor_guard_refuse_log_drop'])).rows).toEqual([]);
          await admin.query('DROP SCHEMA candor_guard CASCADE');
          const applied = await migrate(a);
          expect(applied[0]).toBe('DropGuardOutsideTheSchema1764640000000');
          await expect(admin.query('DROP TABLE candor_a.audit_checkpoint')).rejects.toThrow('the access log is append-only');
          // A database the unchecked first version migrated: its later migration finds the schema another role's.
          await admin.query(`ALTER SCHEMA candor_guard OWNER TO ${intruder}`);
          // Back to before GuardSchemaTrusted1764680000000 (and the migrations after it).
          for (let undone = 0; undone < 3; undone++) await a.undoLastMigration({ transaction: 'each' });
          await expect(migrate(a)).rejects.toThrow(`schema candor_guard already exists, and role ${intruder} (not a superuser) owns it or something in it`);
          await admin.query('ALTER SCHEMA candor_guard OWNER TO CURRENT_USER');
          expect(await migrate(a)).toEqual(['GuardSchemaTrusted1764680000000', 'PseudonymBinding1764700000000', 'ErasedPseudonyms1764720000000']);
        } finally {
          await admin.query(`DROP OWNED BY ${intruder}; DROP ROLE ${intruder}`);
        }
      }));

  if (driver === 'postgres')
    it('says when a role without superuser rights migrated and the log is unguarded, and a superuser\'s migrate installs the guard then', async () => {
      const owner = `candor_owner_${process.pid}`;
      const name = `candor_unguarded_${process.pid}`;
      const admin = new Client({ connectionString: database.url });
      await admin.connect();
      await admin.query(`CREATE ROLE ${owner} LOGIN`);
      await admin.query(`CREATE DATABASE ${name} OWNER ${owner}`);
      const as = (role: string) => {
        const url = new URL(database.url);
        url.username = role;
        url.pathname = `/${name}`;
        return url.toString();
      };
      const warning = 'candor: warning: the access log is not guarded against DROP on this database (an event trigger only a superuser can create, and this role is not one)';
      try {
        const byOwner = await runCli(['migrate'], { DATABASE_URL: as(owner) });
        expect([byOwner.code, byOwner.stderr]).toEqual([0, expect.stringContaining(warning)]);
        const unguarded = new Client({ connectionString: as(owner) });
        await unguarded.connect();
        try {
          // Unguarded indeed: the owner could drop the log (in a transaction rolled back, to keep it).
          await unguarded.query('BEGIN; DROP TABLE audit_checkpoint; ROLLBACK');
          expect((await runCli(['migrate'], { DATABASE_URL: as(new URL(database.url).username) })).stderr).not.toContain(warning);
          await expect(unguarded.query('DROP TABLE audit_checkpoint')).rejects.toThrow('the access log is append-only');
          expect((await runCli(['migrate'], { DATABASE_URL: as(owner) })).stderr).not.toContain(warning);
        } finally {
          await unguarded.end();
        }
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.query(`DROP ROLE ${owner}`);
        await admin.end();
      }
    });

  it('migrate up again from every point a rollback can stop at', async () => {
    // Monthly partitions are made from the current month on: a run crossing a month's end makes later ones.
    const shapes = async () => (await tables()).map((name) => name.replace(/_p\d{4}_\d{2}$/, '_p<month>'));
    await dataSource.runMigrations({ transaction: 'each' });
    const created = await shapes();
    for (let steps = 1; steps < MIGRATIONS.length; steps++) {
      for (let step = 0; step < steps; step++) await dataSource.undoLastMigration({ transaction: 'each' });
      await dataSource.runMigrations({ transaction: 'each' });
      expect([steps, await shapes()]).toEqual([steps, created]);
    }
  });
});
