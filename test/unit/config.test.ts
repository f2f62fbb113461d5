import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DEVELOPMENT_SECRET, loadConfig, projectRoot, unknownVariableWarnings } from '../../src/config';
import { sessionOptions } from '../../src/storage/postgres-sessions';
import { runCli } from '../support/child-server';

describe('configuration', () => {
  const load = (env: Record<string, string>) => loadConfig({ DATABASE_URL: 'sqlite:./data/test-config.sqlite', NODE_ENV: 'test', ...env }, {});

  it('allows batches of up to 5 operations by default, fewer when configured, never more', () => {
    expect(load({}).limits.batchOperations).toBe(5);
    expect(load({ CANDOR_MAX_BATCH_OPERATIONS: '1' }).limits.batchOperations).toBe(1);
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: '6' })).toThrow(new ConfigError('CANDOR_MAX_BATCH_OPERATIONS must be at most 5, got 6'));
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: '0' })).toThrow(ConfigError);
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: 'many' })).toThrow(ConfigError);
  });

  it('answers, outside production, the names CANDOR_ALLOWED_HOSTS lists besides localhost and addresses; in production, any Host', () => {
    expect(load({}).allowedHosts).toEqual([]);
    expect(load({ CANDOR_ALLOWED_HOSTS: ' Dev.Internal , candor.lan,' }).allowedHosts).toEqual(['dev.internal', 'candor.lan']);
    for (const entry of ['https://dev.internal', 'dev.internal:4000', 'dev internal']) {
      expect(() => load({ CANDOR_ALLOWED_HOSTS: entry })).toThrow(new ConfigError(`CANDOR_ALLOWED_HOSTS must be host names separated by commas (no port, no scheme: dev.example.internal), got "${entry.toLowerCase()}"`));
    }
    const seed = randomBytes(32).toString('base64');
    expect(load({ NODE_ENV: 'production', CANDOR_SECRET: randomBytes(32).toString('base64'), CANDOR_AUDIT_SIGNING_KEY: seed, PUBLIC_URL: 'https://privacy.example' }).allowedHosts).toBeUndefined();
  });

  it('trusts the proxies CANDOR_TRUSTED_PROXIES lists (addresses, CIDR ranges, range names), none by default', () => {
    expect(load({}).trustedProxies).toEqual([]);
    expect(load({ CANDOR_TRUSTED_PROXIES: ' 10.0.0.0/8, Loopback ,fd00::/8,192.0.2.7,' }).trustedProxies).toEqual(['10.0.0.0/8', 'loopback', 'fd00::/8', '192.0.2.7']);
    for (const entry of ['10.0.0.0/0', '::/0', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', 'balancer.internal', '10.0.0.0/', '10.0.0.0/-1', 'everything', '*']) {
      expect(() => load({ CANDOR_TRUSTED_PROXIES: entry })).toThrow(new ConfigError(`CANDOR_TRUSTED_PROXIES must be addresses, CIDR ranges (10.0.0.0/8) or loopback, linklocal, uniquelocal, separated by commas, got "${entry}"`));
    }
  });

  it('refuses a NODE_ENV it does not know rather than run a mistyped production with the development secret', () => {
    for (const nodeEnv of ['Production', 'prod', 'production ', 'staging']) {
      expect(() => load({ NODE_ENV: nodeEnv })).toThrow(new ConfigError(`NODE_ENV must be one of production, development, test (or unset), got "${nodeEnv}"`));
    }
    expect(load({ NODE_ENV: 'development' }).production).toBe(false);
  });

  it('in production, requires its own secret and signing key, and turns off the demo and introspection unless told', () => {
    const seed = randomBytes(32).toString('base64');
    const production = (env: Record<string, string>) => load({ NODE_ENV: 'production', CANDOR_SECRET: 'a-production-secret-of-some-length', CANDOR_AUDIT_SIGNING_KEY: seed, ...env });
    expect(() => load({ NODE_ENV: 'production', CANDOR_AUDIT_SIGNING_KEY: seed })).toThrow(new ConfigError('CANDOR_SECRET is required when NODE_ENV=production'));
    expect(() => production({ CANDOR_SECRET: DEVELOPMENT_SECRET })).toThrow(new ConfigError('CANDOR_SECRET must not be the development secret when NODE_ENV=production'));
    expect(() => load({ NODE_ENV: 'production', CANDOR_SECRET: 'a-production-secret-of-some-length' })).toThrow(
      new ConfigError('CANDOR_AUDIT_SIGNING_KEY is required when NODE_ENV=production (base64 of a 32-byte Ed25519 seed)'),
    );
    expect(() => production({ CANDOR_AUDIT_SIGNING_KEY: Buffer.alloc(31).toString('base64') })).toThrow(new ConfigError('CANDOR_AUDIT_SIGNING_KEY must be base64 of exactly 32 bytes (an Ed25519 seed)'));
    expect(() => production({ CANDOR_SECRET: 'short' })).toThrow(new ConfigError('CANDOR_SECRET must be at least 16 characters'));
    expect(() => production({ CANDOR_SECRET: 'password12345678' })).toThrow(new ConfigError('CANDOR_SECRET must be at least 32 characters when NODE_ENV=production: use a generated one (openssl rand -base64 32)'));
    expect(() => production({ CANDOR_SECRET: 'a'.repeat(32) })).toThrow(new ConfigError('CANDOR_SECRET is not random (it holds only 1 distinct characters): use a generated one (openssl rand -base64 32)'));
    // Base64 decoding skips what is not base64: a key with a stray word would load as another key.
    expect(() => production({ CANDOR_AUDIT_SIGNING_KEY: `${seed} !!! trailing` })).toThrow(new ConfigError('CANDOR_AUDIT_SIGNING_KEY must be base64 of exactly 32 bytes (an Ed25519 seed)'));
    expect(() => production({ CANDOR_AUDIT_SIGNING_KEY: Buffer.alloc(32).toString('base64') })).toThrow(
      new ConfigError('CANDOR_AUDIT_SIGNING_KEY is not random (its 32 bytes hold only 1 distinct value): make one with openssl rand -base64 32'),
    );
    expect(production({ CANDOR_AUDIT_SIGNING_KEY: ` ${seed}\n` }).auditSigningSeed).toEqual(Buffer.from(seed, 'base64'));
    const config = production({});
    expect([config.production, config.introspection, config.seedDemo]).toEqual([true, false, false]);
    // The demo cannot be turned back on in production; introspection can, explicitly.
    expect([production({ CANDOR_SEED_DEMO: 'true' }).seedDemo, production({ CANDOR_INTROSPECTION: 'true' }).introspection]).toEqual([false, true]);
    expect([load({}).introspection, load({}).seedDemo]).toEqual([true, true]);
  });

  it('serves a network only when NODE_ENV says what it is (the demo keys are published)', () => {
    expect(() => load({ NODE_ENV: undefined as never, HOST: '0.0.0.0' })).toThrow(
      new ConfigError('HOST=0.0.0.0 serves a network: set NODE_ENV=production, or NODE_ENV=development to serve the demo and its published keys there deliberately'),
    );
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) expect(load({ NODE_ENV: undefined as never, HOST: host }).host).toBe(host);
    expect(load({ NODE_ENV: 'development', HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    // `test` runs serve the demo keys with silent logs: this machine's test runs only.
    expect(() => load({ NODE_ENV: 'test', HOST: '0.0.0.0' })).toThrow(ConfigError);
  });

  it('takes a PUBLIC_URL that is an absolute http(s) URL, https in production, where it is required', () => {
    const seed = randomBytes(32).toString('base64');
    const production = (env: Record<string, string>) => load({ NODE_ENV: 'production', CANDOR_SECRET: 'a-production-secret-of-some-length', CANDOR_AUDIT_SIGNING_KEY: seed, ...env });
    expect(load({ PORT: '4100' }).publicUrl).toBe('http://localhost:4100');
    expect(load({ PUBLIC_URL: 'https://privacy.example/candor/' }).publicUrl).toBe('https://privacy.example/candor');
    for (const value of ['privacy.example', 'ftp://privacy.example', 'https://privacy.example/?a=1', 'https://user:pw@privacy.example']) {
      expect(() => load({ PUBLIC_URL: value })).toThrow(new ConfigError(`PUBLIC_URL must be an absolute http(s) URL without query or credentials (https://privacy.example.com), got "${value}"`));
    }
    expect(production({}).publicUrl).toBeUndefined();
    expect(production({ PUBLIC_URL: 'https://privacy.example' }).publicUrl).toBe('https://privacy.example');
    expect(() => production({ PUBLIC_URL: 'http://privacy.example' })).toThrow(new ConfigError('PUBLIC_URL must be an https URL when NODE_ENV=production, got "http://privacy.example"'));
  });

  it('fetches JWT keys over https in production (or from this machine)', () => {
    const seed = randomBytes(32).toString('base64');
    const jwt = { CANDOR_JWT_ISSUER: 'https://idp.example', CANDOR_JWT_AUDIENCE: 'candor' };
    const production = (jwksUrl: string) => load({ NODE_ENV: 'production', CANDOR_SECRET: 'a-production-secret-of-some-length', CANDOR_AUDIT_SIGNING_KEY: seed, ...jwt, CANDOR_JWT_JWKS_URL: jwksUrl });
    expect(() => production('http://idp.example/jwks')).toThrow(new ConfigError('CANDOR_JWT_JWKS_URL must be an https URL when NODE_ENV=production (or on this machine), got "http://idp.example/jwks"'));
    expect(production('https://idp.example/jwks').jwt?.jwksUrl).toBe('https://idp.example/jwks');
    expect(production('http://127.0.0.1:8080/jwks').jwt?.jwksUrl).toBe('http://127.0.0.1:8080/jwks');
    expect(load({ ...jwt, CANDOR_JWT_JWKS_URL: 'http://idp.example/jwks' }).jwt?.jwksUrl).toBe('http://idp.example/jwks');
    // A key that is no PEM public key is named, not left to OpenSSL's decoder message at the first token.
    expect(() => load({ ...jwt, CANDOR_JWT_PUBLIC_KEY: 'z' })).toThrow(new ConfigError('CANDOR_JWT_PUBLIC_KEY must be a public key in PEM (-----BEGIN PUBLIC KEY-----, SPKI)'));
  });

  it('keeps the rate limit per actor across instances on PostgreSQL by default, per instance on SQLite (and refuses a shared one there)', () => {
    const postgres = 'postgres://postgres@127.0.0.1:5432/candor';
    expect([load({ DATABASE_URL: postgres }).rateLimitScope, load({ DATABASE_URL: 'sqlite:/tmp/candor-config.sqlite' }).rateLimitScope]).toEqual(['cluster', 'instance']);
    expect(load({ DATABASE_URL: postgres, CANDOR_RATE_LIMIT_SCOPE: 'instance' }).rateLimitScope).toBe('instance');
    expect(() => load({ DATABASE_URL: 'sqlite:/tmp/candor-config.sqlite', CANDOR_RATE_LIMIT_SCOPE: 'cluster' })).toThrow(
      new ConfigError('CANDOR_RATE_LIMIT_SCOPE=cluster needs PostgreSQL (DATABASE_URL=postgres://…): on SQLite each instance keeps its own budget'),
    );
    expect(() => load({ DATABASE_URL: postgres, CANDOR_RATE_LIMIT_SCOPE: 'global' })).toThrow(new ConfigError('CANDOR_RATE_LIMIT_SCOPE must be cluster or instance, got "global"'));
  });

  it('reads numbers as whole decimal numbers within bounds: blanks, hex, fractions and timers past 2^31 - 1 ms are refused', () => {
    expect(load({ CANDOR_RATE_LIMIT_PER_MINUTE: ' 30 ' }).rateLimitPerMinute).toBe(30);
    for (const [name, value] of [
      ['CANDOR_RATE_LIMIT_PER_MINUTE', ' '],
      ['CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE', '0x10'],
      ['CANDOR_AUDIT_CHECKPOINT_SECONDS', '0.5'],
      ['CANDOR_AUDIT_CHECKPOINT_SECONDS', '2592000'],
      ['CANDOR_STORE_DEADLINE_MS', '3000000000'],
      ['CANDOR_QUERY_TIMEOUT_MS', '0'],
      ['PORT', '70000'],
    ]) {
      expect(() => load({ [name]: value })).toThrow(new RegExp(`^${name} must be a whole number from \\d+ to \\d+, got "${value.replace('.', '\\.')}"$`));
    }
  });

  it('reads CANDOR_JWT_CLAIMS strictly: a misspelt key would leave the claim it meant read under its default name', () => {
    const jwt = { CANDOR_JWT_ISSUER: 'https://issuer.example', CANDOR_JWT_AUDIENCE: 'candor', CANDOR_JWT_JWKS_URL: 'https://issuer.example/jwks.json' };
    expect(load({ ...jwt, CANDOR_JWT_CLAIMS: '{"purposes":"scope","team":"org"}' }).jwt?.claims).toEqual({ actorId: 'sub', name: 'name', team: 'org', purposes: 'scope', roles: 'roles' });
    expect(load(jwt).jwt?.claims.purposes).toBe('purposes');
    for (const [claims, problem] of [
      ['{"purpose":"scope"}', '; "purpose" is none of them'],
      ['{"team":5}', '; "team" must name a claim (a non-empty string)'],
      ['{"roles":" "}', '; "roles" must name a claim (a non-empty string)'],
      ['["scope"]', ''],
      ['null', ''],
      ['{purposes: scope}', ''],
    ]) {
      expect(() => load({ ...jwt, CANDOR_JWT_CLAIMS: claims })).toThrow(
        new ConfigError(`CANDOR_JWT_CLAIMS must be a JSON object naming claims for actorId, name, team, purposes, roles, such as {"team":"org","purposes":"scope"}${problem}`),
      );
    }
    expect(() => load({ ...jwt, CANDOR_JWT_JWKS_URL: 'issuer.example/jwks.json' })).toThrow(new ConfigError('CANDOR_JWT_JWKS_URL must be an http(s) URL, got "issuer.example/jwks.json"'));
  });

  it('bounds a JWT\'s lifetime: CANDOR_JWT_MAX_AGE_SECONDS, an hour by default, a day at most', () => {
    const jwt = { CANDOR_JWT_ISSUER: 'https://issuer.example', CANDOR_JWT_AUDIENCE: 'candor', CANDOR_JWT_JWKS_URL: 'https://issuer.example/jwks.json' };
    expect(load(jwt).jwt?.maxAgeSeconds).toBe(3600);
    expect(load({ ...jwt, CANDOR_JWT_MAX_AGE_SECONDS: ' 300 ' }).jwt?.maxAgeSeconds).toBe(300);
    for (const value of ['0', '86401', '1e3', '-5', 'forever']) {
      expect(() => load({ ...jwt, CANDOR_JWT_MAX_AGE_SECONDS: value })).toThrow(new ConfigError(`CANDOR_JWT_MAX_AGE_SECONDS must be a whole number from 1 to 86400, got "${value}"`));
    }
  });

  it('does not repeat a DATABASE_URL without a scheme, which may begin with a password', () => {
    expect(() => load({ DATABASE_URL: 's3cretpass@db.internal:5432/candor' })).toThrow(new ConfigError('DATABASE_URL must start with sqlite: or postgres://'));
  });

  it('sets the store deadline (after which consent-dependent fields are withheld) to 1 s by default', () => {
    expect(load({}).storeDeadlineMs).toBe(1_000);
  });

  it("bounds the server's PostgreSQL statements to 30 s by default", () => {
    expect([load({}).queryTimeoutMs, load({ CANDOR_QUERY_TIMEOUT_MS: '5000' }).queryTimeoutMs]).toEqual([30_000, 5_000]);
  });

  it('scopes introspection to the declared purpose unless switched off', () => {
    expect(load({}).purposeScopedIntrospection).toBe(true);
    expect(load({ CANDOR_PURPOSE_SCOPED_INTROSPECTION: 'false' }).purposeScopedIntrospection).toBe(false);
    expect(() => load({ CANDOR_PURPOSE_SCOPED_INTROSPECTION: 'sometimes' })).toThrow(ConfigError);
  });

  it('executes on graphql-jit unless CANDOR_EXECUTOR picks graphql-js, and names the variable for any other value', () => {
    expect(load({}).executor).toBe('graphql-jit');
    expect(load({ CANDOR_EXECUTOR: 'graphql-jit' }).executor).toBe('graphql-jit');
    expect(load({ CANDOR_EXECUTOR: 'graphql-js' }).executor).toBe('graphql-js');
    expect(() => load({ CANDOR_EXECUTOR: 'jit' })).toThrow(new ConfigError('CANDOR_EXECUTOR must be graphql-js or graphql-jit, got "jit"'));
    expect(() => load({ CANDOR_EXECUTOR: 'GRAPHQL-JIT' })).toThrow(ConfigError);
  });
  it("refuses a secret one character short of each bound, and accepts one at it", () => {
    const seed = randomBytes(32).toString('base64');
    const production = (secret: string) => load({ NODE_ENV: 'production', CANDOR_SECRET: secret, CANDOR_AUDIT_SIGNING_KEY: seed });
    // 16 characters anywhere, 32 in production: one fewer is refused.
    expect(() => load({ CANDOR_SECRET: 'abcdefghijklmno' })).toThrow(new ConfigError('CANDOR_SECRET must be at least 16 characters'));
    expect(load({ CANDOR_SECRET: 'abcdefghijklmnop' }).secret).toBe('abcdefghijklmnop');
    expect(() => production('abcdefghijklmnopqrstuvwxyz01234')).toThrow(new ConfigError('CANDOR_SECRET must be at least 32 characters when NODE_ENV=production: use a generated one (openssl rand -base64 32)'));
    expect(production('abcdefghijklmnopqrstuvwxyz012345').secret).toBe('abcdefghijklmnopqrstuvwxyz012345');
    // Eight distinct characters at least in production: seven is a typed pattern, not a generated secret.
    expect(() => production('abcdefg'.repeat(5))).toThrow(new ConfigError('CANDOR_SECRET is not random (it holds only 7 distinct characters): use a generated one (openssl rand -base64 32)'));
    expect(production('abcdefgh'.repeat(4)).secret).toBe('abcdefgh'.repeat(4));
  });

  it('refuses a signing key whose 32 bytes hold 15 distinct values, and takes one with 16', () => {
    const seedOf = (distinct: number) => Buffer.from(Array.from({ length: 32 }, (_, index) => (index % distinct) * 7 + 1)).toString('base64');
    const production = (key: string) => load({ NODE_ENV: 'production', CANDOR_SECRET: 'a-production-secret-of-some-length', CANDOR_AUDIT_SIGNING_KEY: key });
    expect(() => production(seedOf(15))).toThrow(new ConfigError('CANDOR_AUDIT_SIGNING_KEY is not random (its 32 bytes hold only 15 distinct values): make one with openssl rand -base64 32'));
    expect(production(seedOf(16)).auditSigningSeed).toEqual(Buffer.from(seedOf(16), 'base64'));
  });

  it('refuses a PUBLIC_URL naming a user without a password: the link would carry credentials', () => {
    expect(() => load({ PUBLIC_URL: 'https://user@privacy.example' })).toThrow(
      new ConfigError('PUBLIC_URL must be an absolute http(s) URL without query or credentials (https://privacy.example.com), got "https://user@privacy.example"'),
    );
  });

  it("takes a DATABASE_URL's schema only as a plain lower-case identifier: it goes unquoted (folded to lower case) into the connections' search_path, and TypeORM quotes it", () => {
    const base = 'postgres://postgres@127.0.0.1:5432/candor';
    expect(load({ DATABASE_URL: `${base}?schema=tenant_1` }).database).toEqual({ driver: 'postgres', url: base, schema: 'tenant_1' });
    for (const schema of ['public,evil', 'a b', 'tenant-1', '1tenant', `s${'x'.repeat(63)}`, 'Tenant']) {
      expect(() => load({ DATABASE_URL: `${base}?schema=${encodeURIComponent(schema)}` })).toThrow(new ConfigError(`DATABASE_URL's schema must be a plain lower-case identifier (a–z, digits, _), got "${schema}"`));
    }
  });

  it("takes DATABASE_URL's options= out of the URL, to go before Candor's own settings on every connection (left in, pg let it replace them: ?schema= among them)", () => {
    const base = 'postgres://postgres@127.0.0.1:5432/candor';
    const database = load({ DATABASE_URL: `${base}?schema=tenant_1&options=-c%20statement_timeout%3D60000&sslmode=disable` }).database;
    expect(database).toEqual({ driver: 'postgres', url: `${base}?sslmode=disable`, schema: 'tenant_1', sessionOptions: '-c statement_timeout=60000' });
    expect(sessionOptions(database as Extract<typeof database, { driver: 'postgres' }>, { lock_timeout: 500 })).toBe('-c statement_timeout=60000 -c search_path=tenant_1 -c lock_timeout=500');
    expect(sessionOptions({ driver: 'postgres', url: base })).toBeUndefined();
  });
});

describe('CANDOR_ variables Candor does not read', () => {
  it('are each named in a warning, with the setting a few edits away if there is one', () => {
    expect(
      unknownVariableWarnings({ CANDOR_DATABASE_URL: 'postgres://db/candor', CANDOR_AUDIT_SIGNNG_KEY: 'x', candor_secret: 'x', CANDOR_MAX_TOKEN: '9', CANDOR_FROBNICATE: '1', CANDOR_SECRET: 'x', DATABASE_URL: 'sqlite:x', HOME: '/root' }),
    ).toEqual([
      'CANDOR_AUDIT_SIGNNG_KEY is not a setting Candor knows (did you mean CANDOR_AUDIT_SIGNING_KEY?); it is ignored',
      'CANDOR_DATABASE_URL is not a setting Candor knows (did you mean DATABASE_URL?); it is ignored',
      'CANDOR_FROBNICATE is not a setting Candor knows; it is ignored',
      'CANDOR_MAX_TOKEN is not a setting Candor knows (did you mean CANDOR_MAX_TOKENS?); it is ignored',
      'candor_secret is not a setting Candor knows (did you mean CANDOR_SECRET?); it is ignored',
    ]);
  });

  it('never include one the documentation, the test harness or the benchmarks set', () => {
    const root = projectRoot();
    const files = ['docs', 'bench', 'test/support', '.ci'].flatMap((directory) => readdirSync(join(root, directory), { withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(directory, entry.name)));
    // The README's tables: its text also shows a misspelt variable, in the warning it draws.
    const readmeTables = readFileSync(join(root, 'README.md'), 'utf8').split('\n').filter((line) => line.startsWith('|'));
    const names = new Set([...readmeTables, ...files.map((file) => readFileSync(join(root, file), 'utf8'))].flatMap((text) => text.match(/\bCANDOR_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []));
    expect(names.size).toBeGreaterThan(30);
    expect(unknownVariableWarnings(Object.fromEntries([...names].map((name) => [name, 'x'])))).toEqual([]);
  });

  it('are warned of by the CLI and serve, one line on stderr each, and the command runs on', async () => {
    const misspelt = { CANDOR_AUDIT_SIGNNG_KEY: 'x', CANDOR_DATABASE_URL: 'postgres://db/candor' };
    const warnings =
      'candor: warning: CANDOR_AUDIT_SIGNNG_KEY is not a setting Candor knows (did you mean CANDOR_AUDIT_SIGNING_KEY?); it is ignored\n' +
      'candor: warning: CANDOR_DATABASE_URL is not a setting Candor knows (did you mean DATABASE_URL?); it is ignored\n';
    const check = await runCli(['schema', 'check'], misspelt);
    expect([check.code, check.stdout, check.stderr]).toEqual([0, 'schema files are up to date\n', warnings]);
    // serve warns before anything else it says: here, the port it is refused.
    const serve = await runCli(['serve'], { ...misspelt, PORT: 'eighty' });
    expect([serve.code, serve.stderr]).toEqual([1, `${warnings}candor: PORT must be a whole number from 0 to 65535, got "eighty"\n`]);
  });
});
