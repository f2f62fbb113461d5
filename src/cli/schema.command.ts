import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DatabaseConfig, projectRoot } from '../config';
import { DIFF_FORMATS, type DiffBase, type DiffFormat, diffGovernance, type GovernanceDocument, parseGovernanceDocument, renderGovernanceDiff, SchemaDiffError } from '../governance/schema-diff';
import { buildCandorSchema } from '../graphql/schema';
import { GOVERNANCE_FILE, renderSchemaFiles } from '../graphql/schema-files';
import { buildGovernedSchema } from '../server/services';
import type { Taxonomy } from '../taxonomy/taxonomy';
import type { Output } from './audit.command';
import { refuseDatabaseAsOut } from './out-file';

/**
 * The schema files the annotations produce now: the one generator behind `schema emit`, `schema check`
 * and `schema diff`. Refuses an ungoverned schema before anything is written or compared.
 */
async function renderLiveSchemaFiles(taxonomy: Taxonomy): Promise<Record<string, string>> {
  await buildGovernedSchema(taxonomy);
  return renderSchemaFiles(await buildCandorSchema(taxonomy), taxonomy);
}

/** `candor schema emit|check`: write the schema files, or exit 1 when the committed ones are stale. */
export async function schemaFiles(taxonomy: Taxonomy, mode: 'emit' | 'check', output: Output): Promise<number> {
  const files = await renderLiveSchemaFiles(taxonomy);
  const root = projectRoot();
  const stale: string[] = [];
  for (const [file, content] of Object.entries(files)) {
    const path = join(root, file);
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current === content) continue;
    stale.push(file);
    if (mode === 'emit') writeFileSync(path, content);
  }
  if (mode === 'emit') {
    output.out(stale.length ? `wrote ${stale.join(', ')}\n` : 'schema files are up to date\n');
    return 0;
  }
  if (stale.length) {
    output.err(`stale: ${stale.join(', ')} — run \`npx candor schema emit\` and commit the result\n`);
    return 1;
  }
  output.out('schema files are up to date\n');
  return 0;
}

export interface SchemaDiffArguments {
  /** A governance.json file, or a git ref whose `schema/governance.json` is the base. */
  readonly base?: string;
  /** `md` (default) or `json`. */
  readonly format?: string;
  /** Write the summary to this file instead of stdout. */
  readonly out?: string;
}

/**
 * `candor schema diff --base <git-ref|file> [--format md|json] [--out FILE]`: exit 1 when a change needs
 * privacy review, 0 otherwise. Unusable input (an `--out` that is the SQLite `database` among it) throws a
 * `SchemaDiffError` (the caller exits 2).
 */
export async function schemaDiff(taxonomy: Taxonomy, database: DatabaseConfig, args: SchemaDiffArguments, output: Output): Promise<number> {
  const format = args.format ?? 'md';
  if (!(DIFF_FORMATS as readonly string[]).includes(format)) throw new SchemaDiffError('BAD_ARGUMENT', `--format must be one of ${DIFF_FORMATS.join(', ')}, got "${format}"`);
  if (!args.base) throw new SchemaDiffError('BAD_ARGUMENT', '--base <git-ref|file> is required, e.g. --base origin/main');
  if (args.out !== undefined) refuseDatabaseAsOut(args.out, database, (message) => new SchemaDiffError('OUT_UNWRITABLE', message));
  const base = readBase(args.base, projectRoot());
  const head = parseGovernanceDocument((await renderLiveSchemaFiles(taxonomy))[GOVERNANCE_FILE], 'the live governance');
  const diff = diffGovernance(base.document, head, taxonomy.categories);
  const rendered = renderGovernanceDiff(diff, { base: base.base, head: 'the @Governed annotations in this working tree' }, format as DiffFormat);
  if (args.out) {
    try {
      writeFileSync(args.out, rendered);
    } catch (error) {
      throw new SchemaDiffError('OUT_UNWRITABLE', `cannot write ${args.out} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const review = diff.changes.filter((change) => change.review).length;
    output.err(`wrote the schema diff to ${args.out}: ${review} to review, ${diff.changes.length - review} informational\n`);
  } else output.out(rendered);
  return diff.reviewRequired ? 1 : 0;
}

/**
 * The base document: an existing file wins; anything else is a git ref. A spec ending in `.json` is
 * always a file, so a mistyped path is reported as a missing file rather than as an unknown ref.
 */
function readBase(spec: string, root: string): { document: GovernanceDocument; base: DiffBase } {
  if (isFile(spec) || spec.endsWith('.json')) {
    let text: string;
    try {
      text = readFileSync(spec, 'utf8');
    } catch (error) {
      throw new SchemaDiffError('BASE_UNREADABLE', `cannot read ${spec} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return { document: parseGovernanceDocument(text, spec), base: { file: spec } };
  }
  // A leading dash would reach git as an option.
  if (spec.startsWith('-')) throw new SchemaDiffError('GIT_REF_UNKNOWN', `"${spec}" is neither a file nor a git ref`);
  const commit = git(['rev-parse', '--verify', '--quiet', `${spec}^{commit}`], root, () => new SchemaDiffError('GIT_REF_UNKNOWN', `"${spec}" is neither a file nor a git ref of this repository`)).trim();
  // `<commit>:./path` is relative to the working directory, so this works wherever Candor sits in the repository.
  const text = git(['show', `${commit}:./${GOVERNANCE_FILE}`], root, () => new SchemaDiffError('BASE_MISSING_AT_REF', `${GOVERNANCE_FILE} does not exist at ${spec} (${commit.slice(0, 12)})`));
  return { document: parseGovernanceDocument(text, `${GOVERNANCE_FILE} at ${spec}`), base: { ref: spec, file: GOVERNANCE_FILE, commit } };
}

/** Runs git; a missing git or repository is GIT_UNAVAILABLE, any other failure is `onFailure()`. */
function git(args: string[], cwd: string, onFailure: () => SchemaDiffError): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') throw new SchemaDiffError('GIT_UNAVAILABLE', 'git is not installed or not on PATH; pass --base a governance.json file instead');
    const message = String(failure.stderr ?? '').split('\n')[0];
    if (/not a git repository|dubious ownership/.test(message)) throw new SchemaDiffError('GIT_UNAVAILABLE', `${message.replace(/^fatal: /, '')}; pass --base a governance.json file instead`);
    throw onFailure();
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
