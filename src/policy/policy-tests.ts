import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { badInput } from '../errors';
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
    return (cases as RawCase[]).map((raw, index) => runCase(file, raw, index, taxonomy, byCoordinate));
  });
}

function runCase(file: string, raw: RawCase, index: number, taxonomy: Taxonomy, fields: ReadonlyMap<string, FieldGovernance>): PolicyCaseResult {
  const where = `${file} case ${index + 1}${typeof raw?.name === 'string' ? ` (${raw.name})` : ''}`;
  const fail = (message: string): never => {
    throw badInput(`${where}: ${message}`);
  };
  if (typeof raw?.name !== 'string') fail('needs a name');
  const policy = casePolicy(raw.field, taxonomy, fields) ?? fail('field must be a schema coordinate or { category, purposes }');
  const purpose = typeof raw.purpose === 'string' ? taxonomy.purposes.get(raw.purpose) : undefined;
  if (!purpose?.requestable) fail(`purpose must be a requestable purpose of the taxonomy, got ${JSON.stringify(raw.purpose)}`);
  const expectedEffect = raw.expect?.effect;
  if (expectedEffect !== 'allow' && expectedEffect !== 'mask' && expectedEffect !== 'deny') fail('expect.effect must be allow, mask or deny');
  const now = raw.now === undefined ? new Date() : new Date(String(raw.now));
  if (Number.isNaN(now.getTime())) fail('now must be an ISO-8601 time');
  const date = (value: unknown) => (value === undefined || value === null ? null : new Date(String(value)));
  const subjectState: SubjectState | null =
    raw.subject === null
      ? null
      : {
          subjectId: 'policy-test-subject',
          restricted: raw.subject?.restricted === true,
          consents: ((raw.subject?.consents as Array<Record<string, unknown>>) ?? []).map((consent) => ({
            purpose: String(consent.purpose),
            granted: consent.granted !== false,
            explicit: consent.explicit === true,
            expiresAt: date(consent.expiresAt),
            recordedAt: date(consent.recordedAt),
          })),
          objections: ((raw.subject?.objections as Array<Record<string, unknown>>) ?? []).map((objection) => ({ purpose: String(objection.purpose), objected: objection.objected !== false })),
        };
  const decision = decide({
    field: policy,
    purpose: requestPurposeOf(purpose!, now),
    subjectState,
    now,
  });
  const expected = `${expectedEffect}${raw.expect?.reason ? ` ${raw.expect.reason}` : ''}${raw.expect?.mask ? ` (${raw.expect.mask})` : ''}`;
  const actual = `${decision.effect}${raw.expect?.reason ? ` ${decision.reason}` : ''}${raw.expect?.mask ? ` (${decision.mask ?? 'no mask'})` : ''}`;
  return { file, name: raw.name as string, passed: expected === actual, expected, actual: `${decision.effect} ${decision.reason}${decision.mask ? ` (${decision.mask})` : ''}` };
}

/** The policy a case names: a schema coordinate, or `{ category, purposes }`. */
function casePolicy(field: unknown, taxonomy: Taxonomy, fields: ReadonlyMap<string, FieldGovernance>): FieldPolicy | undefined {
  const declared = typeof field === 'string' ? fields.get(field) : (field as { category?: unknown; purposes?: unknown } | undefined);
  const category = typeof declared?.category === 'string' ? taxonomy.categories.get(declared.category) : undefined;
  if (!category || !Array.isArray(declared?.purposes)) return undefined;
  return fieldPolicy(category.key, declared.purposes.map(String), category);
}
