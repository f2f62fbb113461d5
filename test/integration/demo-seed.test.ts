import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { loadConfig } from '../../src/config';
import { openServices, seedDemo } from '../../src/server/services';
import { type Harness, startCandor } from '../support/candor-harness';
import { createTestDatabase, DRIVERS } from '../support/databases';
import { tamper } from '../support/raw-sql';

describe.each(DRIVERS)('the demo seed on %s', (driver) => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor(driver);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('seeds once, and finishes a first seed stopped between the customers and their consent ledger', async () => {
    const events = () => candor.services.dataSource.getRepository(ConsentEventEntity).count();
    const seeded = await events();
    expect(seeded).toBeGreaterThan(0);
    expect(await seedDemo(candor.services)).toEqual({ seededCustomers: 0 });
    expect(await events()).toBe(seeded);
    // As a first start stopped after the customers' transaction leaves the store.
    await tamper(candor, [['DELETE FROM consent_state', []], ['DELETE FROM consent_receipt', []], ['DELETE FROM consent_event', []]]);
    expect(await seedDemo(candor.services)).toEqual({ seededCustomers: 0 });
    expect(await events()).toBe(seeded);
  });
});

// Instances share a store on PostgreSQL (SQLite's file serves one instance, with the CLI beside it).
(DRIVERS.includes('postgres') ? describe : describe.skip)('the demo seed of instances starting together on postgres', () => {
  it('seeds an empty store once: the instances take turns, the later ones find it seeded', async () => {
    const database = await createTestDatabase('postgres');
    const instances = await Promise.all([1, 2, 3].map(() => openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}))));
    try {
      const seeded = await Promise.all(instances.map((services) => seedDemo(services)));
      expect(seeded.map(({ seededCustomers }) => seededCustomers).sort((a, b) => a - b)).toEqual([0, 0, 200]);
    } finally {
      await Promise.all(instances.map((services) => services.close()));
      await database.drop();
    }
  });
});
