import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_ACTORS, holdsDemoKeysMadeWith } from '../actors/actor-directory';
import { ConfigError, DEVELOPMENT_SECRET, loadConfig, projectRoot, unknownVariableWarnings } from '../config';
import { isCallerFacing } from '../errors';
import { SchemaDiffError } from '../governance/schema-diff';
import { SchemaGovernanceError } from '../graphql/governance-catalog';
import { UnguardedFieldError } from '../policy/enforcement';
import { checkSigningKey } from '../audit/checkpoints';
import { startCheckpointTimer } from '../server/checkpoint-timer';
import { startHttpServer } from '../server/http-server';
import { buildGovernedSchema, loadConfiguredTaxonomy, openServices, seedDemo } from '../server/services';
import { inert } from '../printable';
import { migrate, MigrationTurnTimeout } from '../storage/data-source';
import { ensureDropGuard, UNGUARDED_WARNING } from '../storage/drop-guard';
import { checkSecret } from '../storage/secret-fingerprint';
import { isSqliteBusy, SQLITE_BUSY_TIMEOUT_MS } from '../storage/sqlite-file';
import { TaxonomyError } from '../taxonomy/taxonomy';
import { auditCheckpoint, auditPartitions, auditPrune, auditVerify, CHECKPOINT_ACTIONS, type Output } from './audit.command';
import { checkReportArguments, reportCommand } from './report.command';
import { REPORT_KINDS } from '../reports/report-document';
import { actorCommand } from './actor.command';
import { policyTest } from './policy.command';
import { consentImport, inboxCommand, subjectErase } from './consent.command';
import { schemaDiff, schemaFiles } from './schema.command';
import { secretRotate } from './secret.command';
import { subjectLink } from './subject.command';
import { hasSubcommand, HELP, helpFor, optionsOf, PARSED_OPTIONS, usageOf } from './help';

const output: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY),
};

/** What the PostgreSQL and SQLite drivers say when the database cannot be reached or opened. */
const DATABASE_UNREACHABLE =
  /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|EAI_AGAIN|does not exist|password authentication|no pg_hba\.conf entry|SASL|Connection terminated|timeout expired|file is not a database|unable to open database|EACCES|not currently accepting connections|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery)/;

/**
 * The commands that change the database in one transaction at most, besides their run's record in the access
 * log (whose failure `recordCliOperation` answers with what was done already): when SQLite's write lock could
 * not be had, their change was not made. `migrate`, `seed` and `serve` write in several steps, an earlier of
 * which may have committed. (Opening the database records the secret's fingerprint in one that has none:
 * the first command does, whichever it is; that is no change of this command's.)
 */
const ONE_TRANSACTION_COMMANDS: readonly string[] = ['audit verify', 'audit checkpoint', 'audit prune', 'audit partitions', 'subject link', 'subject erase', 'actor create', 'actor list', 'actor rotate', 'actor revoke', 'inbox list', 'inbox answer', 'consent import', 'secret rotate', 'report'];

const changesInOneTransaction = (command: string, subcommand: string | undefined) => ONE_TRANSACTION_COMMANDS.includes(`${command} ${subcommand}`) || ONE_TRANSACTION_COMMANDS.includes(command);

/**
 * Errors a user can act on: one line, no stack trace. `oneTransaction`: the failed command changes the
 * database in one transaction at most, so a write lock it could not get means it changed nothing.
 */
function explain(error: unknown, oneTransaction: boolean): string | undefined {
  if (isSqliteBusy(error)) {
    // Not "longer than the timeout": SQLite also answers busy at once where waiting cannot help (a journal mode change).
    return `the database is busy: another process held its write lock (a command waits up to ${SQLITE_BUSY_TIMEOUT_MS / 1000} s for it); ${oneTransaction ? 'nothing was written by this command, try again' : 'try again'}`;
  }
  if (error instanceof ConfigError || error instanceof TaxonomyError || error instanceof SchemaGovernanceError || error instanceof UnguardedFieldError || error instanceof SchemaDiffError || error instanceof MigrationTurnTimeout) return error.message;
  if (isCallerFacing(error)) return error.message;
  // A system call's own failure says what it was about: the port serve listens on, a host name, a file.
  const { syscall, hostname, path } = error as NodeJS.ErrnoException & { hostname?: string };
  if (syscall === 'listen') return `cannot listen (PORT, HOST): ${(error as Error).message}`;
  if (syscall === 'getaddrinfo' && hostname) return `cannot resolve host "${hostname}" (HOST or DATABASE_URL): ${(error as Error).message}`;
  if (syscall !== undefined && path !== undefined) return `cannot use ${path}: ${(error as Error).message}`;
  if (error instanceof Error && DATABASE_UNREACHABLE.test(error.message)) return `cannot reach the database: ${error.message}`;
  return undefined;
}

/** The failure in one line, inert: a message may quote input (a file's column, an argument) or a driver's text. */
function describeFailure(error: unknown, oneTransaction = false): string {
  return inert(explain(error, oneTransaction) ?? `unexpected error: ${error instanceof Error ? error.message : String(error)}`);
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const services = await openServices(config, { serving: true });
  // Now, not at the first periodic checkpoint: a key that is not the log's would sign checkpoints no verify accepts.
  await checkSigningKey(services.dataSource, services.checkpointSigner);
  const governed = await buildGovernedSchema(services.taxonomy);
  if (config.seedDemo) {
    const { seededCustomers } = await seedDemo(services);
    if (seededCustomers) process.stdout.write(`seeded the demo platform: ${seededCustomers} customers\n`);
  }
  // The log's months ahead are created now (the write path also keeps the next one ready), not by a request.
  // A role without the right to create tables only gets a warning: the partitions may exist already, and a
  // write into a missing month fails closed (AUDIT_UNAVAILABLE).
  await services.accessLog.store.partitions
    ?.ensure(services.clock())
    .catch((error: Error) => services.logger.warn({ error: error.message }, 'could not create the access log partitions ahead (run `npx candor audit partitions` as the owner)'));
  if ((await ensureDropGuard(services.dataSource)) === false) process.stderr.write(`candor: warning: ${UNGUARDED_WARNING}\n`);
  const server = await startHttpServer(services, governed, { port: config.port, host: config.host });
  const checkpoints = startCheckpointTimer(services, config.checkpointIntervalSeconds);
  if (!config.production) {
    // Only the keys that open a door: with CANDOR_SEED_DEMO=false, or once a demo actor is re-keyed or revoked, theirs do not.
    const demoKeys = [];
    for (const { key } of DEMO_ACTORS) if (await services.actors.authenticate(key)) demoKeys.push(key);
    if (demoKeys.length) process.stdout.write(`Demo keys: ${demoKeys.join(', ')}\n`);
  }
  // The last line of the start: whoever waits for it has seen all the others.
  process.stdout.write(`Candor is serving ${server.url.replace('127.0.0.1', 'localhost')} (${config.database.driver}, ${config.executor})\n`);
  const shutdown = async () => {
    try {
      server.beginDraining();
      if (config.shutdownDrainMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      await server.stop();
      // The last checkpoint covers every record, those committed after their answer (refusals) included.
      await services.accessLog.drain();
      const checkpointFailure = await checkpoints.stop().then(
        () => undefined,
        (error: Error) => error,
      );
      await services.close();
      if (checkpointFailure) process.stderr.write(`candor: ${inert(checkpointFailure.message)}\n`);
      process.exit(checkpointFailure ? 1 : 0);
    } catch (error) {
      process.stderr.write(`candor: shutdown failed: ${describeFailure(error)}\n`);
      process.exit(1);
    }
  };
  // One shutdown, whatever signals follow (a second Ctrl-C would otherwise kill it before the log is flushed).
  let stopping: Promise<void> | undefined;
  const onSignal = () => void (stopping ??= shutdown());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** What parseArgs's `tokens` tell of an option given. */
type OptionToken = { readonly kind: string; readonly name?: string; readonly rawName?: string; readonly value?: string; readonly inlineValue?: boolean };

/**
 * Why the options given do not fit the command, if they do not: one it does not take, or one missing its value.
 * An unknown option is quoted as typed (`tokens`): parseArgs names `-f` "f", and `--f` is not what was typed.
 */
function misusedOption(command: string, subcommand: string | undefined, values: Record<string, string | boolean | undefined>, tokens: readonly OptionToken[]): string | undefined {
  // Refused before anything runs: a misspelt or invented option (`audit prune --dry-run`) must not run the real thing.
  const taken = optionsOf(command, subcommand);
  // A word after a command without subcommands (`serve --port 4611`) is no part of its name.
  const name = commandName([command, subcommand].filter((word): word is string => word !== undefined));
  for (const [option, value] of Object.entries(values)) {
    if (option === 'help' || value === undefined) continue;
    const typed = tokens.find((token) => token.kind === 'option' && token.name === option)?.rawName ?? `--${option}`;
    if (!taken.includes(option)) return `unknown option ${typed} for "${name}" (${taken.length ? `it takes ${taken.map((known) => `--${known}`).join(', ')}` : 'it takes no options'})`;
    const type = PARSED_OPTIONS[option].type;
    // An empty value is a variable that was not set (`--from "$START"`): never "no bound" or "to stdout".
    if (type === 'string' && (typeof value !== 'string' || value.trim() === '')) return `--${option} needs a value`;
    // `--all=false` would read as set: a switch takes no value.
    if (type === 'boolean' && typeof value !== 'boolean') return `--${option} takes no value`;
  }
  return undefined;
}

/**
 * What parseArgs would read otherwise than meant: an option given twice, of which it keeps the last
 * (`subject erase --subject A --subject B` erased B only), and an option taken for the value of the one
 * before it (`inbox answer 12 --text --all` saved the answer "--all"). A value that does begin with dashes
 * is written inline, `--text=--all`.
 */
function misreadOption(tokens: readonly OptionToken[]): string | undefined {
  const given = new Set<string>();
  for (const { kind, name, value, inlineValue } of tokens) {
    if (kind !== 'option' || name === undefined) continue;
    if (given.has(name)) return `--${name} is given more than once: give each option once`;
    given.add(name);
    if (value?.startsWith('--') && !inlineValue) return `--${name} needs a value, not the option "${value}" (a value that begins with dashes is written --${name}=VALUE)`;
  }
  return undefined;
}

/** How many words a command takes, itself and its subcommand included. */
function wordsOf(command: string, subcommand: string | undefined): number {
  if (command === 'serve' || command === 'migrate' || command === 'seed') return 1;
  if (command === 'consent' || command === 'policy') return 3;
  if (command === 'inbox') return subcommand === 'answer' ? 3 : 2;
  if (command === 'audit') return subcommand === 'checkpoint' ? 3 : 2;
  return 2;
}

/**
 * A word more than the command takes, if there is one: dropped silently, `inbox answer 12 --text We deleted
 * it` would save the answer "We", and `policy test a.yaml b.yaml` would pass without testing b.yaml.
 */
function extraWord(positionals: readonly string[]): string | undefined {
  const [command, subcommand] = positionals;
  const extra = positionals[wordsOf(command, subcommand)];
  const typed = commandName(positionals);
  return extra === undefined ? undefined : `unexpected argument "${extra}" for "${typed}": a value goes after its option (npx candor ${typed} --help lists them), and a value that holds spaces goes in quotes`;
}

/** The command and subcommand as typed, as far as the command has them (its operands, a file or an id, left out). */
function commandName(positionals: readonly string[]): string {
  return positionals.slice(0, Math.min(2, wordsOf(positionals[0], positionals[1]))).join(' ');
}

/**
 * A subcommand checked before the database is opened: a usage error is answered as one even when the
 * database is missing or not migrated.
 */
function misusedSubcommand(command: string, subcommand: string | undefined, operand: string | undefined): string | undefined {
  if (!hasSubcommand(command, subcommand)) return usageOf(command);
  if (command === 'inbox' && subcommand === 'answer' && operand === undefined) return usageOf('inbox');
  if (command === 'consent' && operand === undefined) return usageOf('consent');
  if (command === 'audit' && subcommand === 'checkpoint' && !CHECKPOINT_ACTIONS.includes(operand ?? '')) return usageOf('audit', 'checkpoint');
  if (command === 'report' && subcommand === undefined) return usageOf('report');
  if (command === 'report' && !(REPORT_KINDS as readonly string[]).includes(subcommand!)) return `unknown report "${subcommand}": use one of ${REPORT_KINDS.join(', ')}`;
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  // Not strict: an unknown option gets the one-line answer of `misusedOption`, not parseArgs' own error.
  const { positionals, values, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options: PARSED_OPTIONS });
  const [command, subcommand, action] = positionals;
  if (values.help || command === 'help') {
    const words = command === 'help' ? positionals.slice(1) : positionals;
    if (words.length === 0) {
      process.stdout.write(HELP);
      return 0;
    }
    const help = helpFor(words);
    if (help === undefined) {
      process.stderr.write(`candor: no command "${inert(words.slice(0, 2).join(' '))}" (the commands are below)\n${HELP}`);
      return 2;
    }
    process.stdout.write(help);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')).version}\n`);
    return 0;
  }
  // No command is a usage error, as a missing subcommand is: the help goes to stderr, and the exit is 2 — after
  // naming an option given instead (`candor --versoin`), which the help alone would leave the reader to find.
  if (command === undefined) {
    const typed = tokens.find((token) => token.kind === 'option');
    process.stderr.write(typed?.kind === 'option' ? `candor: unknown option ${typed.rawName}: give a command (below)\n${HELP}` : HELP);
    return 2;
  }
  // An unknown command is said as such (by run), before anything about its options or words.
  const known = helpFor([command]) !== undefined;
  const optionProblem = known ? (misusedSubcommand(command, subcommand, action) ?? misusedOption(command, subcommand, values, tokens) ?? misreadOption(tokens) ?? extraWord(positionals)) : undefined;
  if (optionProblem) {
    process.stderr.write(`candor: ${inert(optionProblem)}\n`);
    return 2;
  }
  // A warning, not a refusal: a variable of another tool's may happen to start with CANDOR_.
  for (const warning of unknownVariableWarnings()) process.stderr.write(`candor: warning: ${inert(warning)}\n`);
  try {
    return await run(command, subcommand, action, values);
  } catch (error) {
    process.stderr.write(`candor: ${describeFailure(error, changesInOneTransaction(command, subcommand))}\n`);
    return 1;
  }
}

/** Runs a command whose words and options were found to fit it. */
async function run(command: string, subcommand: string | undefined, action: string | undefined, values: Record<string, string | boolean | undefined>): Promise<number> {
  switch (command) {
    case 'serve':
      await serve();
      return -1; // keep running
    case 'migrate': {
      const services = await openServices(loadConfig(), { migrate: false });
      try {
        const applied = await migrate(services.dataSource, services.config.secret);
        // openServices checks the secret of a database already migrated; this one is now (on an upgrade, the
        // release's first process: it records this secret when the database has none yet).
        if (applied.length) await checkSecret(services.dataSource, services.config.secret, services.clock(), () => holdsDemoKeysMadeWith(services.dataSource, DEVELOPMENT_SECRET));
        process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'no pending migrations\n');
        if ((await ensureDropGuard(services.dataSource)) === false) process.stderr.write(`candor: warning: ${UNGUARDED_WARNING}\n`);
      } finally {
        await services.close();
      }
      return 0;
    }
    case 'seed': {
      const config = loadConfig();
      if (config.production) throw new ConfigError('demo data is never seeded when NODE_ENV=production');
      const services = await openServices(config);
      const { seededCustomers } = await seedDemo(services);
      await services.close();
      process.stdout.write(seededCustomers ? `seeded ${seededCustomers} customers and the demo actors\n` : 'the store already holds customers; demo actors ensured\n');
      return 0;
    }
    case 'schema':
      if (subcommand !== 'diff') return schemaFiles(loadConfiguredTaxonomy(loadConfig()), subcommand as 'emit' | 'check', output);
      // To a CI gate exit 1 means "needs privacy review": any failure to compute the diff is 2, never 1.
      try {
        const text = (key: string) => values[key] as string | undefined;
        const config = loadConfig();
        return await schemaDiff(loadConfiguredTaxonomy(config), config.database, { base: text('base'), format: text('format'), out: text('out') }, output);
      } catch (error) {
        output.err(`candor: ${describeFailure(error)}\n`);
        return 2;
      }
    case 'audit': {
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        if (subcommand === 'verify') return await auditVerify(services, { from: values.from as string | undefined, checkpoints: values.checkpoints as string | undefined }, output);
        if (subcommand === 'checkpoint') return await auditCheckpoint(services, action, output);
        if (subcommand === 'partitions') return await auditPartitions(services, values.ahead as string | undefined, output);
        return await auditPrune(services, values.before as string | undefined, output);
      } finally {
        await services.close();
      }
    }
    case 'subject': {
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        if (subcommand === 'erase') return await subjectErase(services, values.subject as string | undefined, output);
        return await subjectLink(services, values.subject as string | undefined, values.ttl as string | undefined, output);
      } finally {
        await services.close();
      }
    }
    case 'policy':
      return policyTest(loadConfiguredTaxonomy(loadConfig()), action, output);
    case 'actor': {
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        const text = (key: string) => values[key] as string | undefined;
        return await actorCommand(services, subcommand, { id: text('id'), name: text('name'), team: text('team'), purposes: text('purposes'), roles: text('roles') }, output);
      } finally {
        await services.close();
      }
    }
    case 'consent':
    case 'inbox': {
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        if (command === 'consent') return await consentImport(services, action, { again: values.again === true, check: values.check === true }, output);
        return await inboxCommand(services, subcommand, { id: action, text: values.text as string | undefined, all: values.all as boolean | undefined, after: values.after as string | undefined }, output);
      } finally {
        await services.close();
      }
    }
    case 'secret': {
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        return await secretRotate(services, output);
      } finally {
        await services.close();
      }
    }
    case 'report': {
      const args = { kind: subcommand, subject: values.subject as string | undefined, from: values.from as string | undefined, to: values.to as string | undefined, format: values.format as string | undefined, out: values.out as string | undefined };
      // A bad argument is said as such, whether or not the database is there.
      checkReportArguments(args);
      const services = await openServices(loadConfig(), { migrate: 'require' });
      try {
        return await reportCommand(services, args, { ...output, writeBinary: (data) => process.stdout.write(data) });
      } finally {
        await services.close();
      }
    }
    default:
      process.stderr.write(`candor: unknown command "${inert(command)}"\n\n${HELP}`);
      return 2;
  }
}

/**
 * Exits once stdout and stderr have taken everything written to them: process.exit drops what a pipe has
 * not read yet (a report piped into a slow reader was cut at 64 KiB, and the command still exited 0).
 */
async function exitWhenWritten(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((stream) => new Promise<void>((resolve) => stream.write('', () => resolve()))));
  process.exit(code);
}

// A reader that goes away (`| head`) has read what it wanted: the rest of the output is dropped (a stream that
// failed takes no more writes, and says so only to their callbacks), and the command runs to its end and exits
// with its own code — exit 0 there would pass a failed check piped into `head` under `set -o pipefail`.
// Another failure to write (a full disk) fails the run.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.exit(1);
  });
}

main(process.argv.slice(2)).then(
  (code) => (code >= 0 ? exitWhenWritten(code) : undefined),
  (error: unknown) => {
    process.stderr.write(`candor: ${describeFailure(error)}\n`);
    return exitWhenWritten(1);
  },
);
