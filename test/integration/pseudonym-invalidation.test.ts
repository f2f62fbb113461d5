import { Client } from 'pg';
import { isErasedBound, pseudonymBinding, pseudonymBindingKey } from '../../src/audit/pseudonym-binding';
import { DEVELOPMENT_SECRET } from '../../src/config';
import { DataSource } from 'typeorm';
import { entriesOf } from '../../src/audit/access-log';
import type { AuditStore } from '../../src/audit/audit-store';
import { AUDIT_APPLICATION_NAME, AUDIT_LISTENER_APPLICATION_NAME, PostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { SqliteAuditStore } from '../../src/audit/sqlite-audit-store';
import { MIGRATIONS } from '../../src/storage/data-source';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';
import { eventually } from '../support/eventually';
import { DEFAULT_TEST_DATABASE_URL } from '../support/global-setup';

/** What the stores bind their mappings under (any key: nothing here checks a binding). */
const BINDING_KEY = pseudonymBindingKey(DEVELOPMENT_SECRET);

let appends = 0;

/** Appends one record about `subjectId` through `store`; returns the pseudonym it was recorded under (read through `admin`). */
async function recordedPseudonym(store: AuditStore, admin: DataSource, subjectId: string): Promise<string> {
  const requestId = `invalidation-${++appends}`;
  const record = { at: new Date(), requestId, actor: null, purpose: 'essential.service', operationName: 'Invalidation', subjectId, coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED' as const, reason: 'LEGAL_BASIS', legalBasis: 'contract' };
  await store.append(entriesOf([record]), new Date().toISOString());
  const placeholder = admin.options.type === 'postgres' ? '$1' : '?';
  const rows: Array<{ subject_pseudonym: string }> = await admin.query(`SELECT subject_pseudonym FROM audit_record WHERE request_id = ${placeholder}`, [requestId]);
  expect(rows).toHaveLength(1);
  return rows[0].subject_pseudonym;
}

(DRIVERS.includes('postgres') ? describe : describe.skip)('an erasure reaches the pseudonym cache of every instance on PostgreSQL', () => {
  let database: TestDatabase;
  let admin: DataSource;
  /** Two instances' stores on one database, plus any a test opens. */
  const stores: PostgresAuditStore[] = [];
  let a: PostgresAuditStore;
  let b: PostgresAuditStore;
  const appendFor = (store: PostgresAuditStore, subjectId: string) => recordedPseudonym(store, admin, subjectId);
  const subjectOf = async (pseudonym: string): Promise<string | undefined> => (await admin.query('SELECT subject_id FROM subject_pseudonym WHERE pseudonym = $1', [pseudonym]))[0]?.subject_id;

  /**
   * Polls until `store` records `subjectId` under a pseudonym other than the erased one; it must map to no
   * one, and so must the store's later appends, each under a pseudonym of its own. (An append racing the
   * notification may still carry the erased pseudonym: NOTIFY reaches the other instances asynchronously.)
   */
  const expectErasureSeen = async (store: PostgresAuditStore, subjectId: string, erased: string): Promise<void> => {
    let pseudonym = erased;
    await eventually(async () => (pseudonym = await appendFor(store, subjectId)) !== erased, `the erasure of ${subjectId} reaches the store`);
    const later = [pseudonym];
    for (let append = 0; append < 3; append++) later.push(await appendFor(store, subjectId));
    expect(new Set(later).size).toBe(later.length);
    for (const recorded of later) expect(await subjectOf(recorded)).toBeUndefined();
    expect(await admin.query('SELECT subject_id FROM subject_pseudonym WHERE subject_id = $1', [subjectId])).toEqual([]);
  };

  let probes = 0;
  /** Whether `store` takes pseudonyms from its cache: one whose mapping is deleted behind its back (no notification) stays in use. */
  const usesItsCache = async (store: PostgresAuditStore): Promise<boolean> => {
    const probe = `cus_probe_${++probes}`;
    const pseudonym = await appendFor(store, probe);
    await admin.query('DELETE FROM subject_pseudonym WHERE subject_id = $1', [probe]);
    return (await appendFor(store, probe)) === pseudonym;
  };

  const connectionsNamed = async (applicationName: string): Promise<number> =>
    Number((await admin.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [applicationName]))[0].n);

  /** Refuses (or allows again) new connections to the test database; open ones stay. Run from the admin database. */
  const allowConnections = async (allowed: boolean): Promise<void> => {
    const client = new Client({ connectionString: process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(`ALTER DATABASE ${new URL(database.url).pathname.slice(1)} ALLOW_CONNECTIONS ${allowed}`);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    admin = new DataSource({ type: 'postgres', url: database.url, migrations: MIGRATIONS });
    await admin.initialize();
    await admin.runMigrations({ transaction: 'each' });
    stores.push((a = new PostgresAuditStore({ driver: 'postgres', url: database.url }, BINDING_KEY)), (b = new PostgresAuditStore({ driver: 'postgres', url: database.url }, BINDING_KEY)));
    await eventually(async () => (await usesItsCache(a)) && (await usesItsCache(b)), 'both stores listen');
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await admin?.destroy();
    await database?.drop();
  });

  it('makes another instance record the subject under pseudonyms that map to no one once one instance erased it', async () => {
    const subject = 'cus_erased_elsewhere';
    const erased = await appendFor(a, subject);
    expect(await appendFor(b, subject)).toBe(erased);
    await a.forget(subject);
    expect(await subjectOf(erased)).toBeUndefined();
    await expectErasureSeen(b, subject, erased);
  });

  it('leaves no mapping of an erased subject behind, however appends through other instances race the erasure', async () => {
    const racers = [a, b, ...Array.from({ length: 2 }, () => new PostgresAuditStore({ driver: 'postgres', url: database.url }, BINDING_KEY))];
    stores.push(...racers.slice(2));
    for (let round = 0; round < 60; round++) {
      const subjectId = `cus_race_${round}`;
      // Half the subjects had a mapping before (its row is being deleted while another instance inserts).
      if (round % 2 === 0) await appendFor(a, subjectId);
      await Promise.all([a.forget(subjectId), ...racers.map((store) => appendFor(store, subjectId).catch(() => undefined))]);
    }
    const [{ remaining }] = await admin.query('SELECT count(*)::int AS remaining FROM subject_pseudonym p JOIN erased_subject e ON e.subject_id = p.subject_id');
    expect(remaining).toBe(0);
  });

  it('deletes a mapping that raced its erasure only together with remembering its pseudonym as erased', async () => {
    // The state a lost race leaves: the subject is erased, and an appender's mapping made meanwhile survived.
    const subject = 'cus_mapped_after_erasure';
    const raced = 'psn_raced_mapping';
    await admin.query('INSERT INTO erased_subject (subject_id, erased_at) VALUES ($1, now())', [subject]);
    await admin.query('INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at, binding) VALUES ($1, $2, now(), $3)', [subject, raced, pseudonymBinding(BINDING_KEY, raced, subject)]);
    // Remembering fails (as a crash between the two statements would stop it): the mapping must stay for the next try.
    await admin.query(`CREATE FUNCTION refuse_erased_pseudonym() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await admin.query('CREATE TRIGGER refuse_erased_pseudonym BEFORE INSERT ON erased_pseudonym FOR EACH ROW EXECUTE FUNCTION refuse_erased_pseudonym()');
    try {
      await expect(appendFor(a, subject)).rejects.toThrow('refused by the test');
      expect(await subjectOf(raced)).toBe(subject);
    } finally {
      await admin.query('DROP TRIGGER refuse_erased_pseudonym ON erased_pseudonym');
      await admin.query('DROP FUNCTION refuse_erased_pseudonym()');
    }
    const recorded = await appendFor(a, subject);
    expect(recorded).not.toBe(raced);
    expect(await subjectOf(raced)).toBeUndefined();
    const remembered: Array<{ pseudonym: string; binding: string }> = await admin.query('SELECT pseudonym, binding FROM erased_pseudonym WHERE pseudonym = ANY($1::text[])', [[raced, recorded]]);
    expect(remembered.map((row) => row.pseudonym).sort()).toEqual([raced, recorded].sort());
    for (const { pseudonym, binding } of remembered) expect(isErasedBound(BINDING_KEY, pseudonym, binding)).toBe(true);
    // Left by a process that stopped before it could delete it, with no record about the subject to come: a
    // store that starts deletes it, remembering its pseudonym.
    const left = 'cus_mapping_left_by_a_crash';
    await admin.query('INSERT INTO erased_subject (subject_id, erased_at) VALUES ($1, now())', [left]);
    await admin.query('INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at, binding) VALUES ($1, $2, now(), $3)', [left, 'psn_left', pseudonymBinding(BINDING_KEY, 'psn_left', left)]);
    stores.push(new PostgresAuditStore({ driver: 'postgres', url: database.url }, BINDING_KEY));
    await eventually(async () => (await subjectOf('psn_left')) === undefined, 'the starting store deletes the mapping');
    const [sweptBinding] = await admin.query('SELECT binding FROM erased_pseudonym WHERE pseudonym = $1', ['psn_left']);
    expect(isErasedBound(BINDING_KEY, 'psn_left', sweptBinding?.binding ?? null)).toBe(true);
  });

  it('does not use its cache while its listener is down, and trusts it again once it listens again', async () => {
    const subject = 'cus_erased_while_deaf';
    const erased = await appendFor(a, subject);
    expect(await appendFor(b, subject)).toBe(erased);
    // Keep the listeners down (their reconnects are refused) while the pools' open connections keep working.
    await allowConnections(false);
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [AUDIT_LISTENER_APPLICATION_NAME]);
      await eventually(async () => (await connectionsNamed(AUDIT_LISTENER_APPLICATION_NAME)) === 0, 'the listeners are gone');
      expect(await usesItsCache(b)).toBe(false);
      await a.forget(subject); // B hears nothing
      const recorded = await appendFor(b, subject);
      expect(recorded).not.toBe(erased);
      expect(await subjectOf(recorded)).toBeUndefined();
    } finally {
      await allowConnections(true);
    }
    await eventually(() => usesItsCache(b), 'B listens again');
    const another = 'cus_erased_after_reconnecting';
    const cached = await appendFor(b, another);
    expect(await appendFor(b, another)).toBe(cached);
    await a.forget(another);
    await expectErasureSeen(b, another, cached);
  });

  it('leaves no connection behind when closed, even while its listener is still connecting', async () => {
    stores.push(new PostgresAuditStore({ driver: 'postgres', url: database.url }, BINDING_KEY));
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await eventually(async () => (await connectionsNamed(AUDIT_LISTENER_APPLICATION_NAME)) + (await connectionsNamed(AUDIT_APPLICATION_NAME)) === 0, 'no connection of a closed store');
  });
});

describe('an erasure made through another SQLite connection reaches the log writer of a running server', () => {
  let database: TestDatabase;
  let admin: DataSource;
  let server: SqliteAuditStore;
  let cli: SqliteAuditStore;
  const appendFor = (store: SqliteAuditStore, subjectId: string) => recordedPseudonym(store, admin, subjectId);

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    const path = database.url.replace(/^sqlite:/, '');
    admin = new DataSource({ type: 'better-sqlite3', database: path, migrations: MIGRATIONS });
    await admin.initialize();
    await admin.runMigrations({ transaction: 'each' });
    server = new SqliteAuditStore(path, BINDING_KEY);
    cli = new SqliteAuditStore(path, BINDING_KEY);
  });
  afterAll(async () => {
    await Promise.all([server?.close(), cli?.close()]);
    await admin?.destroy();
    await database?.drop();
  });

  it('records the subject under pseudonyms that map to no one after `subject erase` ran in another process (another connection)', async () => {
    const subject = 'cus_erased_by_the_cli';
    const erased = await appendFor(server, subject);
    expect(await appendFor(server, subject)).toBe(erased); // cached
    await cli.forget(subject);
    const recorded = [await appendFor(server, subject), await appendFor(server, subject)];
    expect(new Set([erased, ...recorded]).size).toBe(3);
    expect(await admin.query('SELECT subject_id FROM subject_pseudonym WHERE subject_id = ?', [subject])).toEqual([]);
    expect(await admin.query('SELECT subject_id FROM erased_subject WHERE subject_id = ?', [subject])).toEqual([{ subject_id: subject }]);
  });
});
