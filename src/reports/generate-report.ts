import { In, LessThanOrEqual, MoreThan } from 'typeorm';
import type { AccessActor, AccessRecordInput } from '../audit/access-log';
import { AuditBatchEntity, AuditCheckpointEntity } from '../audit/audit.entities';
import { GENESIS_HASH } from '../audit/chain';
import { ConsentEventEntity } from '../consent/consent-event.entity';
import { CustomerEntity } from '../domain/customer.entity';
import { recordsHeldAbout, valuesHeld } from '../privacy/records-held';
import { auditLogBroken, badInput, isGiven, isoTime, unknownSubject } from '../errors';
import { SELF_ACCESS } from '../policy/codes';
import { enumValueName } from '../graphql/enums';
import type { FieldGovernance } from '../graphql/governance-catalog';
import type { CandorServices } from '../server/services';
import { readAccessLog } from './access-log-source';
import { consentCoverageReport, type CoveredSubject, ropaReport, subjectAccessReport } from './governance.reports';
import { REPORT_KINDS, type ReportDocument, type ReportKind, type ReportParameters } from './report-document';
import { denialsReport, purposeUsageReport, type ReportFrame } from './usage.reports';

export interface ReportRequest {
  readonly kind: string;
  readonly subjectId?: string | null;
  readonly from?: string | null;
  readonly to?: string | null;
}

export interface GenerateOptions {
  /** Who asked (recorded in the access log with the report's parameters). */
  readonly actor: AccessActor;
  readonly requestId: string;
  /**
   * Where the run's records go (default: appended to the access log now, as the CLI's are). A GraphQL request
   * hands them to its governance, which records them with the response's other records.
   */
  readonly record?: (records: readonly AccessRecordInput[]) => unknown;
  /**
   * How far the report is: `reading`, through sequence number `done` of the head `total`; then `verifying`,
   * `done` records of `total` checked. The consent-coverage report reads no log: `counting`, `done`
   * customers of `total`.
   */
  readonly onProgress?: (stage: ReportStage, done: number, total: number) => void;
  /**
   * How many customers the consent-coverage report reads at a time, with their statements (default 1,000):
   * its memory is one chunk's.
   */
  readonly customersPerChunk?: number;
}

export type ReportStage = 'reading' | 'verifying' | 'counting';

/** A chunk's ids go into one IN list: well inside every driver's parameter limit. */
const COVERAGE_CHUNK = 1_000;

/** How the caller names a report's parameters, so that a problem names what they typed. */
export interface ReportArgumentNames {
  readonly subject: string;
  /** The subject parameter with its value, as a usage line shows it. */
  readonly subjectWithValue: string;
  readonly from: string;
  readonly to: string;
  /** A report kind as the caller spells it. */
  readonly kind: (kind: ReportKind) => string;
}

/** The `report` query's arguments (its kinds are a GraphQL enum). */
const GRAPHQL_ARGUMENTS: ReportArgumentNames = { subject: 'subjectId', subjectWithValue: 'subjectId', from: 'from', to: 'to', kind: enumValueName };

/** Validates a report request; every problem is a one-line BAD_USER_INPUT, checked before any work. */
export function validateReportRequest(request: ReportRequest, names: ReportArgumentNames = GRAPHQL_ARGUMENTS): { kind: ReportKind; parameters: ReportParameters } {
  if (!(REPORT_KINDS as readonly string[]).includes(request.kind)) throw badInput(`unknown report "${request.kind}": use one of ${REPORT_KINDS.join(', ')}`);
  const time = (value: string | null | undefined, name: string) => (isGiven(value) ? isoTime(value, name, { argument: name }).toISOString() : undefined);
  const from = time(request.from, names.from);
  const to = time(request.to, names.to);
  if (from && to && from >= to) throw badInput(`${names.from} must be before ${names.to}`, { argument: names.from });
  const subjectGiven = isGiven(request.subjectId);
  if (request.kind === 'subject-access' && !subjectGiven) throw badInput(`the ${names.kind('subject-access')} report needs ${names.subjectWithValue}`, { argument: names.subject });
  if (request.kind !== 'subject-access' && subjectGiven) throw badInput(`${names.subject} applies to the ${names.kind('subject-access')} report only, not to "${names.kind(request.kind as ReportKind)}"`, { argument: names.subject });
  return { kind: request.kind as ReportKind, parameters: { ...(subjectGiven ? { subjectId: request.subjectId } : {}), ...(from ? { from } : {}), ...(to ? { to } : {}) } };
}

/**
 * Builds one report: reads the access log once, streaming (memory bounded by the report's groups, not the
 * log's size), up to the head at the start, and records the generation in the access log.
 */
export async function generateReport(services: CandorServices, request: ReportRequest, options: GenerateOptions): Promise<ReportDocument> {
  const { kind, parameters } = validateReportRequest(request);
  const { dataSource } = services;
  const [head] = await dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
  // The time of the oldest record the log holds (indexed): per-day figures know nothing of the days before it.
  const [{ since }] = (await dataSource.query('SELECT min(at) AS since FROM audit_entry')) as Array<{ since: string | null }>;
  const logHead = { seq: head?.lastSeq ?? 0, hash: head?.hash ?? GENESIS_HASH };
  const now = services.clock();
  // A period in the future would be reported as one in which nothing happened (or, for consent coverage, as
  // today's ledger): an evidently empty report for a mistyped year is worse than a refusal.
  if (parameters.from !== undefined && parameters.from > now.toISOString()) {
    const source = kind === 'consent-coverage' ? 'the consent ledger' : 'the access log';
    throw badInput(`the ${kind} period cannot start after now (${now.toISOString()}): it would start at ${parameters.from}, and ${source} tells nothing of the future`, { argument: 'from' });
  }
  const frame: ReportFrame = { parameters, generatedAt: now.toISOString(), logHead, logSince: since };
  const { fields } = services;

  let builder: { add(record: Parameters<ReturnType<typeof purposeUsageReport>['add']>[0]): void; finish(frame: ReportFrame): ReportDocument } | undefined;
  let document: ReportDocument | undefined;
  /** The subject's fields whose values, or whose presence, the report tells (a subject-access report's). */
  let told: ReadonlyArray<{ readonly coordinate: string; readonly category: string }> = [];
  switch (kind) {
    case 'purpose-usage':
      builder = purposeUsageReport();
      break;
    case 'denials':
      builder = denialsReport();
      break;
    case 'ropa':
      builder = ropaReport(services.taxonomy, fields, await services.actors.list());
      break;
    case 'subject-access': {
      const subjectId = parameters.subjectId!;
      const customer = await services.domain.findCustomerRecord(subjectId);
      if (!customer) throw unknownSubject(`unknown subject "${subjectId}"`, { argument: 'subjectId' });
      // Its record would name the subject again: the log would point at an erased person anew.
      if (customer.erasedAt) throw unknownSubject(`subject "${subjectId}" was erased on ${customer.erasedAt}: nothing is held about them to report, and a report would tie the log to them again`, { argument: 'subjectId' });
      const [state] = await services.consent.states([subjectId]);
      const purposes = [...services.taxonomy.purposes.values()].filter((purpose) => purpose.requestable);
      const held = await heldData(services, customer, fields);
      builder = subjectAccessReport({ subjectId, held, state, history: await services.consent.history(subjectId), purposes, at: now });
      // Which fields hold a value (a health category, say; their consent entries' among them) is personal data too.
      told = held;
      break;
    }
    case 'consent-coverage': {
      // The period starts, by default, at the earliest statement (an imported one may be older than the first entry).
      const start = new Date(parameters.from ?? (await earliestStatement(services)) ?? now.toISOString());
      const endsLater = parameters.to !== undefined && parameters.to > now.toISOString();
      const end = endsLater ? now : new Date(parameters.to ?? now.toISOString());
      // With one bound given, the other's default may fall on its wrong side: a backwards period is no period.
      if (start > end) throw badInput(`the period is backwards: it would start at ${start.toISOString()} and end at ${end.toISOString()}`);
      const coverage = consentCoverageReport(services.taxonomy, start, end);
      const total = await dataSource.getRepository(CustomerEntity).count();
      let counted = 0;
      for await (const chunk of coveredSubjects(services, options.customersPerChunk ?? COVERAGE_CHUNK)) {
        coverage.add(chunk.subjects, chunk.events);
        counted += chunk.subjects.length;
        options.onProgress?.('counting', counted, total);
      }
      document = coverage.finish(frame);
      if (endsLater) document = { ...document, summary: [...document.summary, `The period asked for ends at ${parameters.to}, after now: it ends now (${end.toISOString()}), as the ledger tells nothing later.`] };
      break;
    }
  }
  if (builder) {
    const records = readAccessLog(
      dataSource,
      services.pseudonymBindingKey,
      { from: parameters.from, to: parameters.to, subjectId: kind === 'subject-access' ? parameters.subjectId : undefined, throughSeq: logHead.seq },
      { onPage: (throughSeq) => options.onProgress?.('reading', throughSeq, logHead.seq) },
    );
    let firstRead: number | undefined; // records come in sequence order
    for await (const record of records) {
      firstRead ??= record.seq;
      builder.add(record);
    }
    options.onProgress?.('reading', logHead.seq, logHead.seq);
    const prune = await furthestPrune(services);
    await verifyReportedLog(services, parameters.from, firstRead, logHead.seq, prune?.throughSeq ?? 0, options.onProgress);
    document = builder.finish(frame);
    const notice = prune && (await prunedNotice(services, prune, parameters.from));
    if (notice) document = { ...document, summary: [...document.summary, notice] };
  }
  const run = { at: now, requestId: options.requestId, actor: options.actor, purpose: 'essential.legal_obligation', operationName: `report ${kind}${parameters.from || parameters.to ? ` from ${parameters.from ?? 'the beginning'} to ${parameters.to ?? 'now'}` : ''}`, subjectId: parameters.subjectId ?? null, legalBasis: 'legal_obligation' };
  const records: AccessRecordInput[] = [
    { ...run, coordinate: null, category: null, decision: 'RELEASED', reason: 'REPORT_GENERATED' },
    // Told to answer the subject's own request (GDPR Art. 15): recorded as such, so their report and page show it, and
    // left out of the purposes' uses (the RoPA, purpose usage) as the subject's own reads are.
    ...told.map(({ coordinate, category }) => ({ ...run, coordinate, category, decision: 'RELEASED' as const, reason: SELF_ACCESS })),
  ];
  await (options.record ?? ((batch: readonly AccessRecordInput[]) => services.accessLog.append(batch)))(records);
  return document!;
}

/**
 * A report from the log is evidence: it is given only from a log that verifies over every record it read
 * and over its whole period (a record altered, deleted or moved there would change its figures unseen).
 * Where verification starts is fixed by what signatures cover, never by a column that could be edited
 * unseen (a batch's commit time): at the latest checkpoint made before the period (its signed head anchors
 * the chain there; a forged one fails the verification), or the log's beginning — and no later than the
 * first record read.
 */
async function verifyReportedLog(services: CandorServices, from: string | undefined, firstRead: number | undefined, headSeq: number, prunedThroughSeq: number, onProgress: GenerateOptions['onProgress']): Promise<void> {
  const [anchor] = from === undefined ? [] : await services.dataSource.getRepository(AuditCheckpointEntity).find({ where: { at: LessThanOrEqual(from) }, order: { seq: 'DESC' }, take: 1 });
  const fromSeq = anchor ? Math.min(anchor.seq, firstRead ?? anchor.seq) : undefined;
  // The verification starts no earlier than the first record a prune left (its checkpoint stands for the rest).
  const toCheck = headSeq - Math.max(fromSeq ?? 1, prunedThroughSeq + 1) + 1;
  const report = await services.verifyAccessLog({ fromSeq, onProgress: onProgress && ((verified) => onProgress('verifying', verified, toCheck)) });
  if (!report.verified) {
    throw auditLogBroken(`the access log does not verify (${report.problem}): a report from it could rest on altered or missing records — run "npx candor audit verify" and investigate before reporting`);
  }
}

/** The prune that reached furthest: through which record, and when its checkpoint was made. */
interface Prune {
  readonly throughSeq: number;
  readonly at: string;
}

async function furthestPrune(services: CandorServices): Promise<Prune | undefined> {
  const [checkpoint] = await services.dataSource.getRepository(AuditCheckpointEntity).find({ where: { kind: 'prune' }, order: { prunedThroughSeq: 'DESC' }, take: 1 });
  return checkpoint?.prunedThroughSeq ? { throughSeq: checkpoint.prunedThroughSeq, at: checkpoint.at } : undefined;
}

/**
 * What a report from the log cannot see: the records a prune removed. Empty figures for a pruned period
 * would read as "nothing happened"; the summary says where the log now starts.
 */
async function prunedNotice(services: CandorServices, prune: Prune, from: string | undefined): Promise<string> {
  const [oldest] = await services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'ASC' }, take: 1 });
  const since = oldest?.committedAt ?? prune.at;
  const before = from !== undefined && from < since ? '; this report\'s period starts before that, and its figures cover only what remains' : '';
  return `The access log was pruned through record ${prune.throughSeq}: it holds the records committed from ${since} on${before}.`;
}

/** When the earliest statement in the ledger was made (one aggregate: the ledger is never read whole). */
async function earliestStatement(services: CandorServices): Promise<string | null> {
  const [{ earliest }] = (await services.dataSource.query('SELECT min(recorded_at) AS earliest FROM consent_event')) as Array<{ earliest: string | null }>;
  return earliest;
}

/**
 * The customers in id order, a chunk at a time (keyset on the primary key), each chunk with the ledger's
 * statements about its subjects who are not erased (an erased subject's are kept under an id that maps to no
 * one, and the report counts them as erased): memory is bounded by one chunk, not by the customers or the
 * ledger.
 */
async function* coveredSubjects(services: CandorServices, chunkSize: number): AsyncGenerator<{ subjects: CoveredSubject[]; events: ConsentEventEntity[] }> {
  const customers = services.dataSource.getRepository(CustomerEntity);
  const ledger = services.dataSource.getRepository(ConsentEventEntity);
  let after: string | undefined;
  for (;;) {
    const subjects = await customers.find({ select: { id: true, createdAt: true, erasedAt: true }, where: after === undefined ? {} : { id: MoreThan(after) }, order: { id: 'ASC' }, take: chunkSize });
    if (subjects.length === 0) return;
    const held = subjects.filter((subject) => subject.erasedAt === null).map((subject) => subject.id);
    yield { subjects, events: held.length === 0 ? [] : await ledger.find({ where: { subjectId: In(held) } }) };
    after = subjects[subjects.length - 1].id;
  }
}

/** The personal fields Candor holds a value for, about this customer (what an Art. 15 answer lists). */
async function heldData(services: CandorServices, customer: CustomerEntity, fields: readonly FieldGovernance[]) {
  const records = await recordsHeldAbout(services, customer);
  const held = (field: FieldGovernance) => (field.returnsType ? (records[field.returnsType]?.length ?? 0) > 0 : (valuesHeld(field, records)?.length ?? 0) > 0);
  return fields.filter((field) => services.taxonomy.categories.get(field.category)?.personal === true && held(field)).map((field) => ({ coordinate: field.coordinate, category: field.category }));
}
