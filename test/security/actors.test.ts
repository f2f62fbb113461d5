import { type Harness, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { DRIVERS } from '../support/databases';

describe.each(DRIVERS)('API keys managed with `candor actor` on %s', (driver) => {
  let candor: Harness;
  const cli = (...args: string[]) => runCli(['actor', ...args], { DATABASE_URL: candor.database.url });
  const ask = (key: string) => candor.query({ key, purpose: 'analytics.reporting', query: '{ customers(limit: 1) { id } }' });

  beforeAll(async () => {
    candor = await startCandor(driver);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('creates an actor whose key is printed once, stored only as an HMAC, rotated and revoked on the next request', async () => {
    const created = await cli('create', '--id', 'bi-dashboards', '--name', 'BI Dashboards', '--team', 'Analytics', '--purposes', 'analytics.reporting');
    expect(created.code).toBe(0);
    const key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^cnd_[\w-]{32}$/);
    const stored = await candor.services.dataSource.query(`SELECT * FROM actor WHERE id = 'bi-dashboards'`);
    expect(JSON.stringify(stored)).not.toContain(key);
    expect(stored[0].key_hash).toBe(candor.services.actors.hashKey(key));
    expect((await ask(key)).status).toBe(200);

    const listed = await cli('list');
    expect(listed.stdout).toMatch(/bi-dashboards\s+active\s+BI Dashboards \(Analytics\)\s+purposes: analytics\.reporting/);
    expect(listed.stdout).not.toContain('cnd_');

    const rotated = await cli('rotate', '--id', 'bi-dashboards');
    const newKey = rotated.stdout.trim().split('\n').at(-1)!;
    expect(newKey).not.toBe(key);
    expect((await ask(key)).status).toBe(401);
    expect((await ask(newKey)).status).toBe(200);

    expect((await cli('revoke', '--id', 'bi-dashboards')).code).toBe(0);
    expect((await ask(newKey)).status).toBe(401);
    expect((await cli('list')).stdout).toMatch(/bi-dashboards\s+revoked /);
  });

  it.each([
    [['create', '--id', 'x', '--name', 'X', '--team', 'T', '--purposes', 'analytics.reporting'], 'candor: actor ids are 2–63 lower-case letters, digits and dashes\n'],
    [['create', '--id', 'support-desk', '--name', 'X', '--team', 'T', '--purposes', 'essential.service'], 'candor: actor "support-desk" already exists\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'espionage'], 'candor: unknown purpose "espionage"\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'marketing', '--roles', 'root'], 'candor: unknown role "root": use auditor, consent-manager, reject-withheld\n'],
    [['create', '--id', 'spy', '--name', 'X\u001b[2J', '--team', 'T', '--purposes', 'marketing'], 'candor: an actor’s name and team must be plain text in a line (they hold control or invisible characters)\n'],
    // A team that reads as another (here Analytics) while it groups apart in the reports and the log's filters.
    [['create', '--id', 'spy', '--name', 'X', '--team', 'Analytics\u200b', '--purposes', 'marketing'], 'candor: an actor’s name and team must be plain text in a line (they hold control or invisible characters)\n'],
    [['create', '--id', 'data-subject', '--name', 'X', '--team', 'T', '--purposes', 'marketing'], 'candor: the actor id "data-subject" is reserved for the data subjects themselves\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'marketing', '--roles', 'auditor,auditor'], 'candor: --roles names "auditor" more than once\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'marketing, analytics.reporting ,marketing'], 'candor: --purposes names "marketing" more than once\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'marketing,,analytics.reporting'], 'candor: --purposes "marketing,,analytics.reporting" holds an empty item: separate items with single commas\n'],
    [['create', '--id', 'spy', '--name', 'X', '--team', 'T', '--purposes', 'marketing', '--roles', 'auditor,'], 'candor: --roles "auditor," holds an empty item: separate items with single commas\n'],
    [['rotate', '--id', 'nobody'], 'candor: no active actor "nobody"\n'],
    [['revoke', '--id', 'nobody'], 'candor: no active actor "nobody"\n'],
  ])('refuses %j with one line, creating no actor', async (args, message) => {
    const result = await cli(...args);
    expect([result.code, result.stderr]).toEqual([1, message]);
    expect((await candor.services.actors.list()).map((actor) => actor.id)).not.toContain('spy');
  });
});
