import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { In } from 'typeorm';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { decide, requestPurposeOf } from '../../src/policy/decide';
import { type Harness, KEYS, startCandor, STORES_AND_EXECUTORS } from '../support/candor-harness';
import { ACTORS, consentChange, ledgerOf } from '../support/consent-histories';
import { addCustomer } from '../support/subjects';

/**
 * The invariant, over random queries and random consent histories: every released value is one decide()
 * allows, and every withheld one is one decide() denies, with the same reason.
 */
const SUBJECTS = Array.from({ length: 5 }, (_, index) => `cus_0000_prop_${index}`);
const FIELDS = ['id', 'fullName', 'displayName', 'email', 'phone', 'birthDate', 'country', 'postalAddress', 'accessibilityNeeds', 'createdAt'];
const selection = fc.record({
  fields: fc.uniqueArray(fc.constantFrom(...FIELDS), { minLength: 1, maxLength: FIELDS.length }),
  aliased: fc.boolean(),
  fragment: fc.boolean(),
});

describe.each(STORES_AND_EXECUTORS)('the release invariant on %s, executed by %s (property-based)', (driver, executor) => {
  let candor: Harness;
  let directory: string;

  beforeAll(async () => {
    // Marketing e-mail's notice changed materially a day ago: grants made before it need renewing (rule 6).
    directory = mkdtempSync(join(tmpdir(), 'candor-invariant-'));
    const since = new Date(Date.now() - 86_400_000).toISOString();
    const taxonomy = readFileSync(join(projectRoot(), 'schema', 'taxonomy.yaml'), 'utf8').replace('notice: { version: 1 }', `notice: { version: 2, since: ${since}, material: true }`);
    writeFileSync(join(directory, 'taxonomy.yaml'), taxonomy);
    candor = await startCandor(driver, { executor, env: { CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml') } });
    // Every value its own subject's: a value released from another subject's record would show.
    for (const [index, subject] of SUBJECTS.entries()) {
      await addCustomer(candor, subject, { phone: `+49 30 555000${index}`, birthDate: `199${index}-04-0${index + 1}`, country: ['DE', 'FR', 'NL', 'PL', 'SE'][index], postalAddress: `${index} Test Street`, accessibilityNeeds: `needs ${index}`, createdAt: `2025-01-0${index + 1}T00:00:00.000Z` });
    }
  });
  afterAll(async () => {
    await candor?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('holds for random queries over random consent histories', async () => {
    const seen = { allow: 0, mask: 0, deny: 0 };
    const reasons = new Set<string>();
    const stored = new Map((await candor.services.dataSource.getRepository(CustomerEntity).findBy({ id: In(SUBJECTS) })).map((customer) => [customer.id, customer as unknown as Record<string, unknown>]));
    const policies = new Map([...candor.governed.fields.values()].map((field) => [field.coordinate, field.policy]));
    await fc.assert(
      // Marketing e-mail twice as often as each other purpose: its notice changed (renewal, rule 6).
      fc.asyncProperty(fc.array(consentChange(SUBJECTS), { maxLength: 6 }), fc.constantFrom(...ACTORS, [KEYS.marketing, 'marketing.communications'] as [string, string]), selection, async (changes, [key, purposeKey], chosen) => {
        const ledger = ledgerOf(changes, Date.now());
        if (ledger.length) await candor.services.consent.appendMany(ledger);
        const selectionText = chosen.fields.map((field) => (chosen.aliased ? `x${field}: ${field}` : field)).join(' ');
        const query = chosen.fragment ? `query P { customers(limit: ${SUBJECTS.length}) { id ...F } } fragment F on Customer { ${selectionText} }` : `query P { customers(limit: ${SUBJECTS.length}) { id ${selectionText} } }`;
        const response = await candor.query({ key, purpose: purposeKey, query });
        expect(response.status).toBe(200);
        const purpose = candor.services.taxonomy.purposes.get(purposeKey)!;
        const states = new Map((await candor.services.consent.states(SUBJECTS)).map((state) => [state.subjectId, state]));
        const errors = new Map((response.body.errors ?? []).map((error) => [error.path!.join('.'), error.extensions!.code]));
        const rows = response.body.data!.customers as Array<Record<string, unknown>>;
        expect(rows.map((row) => row.id)).toEqual(SUBJECTS);
        rows.forEach((row, index) => {
          for (const field of chosen.fields) {
            const name = chosen.aliased ? `x${field}` : field;
            const now = new Date();
            const decision = decide({ field: policies.get(`Customer.${field}`)!, purpose: requestPurposeOf(purpose, now), subjectState: states.get(row.id as string)!, now });
            const path = `customers.${index}.${name}`;
            // The id is no personal field: it is always released, and counting it would make the runs look busier than they are.
            if (policies.get(`Customer.${field}`)!.personal) {
              seen[decision.effect]++;
              reasons.add(decision.reason);
            }
            if (decision.effect === 'allow') {
              // Released: exactly this subject's stored value.
              expect([path, row[name], errors.has(path)]).toEqual([path, stored.get(row.id as string)![field], false]);
            } else if (decision.effect === 'mask') {
              // A masked value is exactly the strategy's output, never the stored value.
              const value = stored.get(row.id as string)![field];
              expect([path, row[name], errors.has(path)]).toEqual([path, candor.services.masker(decision.mask!, value), false]);
              expect(row[name]).not.toEqual(value);
            } else {
              expect([path, row[name], errors.get(path)]).toEqual([path, null, decision.reason]);
            }
          }
        });
      }),
      { seed: 20261129, numRuns: 40, endOnFailure: true },
    );
    // The runs exercised both outcomes (the property is not vacuous).
    expect(seen.allow).toBeGreaterThan(50);
    expect(seen.deny).toBeGreaterThan(50);
    expect(seen.mask).toBeGreaterThan(0);
    // Every rule the histories can reach was reached, renewal after the notice change included.
    expect([...reasons].sort()).toEqual(expect.arrayContaining(['CONSENT_GIVEN', 'CONSENT_RENEWAL_REQUIRED', 'CONSENT_REQUIRED', 'LEGAL_BASIS', 'OBJECTED', 'PROCESSING_RESTRICTED', 'PURPOSE_NOT_DECLARED']));
  });

  it(`ran its operations on ${executor}`, () => {
    // graphql-js is Apollo's own execution (no gateway); graphql-jit counts what it executed.
    if (executor === 'graphql-js') expect(candor.server.jit).toBeUndefined();
    else expect(candor.server.jit!.executions.jit).toBeGreaterThanOrEqual(30);
  });
});
