import { createHash, createHmac, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_JWT_CLAIMS, type JwtClaimNames, type JwtSettings } from './actors/jwt-authenticator';
import { closest } from './closest';
import { counted } from './printable';

/** The one development secret; production refuses to start with it. */
export const DEVELOPMENT_SECRET = 'candor-development-secret-not-for-production';

/**
 * The key for one use of CANDOR_SECRET, named by a versioned label (`candor-masking/1`): HMAC-SHA-256 of the
 * label under the secret. One key per use, so that nothing one use shows (a masked value, a cursor's tag)
 * helps against another.
 */
export function derivedKey(secret: string, label: string): Buffer {
  return createHmac('sha256', secret).update(label).digest();
}

/** Every variable Candor reads: `loadConfig`'s `read` takes no other name, so none it reads is ever reported as unknown. */
const SETTINGS = [
  'NODE_ENV',
  'PORT',
  'HOST',
  'DATABASE_URL',
  'PUBLIC_URL',
  'CANDOR_SECRET',
  'CANDOR_NEXT_SECRET',
  'CANDOR_AUDIT_SIGNING_KEY',
  'CANDOR_AUDIT_NEXT_SIGNING_KEY',
  'CANDOR_AUDIT_CHECKPOINT_SECONDS',
  'CANDOR_SHUTDOWN_DRAIN_MS',
  'CANDOR_INTROSPECTION',
  'CANDOR_PURPOSE_SCOPED_INTROSPECTION',
  'CANDOR_SEED_DEMO',
  'CANDOR_TAXONOMY',
  'CANDOR_ALLOWED_HOSTS',
  'CANDOR_TRUSTED_PROXIES',
  'CANDOR_MAX_DEPTH',
  'CANDOR_MAX_ALIASES',
  'CANDOR_MAX_COST',
  'CANDOR_MAX_TOKENS',
  'CANDOR_MAX_DIRECTIVES',
  'CANDOR_MAX_BATCH_OPERATIONS',
  'CANDOR_MAX_LIST_ITEMS',
  'CANDOR_RATE_LIMIT_PER_MINUTE',
  'CANDOR_RATE_LIMIT_SCOPE',
  'CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE',
  'CANDOR_STORE_DEADLINE_MS',
  'CANDOR_QUERY_TIMEOUT_MS',
  'CANDOR_JWT_ISSUER',
  'CANDOR_JWT_AUDIENCE',
  'CANDOR_JWT_JWKS_URL',
  'CANDOR_JWT_PUBLIC_KEY',
  'CANDOR_JWT_CLAIMS',
  'CANDOR_JWT_MAX_AGE_SECONDS',
  'CANDOR_WITHHELD_REPORTING',
  'CANDOR_EXECUTOR',
  'CANDOR_LOG_LEVEL',
] as const;
type Setting = (typeof SETTINGS)[number];

/**
 * `CANDOR_` variables Candor does not read but its test suite and benchmarks do (test/support, bench/): a
 * shell that runs them may start Candor too, and they are no misspelt settings.
 */
const HARNESS_VARIABLES = ['CANDOR_TEST_POSTGRES', 'CANDOR_TEST_SQLITE_ONLY', 'CANDOR_SOAK_SECONDS', 'CANDOR_SOAK_CONCURRENCY', 'CANDOR_PROPAGATION_CHANGES', 'CANDOR_PROPAGATION_LOOPS'];

/** How many edits away a setting may be from a name to be offered as what it meant. */
const CLOSE_EDITS = 3;

/**
 * One warning per `CANDOR_` variable of the environment Candor does not read (case aside: `candor_secret`
 * is one too), naming the setting it likely meant. Ignored in silence, a misspelt variable leaves its
 * setting at the default: `CANDOR_DATABASE_URL` put the data in ./data/candor.sqlite.
 */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = new Set<string>([...SETTINGS, ...HARNESS_VARIABLES]);
  return Object.keys(env)
    .filter((name) => name.toUpperCase().startsWith('CANDOR_') && !known.has(name))
    .sort()
    .map((name) => {
      const meant = closestSetting(name.toUpperCase());
      return `${name} is not a setting Candor knows${meant ? ` (did you mean ${meant}?)` : ''}; it is ignored`;
    });
}

/** The setting a few edits from `name`, if one is; those without the prefix compared as if they had it (`CANDOR_PORT`). */
function closestSetting(name: string): Setting | undefined {
  return closest(name, SETTINGS, CLOSE_EDITS, (setting) => (setting.startsWith('CANDOR_') ? setting : `CANDOR_${setting}`));
}

/** The values NODE_ENV may take; anything else is refused rather than read as "not production". */
const NODE_ENVIRONMENTS = ['production', 'development', 'test'];
/** The longest delay Node's timers take (2^31 − 1 ms); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/** The GraphQL executors Candor can run on. */
export const EXECUTORS = ['graphql-js', 'graphql-jit'] as const;
export type Executor = (typeof EXECUTORS)[number];

export type DatabaseConfig =
  | { readonly driver: 'sqlite'; readonly path: string; readonly url: string }
  | {
      readonly driver: 'postgres';
      /** Without `schema` and `options`, which Candor passes to each connection itself (`sessionOptions`). */
      readonly url: string;
      readonly schema?: string;
      /** DATABASE_URL's `options=` (server settings for every session), put before Candor's own. */
      readonly sessionOptions?: string;
    };

export interface CandorConfig {
  /** `NODE_ENV`; `production` turns off demo data, demo keys, Sandbox and (by default) introspection. */
  readonly production: boolean;
  /** `PORT` (default 4000). 0 asks the OS for a free port (tests). */
  readonly port: number;
  /** `HOST` (default 127.0.0.1: reachable from this machine only; set 0.0.0.0 to serve a network). */
  readonly host: string;
  /** `DATABASE_URL`: `sqlite:<path>` (default `sqlite:./data/candor.sqlite`) or `postgres://…`. */
  readonly database: DatabaseConfig;
  /** `CANDOR_SECRET`: the HMAC key API keys are stored under. Required (and not the default) in production. */
  readonly secret: string;
  /** `CANDOR_INTROSPECTION` (default: on outside production, off in production). */
  readonly introspection: boolean;
  /**
   * `CANDOR_PURPOSE_SCOPED_INTROSPECTION` (default true): with `X-Purpose` set, introspection shows only the
   * fields declared for that purpose (plus what is needed to navigate to them).
   */
  readonly purposeScopedIntrospection: boolean;
  /** `CANDOR_SEED_DEMO` (default true outside production; always false in production). */
  readonly seedDemo: boolean;
  /** `CANDOR_TAXONOMY` (default `schema/taxonomy.yaml` of the installation). */
  readonly taxonomyPath: string;
  /**
   * `CANDOR_AUDIT_SIGNING_KEY`: base64 of the 32-byte Ed25519 seed that signs access-log checkpoints.
   * Outside production it defaults to one derived from the secret; production requires it.
   */
  readonly auditSigningSeed: Buffer;
  /**
   * `CANDOR_AUDIT_NEXT_SIGNING_KEY`: the seed `audit checkpoint rotate` hands the log's signing over to (same
   * form as CANDOR_AUDIT_SIGNING_KEY); read, and checked, by that command only (`signingSeed`).
   */
  readonly auditNextSigningKey: string | undefined;
  /**
   * `CANDOR_NEXT_SECRET`: the secret `secret rotate` re-keys the database to; read, and checked
   * (`checkSecretStrength`), by that command only.
   */
  readonly nextSecret: string | undefined;
  /** `CANDOR_AUDIT_CHECKPOINT_SECONDS` (default 300): how often the server signs a checkpoint of the log head; 0 disables. */
  readonly checkpointIntervalSeconds: number;
  /**
   * `CANDOR_SHUTDOWN_DRAIN_MS` (default 0): how long a server told to stop keeps answering, `/readyz` saying
   * it is shutting down and every response closing its connection, before it stops taking requests — time for
   * a balancer to send the traffic elsewhere.
   */
  readonly shutdownDrainMs: number;
  /** `PUBLIC_URL` (default `http://localhost:<PORT>`; required, https, in production): where links to the privacy page point. */
  readonly publicUrl: string | undefined;
  /**
   * Outside production, the host names the server answers to besides this machine's (`localhost`, `*.localhost`),
   * IP addresses and PUBLIC_URL's: `CANDOR_ALLOWED_HOSTS`, comma-separated. Any other `Host` is refused, so a web
   * page whose domain is made to resolve to this machine (DNS rebinding) cannot use the published demo keys.
   * Undefined in production, which serves no demo key and sits behind a balancer that knows its names.
   */
  readonly allowedHosts: readonly string[] | undefined;
  /**
   * `CANDOR_TRUSTED_PROXIES`: the balancers and proxies in front of the server (addresses, CIDR ranges, or
   * `loopback`, `linklocal`, `uniquelocal`), comma-separated; none by default. A request from one of them is
   * the client's the `X-Forwarded-For` it adds names (the nearest address it does not trust): without this,
   * every client behind a balancer shares the balancer's address and anonymous-refusal budget; with it,
   * a client cannot claim another's address by sending the header itself, past a proxy that appends to it.
   */
  readonly trustedProxies: readonly string[];
  /**
   * Query limits, each refused with its own code (`CANDOR_MAX_DEPTH` 12, `CANDOR_MAX_ALIASES` 50, `CANDOR_MAX_COST` 5000,
   * `CANDOR_MAX_TOKENS` 5000, `CANDOR_MAX_DIRECTIVES` 50, `CANDOR_MAX_BATCH_OPERATIONS` 5 — at most 5; 1 refuses batched requests;
   * `CANDOR_MAX_LIST_ITEMS` 5000: the page sizes an operation's lists ask for, together, a nested list once per enclosing item).
   */
  readonly limits: { readonly depth: number; readonly aliases: number; readonly cost: number; readonly tokens: number; readonly directives: number; readonly batchOperations: number; readonly listItems: number };
  /** `CANDOR_RATE_LIMIT_PER_MINUTE` (default 600; 0 disables): requests per actor per minute. */
  readonly rateLimitPerMinute: number;
  /**
   * `CANDOR_RATE_LIMIT_SCOPE`: `cluster` (the default on PostgreSQL: every instance on the database draws on
   * one budget per actor, kept there) or `instance` (each instance its own, in memory: the only choice on SQLite).
   */
  readonly rateLimitScope: 'cluster' | 'instance';
  /**
   * `CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE` (default 120; 0 records all): refusals naming no actor (no or a wrong
   * key, a malformed request) recorded per client address a minute, per instance; see RefusalRecorder.
   */
  readonly anonymousRefusalsPerMinute: number;
  /**
   * `CANDOR_STORE_DEADLINE_MS` (default 1000): past it, a store read of the request path (the actor, the rate
   * limit, consent) counts as failed — fields withheld, or the request refused — and /readyz answers not ready.
   * It runs on the instance's clock, so it includes the time a loaded event loop takes to get to the answer:
   * 250 ms withheld fields of healthy requests at 64 concurrent on two cores.
   */
  readonly storeDeadlineMs: number;
  /**
   * `CANDOR_QUERY_TIMEOUT_MS` (default 30000), PostgreSQL: the server's statements that get no answer within it
   * fail (the request answers an error) and their connection is closed, so a stalled connection holds no read,
   * and no pool slot, without bound. Migrations and CLI commands run without it.
   */
  readonly queryTimeoutMs: number;
  /**
   * Optional JWT bearer tokens: `CANDOR_JWT_ISSUER`, `CANDOR_JWT_AUDIENCE`, and `CANDOR_JWT_JWKS_URL` or
   * `CANDOR_JWT_PUBLIC_KEY` (PEM); `CANDOR_JWT_CLAIMS` (JSON) renames the claims read for the actor;
   * `CANDOR_JWT_MAX_AGE_SECONDS` (default 3600, at most 86400) bounds a token's lifetime.
   */
  readonly jwt?: JwtSettings;
  /** `CANDOR_WITHHELD_REPORTING` (default `errors`): withheld leaf fields as one error each, or listed once in `extensions`. */
  readonly withheldReporting: 'errors' | 'extensions';
  /**
   * `CANDOR_EXECUTOR` (default `graphql-jit`): what executes operations. `graphql-jit` compiles each document once
   * (bounded cache) and runs it on the same resolvers — same governance, less time per operation; `graphql-js`
   * is the reference executor, and the fallback for documents graphql-jit cannot compile.
   */
  readonly executor: Executor;
  /** `CANDOR_LOG_LEVEL` (default `info`; `silent` under NODE_ENV=test): pino level of the JSON logs on stdout. */
  readonly logLevel: string;
  /** Directory holding the shipped fideslang key lists. */
  readonly fideslangPath: string;
}

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The installation directory (the one holding package.json), from source or from dist/. */
export function projectRoot(): string {
  let directory = __dirname;
  while (!existsSync(join(directory, 'package.json'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new ConfigError('cannot find the Candor installation (no package.json above ' + __dirname + ')');
    directory = parent;
  }
  return directory;
}

/**
 * `CANDOR_JWT_CLAIMS`: which token claims name the actor's id, name, team, purposes and roles. A misspelt
 * key would be ignored and its claim read under the default name, so every key and value is checked.
 */
function jwtClaimNames(json: string): JwtClaimNames {
  const usage = `CANDOR_JWT_CLAIMS must be a JSON object naming claims for ${Object.keys(DEFAULT_JWT_CLAIMS).join(', ')}, such as {"team":"org","purposes":"scope"}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError(usage);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(usage);
  for (const [key, claim] of Object.entries(parsed)) {
    if (!Object.hasOwn(DEFAULT_JWT_CLAIMS, key)) throw new ConfigError(`${usage}; "${key}" is none of them`);
    if (typeof claim !== 'string' || claim.trim() === '') throw new ConfigError(`${usage}; "${key}" must name a claim (a non-empty string)`);
  }
  return { ...DEFAULT_JWT_CLAIMS, ...(parsed as Partial<JwtClaimNames>) };
}

/**
 * Reads and validates the environment once. Explicit overrides win over the environment (tests and the
 * CLI pass them); nothing else in Candor reads `process.env`.
 */
/**
 * A whole number written in decimal digits, else NaN: `Number` would take `0x10`, `1e3` or ` 7` (and ' ' as
 * 0). Fifteen digits at most: every such number is exact.
 */
export const decimal = (text: string): number => (/^\d{1,15}$/.test(text) ? Number(text) : NaN);

export function loadConfig(overrides: Partial<Record<string, string | undefined>> = {}, env: NodeJS.ProcessEnv = process.env): CandorConfig {
  const read = (name: Setting): string | undefined => {
    const value = name in overrides ? overrides[name] : env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  // A mistyped environment (`Production`, `prod`) must not quietly run with the development secret and demo keys.
  const nodeEnv = read('NODE_ENV');
  if (nodeEnv !== undefined && !NODE_ENVIRONMENTS.includes(nodeEnv)) throw new ConfigError(`NODE_ENV must be one of ${NODE_ENVIRONMENTS.join(', ')} (or unset), got "${nodeEnv}"`);
  const production = nodeEnv === 'production';
  const root = projectRoot();

  const secret = read('CANDOR_SECRET') ?? (production ? undefined : DEVELOPMENT_SECRET);
  if (secret === undefined) throw new ConfigError('CANDOR_SECRET is required when NODE_ENV=production');
  checkSecretStrength('CANDOR_SECRET', secret, production);

  const signingKey = read('CANDOR_AUDIT_SIGNING_KEY');
  if (production && signingKey === undefined) throw new ConfigError('CANDOR_AUDIT_SIGNING_KEY is required when NODE_ENV=production (base64 of a 32-byte Ed25519 seed)');
  const auditSigningSeed = signingKey === undefined ? secretDerivedSigningSeed(secret) : signingSeed('CANDOR_AUDIT_SIGNING_KEY', signingKey);
  /**
   * A whole number from the environment: digits only (`' '` or `0x10` would read as 0 or 16, and 0 turns
   * several protections off), at least `minimum`, at most `maximum` (a timer past 2^31 − 1 ms fires at once).
   */
  const count = (name: Setting, fallback: number, minimum = 0, maximum = MAX_TIMER_MS) => {
    const text = read(name)?.trim() ?? String(fallback);
    const value = decimal(text);
    if (!Number.isInteger(value) || value < minimum || value > maximum) throw new ConfigError(`${name} must be a whole number from ${minimum} to ${maximum}, got "${read(name)}"`);
    return value;
  };
  const port = count('PORT', 4000, 0, 65535);
  const checkpointIntervalSeconds = count('CANDOR_AUDIT_CHECKPOINT_SECONDS', 300, 0, Math.floor(MAX_TIMER_MS / 1000));
  const shutdownDrainMs = count('CANDOR_SHUTDOWN_DRAIN_MS', 0, 0, 300_000);

  let jwt: JwtSettings | undefined;
  const issuer = read('CANDOR_JWT_ISSUER');
  if (issuer) {
    const audience = read('CANDOR_JWT_AUDIENCE');
    const jwksUrl = read('CANDOR_JWT_JWKS_URL');
    const publicKeyPem = read('CANDOR_JWT_PUBLIC_KEY');
    if (!audience) throw new ConfigError('CANDOR_JWT_AUDIENCE is required with CANDOR_JWT_ISSUER');
    if (!jwksUrl && !publicKeyPem) throw new ConfigError('CANDOR_JWT_JWKS_URL or CANDOR_JWT_PUBLIC_KEY is required with CANDOR_JWT_ISSUER');
    if (jwksUrl && !/^https?:\/\/[^/\s]+/.test(jwksUrl)) throw new ConfigError(`CANDOR_JWT_JWKS_URL must be an http(s) URL, got "${jwksUrl}"`);
    if (publicKeyPem && !isPublicKey(publicKeyPem)) throw new ConfigError('CANDOR_JWT_PUBLIC_KEY must be a public key in PEM (-----BEGIN PUBLIC KEY-----, SPKI)');
    // Keys fetched in clear could be swapped on the way, and whoever swaps them mints any actor's tokens.
    if (jwksUrl && production && !isSecureUrl(urlOf(jwksUrl))) throw new ConfigError(`CANDOR_JWT_JWKS_URL must be an https URL when NODE_ENV=production (or on this machine), got "${jwksUrl}"`);
    const claimsJson = read('CANDOR_JWT_CLAIMS');
    // A day at most: the directory cannot revoke a JWT actor, so a token's lifetime is how long a leaked one works.
    const maxAgeSeconds = count('CANDOR_JWT_MAX_AGE_SECONDS', 3600, 1, 86_400);
    jwt = { issuer, audience, jwksUrl, publicKeyPem, claims: claimsJson ? jwtClaimNames(claimsJson) : DEFAULT_JWT_CLAIMS, maxAgeSeconds };
  }

  const host = read('HOST') ?? '127.0.0.1';
  // Outside production the demo keys, published in the README, are served: to a network only when asked for
  // (development); `test` is for this machine's test runs, whose logs are silent.
  if (nodeEnv !== 'production' && nodeEnv !== 'development' && !isLoopback(host)) {
    throw new ConfigError(`HOST=${host} serves a network: set NODE_ENV=production, or NODE_ENV=development to serve the demo and its published keys there deliberately`);
  }

  const database = parseDatabaseUrl(read('DATABASE_URL') ?? 'sqlite:./data/candor.sqlite');
  const rateLimitScope = read('CANDOR_RATE_LIMIT_SCOPE') ?? (database.driver === 'postgres' ? 'cluster' : 'instance');
  if (rateLimitScope !== 'cluster' && rateLimitScope !== 'instance') throw new ConfigError(`CANDOR_RATE_LIMIT_SCOPE must be cluster or instance, got "${rateLimitScope}"`);
  if (rateLimitScope === 'cluster' && database.driver !== 'postgres') throw new ConfigError('CANDOR_RATE_LIMIT_SCOPE=cluster needs PostgreSQL (DATABASE_URL=postgres://…): on SQLite each instance keeps its own budget');

  return Object.freeze({
    production,
    jwt,
    port,
    host,
    database,
    secret,
    introspection: parseBoolean('CANDOR_INTROSPECTION', read('CANDOR_INTROSPECTION'), !production),
    purposeScopedIntrospection: parseBoolean('CANDOR_PURPOSE_SCOPED_INTROSPECTION', read('CANDOR_PURPOSE_SCOPED_INTROSPECTION'), true),
    seedDemo: !production && parseBoolean('CANDOR_SEED_DEMO', read('CANDOR_SEED_DEMO'), true),
    taxonomyPath: resolve(read('CANDOR_TAXONOMY') ?? join(root, 'schema', 'taxonomy.yaml')),
    fideslangPath: join(root, 'schema', 'fideslang'),
    auditSigningSeed,
    auditNextSigningKey: read('CANDOR_AUDIT_NEXT_SIGNING_KEY'),
    nextSecret: read('CANDOR_NEXT_SECRET'),
    checkpointIntervalSeconds,
    shutdownDrainMs,
    limits: Object.freeze({
      depth: count('CANDOR_MAX_DEPTH', 12, 1),
      aliases: count('CANDOR_MAX_ALIASES', 50, 0),
      cost: count('CANDOR_MAX_COST', 5000, 1),
      tokens: count('CANDOR_MAX_TOKENS', 5000, 1),
      directives: count('CANDOR_MAX_DIRECTIVES', 50, 0),
      batchOperations: batchLimit(count('CANDOR_MAX_BATCH_OPERATIONS', 5, 1)),
      listItems: count('CANDOR_MAX_LIST_ITEMS', 5000, 1),
    }),
    rateLimitPerMinute: count('CANDOR_RATE_LIMIT_PER_MINUTE', 600, 0),
    rateLimitScope,
    anonymousRefusalsPerMinute: count('CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE', 120, 0),
    storeDeadlineMs: count('CANDOR_STORE_DEADLINE_MS', 1_000, 1),
    queryTimeoutMs: count('CANDOR_QUERY_TIMEOUT_MS', 30_000, 1),
    logLevel: parseLogLevel(read('CANDOR_LOG_LEVEL') ?? (read('NODE_ENV') === 'test' ? 'silent' : 'info')),
    executor: parseExecutor(read('CANDOR_EXECUTOR') ?? 'graphql-jit'),
    withheldReporting: parseWithheldReporting(read('CANDOR_WITHHELD_REPORTING') ?? 'errors', 'CANDOR_WITHHELD_REPORTING'),
    publicUrl: parsePublicUrl(read('PUBLIC_URL'), port, production),
    allowedHosts: production ? undefined : parseAllowedHosts(read('CANDOR_ALLOWED_HOSTS')),
    trustedProxies: parseTrustedProxies(read('CANDOR_TRUSTED_PROXIES')),
  });
}

/** `CANDOR_ALLOWED_HOSTS`: host names (no port, no scheme), comma-separated, in lower case. */
function parseAllowedHosts(value: string | undefined): string[] {
  const names = (value ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  const malformed = names.find((name) => !/^[a-z0-9.-]+$/.test(name));
  if (malformed !== undefined) throw new ConfigError(`CANDOR_ALLOWED_HOSTS must be host names separated by commas (no port, no scheme: dev.example.internal), got "${malformed}"`);
  return names;
}

/**
 * Refuses a secret too weak for where it runs: CANDOR_SECRET, and CANDOR_NEXT_SECRET in `secret rotate`. In
 * production a generated one: the database holds a fingerprint of it (secret_fingerprint), and anyone with a
 * copy could try guesses of a short one offline. Length alone lets `a` × 32 through.
 */
export function checkSecretStrength(name: string, secret: string, production: boolean): void {
  if (production && secret === DEVELOPMENT_SECRET) throw new ConfigError(`${name} must not be the development secret when NODE_ENV=production`);
  if (secret.length < 16) throw new ConfigError(`${name} must be at least 16 characters`);
  if (production && secret.length < 32) throw new ConfigError(`${name} must be at least 32 characters when NODE_ENV=production: use a generated one (openssl rand -base64 32)`);
  if (production && new Set(secret).size < 8) throw new ConfigError(`${name} is not random (it holds only ${new Set(secret).size} distinct characters): use a generated one (openssl rand -base64 32)`);
}

/** The checkpoint signing seed when CANDOR_AUDIT_SIGNING_KEY is unset (outside production only): made from the secret. */
export const secretDerivedSigningSeed = (secret: string): Buffer => createHash('sha256').update(`${secret}:audit-checkpoints`).digest();

/** The names express's `trust proxy` (proxy-addr) gives to address ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `CANDOR_TRUSTED_PROXIES`: addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`) or range names, comma-separated. */
function parseTrustedProxies(value: string | undefined): string[] {
  const entries = (value ?? '').split(',').map((entry) => entry.trim().toLowerCase()).filter(Boolean);
  const malformed = entries.find((entry) => {
    if (PROXY_RANGE_NAMES.has(entry)) return false;
    const [address, prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return true;
    // A /0 range (every address) is refused by express's proxy-addr as well: trusting everyone is not a setting.
    return prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128));
  });
  if (malformed !== undefined) throw new ConfigError(`CANDOR_TRUSTED_PROXIES must be addresses, CIDR ranges (10.0.0.0/8) or loopback, linklocal, uniquelocal, separated by commas, got "${malformed}"`);
  return entries;
}

/** An Ed25519 seed from base64 (`openssl rand -base64 32`), or a ConfigError naming the variable. */
export function signingSeed(name: string, value: string): Buffer {
  // Buffer.from(…, 'base64') skips what is not base64: a key with a stray word after it would load as another key.
  if (!/^[A-Za-z0-9+/]{43}=$/.test(value.trim())) throw new ConfigError(`${name} must be base64 of exactly 32 bytes (an Ed25519 seed)`);
  const seed = Buffer.from(value.trim(), 'base64');
  // A random seed holds about 30 distinct byte values; one with few (all zeros, a pattern) was typed, not made.
  const distinct = new Set(seed).size;
  if (distinct < 16) throw new ConfigError(`${name} is not random (its 32 bytes hold only ${counted(distinct, 'distinct value')}): make one with openssl rand -base64 32`);
  return seed;
}

/** Whether a host name or address is this machine's own (loopback): nothing else reaches it. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

function isPublicKey(pem: string): boolean {
  try {
    createPublicKey(pem);
    return true;
  } catch {
    return false;
  }
}

/** The parsed URL, or undefined when `value` is none. */
function urlOf(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** https, or http to this machine (which never crosses a network). */
const isSecureUrl = (url: URL | undefined) => url !== undefined && (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)));

/**
 * Where privacy-page links point: an absolute http(s) URL without query or fragment (the link appends its
 * own). In production it must be set, and https: the link's token is the page's only key. Undefined then
 * when unset (`subject link` says so); elsewhere it defaults to this machine.
 */
function parsePublicUrl(value: string | undefined, port: number, production: boolean): string | undefined {
  if (value === undefined) return production ? undefined : `http://localhost:${port}`;
  const url = urlOf(value);
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`PUBLIC_URL must be an absolute http(s) URL without query or credentials (https://privacy.example.com), got "${value}"`);
  }
  if (production && !isSecureUrl(url)) throw new ConfigError(`PUBLIC_URL must be an https URL when NODE_ENV=production, got "${value}"`);
  return value.replace(/\/+$/, '');
}

export function parseDatabaseUrl(url: string): DatabaseConfig {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw new ConfigError('DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/candor.sqlite');
    // The access log is appended through its own connection, which an in-memory database cannot share.
    if (path === ':memory:') throw new ConfigError('DATABASE_URL sqlite::memory: is not supported: Candor needs a database file');
    return { driver: 'sqlite', path: resolve(path), url };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError('DATABASE_URL is not a valid postgres:// URL');
    }
    const schema = parsed.searchParams.get('schema') ?? undefined;
    // It goes into the connections' search_path option unquoted, where PostgreSQL folds it to lower case, and
    // TypeORM quotes it: a plain lower-case identifier only, or the two would name different schemas.
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError(`DATABASE_URL's schema must be a plain lower-case identifier (a–z, digits, _), got "${schema}"`);
    const sessionOptions = parsed.searchParams.get('options') ?? undefined;
    parsed.searchParams.delete('schema');
    parsed.searchParams.delete('options');
    return { driver: 'postgres', url: parsed.toString(), ...(schema !== undefined ? { schema } : {}), ...(sessionOptions ? { sessionOptions } : {}) };
  }
  // The value is not quoted: without a scheme, what comes first may be a password (`s3cret@host:5432/db`).
  throw new ConfigError('DATABASE_URL must start with sqlite: or postgres://');
}

/** More than five operations in one HTTP request would multiply every per-operation limit past its intent. */
function batchLimit(value: number): number {
  if (value > 5) throw new ConfigError(`CANDOR_MAX_BATCH_OPERATIONS must be at most 5, got ${value}`);
  return value;
}

function parseLogLevel(value: string): string {
  if (['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(value)) return value;
  throw new ConfigError(`CANDOR_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${value}"`);
}

function parseExecutor(value: string): Executor {
  if ((EXECUTORS as readonly string[]).includes(value)) return value as Executor;
  throw new ConfigError(`CANDOR_EXECUTOR must be graphql-js or graphql-jit, got "${value}"`);
}

export function parseWithheldReporting(value: string, name: string): 'errors' | 'extensions' {
  if (value === 'errors' || value === 'extensions') return value;
  throw new ConfigError(`${name} must be errors or extensions, got "${value}"`);
}

function parseBoolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(value.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}
