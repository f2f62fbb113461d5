import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { CLI, runCli, runShell } from '../support/child-server';

// Runs the built CLI (`npm run build` first, as `npm test` does) against real bases: a fixture file, the
// repository's own HEAD, and refs of a scratch repository.
const root = projectRoot();
const fixtures = join(root, 'test', 'fixtures', 'schema-diff');
const diff = (args: string[], env: Record<string, string> = {}) => runCli(['schema', 'diff', ...args], env);

describe('`candor schema diff`', () => {
  let scratch: string;
  let scratchGit: Record<string, string>;
  let emptyCommit: string;
  let olderCommit: string;

  beforeAll(() => {
    // A scratch repository whose commits the CLI reads through GIT_DIR, with Candor as its work tree
    // (so `<commit>:./schema/governance.json` resolves as in a real checkout).
    scratch = mkdtempSync(join(tmpdir(), 'candor-schema-diff-'));
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Candor Test', '-c', 'user.email=test@candor.invalid', ...args], { cwd: scratch, encoding: 'utf8' }).trim();
    git('init', '--quiet');
    git('commit', '--quiet', '--allow-empty', '-m', 'before the schema files existed');
    emptyCommit = git('rev-parse', 'HEAD');
    mkdirSync(join(scratch, 'schema'));
    writeFileSync(join(scratch, 'schema', 'governance.json'), readFileSync(join(fixtures, 'governance.older.json')));
    git('add', 'schema/governance.json');
    git('commit', '--quiet', '-m', 'an older governance.json');
    olderCommit = git('rev-parse', 'HEAD');
    scratchGit = { GIT_DIR: join(scratch, '.git'), GIT_WORK_TREE: root };
  });
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('--base HEAD: the committed governance.json matches the annotations (as `schema check` requires), so nothing to review', async () => {
    const result = await diff(['--base', 'HEAD']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^## Candor schema diff: no privacy review needed\n\nCompared the @Governed annotations in this working tree with `HEAD` \(schema\/governance\.json at [0-9a-f]{12}\)\.\n/);
  });

  it('--base FILE: a base from before Customer.phone existed and before e-mail served marketing → exit 1 with both review items', async () => {
    const result = await diff(['--base', join(fixtures, 'governance.older.json')]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('## Candor schema diff: privacy review required');
    expect(result.stdout).toContain('\n| `Customer.phone` | new personal field | `user.contact.phone_number` for `essential.service`, `essential.fraud_detection` |\n');
    expect(result.stdout).toContain('\n| `Customer.email` | purposes widened | adds `marketing.communications` |\n');
  });

  it('needing review, exits 1 also when its reader is gone before it writes (`| true` under pipefail): a gate is not passed by a closed pipe', async () => {
    const result = await runShell(`node "${CLI}" schema diff --base "${join(fixtures, 'governance.older.json')}" | true`, {});
    expect([result.code, result.stderr]).toEqual([1, '']);
  });

  it('--base REF of another history: the same review items, read with git show', async () => {
    const result = await diff(['--base', olderCommit.slice(0, 12)], scratchGit);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`with \`${olderCommit.slice(0, 12)}\` (schema/governance.json at ${olderCommit.slice(0, 12)})`);
    expect(result.stdout).toContain('\n| `Customer.phone` | new personal field |');
  });

  it('--format json --out FILE: writes the JSON summary there and still exits 1', async () => {
    const out = join(scratch, 'diff.json');
    const result = await diff(['--base', join(fixtures, 'governance.older.json'), '--format', 'json', '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    // Informational rows depend on what else the annotations gained since the fixture was derived; review items do not.
    expect(result.stderr).toMatch(/^wrote the schema diff to .+diff\.json: 2 to review, \d+ informational\n$/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    expect(written).toEqual(expect.objectContaining({ base: { file: join(fixtures, 'governance.older.json') }, reviewRequired: true, counts: { review: 2, informational: expect.any(Number) } }));
    const review = written.changes.filter((change: { review: boolean }) => change.review);
    expect(review.map((change: { coordinate: string; kind: string }) => [change.coordinate, change.kind])).toEqual([
      ['Customer.email', 'purposes_widened'],
      ['Customer.phone', 'personal_field_added'],
    ]);
  });

  it.each([
    ['no --base', [], {}, 'candor: BAD_ARGUMENT: --base <git-ref|file> is required, e.g. --base origin/main\n'],
    ['an unknown format', ['--base', 'HEAD', '--format', 'xml'], {}, 'candor: BAD_ARGUMENT: --format must be one of md, json, got "xml"\n'],
    ['a missing file', ['--base', 'missing-governance.json'], {}, 'candor: BASE_UNREADABLE: cannot read missing-governance.json (ENOENT)\n'],
    ['a file that is not JSON', ['--base', join(fixtures, 'not-json.json')], {}, new RegExp(`^candor: GOVERNANCE_NOT_JSON: ${join(fixtures, 'not-json.json')} is not JSON \\(.+\\)\n$`)],
    ['JSON that is not a governance file', ['--base', join(fixtures, 'not-governance.json')], {}, /^candor: GOVERNANCE_MALFORMED: .+not-governance\.json: there is no "fields" object; expected the schema\/governance\.json written by `npx candor schema emit`\n$/],
    ['an unknown ref', ['--base', 'no-such-branch-anywhere'], {}, 'candor: GIT_REF_UNKNOWN: "no-such-branch-anywhere" is neither a file nor a git ref of this repository\n'],
    ['a ref that looks like an option', ['--base=--output=/tmp/x'], {}, 'candor: GIT_REF_UNKNOWN: "--output=/tmp/x" is neither a file nor a git ref\n'],
    ['no git on PATH', ['--base', 'HEAD'], { PATH: '/nonexistent' }, 'candor: GIT_UNAVAILABLE: git is not installed or not on PATH; pass --base a governance.json file instead\n'],
  ] as const)('%s: one coded line on stderr, exit 2', async (_case, args, env, message) => {
    const result = await diff([...args], { ...env });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    if (typeof message === 'string') expect(result.stderr).toBe(message);
    else expect(result.stderr).toMatch(message);
  });

  it('a ref whose commit has no schema/governance.json: exit 2, naming the ref', async () => {
    const result = await diff(['--base', emptyCommit], scratchGit);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`candor: BASE_MISSING_AT_REF: schema/governance.json does not exist at ${emptyCommit} (${emptyCommit.slice(0, 12)})\n`);
  });

  it('lists diff in the usage text', async () => {
    const help = await runCli(['help'], {});
    expect(help.stdout).toContain('schema diff --base <git-ref|file> [--format md|json] [--out FILE]');
    expect(help.code).toBe(0);
    // Without a command it is a usage error, like a missing subcommand: the same text, on stderr, exit 2.
    expect(await runCli([], {})).toEqual({ code: 2, stdout: '', stderr: help.stdout });
  });
});
