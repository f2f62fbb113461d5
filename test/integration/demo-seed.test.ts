import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { seedDemo } from '../../src/server/services';
import { type Harness, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
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
