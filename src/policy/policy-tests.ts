import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { badInput, isoTime } from '../errors';
import { DENIAL_REASONS, RELEASE_REASONS } from './codes';
import type { FieldGovernance } from '../graphql/governance-catalog';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { decide, type FieldPolicy, requestPurposeOf, type SubjectState } from './decide';
import { fieldPolicy } from './guarded-field';

/**
 * Policy tests: decision fixtures in YAML that pin down what a company means its taxonomy and annotations
 * to do. Each case names a field (by coordinate, or by category and purposes), a purpose, a subject state
 * and the expected decision, and is checked against `decide()`.
 *
 * ```yaml
 * - name: marketing e-mail needs consent
 *   field: Customer.email
 *   purpose: marketing.communications
 *   subject: { consents: [] }
 *   expect: { effect: deny, reason: CONSENT_REQUIRED }      # effect allow | mask | deny; optional mask: <strategy>
 * ```
 */
const DECISION_REASONS: ReadonlySet<string> = new Set([...RELEASE_REASONS, ...DENIAL_REASONS]);

export interface PolicyCaseResult {
  readonly file: string;
  readonly name: string;
  readonly passed: boolean;
  readonly expected: string;
  readonly actual: string;
}

interface RawCase {
  name?: unknown;
  field?: unknown;
  purpose?: unknown;
  subject?: { restricted?: unknown; consents?: unknown; objections?: unknown } | null;
  now?: unknown;
  expect?: { effect?: unknown; reason?: unknown; mask?: unknown } | null;
}

export function runPolicyTests(path: string, taxonomy: Taxonomy, fields: readonly FieldGovernance[]): PolicyCaseResult[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory() ? readdirSync(path).filter((file) => /\.ya?ml$/.test(file)).sort().map((file) => join(path, file)) : [path];
  } catch {
    throw badInput(`cannot read policy tests at ${path}`);
  }
  if (files.length === 0) throw badInput(`no .yaml policy tests in ${path}`);
  const byCoordinate = new Map(fields.map((field) => [field.coordinate, field]));
  return files.flatMap((file) => {
    let cases: unknown;
    try {
      cases = parseYaml(readFileSync(file, 'utf8'));
    } catch (error) {
      throw badInput(`${file}: not valid YAML: ${(error as Error).message}`);
    }
    if (!Array.isArray(cases)) throw badInput(`${file}: expected a list of cases`);
    // A file of no case passes whatever decide() does: it is a mistake, not a success.
    if (cases.length === 0) throw badInput(`${file}: holds no case`);
    return (cases as RawCase[]).map((raw, index) => runCase(file, raw, index, taxonomy, byCoordinate));
  });
}

/** The keys each part of a case may have: an unknown one (a typo, `reson:`) would silently assert less. */
const CASE_KEYS = ['name', 'field', 'purpose', 'subject', 'now', 'expect'];
const SUBJECT_KEYS = ['restricted', 'consents', 'objections'];
const CONSENT_KEYS = ['purpose', 'granted', 'explicit', 'expiresAt', 'recordedAt'];
const OBJECTION_KEYS = ['purpose', 'objected'];
const EXPECT_KEYS = ['effect', 'reason', 'mask'];

function runCase(file: string, raw: RawCase, index: number, taxonomy: Taxonomy, fields: ReadonlyMap<string, FieldGovernance>): PolicyCaseResult {
  const where = `${file} case ${index + 1}${typeof raw?.name === 'string' ? ` (${raw.name})` : ''}`;
  const fail = (message: string): never => {
    throw badInput(`${where}: ${message}`);
  };
  const mapping = (value: unknown, what: string, keys: readonly string[]): Record<string, unknown> => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`${what} must be a mapping`);
    for (const key of Object.keys(value)) if (!keys.includes(key)) fail(`${what} has unknown key \`${key}\` (allowed: ${keys.join(', ')})`);
    return value as Record<string, unknown>;
  };
  const list = (value: unknown, what: string): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : fail(`${what} must be a list`));
  // YAML 1.2 reads `no` as text: a flag must be a real true or false, or `granted: no` would grant.
  const flag = (value: unknown, what: string, absent: boolean): boolean => (value === undefined ? absent : typeof value === 'boolean' ? value : fail(`${what} must be true or false, got ${JSON.stringify(value)}`));
  const time = (value: unknown, what: string): Date | null => {
    if (value === undefined || value === null) return null;
    try {
      return isoTime(value instanceof Date ? value.toISOString() : String(value), what);
    } catch (error) {
      return fail((error as Error).message);
    }
  };
  const statementPurpose = (value: unknown, what: string): string => (typeof value === 'string' && taxonomy.purposes.has(value) ? value : fail(`${what} must be a purpose of the taxonomy, got ${JSON.stringify(value)}`));

  const testCase = mapping(raw, 'the case', CASE_KEYS);
  if (typeof testCase.name !== 'string') fail('needs a name');
  const policy = casePolicy(testCase.field, taxonomy, fields) ?? fail('field must be a schema coordinate or { category, purposes }');
  // A purpose the taxonomy lacks (a typo) would quietly test another policy than the case says.
  const unknownPurpose = policy.purposes.find((key) => !taxonomy.purposes.has(key));
  if (unknownPurpose !== undefined) fail(`field declares the purpose "${unknownPurpose}", which the taxonomy does not have`);
  const purpose = typeof testCase.purpose === 'string' ? taxonomy.purposes.get(testCase.purpose) : undefined;
  if (!purpose?.requestable) fail(`purpose must be a requestable purpose of the taxonomy, got ${JSON.stringify(testCase.purpose)}`);
  const expectation = mapping(testCase.expect, 'expect', EXPECT_KEYS);
  const expectedEffect = expectation.effect;
  if (expectedEffect !== 'allow' && expectedEffect !== 'mask' && expectedEffect !== 'deny') fail('expect.effect must be allow, mask or deny');
  if (expectation.reason !== undefined && (typeof expectation.reason !== 'string' || !DECISION_REASONS.has(expectation.reason))) {
    fail(`expect.reason must be one of ${[...DECISION_REASONS].join(', ')}, got ${JSON.stringify(expectation.reason)}`);
  }
  const now = testCase.now === undefined ? new Date() : (time(testCase.now, 'now') ?? fail('now must be an ISO-8601 time, not null'));
  let subjectState: SubjectState | null = null;
  if (testCase.subject !== null) {
    const subject = testCase.subject === undefined ? {} : mapping(testCase.subject, 'subject', SUBJECT_KEYS);
    subjectState = {
      subjectId: 'policy-test-subject',
      restricted: flag(subject.restricted, 'subject.restricted', false),
      consents: list(subject.consents, 'subject.consents').map((value, position) => {
        const consent = mapping(value, `subject.consents[${position}]`, CONSENT_KEYS);
        return {
          purpose: statementPurpose(consent.purpose, `subject.consents[${position}].purpose`),
          granted: flag(consent.granted, `subject.consents[${position}].granted`, true),
          explicit: flag(consent.explicit, `subject.consents[${position}].explicit`, false),
          expiresAt: time(consent.expiresAt, `subject.consents[${position}].expiresAt`),
          recordedAt: time(consent.recordedAt, `subject.consents[${position}].recordedAt`),
        };
      }),
      objections: list(subject.objections, 'subject.objections').map((value, position) => {
        const objection = mapping(value, `subject.objections[${position}]`, OBJECTION_KEYS);
        return { purpose: statementPurpose(objection.purpose, `subject.objections[${position}].purpose`), objected: flag(objection.objected, `subject.objections[${position}].objected`, true) };
      }),
    };
  }
  // A subject holds one statement per purpose (the ledger keeps the latest): two would make the case
  // undecidable as a state, and decide() would read only the first.
  for (const [statements, what] of [[subjectState?.consents ?? [], 'subject.consents'], [subjectState?.objections ?? [], 'subject.objections']] as const) {
    const repeated = statements.find((statement, position) => statements.findIndex((other) => other.purpose === statement.purpose) !== position);
    if (repeated) fail(`${what} holds two statements for ${repeated.purpose}: a subject holds one per purpose, the latest`);
  }
  const decision = decide({
    field: policy,
    purpose: requestPurposeOf(purpose!, now),
    subjectState,
    now,
  });
  const expected = `${expectedEffect}${expectation.reason ? ` ${expectation.reason}` : ''}${expectation.mask ? ` (${expectation.mask})` : ''}`;
  const actual = `${decision.effect}${expectation.reason ? ` ${decision.reason}` : ''}${expectation.mask ? ` (${decision.mask ?? 'no mask'})` : ''}`;
  return { file, name: testCase.name as string, passed: expected === actual, expected, actual: `${decision.effect} ${decision.reason}${decision.mask ? ` (${decision.mask})` : ''}` };
}

/** The policy a case names: a schema coordinate, or `{ category, purposes }`. */
function casePolicy(field: unknown, taxonomy: Taxonomy, fields: ReadonlyMap<string, FieldGovernance>): FieldPolicy | undefined {
  const declared = typeof field === 'string' ? fields.get(field) : (field as { category?: unknown; purposes?: unknown } | undefined);
  const category = typeof declared?.category === 'string' ? taxonomy.categories.get(declared.category) : undefined;
  if (!category || !Array.isArray(declared?.purposes)) return undefined;
  return fieldPolicy(category.key, declared.purposes.map(String), category);
}
