import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';
import { createDataSource, migrate } from '../../src/storage/data-source';
import { secretRotate } from '../../src/cli/secret.command';
import { replaceSecret } from '../../src/storage/secret-fingerprint';
import { eventually } from '../support/eventually';
import { runCli } from '../support/child-server';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';

const REFUSAL = "CANDOR_SECRET is not the secret this database's actors and links were made with: set it to theirs (to change the secret on purpose, see docs/operations.md, *Changing CANDOR_SECRET*)";
const THEIRS = 'the-secret-the-actors-were-made-with';
const ANOTHER = 'another-secret-of-some-length';
/** A secret suspected exposed is replaced by this one. */
const NEXT = 'the-secret-after-the-incident';

describe.each(DRIVERS)('the secret a database was made with, on %s', (driver) => {
  let database: TestDatabase;
  beforeEach(async () => {
    database = await createTestDatabase(driver);
  });
  afterEach(async () => {
    await database?.drop();
  });
  const open = (secret: string) => openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: secret }, {}), { migrate: 'require' });
  /** Applies the pending migrations as a release does, opening nothing that knows a secret. */
  const migrateOnly = async () => {
    const migrating = createDataSource(loadConfig({ DATABASE_URL: database.url }, {}).database);
    await migrating.initialize();
    await migrate(migrating);
    await migrating.destroy();
  };

  it('a database from before the fingerprint adopts the secret of the first process that opens it; another is refused from then on', async () => {
    const before = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS }, {}));
    const key = await before.actors.create({ id: 'made-before', name: 'Made Before', team: 'Support', roles: [], purposes: ['essential.service'] });
    // Back to the version before it: its actors, no fingerprint.
    await before.dataSource.undoLastMigration({ transaction: 'each' });
    await before.close();
    await migrateOnly();

    const upgraded = await open(THEIRS);
    try {
      expect((await upgraded.actors.authenticate(key))?.id).toBe('made-before');
    } finally {
      await upgraded.close();
    }
    await expect(open(ANOTHER)).rejects.toThrow(REFUSAL);
  });

  it('never records the published development secret: a command run without NODE_ENV=production leaves the database to the servers\' secret', async () => {
    await migrateOnly();
    const development = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}), { migrate: 'require' });
    await development.close();
    const servers = await open(THEIRS);
    await servers.close();
    await expect(openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}), { migrate: 'require' })).rejects.toThrow(REFUSAL);
  });

  it('refuses another secret on a database seeded under the development secret (its demo keys would stop working), until it is rotated to it', async () => {
    await migrateOnly();
    const demo = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}), { migrate: 'require' });
    try {
      await demo.actors.seedDemoActors();
    } finally {
      await demo.close();
    }
    await expect(open(THEIRS)).rejects.toThrow(
      "this database was seeded with the development secret (CANDOR_SECRET unset), and its actors' keys are made with it: run with CANDOR_SECRET unset, or move the database to this secret with `CANDOR_NEXT_SECRET=<this secret> npx candor secret rotate`, CANDOR_SECRET unset",
    );
    // Nothing was recorded: the demo still opens as it was.
    const asBefore = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}), { migrate: 'require' });
    try {
      expect((await asBefore.actors.authenticate('demo-support-key'))?.id).toBe('support-desk');
    } finally {
      await asBefore.close();
    }
    const rotated = await runCli(['secret', 'rotate'], { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_NEXT_SECRET: THEIRS });
    expect([rotated.code, rotated.stderr]).toEqual([0, '']);
    const moved = await open(THEIRS);
    try {
      expect((await moved.actors.authenticate('demo-support-key'))?.id).toBe('support-desk');
    } finally {
      await moved.close();
    }
  });

  it('processes opening a database together all keep the secret one of them recorded first', async () => {
    await migrateOnly();
    const secrets = [THEIRS, ANOTHER, THEIRS, ANOTHER, THEIRS, ANOTHER];
    const opened = await Promise.allSettled(secrets.map(open));
    await Promise.all(opened.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.close() : undefined)));
    const kept = secrets.find((_, index) => opened[index].status === 'fulfilled');
    expect(kept).toBeDefined();
    expect(opened.map((outcome, index) => [secrets[index], outcome.status === 'fulfilled' ? 'opened' : (outcome.reason as Error).message])).toEqual(
      secrets.map((secret) => [secret, secret === kept ? 'opened' : REFUSAL]),
    );
  });

  describe('secret rotate (CANDOR_NEXT_SECRET)', () => {
    const rotate = (env: Record<string, string>) => runCli(['secret', 'rotate'], { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS, ...env });
    /** The keys a rotation printed, by actor id. */
    const keysPrinted = (stdout: string) => new Map([...stdout.matchAll(/^ {2}(\S+) +(\S+)/gm)].map(([, id, key]) => [id, key]));
    let keys: { kept: string; revoked: string };
    beforeEach(async () => {
      await migrateOnly();
      const before = await open(THEIRS);
      try {
        await before.actors.seedDemoActors();
        await before.actors.rotate('campaign-manager'); // no longer its published key
        keys = {
          kept: await before.actors.create({ id: 'warehouse', name: 'Warehouse', team: 'Data', roles: [], purposes: ['analytics.reporting'] }),
          revoked: await before.actors.create({ id: 'departed', name: 'Departed', team: 'Data', roles: [], purposes: ['analytics.reporting'] }),
        };
        await before.actors.revoke('departed');
      } finally {
        await before.close();
      }
    });

    it('gives every active actor a key under the new secret (a demo actor on its published key keeps it), refuses the old secret, and is recorded', async () => {
      const result = await rotate({ CANDOR_NEXT_SECRET: NEXT });
      expect([result.code, result.stderr]).toEqual([0, '']);
      const printed = keysPrinted(result.stdout);
      expect([...printed.keys()]).toEqual(['analytics-warehouse', 'campaign-manager', 'compliance-office', 'sponsor-sync', 'support-desk', 'warehouse']);
      expect(printed.get('support-desk')).toBe('demo-support-key');
      expect(result.stdout).toContain('demo-support-key  (its published demo key, kept)');
      expect(printed.get('campaign-manager')).toMatch(/^cnd_/);
      expect(printed.get('warehouse')).toMatch(/^cnd_/);
      expect(result.stdout).toContain('Next: set CANDOR_SECRET to the new secret on every instance and restart them');

      const after = await open(NEXT);
      try {
        for (const [id, key] of printed) expect((await after.actors.authenticate(key))?.id).toBe(id);
        expect(await after.actors.authenticate(keys.kept)).toBeUndefined();
        expect(await after.actors.authenticate(keys.revoked)).toBeUndefined();
        const runs = await after.accessLogReader.page({ reason: 'SECRET_ROTATED' }, 10);
        expect(runs.edges.map(({ node }) => [node.operationName, node.actor.team, node.decision])).toEqual([['secret rotate', 'cli', 'RELEASED']]);
        expect(await after.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
      } finally {
        await after.close();
      }
      await expect(open(THEIRS)).rejects.toThrow(REFUSAL);
    });

    it('checks the secret again under the lock: a rotation opened before another one committed changes nothing', async () => {
      const late = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS, CANDOR_NEXT_SECRET: `${NEXT}-too-late` }, {}), { migrate: 'require' });
      try {
        expect((await rotate({ CANDOR_NEXT_SECRET: NEXT })).code).toBe(0);
        const output = { interactive: false, out: () => undefined, err: () => undefined };
        await expect(secretRotate(late, output)).rejects.toThrow("nothing rotated: the database's secret changed since this command started (another secret rotate?)");
      } finally {
        await late.close();
      }
      const after = await open(NEXT);
      await after.close();
    });

    it('refuses an actor key made by a process opened before a rotation committed: it would be made with the old secret, which nothing accepts', async () => {
      const early = await open(THEIRS);
      try {
        const before = await early.actors.create({ id: 'before-the-rotation', name: 'Before', team: 'Data', roles: [], purposes: ['analytics.reporting'] });
        const rotated = await rotate({ CANDOR_NEXT_SECRET: NEXT });
        expect(rotated.code).toBe(0);
        const stale = "nothing written: the database's secret changed since this command started (secret rotate): run it again with CANDOR_SECRET set to the database's new secret";
        await expect(early.actors.create({ id: 'after-the-rotation', name: 'After', team: 'Data', roles: [], purposes: ['analytics.reporting'] })).rejects.toThrow(stale);
        await expect(early.actors.rotate('warehouse')).rejects.toThrow(stale);

        const after = await open(NEXT);
        try {
          expect((await after.actors.list()).map(({ id }) => id)).not.toContain('after-the-rotation');
          expect((await after.actors.authenticate(keysPrinted(rotated.stdout).get('warehouse')!))?.id).toBe('warehouse');
          expect((await after.actors.authenticate(keysPrinted(rotated.stdout).get('before-the-rotation')!))?.id).toBe('before-the-rotation');
          expect(await after.actors.authenticate(before)).toBeUndefined();
        } finally {
          await after.close();
        }
      } finally {
        await early.close();
      }
    });

    if (driver === 'postgres') {
      it('an actor key made while a rotation is in progress waits for it, then is refused', async () => {
        const early = await open(THEIRS);
        const rotating = early.dataSource.createQueryRunner();
        try {
          await rotating.startTransaction();
          await replaceSecret(rotating.manager, THEIRS, NEXT, new Date());
          const creating = early.actors.create({ id: 'during-the-rotation', name: 'During', team: 'Data', roles: [], purposes: ['analytics.reporting'] });
          const settled = creating.then(
            () => 'created',
            (error: Error) => error.message,
          );
          const waitingOnLocks = async () => Number((await early.dataSource.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))[0].n) > 0;
          await eventually(waitingOnLocks, 'the key write waiting on the fingerprint row');
          await rotating.commitTransaction();
          expect(await settled).toMatch(/^nothing written: the database's secret changed since this command started/);
        } finally {
          if (rotating.isTransactionActive) await rotating.rollbackTransaction();
          await rotating.release();
          await early.close();
        }
      });
    }

    it('of two rotations at once, one is refused (at its start or under the lock) and the keys the other printed work', async () => {
      const secrets = [NEXT, `${NEXT}-the-other-one`];
      const runs = await Promise.all(secrets.map((secret) => rotate({ CANDOR_NEXT_SECRET: secret })));
      expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
      const winner = runs.findIndex((run) => run.code === 0);
      expect(runs[1 - winner].stderr).toMatch(/^candor: (nothing rotated: the database's secret changed since this command started|CANDOR_SECRET is not the secret this database's actors)/);
      const after = await open(secrets[winner]);
      try {
        expect((await after.actors.authenticate(keysPrinted(runs[winner].stdout).get('warehouse')!))?.id).toBe('warehouse');
      } finally {
        await after.close();
      }
    });

    it.each([
      ['no new secret', {}, 'candor: CANDOR_NEXT_SECRET is required: the new secret (openssl rand -base64 32)\n'],
      ['the current secret', { CANDOR_NEXT_SECRET: THEIRS }, 'candor: CANDOR_NEXT_SECRET is the current secret: nothing to rotate\n'],
      ['a short secret', { CANDOR_NEXT_SECRET: 'too-short' }, 'candor: CANDOR_NEXT_SECRET must be at least 16 characters\n'],
      ['the published development secret', { CANDOR_NEXT_SECRET: 'candor-development-secret-not-for-production' }, 'candor: CANDOR_NEXT_SECRET must not be the development secret: it is published\n'],
      ['a current secret that is not the database\'s', { CANDOR_SECRET: ANOTHER, CANDOR_NEXT_SECRET: NEXT }, `candor: ${REFUSAL}\n`],
    ])('refuses %s, changing nothing', async (_case, env, message) => {
      const result = await rotate(env);
      expect([result.code, result.stdout, result.stderr]).toEqual([1, '', message]);
      const unchanged = await open(THEIRS);
      try {
        expect((await unchanged.actors.authenticate(keys.kept))?.id).toBe('warehouse');
      } finally {
        await unchanged.close();
      }
    });

    it('refuses while the log is signed with a key made from the secret, and rotates once signing was handed to a key of its own', async () => {
      const asTheyAre = { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS };
      // A checkpoint needs a record to sign over: the verify's own.
      expect((await runCli(['audit', 'verify'], asTheyAre)).code).toBe(0);
      expect((await runCli(['audit', 'checkpoint', 'create'], asTheyAre)).stdout).toMatch(/^signed checkpoint/);
      const refused = await rotate({ CANDOR_NEXT_SECRET: NEXT });
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining("candor: nothing rotated: the access log's checkpoints are signed with a key made from CANDOR_SECRET")]);
      const signingKey = Buffer.from(Array.from({ length: 32 }, (_, index) => index * 7 + 3)).toString('base64');
      const handedOver = await runCli(['audit', 'checkpoint', 'rotate'], { ...asTheyAre, CANDOR_AUDIT_NEXT_SIGNING_KEY: signingKey });
      expect(handedOver.code).toBe(0);
      const rotated = await rotate({ CANDOR_NEXT_SECRET: NEXT, CANDOR_AUDIT_SIGNING_KEY: signingKey });
      expect([rotated.code, rotated.stderr]).toEqual([0, '']);
      const verified = await runCli(['audit', 'verify'], { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: NEXT, CANDOR_AUDIT_SIGNING_KEY: signingKey });
      expect([verified.code, verified.stdout]).toEqual([0, expect.stringMatching(/^verified \d+ records/)]);
    });
  });
});
