import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { Client, type QueryConfig } from 'pg';
import { DataSource, type Logger } from 'typeorm';
import type { DatabaseConfig } from '../config';
import { ActorEntity } from '../actors/actor.entity';
import { AUDIT_ENTITIES } from '../audit/audit.entities';
import { ConsentEventEntity } from '../consent/consent-event.entity';
import { ConsentReceiptEntity } from '../consent/consent-receipt.entity';
import { ConsentStateEntity } from '../consent/consent-state.entity';
import { SubjectMessageEntity } from '../consent/subject-message.entity';
import { ConsentImportEntity } from '../consent/consent-import.entity';
import { CustomerEntity } from '../domain/customer.entity';
import { PaymentEntity } from '../domain/payment.entity';
import { WatchEventEntity } from '../domain/watch-event.entity';
import { InitialSchema1764380000000 } from '../../migrations/1764380000000-initial-schema';
import { TamperEvidentAccessLog1764400000000 } from '../../migrations/1764400000000-tamper-evident-access-log';
import { ConsentLifecycle1764420000000 } from '../../migrations/1764420000000-consent-lifecycle';
import { MaskedRecords1764440000000 } from '../../migrations/1764440000000-masked-records';
import { TimePartitionedAccessLog1764460000000 } from '../../migrations/1764460000000-time-partitioned-access-log';
import { CopyAheadOfTheChainLock1764480000000 } from '../../migrations/1764480000000-copy-ahead-of-the-chain-lock';
import { ConsentInTheOrderMade1764500000000 } from '../../migrations/1764500000000-consent-in-the-order-made';
import { ErasureIsFinal1764520000000 } from '../../migrations/1764520000000-erasure-is-final';
import { CheckpointKeyRotation1764540000000 } from '../../migrations/1764540000000-checkpoint-key-rotation';
import { SharedRateLimit1764560000000 } from '../../migrations/1764560000000-shared-rate-limit';
import { ErasedSubjectsConsentPseudonymised1764580000000 } from '../../migrations/1764580000000-erased-subjects-consent-pseudonymised';
import { DropGuardPerSchema1764600000000 } from '../../migrations/1764600000000-drop-guard-per-schema';
import { ConsentImports1764620000000 } from '../../migrations/1764620000000-consent-imports';
import { DropGuardOutsideTheSchema1764640000000 } from '../../migrations/1764640000000-drop-guard-outside-the-schema';
import { SecretFingerprint1764660000000 } from '../../migrations/1764660000000-secret-fingerprint';
import { GuardSchemaTrusted1764680000000 } from '../../migrations/1764680000000-guard-schema-trusted';
import { PseudonymBinding1764700000000 } from '../../migrations/1764700000000-pseudonym-binding';
import { ErasedPseudonyms1764720000000 } from '../../migrations/1764720000000-erased-pseudonyms';
import { withMigrationSecret } from '../audit/pseudonym-binding';
import { abandonedSessionBounds, isQueryReadTimeout, sessionOptions } from './postgres-sessions';
import { SecretFingerprintEntity } from './secret-fingerprint.entity';
import { configureSqliteConnection, createPrivateDatabaseFile, SQLITE_BUSY_TIMEOUT_MS } from './sqlite-file';

export const ENTITIES = [CustomerEntity, PaymentEntity, WatchEventEntity, ActorEntity, ConsentEventEntity, ConsentStateEntity, ConsentReceiptEntity, SubjectMessageEntity, ConsentImportEntity, SecretFingerprintEntity, ...AUDIT_ENTITIES];
export const MIGRATIONS = [InitialSchema1764380000000, TamperEvidentAccessLog1764400000000, ConsentLifecycle1764420000000, MaskedRecords1764440000000, TimePartitionedAccessLog1764460000000, CopyAheadOfTheChainLock1764480000000, ConsentInTheOrderMade1764500000000, ErasureIsFinal1764520000000, CheckpointKeyRotation1764540000000, SharedRateLimit1764560000000, ErasedSubjectsConsentPseudonymised1764580000000, DropGuardPerSchema1764600000000, ConsentImports1764620000000, DropGuardOutsideTheSchema1764640000000, SecretFingerprint1764660000000, GuardSchemaTrusted1764680000000, PseudonymBinding1764700000000, ErasedPseudonyms1764720000000];

export interface DataSourceOptions {
  /** A TypeORM logger; tests use one to count the SQL a request issues. */
  readonly logger?: Logger;
  /**
   * PostgreSQL: PostgreSQL cancels a statement that runs longer than this many ms (`statement_timeout`); one
   * without any answer a moment later (a stalled network or server) fails in the client (pg's
   * `query_timeout`), and `guardConnections` closes its connection. Unset: statements wait as long as the
   * database takes.
   */
  readonly queryTimeoutMs?: number;
}

/**
 * Builds the DataSource for the configured store. Never `synchronize`: the schema comes from migrations.
 * SQLite runs in WAL mode on a file only its owner can read, with the settings of `configureSqliteConnection`;
 * the busy timeout lets the CLI and the server share the file.
 */
export function createDataSource(database: DatabaseConfig, options: DataSourceOptions = {}): DataSource {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    migrationsRun: false,
    logging: options.logger ? ('all' as const) : false,
    logger: options.logger,
  };
  if (database.driver === 'sqlite') {
    createPrivateDatabaseFile(database.path);
    return new DataSource({
      ...common,
      type: 'better-sqlite3',
      database: database.path,
      enableWAL: true,
      timeout: SQLITE_BUSY_TIMEOUT_MS,
      prepareDatabase: configureSqliteConnection,
    });
  }
  return new DataSource({
    ...common,
    type: 'postgres',
    url: database.url,
    schema: database.schema,
    // TypeORM qualifies its own statements with the schema; migrations' and the stores' hand-written SQL
    // names tables bare, so the connections look there first too (as the access log's own pool does).
    extra: {
      max: 10,
      connectionTimeoutMillis: 5_000,
      ...(options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs + UNANSWERED_GRACE_MS } : {}),
      options: sessionOptions(database, options.queryTimeoutMs ? abandonedSessionBounds(options.queryTimeoutMs) : {}),
    },
  });
}

/** How much longer than the statement timeout the client waits for PostgreSQL's own cancellation. */
const UNANSWERED_GRACE_MS = 1_000;

/**
 * Keeps the pool's connections usable. A PostgreSQL connection the server terminates emits 'error' on its
 * client; pg can do so while the client is checked out and has no listener, which would crash the process,
 * so every client gets a listener: the failing query still rejects, and the request path turns that into a
 * coded refusal. A statement that timed out (`queryTimeoutMs`) is still running, or stalled, on its
 * connection, and the pool would hand that connection out again with every later statement queued behind it:
 * its connection is closed, and the pool discards it.
 */
export function guardConnections(dataSource: DataSource): void {
  type Client = { on(event: string, listener: () => void): void; query(...args: unknown[]): unknown; end(): Promise<void> };
  const pool = (dataSource.driver as unknown as { master?: { on(event: string, listener: (client: Client) => void): void; _clients?: Client[] } }).master;
  const guard = (client: Client) => {
    client.on('error', () => undefined);
    const query = client.query;
    client.query = function (this: Client, ...args: unknown[]) {
      const answer = query.apply(this, args);
      if (answer instanceof Promise) {
        answer.catch((error: unknown) => {
          if (isQueryReadTimeout(error)) client.end().catch(() => undefined);
        });
      }
      return answer;
    };
  };
  pool?._clients?.forEach(guard); // connections opened while initialising
  pool?.on('connect', guard);
}

/** Another migration run (or demo seeding) held the database's setup lock for longer than a run waits. */
export class MigrationTurnTimeout extends Error {}

/**
 * The advisory lock one migration run holds at a time, in the whole database: runs on different schemas take
 * turns too, since some of what a migration creates (an event trigger) is named in the database, not the schema.
 * Demo seeding takes the same turns.
 */
const MIGRATION_LOCK_KEY = 0x63616e6d6967;
/** How long a migration run waits for another one (an instance starting beside this one) to finish. */
const MIGRATION_LOCK_WAIT_MS = 120_000;

/**
 * Runs `work` holding the database's setup lock on PostgreSQL: instances started together would otherwise
 * each create the same tables, or seed the same rows, and fail on each other's. SQLite: `work` as it is
 * (its writes take turns on the file).
 */
export function inSetupTurn<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  return inAdvisoryTurn(dataSource, MIGRATION_LOCK_KEY, MIGRATION_LOCK_WAIT_MS, work, () => new MigrationTurnTimeout(`another migration or demo seeding of this database has not finished for ${MIGRATION_LOCK_WAIT_MS / 1000} s; try again once it has`));
}

/** A statement that fails in the client when no answer came within `ms` (pg reads `query_timeout` per query too; its types omit it). */
function withReadTimeout(text: string, values: unknown[], ms: number): QueryConfig {
  return { text, values, query_timeout: ms } as QueryConfig;
}

/** Connections this process holds advisory-lock turns on at once; more turns wait for one (within their wait). */
const TURN_CONNECTIONS = 4;
let turnsOpen = 0;
const turnsWaiting: Array<() => void> = [];

/** A slot for a turn's connection, or false when none came free within `waitMs`. */
async function turnSlot(waitMs: number): Promise<boolean> {
  if (turnsOpen < TURN_CONNECTIONS) {
    turnsOpen++;
    return true;
  }
  return new Promise((resolve) => {
    const granted = () => {
      clearTimeout(timer);
      resolve(true); // the slot passes from the turn that freed it
    };
    const timer = setTimeout(() => {
      turnsWaiting.splice(turnsWaiting.indexOf(granted), 1);
      resolve(false);
    }, waitMs);
    turnsWaiting.push(granted);
  });
}

function freeTurnSlot(): void {
  const next = turnsWaiting.shift();
  if (next) next();
  else turnsOpen--;
}

/**
 * Runs `work` while a PostgreSQL session advisory lock is held (a number, or a text hashed to one here: the
 * text never reaches the database, whatever characters it holds), so processes sharing the database take
 * turns at it; waits at most `waitMs` for the lock, then throws what `timedOut` makes. The lock is held on a
 * connection of its own, outside the pool: the wait may outlast the server's statement bound
 * (`CANDOR_QUERY_TIMEOUT_MS`, or one set on the role), and holding it takes no pool connection `work` needs.
 * At most `TURN_CONNECTIONS` such connections at once (a burst of erasures must not exhaust the database's
 * connections, the access log's among them); a turn that gets none within `waitMs` times out too. A
 * connection that stops answering fails the wait shortly after `waitMs`. SQLite: `work` as it is.
 */
export async function inAdvisoryTurn<T>(dataSource: DataSource, key: number | string, waitMs: number, work: () => Promise<T>, timedOut: () => Error): Promise<T> {
  if (dataSource.options.type !== 'postgres') return work();
  const lockKey = String(typeof key === 'number' ? key : createHash('sha256').update(key, 'utf8').digest().readBigInt64BE(0));
  const waitUntil = Date.now() + waitMs;
  if (!(await turnSlot(waitMs))) throw timedOut();
  const turn = new Client({ connectionString: dataSource.options.url, application_name: 'candor-turn', connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
  turn.on('error', () => undefined); // a connection the server drops fails its query; the session's lock goes with it
  try {
    await turn.connect();
    const remainingMs = Math.max(1, waitUntil - Date.now());
    try {
      // The session's own bounds: the wait's, and none on statements (a role's statement_timeout would cut the wait short).
      await turn.query(withReadTimeout(`SET lock_timeout = ${remainingMs}; SET statement_timeout = 0`, [], 5 * UNANSWERED_GRACE_MS));
      await turn.query(withReadTimeout('SELECT pg_advisory_lock($1::bigint)', [lockKey], remainingMs + UNANSWERED_GRACE_MS));
    } catch (error) {
      // 55P03: lock_not_available, the wait ran out; a connection that stopped answering times out too.
      if ((error as { code?: string }).code !== '55P03' && !isQueryReadTimeout(error)) throw error;
      throw timedOut();
    }
    return await work();
  } finally {
    // Ending the session releases its lock; a stalled connection is not waited for (it closes when the network gives up).
    await Promise.race([turn.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, UNANSWERED_GRACE_MS).unref())]);
    freeTurnSlot();
  }
}

/** Where a database stands against this build's migrations. */
export interface MigrationState {
  /** This build's migrations the database has not applied. */
  readonly pending: string[];
  /**
   * The migrations the database has applied that this build does not know: a newer Candor migrated it. Code
   * older than its schema may decide on data it does not understand (an erasure mark, a new column of the
   * log), so such a process must not serve or write.
   */
  readonly newer: string[];
}

/** Reads the applied migrations once and compares them with this build's. */
export async function migrationState(dataSource: DataSource): Promise<MigrationState> {
  const known = dataSource.migrations.map((migration) => migration.name ?? migration.constructor.name);
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  const runner = dataSource.createQueryRunner();
  try {
    // A database no Candor has migrated yet has no table of them.
    const applied = new Set(
      (await runner.hasTable(table)) ? ((await runner.query(`SELECT name FROM ${table}`)) as Array<{ name: string }>).map((row) => row.name) : [],
    );
    const knownNames = new Set(known);
    return { pending: known.filter((name) => !applied.has(name)), newer: [...applied].filter((name) => !knownNames.has(name)) };
  } finally {
    await runner.release();
  }
}

/**
 * Applies pending migrations; returns the names applied. On PostgreSQL, runs take turns (`inSetupTurn`):
 * the later ones find nothing left to apply. `secret`, CANDOR_SECRET, is handed to the migrations that make
 * something with it (`withMigrationSecret`: binding an upgraded log's pseudonym mappings); without it such a
 * migration refuses a database it would have to make something for.
 */
export async function migrate(dataSource: DataSource, secret?: string): Promise<string[]> {
  return inSetupTurn(dataSource, () => withMigrationSecret(secret, async () => (await dataSource.runMigrations({ transaction: 'each' })).map((migration) => migration.name)));
}
