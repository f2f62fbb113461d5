import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, projectRoot } from '../../src/config';
import { readGovernance } from '../../src/graphql/governance-catalog';
import { buildCandorSchema } from '../../src/graphql/schema';
import { runPolicyTests } from '../../src/policy/policy-tests';
import { loadConfiguredTaxonomy } from '../../src/server/services';
import { CLI, runCli, runShell } from '../support/child-server';

const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));

describe('policy tests (test/policy/*.yaml)', () => {
  it('all hold against decide()', async () => {
    const results = runPolicyTests(join(projectRoot(), 'test', 'policy'), taxonomy, readGovernance(await buildCandorSchema(taxonomy)));
    expect(results.length).toBeGreaterThanOrEqual(13);
    expect(results.filter((result) => !result.passed)).toEqual([]);
  });

  describe('a wrong expectation', () => {
    let directory: string;
    let schema: Awaited<ReturnType<typeof buildCandorSchema>>;
    beforeAll(async () => {
      schema = await buildCandorSchema(taxonomy);
      directory = mkdtempSync(join(tmpdir(), 'candor-policy-'));
      writeFileSync(join(directory, 'wrong.yaml'), '- name: email is free for marketing\n  field: Customer.email\n  purpose: marketing.communications\n  subject: {}\n  expect: { effect: allow, reason: CONSENT_GIVEN }\n');
      writeFileSync(join(directory, 'broken.yml.txt'), 'ignored');
    });
    afterAll(() => rmSync(directory, { recursive: true, force: true }));

    it('fails with a clear diff, in the runner and the CLI', async () => {
      const [result] = runPolicyTests(directory, taxonomy, readGovernance(await buildCandorSchema(taxonomy)));
      expect(result).toEqual(expect.objectContaining({ passed: false, expected: 'allow CONSENT_GIVEN', actual: 'deny CONSENT_REQUIRED' }));
      const cli = await runCli(['policy', 'test', directory], {});
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('✗ email is free for marketing');
      expect(cli.stdout).toContain('    expected: allow CONSENT_GIVEN\n    actual:   deny CONSENT_REQUIRED');
    });

    it.each([
      ['a misspelt key, which would assert less than it reads', '  subject: { consent: [] }\n  expect: { effect: deny, reason: CONSENT_REQUIRED }\n', 'subject has unknown key `consent` (allowed: restricted, consents, objections)'],
      ['a misspelt expectation', '  subject: {}\n  expect: { effect: deny, reson: CONSENT_REQUIRED }\n', 'expect has unknown key `reson` (allowed: effect, reason, mask)'],
      ['`granted: no`, which YAML 1.2 reads as text', '  subject: { consents: [{ purpose: marketing, granted: no }] }\n  expect: { effect: deny }\n', 'subject.consents[0].granted must be true or false, got "no"'],
      ['a consent for no purpose of the taxonomy', '  subject: { consents: [{ purpose: Marketing }] }\n  expect: { effect: deny }\n', 'subject.consents[0].purpose must be a purpose of the taxonomy, got "Marketing"'],
      ['a reason decide() never gives', '  subject: {}\n  expect: { effect: deny, reason: NO_CONSENT }\n', 'expect.reason must be one of'],
      ['consents that are not a list', '  subject: { consents: { purpose: marketing } }\n  expect: { effect: deny }\n', 'subject.consents must be a list'],
      ['a date that is no date', '  now: 2026-02-30\n  subject: {}\n  expect: { effect: deny }\n', 'now must be an ISO-8601 date'],
      [
        'two statements for one purpose, which no subject holds (decide() would read the first)',
        '  subject: { consents: [{ purpose: marketing.communications }, { purpose: marketing.communications, granted: false }] }\n  expect: { effect: allow }\n',
        'subject.consents holds two statements for marketing.communications: a subject holds one per purpose, the latest',
      ],
    ])('refuses %s, naming the file and case', async (_case, body, message) => {
      writeFileSync(join(directory, 'strict.yaml'), `- name: strict\n  field: Customer.email\n  purpose: marketing.communications\n${body}`);
      expect(() => runPolicyTests(join(directory, 'strict.yaml'), taxonomy, readGovernance(schema))).toThrow(`strict.yaml case 1 (strict): ${message}`);
    });

    it('refuses a case whose field declares a purpose the taxonomy does not have (a typo would test another policy)', () => {
      writeFileSync(join(directory, 'typo.yaml'), '- name: typo\n  field: { category: user.location.precise, purposes: [essential.servce] }\n  purpose: essential.service\n  subject: {}\n  expect: { effect: deny }\n');
      expect(() => runPolicyTests(join(directory, 'typo.yaml'), taxonomy, [])).toThrow('typo.yaml case 1 (typo): field declares the purpose "essential.servce", which the taxonomy does not have');
    });

    it('refuses a file of no case: it would pass whatever decide() does', () => {
      writeFileSync(join(directory, 'empty.yaml'), '[]\n');
      expect(() => runPolicyTests(join(directory, 'empty.yaml'), taxonomy, [])).toThrow(/empty\.yaml: holds no case/);
    });

    it('rejects malformed cases naming the file and case', () => {
      writeFileSync(join(directory, 'bad.yaml'), '- name: no such purpose\n  field: Customer.email\n  purpose: espionage\n  expect: { effect: deny }\n');
      expect(() => runPolicyTests(join(directory, 'bad.yaml'), taxonomy, [])).toThrow(/bad\.yaml case 1 \(no such purpose\): field must be/);
    });
  });
});

describe('`policy test` piped into a reader that stops early', () => {
  let directory: string;
  // More than a pipe holds (64 KiB): the reader is gone while the run still writes.
  const cases = (name: string, expectation: string) =>
    Array.from({ length: 2000 }, (_, index) => `- name: ${name} ${index}\n  field: Customer.email\n  purpose: marketing.communications\n  subject: {}\n  expect: ${expectation}\n`).join('');
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'candor-policy-piped-'));
    writeFileSync(join(directory, 'failing.yaml'), cases('email is free for marketing', '{ effect: allow, reason: CONSENT_GIVEN }'));
    writeFileSync(join(directory, 'passing.yaml'), cases('email is withheld from marketing without consent', '{ effect: deny, reason: CONSENT_REQUIRED }'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('exits with its own code (`| head -1` under pipefail): 1 when a case failed, 0 when all passed, and says nothing of the closed pipe', async () => {
    const failing = await runShell(`node "${CLI}" policy test "${join(directory, 'failing.yaml')}" | head -1`, {});
    expect([failing.code, failing.stdout, failing.stderr]).toEqual([1, `✗ email is free for marketing 0 (${join(directory, 'failing.yaml')})\n`, '']);
    const passing = await runShell(`node "${CLI}" policy test "${join(directory, 'passing.yaml')}" | head -1`, {});
    expect([passing.code, passing.stdout, passing.stderr]).toEqual([0, '✓ email is withheld from marketing without consent 0\n', '']);
  });
});
