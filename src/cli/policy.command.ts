import { join } from 'node:path';
import { projectRoot } from '../config';
import { readGovernance } from '../graphql/governance-catalog';
import { buildCandorSchema } from '../graphql/schema';
import { runPolicyTests } from '../policy/policy-tests';
import type { Taxonomy } from '../taxonomy/taxonomy';
import type { Output } from './audit.command';

/** `candor policy test [PATH]`: runs the YAML decision fixtures; exit 1 with a diff per failing case. */
export async function policyTest(taxonomy: Taxonomy, path: string | undefined, output: Output): Promise<number> {
  const results = runPolicyTests(path ?? join(projectRoot(), 'test', 'policy'), taxonomy, readGovernance(await buildCandorSchema(taxonomy)));
  for (const result of results) {
    output.out(result.passed ? `✓ ${result.name}\n` : `✗ ${result.name} (${result.file})\n    expected: ${result.expected}\n    actual:   ${result.actual}\n`);
  }
  const failed = results.filter((result) => !result.passed).length;
  output.out(`${results.length - failed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}
