import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Harness, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';

/**
 * A company's own purposes, added in an extension file without forking schema/taxonomy.yaml, are served
 * end to end: an actor can be entitled to one, requests declaring it are governed by the same rules, and
 * the access log records them.
 */
const SUBJECT = 'cus_0000_loyal';

describe.each(DRIVERS)('a taxonomy extension file, served on %s', (driver) => {
  let candor: Harness;
  let directory: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'candor-taxonomy-'));
    const base = readFileSync(join(__dirname, '../../schema/taxonomy.yaml'), 'utf8');
    writeFileSync(join(directory, 'taxonomy.yaml'), `${base}\nextensionFiles:\n  - acme-loyalty.yaml\n`);
    copyFileSync(join(__dirname, '../fixtures/taxonomy/acme-loyalty.yaml'), join(directory, 'acme-loyalty.yaml'));
    candor = await startCandor(driver, { env: { CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml') } });
    await addCustomer(candor, SUBJECT);
  });
  afterAll(async () => {
    await candor?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('loads the extension purposes next to the base ones', () => {
    expect(candor.services.taxonomy.purposes.get('marketing.loyalty.rewards')?.legalBasis).toBe('contract');
    expect(candor.services.taxonomy.categories.get('user.behavior.loyalty.tier')?.mask?.strategy).toBe('keyed_hash');
    expect(candor.services.taxonomy.purposes.get('essential.service')?.legalBasis).toBe('contract');
  });

  it('governs and records a request that declares an extension purpose', async () => {
    const key = await candor.services.actors.create({ id: 'loyalty-service', name: 'Loyalty service', team: 'Loyalty', purposes: ['marketing.loyalty'], roles: [] });
    const response = await candor.query({ key, purpose: 'marketing.loyalty.rewards', query: `{ customer(id: "${SUBJECT}") { id email } }` });
    expect(response.status).toBe(200);
    // No field of the demo schema is declared for the company's new purpose: withheld, with the reason.
    expect(response.body.data).toEqual({ customer: { id: SUBJECT, email: null } });
    expect(response.body.errors![0].extensions!.code).toBe('PURPOSE_NOT_DECLARED');
    const page = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')! }, 10);
    expect(page.edges.map(({ node }) => [node.purpose, node.coordinate, node.decision, node.reason, node.legalBasis])).toEqual([
      ['marketing.loyalty.rewards', 'Customer.email', 'WITHHELD', 'PURPOSE_NOT_DECLARED', 'contract'],
    ]);
    const unentitled = await candor.query({ key, purpose: 'marketing.communications', query: '{ customers(limit: 1) { id } }' });
    expect(unentitled.body.errors![0].extensions!.code).toBe('PURPOSE_NOT_PERMITTED');
  });
});
