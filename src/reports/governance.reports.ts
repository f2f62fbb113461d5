import type { ActorEntity } from '../actors/actor.entity';
import type { ConsentEventEntity } from '../consent/consent-event.entity';
import { replayLedger } from '../consent/ledger-replay';
import type { FieldGovernance } from '../graphql/governance-catalog';
import { consentStanding, declaredForm, mostSpecific, type RequestPurpose, requestPurposeOf, type SubjectState } from '../policy/decide';
import { fieldPolicy } from '../policy/guarded-field';
import { anyCovers } from '../taxonomy/keys';
import type { Purpose, Taxonomy } from '../taxonomy/taxonomy';
import type { LogRecord } from './access-log-source';
import type { ReportDocument } from './report-document';
import { CHOICE_FILTER_REASONS, FILTERED_OUT_ON_CHOICES, SELF_ACCESS } from '../policy/codes';
import { isDryRun, isFieldDecision, percent, type ReportFrame } from './usage.reports';

const OUTSIDE_LISTED = 1_000;

/** A recipient of a purpose's data, as the RoPA lists it. */
interface Recipient {
  readonly actorId: string;
  readonly name: string;
  readonly team: string;
}

/**
 * Record of Processing Activities (GDPR Art. 30) from the live annotations, the taxonomy and the actors'
 * entitlements, with what the log shows was actually accessed — and any access outside the declaration.
 * A purpose's recipients are the directory's actors entitled to it and every actor the log shows received
 * its data in the period: an actor authenticated by JWT (`jwt:<sub>`) is in no directory, a revoked one no
 * longer entitled, and both still received what they read.
 */
export function ropaReport(taxonomy: Taxonomy, fields: readonly FieldGovernance[], actors: readonly ActorEntity[]) {
  const released = new Map<string, Map<string, number>>(); // purpose → coordinate → releases
  const receivedBy = new Map<string, Map<string, Recipient>>(); // purpose → actor id → the actor as last recorded
  // Memory stays bounded on any log: every release outside the declaration is counted, the first ones listed.
  const outside: Array<{ seq: number; purpose: string; coordinate: string; actorId: string | null }> = [];
  let outsideCount = 0;
  // The form each field may take for a purpose, as rule 2 of decide() reads it: in full, or masked by its category.
  const policies = new Map(fields.map((field) => [field.coordinate, fieldPolicy(field.category, field.purposes, taxonomy.categories.get(field.category))]));
  const formOf = (coordinate: string, purpose: string) => {
    const policy = policies.get(coordinate);
    return policy ? declaredForm(policy, purpose) : undefined;
  };
  return {
    add(record: LogRecord): void {
      if (!isFieldDecision(record) || (record.decision !== 'RELEASED' && record.decision !== 'MASKED') || !record.purpose || !record.coordinate) return;
      // A list filtered on the subjects' choices read them to respect them, and a subject reading their own
      // record exercised their right of access (Art. 15): neither is a use of a field the purpose declares.
      if (CHOICE_FILTER_REASONS.has(record.reason) || record.reason === SELF_ACCESS) return;
      const perCoordinate = released.get(record.purpose) ?? new Map<string, number>();
      released.set(record.purpose, perCoordinate);
      perCoordinate.set(record.coordinate, (perCoordinate.get(record.coordinate) ?? 0) + 1);
      if (record.actorId) {
        const perActor = receivedBy.get(record.purpose) ?? new Map<string, Recipient>();
        receivedBy.set(record.purpose, perActor);
        perActor.set(record.actorId, { actorId: record.actorId, name: record.actorName ?? record.actorId, team: record.actorTeam ?? '' });
      }
      // A masked release needs the purpose declared in some form; a release in full, declared in full.
      const form = formOf(record.coordinate, record.purpose);
      if (form === undefined || (record.decision === 'RELEASED' && form !== 'full')) {
        outsideCount++;
        if (outside.length < OUTSIDE_LISTED) outside.push({ seq: record.seq, purpose: record.purpose, coordinate: record.coordinate, actorId: record.actorId });
      }
    },
    finish(frame: ReportFrame): ReportDocument {
      const activities = [...taxonomy.purposes.values()]
        .filter((purpose) => purpose.requestable)
        .map((purpose) => {
          const personal = fields.filter((field) => taxonomy.categories.get(field.category)?.personal && formOf(field.coordinate, purpose.key) !== undefined);
          const categories = [...new Set(personal.map((field) => field.category))].sort();
          const entitled: Recipient[] = actors.filter((actor) => !actor.revokedAt && anyCovers(actor.purposes, purpose.key)).map((actor) => ({ actorId: actor.id, name: actor.name, team: actor.team }));
          const listed = new Set(entitled.map((recipient) => recipient.actorId));
          const unlisted = [...(receivedBy.get(purpose.key)?.values() ?? [])].filter((recipient) => !listed.has(recipient.actorId)).sort((a, b) => (a.actorId < b.actorId ? -1 : 1));
          const recipients = [...entitled, ...unlisted];
          const accessed = released.get(purpose.key) ?? new Map<string, number>();
          return {
            purpose: purpose.key,
            description: purpose.description,
            legalBasis: purpose.legalBasis!,
            categories,
            specialCategories: categories.filter((category) => taxonomy.categories.get(category)?.special),
            coordinates: personal.map((field) => field.coordinate),
            maskedCoordinates: personal.filter((field) => formOf(field.coordinate, purpose.key) === 'masked').map((field) => field.coordinate),
            recipients,
            accessed: Object.fromEntries([...accessed.entries()].sort()),
            declaredButUnused: personal.map((field) => field.coordinate).filter((coordinate) => !accessed.has(coordinate)),
          };
        });
      return {
        kind: 'ropa',
        title: 'Record of processing activities (GDPR Art. 30)',
        primaryTable: 'Declared fields and observed releases',
        ...frame,
        summary: [
          outsideCount === 0
            ? 'No personal data was released outside the purposes declared on the fields.'
            : `${outsideCount} release(s) outside the declared purposes — investigate${outsideCount > outside.length ? ` (the first ${outside.length} are listed)` : ''}.`,
          `${activities.reduce((sum, activity) => sum + activity.declaredButUnused.length, 0)} declared field/purpose pairs were never used in the period (minimisation candidates).`,
        ],
        sections: [
          {
            title: 'Processing activities',
            chart: { title: 'Releases per purpose in the period', bars: activities.map((activity) => ({ label: activity.purpose, value: Object.values(activity.accessed).reduce((sum, count) => sum + count, 0) })) },
            tables: [
              {
                title: 'Purposes',
                columns: ['purpose', 'legal basis', 'description', 'categories', 'special categories', 'recipients'],
                rows: activities.map((activity) => [activity.purpose, activity.legalBasis, activity.description, activity.categories.join(', '), activity.specialCategories.join(', '), activity.recipients.map((recipient) => `${recipient.name} (${recipient.team})`).join(', ')]),
              },
              {
                title: 'Declared fields and observed releases',
                columns: ['purpose', 'coordinate', 'form', 'releases in period'],
                rows: activities.flatMap((activity) => activity.coordinates.map((coordinate) => [activity.purpose, coordinate, activity.maskedCoordinates.includes(coordinate) ? 'masked' : 'full', activity.accessed[coordinate] ?? 0])),
              },
            ],
          },
          { title: 'Drift: releases outside the declaration', tables: [{ title: 'Outside the declaration', columns: ['seq', 'purpose', 'coordinate', 'actor'], rows: outside.map((row) => [row.seq, row.purpose, row.coordinate, row.actorId]) }] },
        ],
        data: { activities, outsideDeclaration: outside, outsideDeclarationCount: outsideCount },
      };
    },
  };
}

/**
 * How a subject stands on one purpose; `renewal needed`: a grant given before a material notice change;
 * `withdrawn`: no grant in force, whether the subject said no or their yes ran out (`ReportedStanding`
 * tells the two apart).
 */
export type Coverage = 'granted' | 'renewal needed' | 'withdrawn' | 'objected' | 'never asked';

/**
 * How the reports say a subject stands on one purpose: `expired`, a grant whose `expiresAt` has passed.
 * `decide()` treats it as no consent, as it does a withdrawal, but the subject never said no: a report
 * that counted it as withdrawn would say so (the privacy page says "your yes ran out").
 */
export type ReportedStanding = Coverage | 'expired';

/**
 * The coverage report's states: a subject erased since an instant was a customer then, but the ledger no
 * longer says which statements were theirs (`ConsentLedger.pseudonymise`).
 */
type ReportedCoverage = ReportedStanding | 'erased since';
const REPORTED_COVERAGE_STATES: readonly ReportedCoverage[] = ['granted', 'renewal needed', 'withdrawn', 'expired', 'objected', 'never asked', 'erased since'];

/** The subject's standing on `purpose` at `at`, read as `decide()` reads it (an objection first). */
export function coverageOf(state: SubjectState | undefined, purpose: RequestPurpose, at: Date): Coverage {
  if (state === undefined) return 'never asked';
  if (mostSpecific(state.objections, purpose.key)?.objected) return 'objected';
  return consentCoverageOf(state, purpose, at);
}

/** How the subject's consent to `purpose` stands at `at`, objections aside (rules 5 and 6 of decide()). */
export function consentCoverageOf(state: SubjectState, purpose: RequestPurpose, at: Date): Exclude<Coverage, 'objected'> {
  const { consent, active, outdated } = consentStanding(state, purpose, at);
  if (!consent) return 'never asked';
  return active ? (outdated ? 'renewal needed' : 'granted') : 'withdrawn';
}

/** The subject's standing on `purpose` at `at` as the reports give it: `coverageOf`'s, with an expired grant told apart from a withdrawal. */
export function reportedStandingOf(state: SubjectState | undefined, purpose: RequestPurpose, at: Date): ReportedStanding {
  const coverage = coverageOf(state, purpose, at);
  return coverage === 'withdrawn' && consentStanding(state!, purpose, at).expired ? 'expired' : coverage;
}

/** A data subject as the coverage report counts them: from when they were a customer until their erasure. */
export interface CoveredSubject {
  readonly id: string;
  readonly createdAt: string;
  readonly erasedAt: string | null;
}

/**
 * Consent coverage: per purpose, the share of subjects in each state at the start and the end of the
 * period, each instant counting the subjects who were customers then (not yet created, or already erased,
 * they are no one's coverage). An instant is exclusive, as the ledger's replay up to it is: what happened at
 * it (a customer created, a statement made, an erasure) belongs after it. Fed the subjects a chunk at a
 * time, so memory is bounded by a chunk and the figures, not by the customers or the ledger.
 */
export function consentCoverageReport(taxonomy: Taxonomy, periodStart: Date, periodEnd: Date) {
  const states = REPORTED_COVERAGE_STATES;
  const purposes = [...taxonomy.purposes.values()].filter((purpose) => purpose.requestable);
  const tallyAt = (at: Date) => ({
    at,
    iso: at.toISOString(),
    subjects: 0,
    // Each instant reads the purpose as it stood then: a notice change after the start did not count yet.
    purposes: purposes.map((purpose) => ({ asThen: requestPurposeOf(purpose, at), counts: Object.fromEntries(states.map((state) => [state, 0])) as Record<ReportedCoverage, number> })),
  });
  const [start, end] = [tallyAt(periodStart), tallyAt(periodEnd)];
  return {
    /**
     * Counts a chunk of subjects. `events` holds every ledger statement about the chunk's subjects who are
     * not erased, in any order (the replay orders them); statements about anyone else change nothing.
     */
    add(subjects: readonly CoveredSubject[], events: readonly ConsentEventEntity[]): void {
      for (const tally of [start, end]) {
        const snapshot = replayLedger(events, tally.iso);
        for (const subject of subjects) {
          if (subject.createdAt >= tally.iso || (subject.erasedAt !== null && subject.erasedAt < tally.iso)) continue;
          tally.subjects++;
          // An erased subject's statements are kept under an id that maps back to no one: theirs are not known.
          for (const { asThen, counts } of tally.purposes) counts[subject.erasedAt === null ? reportedStandingOf(snapshot.get(subject.id), asThen, tally.at) : 'erased since']++;
        }
      }
    },
    finish(frame: ReportFrame): ReportDocument {
      const rows = purposes.map((purpose, index) => ({ purpose: purpose.key, legalBasis: purpose.legalBasis!, start: start.purposes[index].counts, end: end.purposes[index].counts }));
      const total = end.subjects;
      return {
        kind: 'consent-coverage',
        title: 'Consent coverage',
        primaryTable: 'End of period',
        ...frame,
        summary: [`${start.subjects} data subjects at ${start.iso}, ${total} at ${end.iso}.`],
        sections: [
          {
            title: 'Coverage per purpose',
            // Only purposes that rest on consent: a bar of zero grants for a contract purpose would read as a gap.
            chart: { title: 'Subjects who granted consent, end of period (purposes based on consent)', bars: rows.filter((row) => row.legalBasis === 'consent').map((row) => ({ label: row.purpose, value: row.end.granted })) },
            tables: [
              {
                title: 'End of period',
                columns: ['purpose', 'legal basis', ...states.map((state) => `${state} (share)`), 'granted change'],
                rows: rows.map((row) => [row.purpose, row.legalBasis, ...states.map((state) => `${row.end[state]} (${percent(row.end[state], total)})`), row.end.granted - row.start.granted]),
              },
              { title: 'Start of period', columns: ['purpose', ...states], rows: rows.map((row) => [row.purpose, ...states.map((state) => row.start[state])]) },
            ],
          },
        ],
        data: { subjects: total, subjectsAtStart: start.subjects, periodStart: start.iso, periodEnd: end.iso, purposes: rows },
      };
    },
  };
}

export interface SubjectAccessInputs {
  readonly subjectId: string;
  /** Personal categories and coordinates Candor holds values for, about this subject. */
  readonly held: ReadonlyArray<{ readonly coordinate: string; readonly category: string }>;
  readonly state: SubjectState;
  readonly history: readonly ConsentEventEntity[];
  /** The purposes a request may declare, for the subject's standing on each at `at` (as the privacy page shows it). */
  readonly purposes: readonly Purpose[];
  readonly at: Date;
}

/**
 * The subject-access summary: field accesses, and apart from them the dry runs (they released nothing and
 * withheld nothing from a use, though the actor learned each decision) and the lists filtered on the
 * subject's choices (they read the choices to respect them: kept in the list, or left out of it).
 */
function summaryOfAccesses(categories: number, accesses: ReadonlyArray<{ decision: string; reason: string }>, operations: number): string {
  const decisions = accesses.filter((access) => !CHOICE_FILTER_REASONS.has(access.reason));
  const fields = decisions.filter((access) => !isDryRun(access));
  const dryRuns = decisions.length - fields.length;
  const lists = accesses.length - decisions.length;
  const leftOut = accesses.filter((access) => access.reason === FILTERED_OUT_ON_CHOICES).length;
  const explained = dryRuns ? `; ${dryRuns} ${dryRuns === 1 ? 'field decision in a dry run' : 'field decisions in dry runs'} (explained only, not released)` : '';
  const filtered = lists ? `; ${lists} ${lists === 1 ? 'list' : 'lists'} filtered on their choices (kept in ${lists - leftOut}, left out of ${leftOut})` : '';
  const about = operations ? `; ${operations} ${operations === 1 ? 'operation' : 'operations'} about them (their consent history read or changed, reports)` : '';
  return `${categories} categories of personal data held; ${fields.length} field accesses in the period (${fields.filter((access) => access.decision === 'WITHHELD').length} withheld)${explained}${filtered}${about}.`;
}

/**
 * The subject-access summary's line for the fields told to the subject themselves: on their own page, or
 * in answers to their requests (this report's earlier runs among them).
 */
function summaryOfTold(told: number): string {
  return `${told} ${told === 1 ? 'field' : 'fields'} told to them (on their own privacy page, or in answers to their requests such as this report): their right of access, not a use of their data.`;
}

/** Subject access (GDPR Art. 15): categories held, consent state and history, every access in the period. */
export function subjectAccessReport(inputs: SubjectAccessInputs) {
  type Access = { seq: number; at: string; actor: string | null; team: string | null; purpose: string | null; coordinate: string | null; decision: string; reason: string };
  type Operation = Access & { operation: string | null };
  const accesses: Access[] = [];
  // Records naming the subject that decide no field: their ledger read or changed by staff, reports about them.
  const operations: Operation[] = [];
  // The subject's fields told to them (their page, the answers to their requests: each run of this report
  // records what it tells): their right of access, which counted as accesses made the count grow with every run.
  const toldToThem: Operation[] = [];
  return {
    add(record: LogRecord): void {
      if (record.subjectId !== inputs.subjectId) return;
      const access = { seq: record.seq, at: record.at, actor: record.actorName, team: record.actorTeam, purpose: record.purpose, coordinate: record.coordinate, decision: record.decision, reason: record.reason };
      if (!isFieldDecision(record)) operations.push({ ...access, operation: record.operationName });
      else if (record.reason === SELF_ACCESS) toldToThem.push({ ...access, operation: record.operationName });
      else accesses.push(access);
    },
    finish(frame: ReportFrame): ReportDocument {
      const categories = [...new Set(inputs.held.map((field) => field.category))].sort();
      const byTeam = new Map<string, number>();
      for (const access of accesses) byTeam.set(access.team ?? '(unknown)', (byTeam.get(access.team ?? '(unknown)') ?? 0) + 1);
      const consents = inputs.state.consents.map((statement) => ({ purpose: statement.purpose, granted: statement.granted, explicit: statement.explicit, expiresAt: statement.expiresAt?.toISOString() ?? null }));
      // The statements say what the subject said; the standing says what counts now, as decide() reads it.
      const standing = inputs.purposes.map((purpose) => ({ purpose: purpose.key, legalBasis: purpose.legalBasis!, standing: reportedStandingOf(inputs.state, requestPurposeOf(purpose, inputs.at), inputs.at) }));
      return {
        kind: 'subject-access',
        title: `Subject access report for ${inputs.subjectId}`,
        primaryTable: 'Accesses',
        ...frame,
        summary: [summaryOfAccesses(categories.length, accesses, operations.length), ...(toldToThem.length ? [summaryOfTold(toldToThem.length)] : [])],
        sections: [
          { title: 'Personal data held', tables: [{ title: 'Categories', columns: ['category', 'fields'], rows: categories.map((category) => [category, inputs.held.filter((field) => field.category === category).map((field) => field.coordinate).join(', ')]) }] },
          {
            title: 'Current choices',
            text: inputs.state.restricted ? 'Processing is restricted (GDPR Art. 18).' : 'Processing is not restricted.',
            tables: [
              { title: 'Standing per purpose', columns: ['purpose', 'legal basis', 'standing'], rows: standing.map((row) => [row.purpose, row.legalBasis, row.standing]) },
              { title: 'Consents', columns: ['purpose', 'granted', 'explicit', 'expires'], rows: consents.map((row) => [row.purpose, row.granted ? 'yes' : 'no', row.explicit ? 'yes' : 'no', row.expiresAt]) },
              { title: 'Objections', columns: ['purpose', 'objected'], rows: inputs.state.objections.map((row) => [row.purpose, row.objected ? 'yes' : 'no']) },
            ],
          },
          { title: 'Consent history', tables: [{ title: 'Ledger', columns: ['recorded', 'change', 'purpose', 'explicit', 'source'], rows: inputs.history.map((event) => [event.recordedAt, event.kind, event.purpose, event.explicit ? 'yes' : 'no', event.source]) }] },
          {
            title: 'How the data was used',
            chart: { title: 'Field accesses per team', bars: [...byTeam.entries()].sort().map(([label, value]) => ({ label, value })) },
            tables: [{ title: 'Accesses', columns: ['seq', 'time', 'who', 'team', 'purpose', 'field', 'decision', 'reason'], rows: accesses.map((access) => [access.seq, access.at, access.actor, access.team, access.purpose, access.coordinate, access.decision, access.reason]) }],
          },
          {
            title: 'Told to them',
            text: 'Their own privacy page, and the answers to their requests (GDPR Art. 15), field by field: their data shown to them, not a use of it.',
            tables: [{ title: 'Fields told to them', columns: ['seq', 'time', 'who', 'team', 'field', 'operation'], rows: toldToThem.map((told) => [told.seq, told.at, told.actor, told.team, told.coordinate, told.operation]) }],
          },
          {
            title: 'Operations about them',
            text: 'Their consent history read, their choices recorded by staff, reports about them: no field decided, the subject named.',
            tables: [{ title: 'Operations', columns: ['seq', 'time', 'who', 'team', 'purpose', 'operation', 'decision', 'reason'], rows: operations.map((operation) => [operation.seq, operation.at, operation.actor, operation.team, operation.purpose, operation.coordinate ?? operation.operation, operation.decision, operation.reason]) }],
          },
        ],
        data: { subjectId: inputs.subjectId, categoriesHeld: categories, held: inputs.held, restricted: inputs.state.restricted, standing, consents, objections: inputs.state.objections, history: inputs.history, accesses, toldToThem, operations },
      };
    },
  };
}
