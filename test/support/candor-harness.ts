import type { Logger } from 'typeorm';
import { EXECUTORS, type Executor, loadConfig } from '../../src/config';
import type { GovernedSchema } from '../../src/policy/enforcement';
import { type RunningServer, startHttpServer } from '../../src/server/http-server';
import { buildGovernedSchema, type CandorServices, openServices, seedDemo } from '../../src/server/services';
import { createTestDatabase, type Driver, DRIVERS, type TestDatabase } from './databases';

/** Counts the SQL statements a request issues, per table of interest. */
export class SqlCounter implements Logger {
  statements: string[] = [];
  logQuery(query: string): void {
    this.statements.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
  reset(): void {
    this.statements = [];
  }
  /** SELECTs that read the domain or the consent state (not the actor lookup, not audit writes). */
  domainAndConsentReads(): string[] {
    return this.statements.filter((sql) => /^\s*SELECT/i.test(sql) && /"?(customer|payment|watch_event|consent_state|consent_event)"?/i.test(sql) && !/"?actor"?\s/i.test(sql.split(/FROM/i)[1] ?? ''));
  }
}

export interface GraphQLResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: {
    data?: Record<string, any> | null;
    errors?: Array<{ message: string; locations?: Array<{ line: number; column: number }>; path?: Array<string | number>; extensions?: Record<string, any> }>;
    extensions?: Record<string, any>;
  };
}

export interface Harness {
  readonly driver: Driver;
  readonly executor: Executor;
  readonly database: TestDatabase;
  readonly services: CandorServices;
  readonly governed: GovernedSchema;
  readonly server: RunningServer;
  readonly sql: SqlCounter;
  /** What the JSON log wrote (with `captureLogs`; empty otherwise). */
  logs(): string;
  /** POSTs a GraphQL operation as `key` for `purpose` (either may be omitted to test refusals). */
  query(options: { key?: string; purpose?: string; query: string; variables?: Record<string, unknown>; operationName?: string; headers?: Record<string, string> }): Promise<GraphQLResponse>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  readonly seed?: boolean;
  readonly clock?: () => Date;
  readonly env?: Record<string, string>;
  /** What executes operations (`CANDOR_EXECUTOR`; default graphql-jit). */
  readonly executor?: Executor;
  /** Keep what the JSON log writes, at every level, for `logs()` (default: the test silence). */
  readonly captureLogs?: boolean;
}

/**
 * Every (store, executor) pair the end-to-end, bypass and invariant suites run on: each store this run covers,
 * on graphql-js and on graphql-jit.
 */
export const STORES_AND_EXECUTORS: Array<[Driver, Executor]> = DRIVERS.flatMap((driver) => EXECUTORS.map((executor): [Driver, Executor] => [driver, executor]));

/** A real Candor server on a fresh database of `driver`, listening on a free port. */
export async function startCandor(driver: Driver, options: HarnessOptions = {}): Promise<Harness> {
  const database = await createTestDatabase(driver);
  // A loaded CI machine can take longer than the 1 s production deadline to read consent; tests that are
  // not about the deadline must not see GOVERNANCE_UNAVAILABLE because of it.
  const config = loadConfig(
    { DATABASE_URL: database.url, PORT: '0', NODE_ENV: 'test', CANDOR_STORE_DEADLINE_MS: String(TEST_STORE_DEADLINE_MS), ...(options.executor ? { CANDOR_EXECUTOR: options.executor } : {}), ...options.env },
    {},
  );
  const sql = new SqlCounter();
  let logs = '';
  const logDestination = options.captureLogs ? { write: (line: string) => void (logs += line) } : undefined;
  const services = await openServices(options.captureLogs ? { ...config, logLevel: 'trace' } : config, { logger: sql, clock: options.clock, logDestination, serving: true });
  if (options.seed !== false) await seedDemo(services);
  const governed = await buildGovernedSchema(services.taxonomy);
  const server = await startHttpServer(services, governed, { port: 0, host: '127.0.0.1' });
  return {
    driver,
    executor: config.executor,
    database,
    services,
    governed,
    server,
    sql,
    logs: () => logs,
    async query({ key, purpose, query, variables, operationName, headers = {} }) {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(purpose ? { 'x-purpose': purpose } : {}),
          ...headers,
        },
        body: JSON.stringify({ query, variables, operationName }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] };
    },
    async stop() {
      await server.stop();
      await services.close();
      await database.drop();
    },
  };
}

/** The consent-read deadline test servers run with (production default: 1 s). */
export const TEST_STORE_DEADLINE_MS = 2_000;

export const KEYS = {
  support: 'demo-support-key',
  marketing: 'demo-marketing-key',
  analytics: 'demo-analytics-key',
  partners: 'demo-partners-key',
  compliance: 'demo-compliance-key',
} as const;
