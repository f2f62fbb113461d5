import { loadConfig } from '../../src/config';
import { openServices } from '../../src/server/services';
import { createDataSource, migrate } from '../../src/storage/data-source';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';

const REFUSAL = "CANDOR_SECRET is not the secret this database's actors and links were made with: set it to theirs (to change the secret on purpose, see docs/operations.md, *Changing CANDOR_SECRET*)";
const THEIRS = 'the-secret-the-actors-were-made-with';
const ANOTHER = 'another-secret-of-some-length';

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
});
