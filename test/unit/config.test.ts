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

  it('withholds consent-dependent fields after 250 ms of store latency by default', () => {
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
