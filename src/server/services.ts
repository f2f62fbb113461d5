import { existsSync, statSync } from 'node:fs';
import type { DataSource, Logger } from 'typeorm';
import { ActorDirectory, holdsDemoKeysMadeWith } from '../actors/actor-directory';
import { AccessLog, createAuditStore } from '../audit/access-log';
import { AccessLogReader } from '../audit/access-log-reader';
import { checkpointSigner, type CheckpointSigner } from '../audit/checkpoints';
import { pseudonymBindingKey } from '../audit/pseudonym-binding';
import { verifyAccessLog, type VerifyOptions, type VerifyReport } from '../audit/verify';
import { createMasker, type Masker } from '../policy/masking';
import { type CandorConfig, ConfigError, type DatabaseConfig, derivedKey, DEVELOPMENT_SECRET } from '../config';
import { ConsentEventEntity } from '../consent/consent-event.entity';
import { ConsentLedger } from '../consent/consent-ledger';
import { buildDemoData, DEMO_SEED_TIME, insertDemoDomain } from '../domain/demo-seed';
import { CustomerEntity } from '../domain/customer.entity';
import { DomainStore } from '../domain/domain-store';
import { assertGoverned, type FieldGovernance, readGovernance } from '../graphql/governance-catalog';
import type { ReceiptContext } from '../consent/consent-receipt';
import { covers } from '../taxonomy/keys';
import { buildCandorSchema } from '../graphql/schema';
import { enforceGovernance, type GovernedSchema } from '../policy/enforcement';
import { createDataSource, guardConnections, inSetupTurn, migrate, migrationState } from '../storage/data-source';
import { checkSecret } from '../storage/secret-fingerprint';
import { RateLimiter, type RequestBudget, SharedRateLimiter } from './rate-limiter';
import type { DestinationStream, Logger as JsonLogger } from 'pino';
import { type CandorMetrics, countDecisions, createLogger, createMetrics } from './observability';
import { loadFideslangKeys, loadTaxonomy, type Taxonomy } from '../taxonomy/taxonomy';

/** Everything a Candor process (server or CLI) works with, wired once. */
export interface CandorServices {
  readonly config: CandorConfig;
  readonly taxonomy: Taxonomy;
  readonly dataSource: DataSource;
  readonly domain: DomainStore;
  readonly consent: ConsentLedger;
  readonly actors: ActorDirectory;
  readonly accessLog: AccessLog;
  readonly accessLogReader: AccessLogReader;
  readonly checkpointSigner: CheckpointSigner;
  /** What the log's pseudonym mappings are bound under, derived from the secret (`pseudonym-binding.ts`). */
  readonly pseudonymBindingKey: Buffer;
  verifyAccessLog(options?: VerifyOptions): Promise<VerifyReport>;
  readonly clock: () => Date;
  readonly metrics: CandorMetrics;
  readonly logger: JsonLogger;
  /** What consent receipts say about each purpose. */
  readonly receipts: ReceiptContext;
  /** Every field's governance, read once from the annotations (reports, receipts, the privacy page). */
  readonly fields: readonly FieldGovernance[];
  /** Reduces values by the taxonomy's masking strategies; keyed hashes use a key derived from the secret. */
  readonly masker: Masker;
  /** Each actor's requests a minute (CANDOR_RATE_LIMIT_PER_MINUTE), kept as CANDOR_RATE_LIMIT_SCOPE says. */
  readonly actorBudget: RequestBudget;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** A TypeORM logger (tests count SQL with it). */
  readonly logger?: Logger;
  /** The time source; tests inject a controllable clock. */
  readonly clock?: () => Date;
  /** Where the JSON log goes (default stdout; tests read it). */
  readonly logDestination?: DestinationStream;
  /**
   * Pending migrations: `apply` them (the default: the server, the demo seed, tests), leave them (`false`:
   * the migrate command), or `require` none — commands that work on an existing Candor database refuse a
   * missing or unmigrated one instead of creating it, or of migrating it as a side effect.
   */
  readonly migrate?: 'apply' | 'require' | false;
  /**
   * For the server: its PostgreSQL statements are bounded by `CANDOR_QUERY_TIMEOUT_MS`. Migrations then run on
   * connections of their own, without the bound (one may rewrite a large table). Commands run unbounded.
   */
  readonly serving?: boolean;
}

/** The personal categories each purpose may touch, from the schema's annotations (named on receipts). */
function receiptContext(taxonomy: Taxonomy, fields: readonly FieldGovernance[]): ReceiptContext {
  return {
    taxonomy,
    categoriesFor: (purpose) =>
      [...new Set(fields.filter((field) => taxonomy.categories.get(field.category)?.personal && field.purposes.some((declared) => covers(declared, purpose) || covers(purpose, declared))).map((field) => field.category))].sort(),
  };
}

export function loadConfiguredTaxonomy(config: CandorConfig): Taxonomy {
  return loadTaxonomy(config.taxonomyPath, loadFideslangKeys(config.fideslangPath));
}

/**
 * Builds the governed schema and refuses, naming every coordinate, when any field is unannotated, names an
 * unknown category or purpose, is a non-nullable personal field, or ends up guarded by neither
 * enforcement point.
 */
export async function buildGovernedSchema(taxonomy: Taxonomy): Promise<GovernedSchema> {
  const schema = await buildCandorSchema(taxonomy);
  const fields = readGovernance(schema);
  assertGoverned(fields, taxonomy);
  return enforceGovernance(schema, fields, taxonomy);
}

/** Where a database is, for messages: the SQLite path, or PostgreSQL's host and database without credentials. */
function describeDatabase(database: DatabaseConfig): string {
  if (database.driver === 'sqlite') return database.path;
  const url = new URL(database.url);
  return `${url.host}${url.pathname}`;
}

/**
 * Why a process of this build must not work on a database a newer Candor migrated; where the database is
 * only when `database` is given (an operator's message: `/readyz` answers anyone who reaches it).
 */
export function newerBuildProblem(newer: readonly string[], database?: DatabaseConfig): string {
  return `the database${database ? ` at ${describeDatabase(database)}` : ''} was migrated by a newer Candor (${newer.join(', ')}): this build is older than its schema — run the newer version`;
}

/** Applies pending migrations on connections of their own, which no query timeout bounds. */
async function migrateUnbounded(database: DatabaseConfig, secret: string): Promise<void> {
  const migrating = createDataSource(database);
  await migrating.initialize();
  try {
    await migrate(migrating, secret);
  } finally {
    await migrating.destroy();
  }
}

/**
 * Refuses a PostgreSQL schema named in DATABASE_URL (`?schema=`) that is not there: migrations create tables
 * in it, never the schema itself, so a command would otherwise report pending migrations that `migrate`
 * cannot apply.
 */
async function checkSchemaExists(dataSource: DataSource, database: DatabaseConfig): Promise<void> {
  if (database.driver !== 'postgres' || database.schema === undefined) return;
  const found = await dataSource.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [database.schema]);
  if (found.length === 0) {
    throw new ConfigError(`the database at ${describeDatabase(database)} has no schema "${database.schema}" (DATABASE_URL's ?schema=): create it (CREATE SCHEMA ${database.schema}), or correct the URL`);
  }
}

/** Opens the store (applying migrations unless told otherwise) and wires the modules on it. */
export async function openServices(config: CandorConfig, options: OpenOptions = {}): Promise<CandorServices> {
  const taxonomy = loadConfiguredTaxonomy(config);
  const clock = options.clock ?? (() => new Date());
  const migrations = options.migrate ?? 'apply';
  // A wrong path would otherwise create an empty database, and the command would report on nothing. An empty
  // file is no database either: SQLite would write a database's first page into it.
  if (migrations === 'require' && config.database.driver === 'sqlite') {
    const size = existsSync(config.database.path) ? statSync(config.database.path).size : undefined;
    if (size === undefined || size === 0) {
      throw new ConfigError(`no Candor database at ${config.database.path}${size === 0 ? ' (the file is empty)' : ''}: set DATABASE_URL, or create one with \`npx candor migrate\``);
    }
  }
  const dataSource = createDataSource(config.database, { logger: options.logger, queryTimeoutMs: options.serving ? config.queryTimeoutMs : undefined });
  await dataSource.initialize();
  guardConnections(dataSource);
  try {
    await checkSchemaExists(dataSource, config.database);
    if (migrations === 'apply') await (options.serving ? migrateUnbounded(config.database, config.secret) : migrate(dataSource, config.secret));
    const { pending, newer } = await migrationState(dataSource);
    const current = migrations === 'apply' || pending.length === 0;
    if (migrations === 'require' && !current) {
      throw new ConfigError(`the database at ${describeDatabase(config.database)} has pending migrations: run \`npx candor migrate\` first (upgrade notes: docs/operations.md)`);
    }
    if (newer.length) throw new ConfigError(newerBuildProblem(newer, config.database));
    // Before anything answers a key or makes one. A database not migrated yet (the migrate command) is checked once it is.
    if (current) await checkSecret(dataSource, config.secret, clock(), () => holdsDemoKeysMadeWith(dataSource, DEVELOPMENT_SECRET));
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
  const domain = new DomainStore(dataSource);
  const fields = readGovernance(await buildCandorSchema(taxonomy));
  const receipts = receiptContext(taxonomy, fields);
  const metrics = createMetrics();
  const logger = createLogger(config.logLevel, options.logDestination);
  const bindingKey = pseudonymBindingKey(config.secret);
  const accessLog = new AccessLog(createAuditStore(config.database, bindingKey), clock, {
    onFlush: (records, seconds, entriesByRequest) => {
      metrics.auditBatchRecords.observe(records);
      metrics.auditFlushSeconds.observe(seconds);
      countDecisions(metrics, entriesByRequest);
    },
    onFailure: (error, records, firstSinceCommit) => {
      metrics.auditFailedBatches.inc();
      // Once an outage, not once a batch: the metric counts them, /readyz reports it. The server's log only: a
      // command says so in its own error, and its stdout may be a report.
      if (firstSinceCommit && options.serving) logger.warn({ error: error.message, records }, 'the access log could not commit a batch: governed requests are answered AUDIT_UNAVAILABLE until it commits again');
    },
  });
  const signer = checkpointSigner(config.auditSigningSeed);
  const actors = new ActorDirectory(dataSource, config.secret, config.production, clock);
  const sharedBudget = config.rateLimitScope === 'cluster' && config.database.driver === 'postgres' ? new SharedRateLimiter(config.database, config.rateLimitPerMinute, config.storeDeadlineMs) : undefined;
  return {
    config,
    taxonomy,
    masker: createMasker(derivedKey(config.secret, 'candor-masking/1')),
    dataSource,
    domain,
    consent: new ConsentLedger(dataSource, taxonomy, domain.subjects(), receipts, clock),
    actors,
    accessLog,
    accessLogReader: new AccessLogReader(dataSource, config.secret, domain.subjectStatus, taxonomy),
    checkpointSigner: signer,
    pseudonymBindingKey: bindingKey,
    verifyAccessLog: (verifyOptions) => verifyAccessLog(dataSource, signer, bindingKey, verifyOptions),
    clock,
    metrics,
    logger,
    receipts,
    fields,
    actorBudget: sharedBudget ?? new RateLimiter(config.rateLimitPerMinute, clock),
    close: async () => {
      await Promise.all([accessLog.close(), sharedBudget?.close()]);
      if (dataSource.isInitialized) await dataSource.destroy();
    },
  };
}

/**
 * Seeds the demo actors and, when the store holds no customers yet, the demo platform. Never in production
 * (the config refuses `seedDemo` there).
 */
export async function seedDemo(services: CandorServices): Promise<{ seededCustomers: number }> {
  if (services.config.production) throw new Error('demo data is never seeded in production');
  // Instances started together on an empty PostgreSQL database seed one after the other: the later ones
  // find the data there.
  return inSetupTurn(services.dataSource, () => seedDemoData(services));
}

async function seedDemoData(services: CandorServices): Promise<{ seededCustomers: number }> {
  await services.actors.seedDemoActors();
  const data = buildDemoData();
  const customers = services.dataSource.getRepository(CustomerEntity);
  const fresh = (await customers.count()) === 0;
  if (fresh) await insertDemoDomain(services.dataSource, data);
  // A first start stopped between the customers and their ledger (two transactions) is finished by the next.
  else if (!((await services.dataSource.getRepository(ConsentEventEntity).count()) === 0 && (await customers.existsBy({ id: data.customers[0].id })))) return { seededCustomers: 0 };
  const seedLedger = new ConsentLedger(services.dataSource, services.taxonomy, services.domain.subjects(), services.receipts, () => DEMO_SEED_TIME);
  await seedLedger.appendMany(data.consentChanges);
  return { seededCustomers: fresh ? data.customers.length : 0 };
}
