import type { ParseArgsConfig } from 'node:util';
import { DIFF_FORMATS } from '../governance/schema-diff';
import { REPORT_KINDS } from '../reports/report-document';
import { REPORT_FORMATS } from '../reports/renderers';

/**
 * The CLI's commands as its help describes them: one catalogue that `candor --help` lists, `candor <command>
 * --help` details, and the option check reads (an option a command's entry does not describe is refused).
 */

/** One command: its words, what follows them, what it does, and each option it takes. */
export interface CommandHelp {
  /** The command's words, `audit verify`. */
  readonly name: string;
  /** What follows the words: operands and options, `[--from SEQ] [--checkpoints FILE]`. */
  readonly synopsis?: string;
  /** What it does, as lines of the help. */
  readonly summary: readonly string[];
  /** Each option it takes (without its dashes), with its value's name and what it means. */
  readonly options?: Readonly<Record<string, { readonly value?: string; readonly meaning: string }>>;
  /** What its exit codes mean, when more than 0 done, 1 failed, 2 misused (`candor --help` says those). */
  readonly exit?: string;
}

const REPORT_OPTIONS = {
  subject: { value: 'ID', meaning: 'the data subject (subject-access: required; other kinds: refused)' },
  from: { value: 'DATE', meaning: 'the period starts at DATE (an ISO-8601 date, midnight UTC, or a time with its offset)' },
  to: { value: 'DATE', meaning: 'the period ends before DATE (exclusive)' },
  format: { value: 'FORMAT', meaning: `${REPORT_FORMATS.join(', ')} (required)` },
  out: { value: 'FILE', meaning: 'write the report to FILE (replaced whole, readable by its owner only) instead of stdout' },
};

export const COMMANDS: readonly CommandHelp[] = [
  { name: 'serve', summary: ['Apply migrations, seed the demo (outside production, when empty) and serve /graphql'] },
  { name: 'migrate', summary: ['Apply pending migrations to DATABASE_URL and exit'] },
  { name: 'seed', summary: ['Seed the demo actors and, when the store is empty, the demo platform (not in production)'] },
  { name: 'schema emit', summary: ['Regenerate schema/schema.graphql and schema/governance.json from the annotations'] },
  { name: 'schema check', summary: ['Exit non-zero when the committed schema files are stale'], exit: '0 up to date, 1 stale (nothing is written), 2 a usage error' },
  {
    name: 'schema diff',
    synopsis: `--base <git-ref|file> [--format ${DIFF_FORMATS.join('|')}] [--out FILE]`,
    summary: [
      'Compare the annotations\' governance with a base governance.json (a file, or',
      'schema/governance.json at a git ref such as origin/main): a Markdown summary for a',
      'pull request; exit 1 when a change needs privacy review, 2 on unusable input',
    ],
    options: {
      base: { value: 'REF|FILE', meaning: 'the governance to compare with: a git ref (its schema/governance.json) or a file (required)' },
      format: { value: DIFF_FORMATS.join('|'), meaning: 'Markdown for a pull request (default) or JSON for a tool' },
      out: { value: 'FILE', meaning: 'write the summary to FILE instead of stdout' },
    },
    exit: '0 nothing needs review, 1 a change needs privacy review, 2 a usage error or any failure to compute the diff',
  },
  {
    name: 'audit verify',
    synopsis: '[--from SEQ] [--checkpoints FILE]',
    summary: ['Verify every record digest, batch hash and signed checkpoint of the access log;', 'with FILE (an earlier checkpoint export), also that the log still holds each of them'],
    options: {
      from: { value: 'SEQ', meaning: 'check from the batch holding sequence number SEQ (or the first record kept after a prune) to the head, as a daily run from where the last ended; only a run without it also finds a deleted mapping of a subject with no records there. Not with --checkpoints' },
      checkpoints: { value: 'FILE', meaning: 'an earlier `audit checkpoint export` kept outside the database: the log must still hold each of its checkpoints' },
    },
    exit: '0 verified ("verified N records through SEQ"), 1 a break (the first one, with expected and found values) or an unrecorded run, 2 a usage error',
  },
  {
    name: 'audit checkpoint',
    synopsis: '<create|export|rotate>',
    summary: [
      'Sign a checkpoint of the log head now | print all checkpoints with the public key |',
      'hand signing over to CANDOR_AUDIT_NEXT_SIGNING_KEY (a checkpoint signed by both keys)',
    ],
  },
  {
    name: 'audit prune',
    synopsis: '--before DATE',
    summary: ['Delete whole batches committed before DATE, leaving a signed prune checkpoint', '(on PostgreSQL, months holding only such batches are dropped as whole partitions)'],
    options: { before: { value: 'DATE', meaning: 'keep the batches committed at or after DATE (the newest batch is always kept); the log is verified first (required)' } },
  },
  {
    name: 'audit partitions',
    synopsis: '[--ahead N]',
    summary: ['PostgreSQL: create the log\'s missing monthly partitions through N months ahead', '(default 3; the server also keeps the next month ready) and list every month'],
    options: { ahead: { value: 'N', meaning: 'how many months ahead of this one to create (default 3)' } },
  },
  {
    name: 'subject link',
    synopsis: '--subject ID [--ttl 7d]',
    summary: ['Print an encrypted, expiring link to the subject\'s privacy page (PUBLIC_URL)'],
    options: {
      subject: { value: 'ID', meaning: 'the data subject (required)' },
      ttl: { value: 'DURATION', meaning: 'how long the link works: 30m, 12h, 7d (default 7d, at most 30d)' },
    },
  },
  {
    name: 'subject erase',
    synopsis: '--subject ID',
    summary: ['Erase a subject\'s personal data (GDPR Art. 17); the log stays verifiable, unlinked'],
    options: { subject: { value: 'ID', meaning: 'the data subject (required)' } },
  },
  {
    name: 'consent import',
    synopsis: 'FILE [--again] [--check] (FILE: .csv with a header row, or .json)',
    summary: [
      'Import existing consents from CSV or JSON, all or nothing, with a report of rejected rows;',
      'a file already imported, or a row whose statement the ledger holds, is refused unless --again;',
      '--check checks it as the import would and imports nothing (the run is recorded)',
    ],
    options: {
      again: { meaning: 'record the statements once more, each with a receipt: of a file imported before, and rows whose statement the ledger holds (from another file, the API or the privacy page)' },
      check: { meaning: 'check every row as the import would and write nothing but the run\'s record' },
    },
    exit: '0 imported (or, with --check, importable), 1 rejected rows (nothing imported) or an error, 2 a usage error',
  },
  {
    name: 'actor create',
    synopsis: '--id ID --name NAME --team TEAM --purposes P1,P2 [--roles R1,R2]',
    summary: ['Create a team or service that may query Candor; its API key is printed once and', 'stored only as an HMAC'],
    options: {
      id: { value: 'ID', meaning: 'the actor\'s id (required)' },
      name: { value: 'NAME', meaning: 'its name, as the access log shows it (required)' },
      team: { value: 'TEAM', meaning: 'the team it belongs to (required)' },
      purposes: { value: 'P1,P2', meaning: 'the purposes it is entitled to declare (required; each covers its sub-purposes)' },
      roles: { value: 'R1,R2', meaning: 'auditor, consent-manager, reject-withheld' },
    },
  },
  { name: 'actor list', summary: ['List the actors (never their keys)'] },
  { name: 'actor rotate', synopsis: '--id ID', summary: ['Issue a new key for an actor (printed once); the old one stops working'], options: { id: { value: 'ID', meaning: 'the actor (required)' } } },
  { name: 'actor revoke', synopsis: '--id ID', summary: ['Revoke an actor: its key stops working on the next request'], options: { id: { value: 'ID', meaning: 'the actor (required)' } } },
  {
    name: 'inbox list',
    synopsis: '[--all] [--after ID]',
    summary: ['Read the questions data subjects asked on their privacy page (the oldest 500 unanswered)'],
    options: {
      all: { meaning: 'answered questions too' },
      after: { value: 'ID', meaning: 'the next 500 after message ID (the listing\'s last line names it)' },
    },
  },
  { name: 'inbox answer', synopsis: 'ID --text "…"', summary: ['Answer a data subject\'s question; the answer shows on their privacy page'], options: { text: { value: 'TEXT', meaning: 'the answer, in quotes (required)' } } },
  {
    name: 'secret rotate',
    synopsis: '(with CANDOR_SECRET=<current> CANDOR_NEXT_SECRET=<new>)',
    summary: [
      'Re-key the database to CANDOR_NEXT_SECRET (a secret suspected exposed): every active',
      'actor gets a new key, printed once; then restart every instance with the new secret',
    ],
  },
  { name: 'policy test', synopsis: '[PATH]', summary: ['Run the YAML decision fixtures (default test/policy) against decide()'], exit: '0 every case passed, 1 a case failed, 2 a usage error' },
  {
    name: 'report',
    synopsis: `<${REPORT_KINDS.join('|')}>\n[--subject ID] [--from DATE] [--to DATE] --format <${REPORT_FORMATS.join('|')}> [--out FILE]`,
    summary: ['A compliance report from the access log, the consent ledger and the schema'],
    options: REPORT_OPTIONS,
  },
  { name: 'help', synopsis: '[COMMAND]', summary: ['Show this help, or one command\'s (also: candor COMMAND --help)'] },
];

const ENVIRONMENT = `Environment (see README "Configuration"):
  DATABASE_URL       sqlite:<path> (default sqlite:./data/candor.sqlite) or postgres://…
  PORT, HOST         where serve listens (default 4000 on 127.0.0.1)
  NODE_ENV           production disables demo data, demo keys, Sandbox and introspection
  CANDOR_SECRET      HMAC secret API keys are stored under (required in production)
  CANDOR_AUDIT_SIGNING_KEY
                     base64 Ed25519 seed signing log checkpoints (required in production)
  CANDOR_AUDIT_NEXT_SIGNING_KEY
                     the seed audit checkpoint rotate hands signing over to
  CANDOR_NEXT_SECRET the secret secret rotate re-keys the database to
`;

/** The column a command's summary starts in, in the list of every command. */
const SUMMARY_COLUMN = 21;

/** One command's lines in the list of every command: its words and synopsis, then its summary in a column. */
function listed({ name, synopsis, summary }: CommandHelp): string {
  const head = `  ${[name, synopsis?.replace('\n', `\n${' '.repeat(name.length + 3)}`)].filter(Boolean).join(' ')}`;
  const indent = ' '.repeat(SUMMARY_COLUMN);
  // A short head shares its line with the summary's first line.
  if (!head.includes('\n') && head.length < SUMMARY_COLUMN - 1) return `${head.padEnd(SUMMARY_COLUMN)}${summary.join(`\n${indent}`)}\n`;
  return `${head}\n${summary.map((line) => `${indent}${line}\n`).join('')}`;
}

/** `candor --help`: every command, then the environment. */
export const HELP = `candor — a GraphQL data-governance server

Usage: npx candor <command> [options]

Commands:
${COMMANDS.map(listed).join('')}  --version, -V      Print Candor's version

Exit codes: 0 done, 1 a failed check or an error (one line on stderr), 2 a usage error.

${ENVIRONMENT}`;

/** `candor <command> --help`: its usage, what it does, each option and what its exit codes mean. */
function detailed({ name, synopsis, summary, options, exit }: CommandHelp): string {
  const optionLines = Object.entries(options ?? {}).map(([option, { value, meaning }]) => [`--${option}${value ? ` ${value}` : ''}`, meaning] as const);
  const width = Math.max(0, ...optionLines.map(([usage]) => usage.length)) + 2;
  return [
    `Usage: npx candor ${[name, synopsis?.replace('\n', ' ')].filter(Boolean).join(' ')}\n\n${summary.join('\n')}\n`,
    optionLines.length ? `\nOptions:\n${optionLines.map(([usage, meaning]) => `  ${usage.padEnd(width)}${meaning}\n`).join('')}` : '',
    exit ? `\nExit: ${exit}\n` : '',
  ].join('');
}

/** The commands under a command's word (`audit` → `audit verify`, `audit checkpoint`, …); none for one without subcommands. */
const subcommandsOf = (command: string) => COMMANDS.filter((candidate) => candidate.name.startsWith(`${command} `));

/**
 * The help for the words typed (`audit verify`; `audit` alone lists every audit command; `report ropa` is
 * `report`'s), or undefined when no command has them.
 */
export function helpFor(words: readonly string[]): string | undefined {
  const typed = words.slice(0, 2).join(' ');
  const exact = COMMANDS.find((command) => command.name === typed) ?? COMMANDS.find((command) => command.name === words[0]);
  if (exact) return detailed(exact);
  const family = subcommandsOf(words[0]);
  if (family.length <= 1) return family.length ? detailed(family[0]) : undefined;
  return `Usage: npx candor ${words[0]} <${family.map((command) => command.name.slice(words[0].length + 1)).join('|')}> …\n\n${family.map(listed).join('')}\nOne command's options: npx candor ${words[0]} <command> --help\n`;
}

/**
 * What the command line is parsed with: every option the catalogue describes — a string when it names a value
 * (`--from SEQ`), else a switch — and help and version.
 */
export const PARSED_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  help: { type: 'boolean', short: 'h' },
  // -V as commander has it: -v reads as "verbose" to many.
  version: { type: 'boolean', short: 'V' },
  ...Object.fromEntries(COMMANDS.flatMap(({ options }) => Object.entries(options ?? {}).map(([option, { value }]) => [option, { type: value ? 'string' : 'boolean' }] as const))),
};

/** The longest list of a command family's subcommands with their synopses a usage line shows; a longer one names the subcommands only. */
const FULL_FAMILY_USAGE = 72;

/**
 * The line a misused command is answered with: the command's usage (`usage: npx candor audit checkpoint
 * <create|export|rotate>`), or for a command of several subcommands given none it has, theirs.
 */
export function usageOf(...words: string[]): string {
  const name = words.join(' ');
  const oneLine = (synopsis: string | undefined) => (synopsis ? ` ${synopsis.replace('\n', ' ')}` : '');
  const family = [...COMMANDS.filter((command) => command.name === name), ...subcommandsOf(name)];
  if (family.length === 1) return `usage: npx candor ${family[0].name}${oneLine(family[0].synopsis)}`;
  const subcommands = family.map((command) => command.name.slice(name.length + 1));
  const full = family.map((command, index) => `${subcommands[index]}${oneLine(command.synopsis)}`).join(' | ');
  return full.length <= FULL_FAMILY_USAGE ? `usage: npx candor ${name} <${full}>` : `usage: npx candor ${name} <${subcommands.join('|')}> …`;
}

/** Whether `subcommand` is one of the command's, or the command has none (`serve`, `report`'s kind is an operand). */
export function hasSubcommand(command: string, subcommand: string | undefined): boolean {
  const family = subcommandsOf(command);
  return family.length === 0 || family.some((candidate) => candidate.name === `${command} ${subcommand}`);
}

/** The options a command takes (by its words, `audit verify`), as its help describes them. */
export function optionsOf(command: string, subcommand: string | undefined): readonly string[] {
  const entry = COMMANDS.find((candidate) => candidate.name === `${command} ${subcommand}`) ?? COMMANDS.find((candidate) => candidate.name === command);
  return Object.keys(entry?.options ?? {});
}
