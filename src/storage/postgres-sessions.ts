import type { DatabaseConfig } from '../config';

type PostgresDatabase = Extract<DatabaseConfig, { driver: 'postgres' }>;

/** Server settings a Candor connection asks for at startup (`-c name=value`); undefined ones are left out. */
export type SessionSettings = Readonly<Record<string, string | number | undefined>>;

/**
 * The `options` startup parameter of a Candor connection: the operator's own first (DATABASE_URL's
 * `options=`), then Candor's settings, which win where both name one (PostgreSQL applies them in order).
 * pg lets a connection string's parameters override a pool's options, so DATABASE_URL's `options=` is taken
 * out of the URL when the configuration is read and merged here: left in, it silently replaced the
 * search_path of `?schema=`, and an installation in a schema of its own appended to, and erased from, the
 * log of the one in `public`.
 */
export function sessionOptions(database: PostgresDatabase, settings: SessionSettings = {}): string | undefined {
  const candor = Object.entries({ search_path: database.schema, ...settings })
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `-c ${name}=${value}`);
  const options = [database.sessionOptions, ...candor].filter(Boolean).join(' ');
  return options === '' ? undefined : options;
}

/**
 * The settings that end a session its client left inside a transaction, or in a statement it never
 * finishes: a client whose network went silent while it held a lock (the access log's chain lock, a consent
 * bucket) kept it for as long as the server took to notice the peer gone — two hours of TCP keepalive by
 * default — and every other instance waited on it. `boundMs` bounds a statement and an idle transaction;
 * the keepalive probes notice a vanished client within ~25 s (a proxy in between still answers them: the
 * bounds are what end those sessions).
 */
export function abandonedSessionBounds(boundMs: number): SessionSettings {
  return { statement_timeout: boundMs, idle_in_transaction_session_timeout: boundMs, tcp_keepalives_idle: 10, tcp_keepalives_interval: 5, tcp_keepalives_count: 3 };
}

/** What pg rejects a statement with when its `query_timeout` runs out. */
const QUERY_READ_TIMEOUT = 'Query read timeout';

/** Whether pg gave up waiting for a statement's answer (its `query_timeout`): the connection's state is then unknown. */
export function isQueryReadTimeout(error: unknown): boolean {
  return (error as Error | undefined)?.message === QUERY_READ_TIMEOUT;
}
