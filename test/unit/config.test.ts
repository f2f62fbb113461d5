import { ConfigError, loadConfig } from '../../src/config';

describe('configuration', () => {
  const load = (env: Record<string, string>) => loadConfig({ DATABASE_URL: 'sqlite:./data/test-config.sqlite', NODE_ENV: 'test', ...env }, {});

  it('allows batches of up to 5 operations by default, fewer when configured, never more', () => {
    expect(load({}).limits.batchOperations).toBe(5);
    expect(load({ CANDOR_MAX_BATCH_OPERATIONS: '1' }).limits.batchOperations).toBe(1);
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: '6' })).toThrow(new ConfigError('CANDOR_MAX_BATCH_OPERATIONS must be at most 5, got 6'));
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: '0' })).toThrow(ConfigError);
    expect(() => load({ CANDOR_MAX_BATCH_OPERATIONS: 'many' })).toThrow(ConfigError);
  });

  it('refuses a NODE_ENV it does not know rather than run a mistyped production with the development secret', () => {
    for (const nodeEnv of ['Production', 'prod', 'production ', 'staging']) {
      expect(() => load({ NODE_ENV: nodeEnv })).toThrow(new ConfigError(`NODE_ENV must be one of production, development, test (or unset), got "${nodeEnv}"`));
    }
    expect(load({ NODE_ENV: 'development' }).production).toBe(false);
  });

  it('reads numbers as whole decimal numbers within bounds: blanks, hex, fractions and timers past 2^31 - 1 ms are refused', () => {
    expect(load({ CANDOR_RATE_LIMIT_PER_MINUTE: ' 30 ' }).rateLimitPerMinute).toBe(30);
    for (const [name, value] of [
      ['CANDOR_RATE_LIMIT_PER_MINUTE', ' '],
      ['CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE', '0x10'],
      ['CANDOR_AUDIT_CHECKPOINT_SECONDS', '0.5'],
      ['CANDOR_AUDIT_CHECKPOINT_SECONDS', '2592000'],
      ['CANDOR_STORE_DEADLINE_MS', '3000000000'],
      ['PORT', '70000'],
    ]) {
      expect(() => load({ [name]: value })).toThrow(new RegExp(`^${name} must be a whole number from \\d+ to \\d+, got "${value.replace('.', '\\.')}"$`));
    }
  });

  it('does not repeat a DATABASE_URL without a scheme, which may begin with a password', () => {
    expect(() => load({ DATABASE_URL: 's3cretpass@db.internal:5432/candor' })).toThrow(new ConfigError('DATABASE_URL must start with sqlite: or postgres://'));
  });

  it('sets the store deadline (after which consent-dependent fields are withheld) to 250 ms by default', () => {
    expect(load({}).storeDeadlineMs).toBe(250);
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
});
