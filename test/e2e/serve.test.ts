import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { KEYS } from '../support/candor-harness';
import { runCli, startChildServer } from '../support/child-server';
import { createTestDatabase, DRIVERS } from '../support/databases';
import { eventually } from '../support/eventually';

const post = async (url: string, key: string, purpose: string, query: string) => {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-purpose': purpose }, body: JSON.stringify({ query }) });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: Array<{ extensions?: { code?: string } }> } };
};

describe.each(DRIVERS)('`candor serve` as a process on %s', (driver) => {
  it('migrates, seeds 200 demo customers and serves governed queries; a restart does not seed twice', async () => {
    const database = await createTestDatabase(driver);
    let withheldOnJit = -1;
    try {
      const first = await startChildServer({ DATABASE_URL: database.url });
      try {
        expect(first.output()).toContain('seeded the demo platform: 200 customers');
        expect(first.output()).toContain(`Demo keys: ${KEYS.support}`);
        const support = await post(first.url, KEYS.support, 'essential.service', '{ customers(limit: 1000) { id email } }');
        expect(support.body.data.customers).toHaveLength(200);
        // Under the contract basis only the seeded restrictions (GDPR Art. 18) withhold anything.
        expect(new Set(support.body.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['PROCESSING_RESTRICTED']));
        const marketing = await post(first.url, KEYS.marketing, 'marketing.communications', '{ customers(limit: 200) { email } }');
        const withheld = marketing.body.errors?.filter((error) => error.extensions?.code === 'CONSENT_REQUIRED').length ?? 0;
        expect(withheld).toBeGreaterThan(20);
        expect(withheld).toBeLessThan(180);
        withheldOnJit = withheld;
      } finally {
        await first.kill('SIGTERM');
      }
      // The restart runs on the reference executor (graphql-jit is the default): the same answers.
      const second = await startChildServer({ DATABASE_URL: database.url, CANDOR_EXECUTOR: 'graphql-js' });
      try {
        expect(second.output()).not.toContain('seeded');
        expect(second.output()).toContain(`(${driver}, graphql-js)`);
        expect((await post(second.url, KEYS.support, 'essential.service', '{ customers(limit: 1000) { id } }')).body.data.customers).toHaveLength(200);
        const marketing = await post(second.url, KEYS.marketing, 'marketing.communications', '{ customers(limit: 200) { email } }');
        expect(marketing.body.errors?.filter((error) => error.extensions?.code === 'CONSENT_REQUIRED').length).toBe(withheldOnJit);
      } finally {
        await second.kill();
      }
    } finally {
      await database.drop();
    }
  });

  it('lists no demo keys when no demo actor holds them (CANDOR_SEED_DEMO=false on an empty store)', async () => {
    const database = await createTestDatabase(driver);
    try {
      const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_SEED_DEMO: 'false' });
      try {
        expect(server.output()).not.toContain('Demo keys');
        expect((await post(server.url, KEYS.support, 'essential.service', '{ customers(limit: 1) { id } }')).status).toBe(401);
      } finally {
        await server.kill();
      }
    } finally {
      await database.drop();
    }
  });

  it('shuts down on SIGTERM through its own shutdown: exit 0, with the last checkpoint signed', async () => {
    const database = await createTestDatabase(driver);
    try {
      // 0: no periodic checkpoints, only the one at shutdown (and on demand).
      const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_AUDIT_CHECKPOINT_SECONDS: '0' });
      expect((await post(server.url, KEYS.support, 'essential.service', '{ customers(limit: 1) { email } }')).status).toBe(200);
      await server.kill('SIGTERM');
      expect([server.process.exitCode, server.process.signalCode]).toEqual([0, null]);
      const exported = await runCli(['audit', 'checkpoint', 'export'], { DATABASE_URL: database.url });
      expect(JSON.parse(exported.stdout).checkpoints).toEqual([expect.objectContaining({ kind: 'periodic' })]);
    } finally {
      await database.drop();
    }
  });

  it('drains for CANDOR_SHUTDOWN_DRAIN_MS when told to stop: /readyz says it is shutting down, requests are still answered, each closing its connection; then exit 0', async () => {
    const database = await createTestDatabase(driver);
    try {
      const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_AUDIT_CHECKPOINT_SECONDS: '0', CANDOR_SHUTDOWN_DRAIN_MS: '4000' });
      const base = server.url.replace(/\/graphql$/, '');
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const exited = new Promise((resolve) => server.process.once('exit', resolve));
      process.kill(-server.process.pid!, 'SIGTERM');
      await eventually(async () => (await fetch(`${base}/readyz`)).status === 503, 'the server saying it is shutting down', 3_000);
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'not ready', problems: ['shutting down'] });
      const answered = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.support}`, 'x-purpose': 'essential.service' }, body: JSON.stringify({ query: '{ customers(limit: 1) { email } }' }) });
      expect([answered.status, answered.headers.get('connection')]).toEqual([200, 'close']);
      await exited;
      expect([server.process.exitCode, server.process.signalCode]).toEqual([0, null]);
    } finally {
      await database.drop();
    }
  });

  it('shuts down once when signalled twice (Ctrl-C pressed again, SIGTERM after SIGINT): exit 0', async () => {
    const database = await createTestDatabase(driver);
    try {
      const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_AUDIT_CHECKPOINT_SECONDS: '0' });
      expect((await post(server.url, KEYS.support, 'essential.service', '{ customers(limit: 1) { email } }')).status).toBe(200);
      const exited = new Promise((resolve) => server.process.once('exit', resolve));
      process.kill(-server.process.pid!, 'SIGINT');
      process.kill(-server.process.pid!, 'SIGINT');
      process.kill(-server.process.pid!, 'SIGTERM');
      await exited;
      expect([server.process.exitCode, server.process.signalCode, server.output()]).toEqual([0, null, expect.not.stringContaining('shutdown failed')]);
      expect(JSON.parse((await runCli(['audit', 'checkpoint', 'export'], { DATABASE_URL: database.url })).stdout).checkpoints).toHaveLength(1);
    } finally {
      await database.drop();
    }
  });

  it('names a host it cannot resolve as such, not as an unreachable database (exit 1, one line)', async () => {
    const database = await createTestDatabase(driver);
    try {
      const failed = await runCli(['serve'], { DATABASE_URL: database.url, PORT: '0', HOST: 'no-such-host.invalid', NODE_ENV: 'development' });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/^candor: cannot resolve host "no-such-host\.invalid" \(HOST or DATABASE_URL\): getaddrinfo \S+ no-such-host\.invalid\n$/);
    } finally {
      await database.drop();
    }
  });

  it('in production seeds nothing and refuses demo keys', async () => {
    const database = await createTestDatabase(driver);
    try {
      const env = { DATABASE_URL: database.url, NODE_ENV: 'production', CANDOR_SECRET: 'a-real-production-secret-0123456789', CANDOR_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
      const server = await startChildServer(env);
      try {
        expect(server.output()).not.toContain('seeded');
        expect(server.output()).not.toContain('demo-');
        const response = await post(server.url, KEYS.support, 'essential.service', '{ customers { id } }');
        expect(response.status).toBe(401);
        const page = await fetch(server.url, { headers: { accept: 'text/html' } });
        expect(await page.text()).not.toContain('embeddable-sandbox');
        // A real actor is answered, but the schema is not introspectable (CANDOR_INTROSPECTION defaults off).
        const created = await runCli(['actor', 'create', '--id', 'support-desk', '--name', 'Support Desk', '--team', 'Support', '--purposes', 'essential.service'], env);
        expect(created.code).toBe(0);
        const key = created.stdout.trim().split('\n').at(-1)!;
        const answered = await post(server.url, key, 'essential.service', '{ customers { id } }');
        expect([answered.status, answered.body.errors]).toEqual([200, undefined]);
        const introspection = await post(server.url, key, 'essential.service', '{ __schema { types { name } } }');
        expect([introspection.body.data, introspection.body.errors?.map((error) => error.extensions?.code)]).toEqual([undefined, ['GRAPHQL_VALIDATION_FAILED']]);
      } finally {
        await server.kill();
      }
    } finally {
      await database.drop();
    }
  });
  it('refuses to serve, or to run a command, with another CANDOR_SECRET than the database was made with', async () => {
    const database = await createTestDatabase(driver);
    try {
      const theirs = { DATABASE_URL: database.url, NODE_ENV: 'production', CANDOR_SECRET: 'the-secret-the-actors-were-made-with', CANDOR_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
      const another = { ...theirs, CANDOR_SECRET: 'another-secret-of-some-length-0123' };
      const refusal = "candor: CANDOR_SECRET is not the secret this database's actors and links were made with: set it to theirs (to change the secret on purpose, see docs/operations.md, *Changing CANDOR_SECRET*)\n";
      const server = await startChildServer(theirs);
      try {
        const created = await runCli(['actor', 'create', '--id', 'support-desk', '--name', 'Support Desk', '--team', 'Support', '--purposes', 'essential.service'], theirs);
        const key = created.stdout.trim().split('\n').at(-1)!;
        expect((await post(server.url, key, 'essential.service', '{ customers { id } }')).status).toBe(200);
        // Its keys would be refused by every server; the other way round, it would refuse every key.
        const made = await runCli(['actor', 'create', '--id', 'made-elsewhere', '--name', 'Made Elsewhere', '--team', 'Support', '--purposes', 'essential.service'], another);
        expect(made).toEqual({ code: 1, stdout: '', stderr: refusal });
        expect((await runCli(['actor', 'list'], theirs)).stdout).not.toContain('made-elsewhere');
        const served = await startChildServer(another).then(
          async (started) => {
            await started.kill();
            return 'served';
          },
          (error: Error) => error.message,
        );
        expect(served).toBe(`server exited with 1 before serving:\n${refusal}`);
      } finally {
        await server.kill('SIGTERM');
      }
    } finally {
      await database.drop();
    }
  });
});

describe('startup refusals', () => {
  let directory: string;
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'candor-startup-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('refuses to start when a field names a category the taxonomy lacks, naming the coordinate', async () => {
    const taxonomy = readFileSync(join(projectRoot(), 'schema', 'taxonomy.yaml'), 'utf8').replace(/^ {2}user\.financial:\n.*\n.*\n/m, '');
    expect(taxonomy).not.toContain('user.financial:');
    const file = join(directory, 'taxonomy.yaml');
    writeFileSync(file, taxonomy);
    const result = await runCli(['serve'], { DATABASE_URL: `sqlite:${join(directory, 'a.sqlite')}`, CANDOR_TAXONOMY: file, PORT: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Payment.amount names unknown category "user.financial"');
    expect(result.stderr).toContain('Customer.payments names unknown category "user.financial"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to start in production without a real secret', async () => {
    const result = await runCli(['serve'], { DATABASE_URL: `sqlite:${join(directory, 'b.sqlite')}`, NODE_ENV: 'production' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('candor: CANDOR_SECRET is required when NODE_ENV=production');
  });

  it('prints help for `candor --help`', async () => {
    const result = await runCli(['--help'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: npx candor <command>');
  });

  it("prints one command's help for `candor <command> --help` and `candor help <command>`, and refuses a command it does not have", async () => {
    const verify = await runCli(['audit', 'verify', '--help'], {});
    expect([verify.code, verify.stderr]).toEqual([0, '']);
    expect(verify.stdout).toMatch(/^Usage: npx candor audit verify \[--from SEQ\] \[--checkpoints FILE\]\n[\s\S]*\nOptions:\n {2}--from SEQ /);
    expect(await runCli(['help', 'audit', 'verify'], {})).toEqual(expect.objectContaining({ code: 0, stdout: verify.stdout }));
    // Help comes first: an option the command does not take is not refused when help is asked for.
    expect(await runCli(['report', 'ropa', '--bogus', '-h'], {})).toEqual(expect.objectContaining({ code: 0, stdout: expect.stringMatching(/^Usage: npx candor report <ropa\|/) }));
    const unknown = await runCli(['help', 'erase'], {});
    expect([unknown.code, unknown.stdout]).toEqual([2, '']);
    expect(unknown.stderr).toMatch(/^candor: no command "erase" \(the commands are below\)\ncandor — a GraphQL data-governance server\n/);
    // An unknown command is said as such, whatever words and options follow it; a subcommand a command does not have gets its usage.
    const bogus = await runCli(['bogus', 'a', 'b', '--x'], {});
    expect([bogus.code, bogus.stdout]).toEqual([2, '']);
    expect(bogus.stderr).toMatch(/^candor: unknown command "bogus"\n\ncandor — a GraphQL data-governance server\n/);
    expect(await runCli(['audit', 'bogus', 'a'], {})).toEqual(expect.objectContaining({ code: 2, stderr: 'candor: usage: npx candor audit <verify|checkpoint|prune|partitions> …\n' }));
  });

  it('reports stale schema files through `candor schema check`', async () => {
    const result = await runCli(['schema', 'check'], {});
    expect(result).toEqual(expect.objectContaining({ code: 0, stdout: 'schema files are up to date\n' }));
    // A taxonomy with a purpose of its own renders another governance.json than the committed one: stale,
    // and only said (check writes nothing).
    const directory = mkdtempSync(join(tmpdir(), 'candor-stale-'));
    try {
      const committed = readFileSync(join(__dirname, '../../schema/governance.json'), 'utf8');
      writeFileSync(join(directory, 'taxonomy.yaml'), `${readFileSync(join(__dirname, '../../schema/taxonomy.yaml'), 'utf8')}\nextensionFiles:\n  - acme-loyalty.yaml\n`);
      copyFileSync(join(__dirname, '../fixtures/taxonomy/acme-loyalty.yaml'), join(directory, 'acme-loyalty.yaml'));
      const stale = await runCli(['schema', 'check'], { CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml') });
      expect(stale).toEqual(expect.objectContaining({ code: 1, stdout: '', stderr: 'stale: schema/governance.json — run `npx candor schema emit` and commit the result\n' }));
      expect(readFileSync(join(__dirname, '../../schema/governance.json'), 'utf8')).toBe(committed);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
