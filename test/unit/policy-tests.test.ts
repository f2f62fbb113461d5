import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, projectRoot } from '../../src/config';
import { readGovernance } from '../../src/graphql/governance-catalog';
import { buildCandorSchema } from '../../src/graphql/schema';
import { runPolicyTests } from '../../src/policy/policy-tests';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { runCli } from '../support/child-server';

const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));

describe('policy tests (test/policy/*.yaml)', () => {
  it('all hold against decide()', async () => {
    const results = runPolicyTests(join(projectRoot(), 'test', 'policy'), taxonomy, readGovernance(await buildCandorSchema()));
    expect(results.length).toBeGreaterThanOrEqual(13);
    expect(results.filter((result) => !result.passed)).toEqual([]);
  });

  describe('a wrong expectation', () => {
    let directory: string;
    beforeAll(() => {
      directory = mkdtempSync(join(tmpdir(), 'candor-policy-'));
      writeFileSync(join(directory, 'wrong.yaml'), '- name: email is free for marketing\n  field: Customer.email\n  purpose: marketing.communications\n  subject: {}\n  expect: { effect: allow, reason: CONSENT_GIVEN }\n');
      writeFileSync(join(directory, 'broken.yml.txt'), 'ignored');
    });
    afterAll(() => rmSync(directory, { recursive: true, force: true }));

    it('fails with a clear diff, in the runner and the CLI', async () => {
      const [result] = runPolicyTests(directory, taxonomy, readGovernance(await buildCandorSchema()));
      expect(result).toEqual(expect.objectContaining({ passed: false, expected: 'allow CONSENT_GIVEN', actual: 'deny CONSENT_REQUIRED' }));
      const cli = await runCli(['policy', 'test', directory], {});
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('✗ email is free for marketing');
      expect(cli.stdout).toContain('    expected: allow CONSENT_GIVEN\n    actual:   deny CONSENT_REQUIRED');
    });

    it('rejects malformed cases naming the file and case', () => {
      writeFileSync(join(directory, 'bad.yaml'), '- name: no such purpose\n  field: Customer.email\n  purpose: espionage\n  expect: { effect: deny }\n');
      expect(() => runPolicyTests(join(directory, 'bad.yaml'), taxonomy, [])).toThrow(/bad\.yaml case 1 \(no such purpose\): field must be/);
    });
  });
});
