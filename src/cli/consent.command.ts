import { importConsents } from '../consent/consent-import';
import { Inbox, MAX_INBOX_PAGE } from '../consent/inbox';
import { counted, inert } from '../printable';
import { badInput } from '../errors';
import { ERASURE_TABLES, eraseSubject } from '../privacy/erasure';
import { OLD_COPIES_MEANING, type OldCopies } from '../storage/old-copies';
import type { CandorServices } from '../server/services';
import type { AccessRecordInput } from '../audit/access-log';
import type { SubjectMessageEntity } from '../consent/subject-message.entity';
import { type Decision, decide, requestPurposeOf } from '../policy/decide';
import { fieldPolicy } from '../policy/guarded-field';
import { recordedAs } from '../policy/request-governance';
import { CLI_PURPOSE, cliActor, type CliRun, type Output, recordCliOperation } from './audit.command';
import { usageOf } from './help';

/**
 * `candor consent import FILE [--again] [--check]`: all or nothing; exit 1 with a row-by-row report when any
 * row is rejected, or when the ledger holds the file already (unless `--again`). `--check` checks the file as
 * the import would (rows, subjects, the ledger's rules) and writes nothing but the run's record.
 */
export async function consentImport(services: CandorServices, file: string | undefined, { again = false, check = false }: { again?: boolean; check?: boolean }, output: Output): Promise<number> {
  if (!file) throw badInput(usageOf('consent', 'import'));
  // Every hundredth row (a large file has hundreds of thousands): the terminal need not redraw for each.
  const progress = (phase: string, done: number, total: number) => {
    if (done % 100 === 0 || done === total) output.err(`\r${phase}… ${done.toLocaleString('en')} of ${total.toLocaleString('en')} rows`);
  };
  const report = await importConsents(services.consent, file, cliActor().id, { onProgress: output.interactive ? progress : undefined, again, checkOnly: check });
  if (output.interactive) output.err('\r\x1b[K');
  if (report.rejected.length) {
    output.err(`rejected ${report.rejected.length} of ${counted(report.rows, 'row')}; nothing was ${check ? 'written' : 'imported'}:\n`);
    // A problem quotes the file's own values (a purpose, a column name): printed inert.
    for (const { row, problem } of report.rejected) output.err(`  row ${row}: ${inert(problem)}\n`);
    return 1;
  }
  if (check) {
    await recordCliOperation(services, 'consent import --check', 'CONSENT_IMPORT_CHECKED');
    const before = report.importedBefore ? ` once more (it was imported on ${report.importedBefore.importedAt} by ${report.importedBefore.actorId})` : '';
    output.out(`checked ${file}: its ${counted(report.rows, 'consent statement')} would be imported${before}; nothing was written (run it without --check to import)\n`);
    return 0;
  }
  await recordCliOperation(services, 'consent import', 'CONSENT_IMPORTED', { done: `${counted(report.imported, 'consent statement')} from ${file} ${report.imported === 1 ? 'was' : 'were'} imported` });
  output.out(`imported ${counted(report.imported, 'consent statement')} from ${file} (each with its receipt)\n`);
  return 0;
}

/** `candor subject erase --subject ID`. */
export async function subjectErase(services: CandorServices, subjectId: string | undefined, output: Output): Promise<number> {
  if (!subjectId) throw badInput('--subject ID is required');
  const result = await eraseSubject(services, subjectId, cliActor(), `cli-${process.pid}-${Date.now()}`);
  output.out(
    `erased ${subjectId} at ${result.erasedAt}: personal fields removed, ${counted(result.watchEventsDeleted, 'viewing record')} deleted, ${counted(result.paymentsKept, 'payment')} kept without card digits, ${counted(result.messagesErased, 'message')} deleted; the access log no longer links to the subject; ${oldCopiesNote(result.oldCopies)}\n`,
  );
  return 0;
}

/** What the operator must know of the erased values' old copies (docs/operations.md, "Erasure (GDPR Art. 17) and the database's files"). */
const oldCopiesNote = (outcome: OldCopies) => `old copies — ${OLD_COPIES_MEANING[outcome]}${outcome === 'kept-until-vacuum' ? ` The tables: ${ERASURE_TABLES.join(', ')}.` : ''} Backups still hold them.`;

/** The subjects' own words in a message: what `inbox list` prints of them is decided and recorded per subject. */
const MESSAGE_FIELDS = ['context', 'body', 'answer'] as const;
type MessageText = Record<(typeof MESSAGE_FIELDS)[number], string | null>;

/**
 * Decides each of the subjects' fields `inbox list` prints as GraphQL's `inbox` does (the field's declared
 * category and purposes, the subject's state, `decide()`), under the purpose the CLI acts for: the text
 * printed is what the decision releases, and the run records one decision per subject and field, so the
 * subject's page and access report show the read. An unreadable consent state withholds (fail closed).
 */
async function decideMessageFields(services: CandorServices, messages: readonly SubjectMessageEntity[]): Promise<{ texts: ReadonlyMap<SubjectMessageEntity, MessageText>; records: (run: CliRun) => AccessRecordInput[] }> {
  const now = services.clock();
  const purpose = requestPurposeOf(services.taxonomy.purposes.get(CLI_PURPOSE)!, now);
  const subjectIds = [...new Set(messages.map((message) => message.subjectId))];
  const states = await services.consent.states(subjectIds).catch(() => undefined);
  const stateOf = new Map(subjectIds.map((subjectId, index) => [subjectId, states?.[index] ?? null]));
  const governed = MESSAGE_FIELDS.map((name) => {
    const field = services.fields.find((candidate) => candidate.coordinate === `SubjectMessage.${name}`)!;
    return { name, field, policy: fieldPolicy(field.category, field.purposes, services.taxonomy.categories.get(field.category)) };
  });
  const decided = new Map<string, { subjectId: string; coordinate: string; category: string; decision: Decision }>();
  const fieldsOf = (message: SubjectMessageEntity): MessageText => {
    const text = {} as MessageText;
    for (const { name, field, policy } of governed) {
      const value = message[name];
      if (value === null || value === '') {
        text[name] = value;
        continue;
      }
      const decision = decide({ field: policy, purpose, subjectState: stateOf.get(message.subjectId) ?? null, now });
      decided.set(`${message.subjectId}|${field.coordinate}`, { subjectId: message.subjectId, coordinate: field.coordinate, category: field.category, decision });
      text[name] = decision.effect === 'allow' ? value : decision.effect === 'mask' ? String(services.masker(decision.mask!, value)) : `(withheld: ${decision.reason})`;
    }
    return text;
  };
  return {
    texts: new Map(messages.map((message) => [message, fieldsOf(message)])),
    records: (run) =>
      [...decided.values()].map(({ subjectId, coordinate, category, decision }) => ({ ...run, subjectId, coordinate, category, ...recordedAs(decision) })),
  };
}

/** `candor inbox list [--all] [--after ID]` and `candor inbox answer ID --text "…"`. */
export async function inboxCommand(services: CandorServices, action: string | undefined, args: { id?: string; text?: string; all?: boolean; after?: string }, output: Output): Promise<number> {
  const inbox = new Inbox(services.dataSource, services.clock);
  if (action === 'list') {
    // As `inbox list` prints ids (#12) or without the sign, as GraphQL's `inbox(after:)` takes them.
    const messages = await inbox.list(!args.all, MAX_INBOX_PAGE, args.after === undefined ? null : args.after.replace(/^#/, ''));
    const shown = await decideMessageFields(services, messages);
    // As GraphQL's `inbox` is: the listing names who wrote in, so it is recorded once per subject it lists too.
    const listedSubjects = [...new Set(messages.map((message) => message.subjectId))];
    await recordCliOperation(services, 'inbox list', 'SUBJECT_MESSAGES_READ', {
      accesses: (run) => [
        ...listedSubjects.map((subjectId): AccessRecordInput => ({ ...run, subjectId, coordinate: null, category: null, decision: 'RELEASED', reason: 'SUBJECT_MESSAGES_READ', legalBasis: 'legal_obligation' })),
        ...shown.records(run),
      ],
    });
    if (messages.length === 0) output.out(args.all ? 'no messages\n' : 'no unanswered messages\n');
    if (messages.length === MAX_INBOX_PAGE) output.err(`showing ${MAX_INBOX_PAGE} messages: the next ones with --after ${messages.at(-1)!.id}\n`);
    // Written by data subjects: printed inert (messages saved before the page refused such characters may hold some).
    // Each message and answer on one line: a line break in either would start what reads as another message.
    const oneLine = (text: string) => inert(text.replace(/\s+/g, ' '));
    for (const message of messages) {
      const { context, body, answer } = shown.texts.get(message)!;
      output.out(`#${message.id}  ${message.createdAt}  ${message.subjectId}  ${inert(context ?? '')}\n    ${oneLine(body ?? '')}\n${answer ? `    answered ${message.answeredAt} by ${message.answeredBy}: ${oneLine(answer)}\n` : ''}`);
    }
    return 0;
  }
  if (action === 'answer') {
    if (!args.id || !args.text) throw badInput(usageOf('inbox', 'answer'));
    // As `inbox list` prints it (#12) or without the sign.
    const id = /^#?(\d{1,15})$/.exec(args.id);
    if (!id) throw badInput(`the message id is a number, as \`inbox list\` prints it (12, or '#12' in quotes: a shell reads an unquoted # as a comment), got "${args.id}"`);
    const answered = await inbox.answer(Number(id[1]), args.text, cliActor().id);
    await recordCliOperation(services, 'inbox answer', 'SUBJECT_MESSAGE_ANSWERED', { subjectId: answered.subjectId, done: 'the answer was saved' });
    output.out(`answered message #${answered.id}; the answer appears on the subject's privacy page\n`);
    return 0;
  }
  output.err(`candor: ${usageOf('inbox')}\n`);
  return 2;
}
