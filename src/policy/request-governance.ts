import { AsyncLocalStorage } from 'node:async_hooks';
import { type FieldNode, getLocation, getNamedType, GraphQLError, type GraphQLObjectType, type GraphQLOutputType, type GraphQLResolveInfo, isListType, isNamedType, isObjectType, type SourceLocation } from 'graphql';
// The executor's own field collection (fragments, @skip/@include, aliases); internal to graphql-js 16, whose
// version is pinned, so the leaf guard selects exactly the fields the executor will read.
import { collectFields, collectSubfields } from 'graphql/execution/collectFields';
import { anyCovers } from '../taxonomy/keys';
import { DENIAL_EXPLANATIONS, type DenialReason } from './codes';
import { type Decision, decide, declaredForm, type FieldPolicy, isReleasedWithoutSubject, type RequestPurpose, type SubjectState } from './decide';
import type { AccessRecordInput } from '../audit/access-log';
import type { CompiledFields, GuardedField } from './guarded-field';
import type { Masker, MaskStrategy } from './masking';

/**
 * What a request does with its decisions: `release` values as decided (the default); `explain` decides and
 * reports every decision but releases no personal value (a dry run); `reject` refuses the whole operation
 * when any selected field would be withheld.
 */
export type GovernanceMode = 'release' | 'explain' | 'reject';

/** The field whose filter on the subjects' choices is resolving, across its resolver's awaits. */
const resolvingFilter = new AsyncLocalStorage<GuardedField>();

/** Actors with this role run every request in reject mode (batch jobs that must never work on partial data). */
export const REJECT_MODE_ROLE = 'reject-withheld';

/** A root field refused to the actor. */
export interface OperationRefusal {
  readonly field: GuardedField;
  readonly code: 'FORBIDDEN' | 'EXPLAIN_QUERIES_ONLY';
}

export interface RequestGovernanceOptions {
  readonly purpose: RequestPurpose;
  readonly actorRoles: readonly string[];
  readonly now: Date;
  /** Batch-loads subject states; an Error in place of a state (or a rejected batch) means "unknown". */
  readonly loadSubjectStates: (subjectIds: readonly string[]) => Promise<ArrayLike<SubjectState | Error>>;
  /** The schema's compiled fields and policies. */
  readonly compiled: CompiledFields;
  /**
   * How withheld leaf fields are reported: one GraphQL error each (`errors`, the default), or once per
   * response in `extensions.governance.withheld` (`extensions`; cheaper when many fields are withheld).
   */
  readonly withheldReporting?: 'errors' | 'extensions';
  readonly mode?: GovernanceMode;
  /** What set reject mode, as the client is told (the request's header, or the actor's role). */
  readonly rejectModeSetBy?: string;
  /** Reduces a value by a masking strategy (effect `mask`). */
  readonly mask: Masker;
}

/** One outcome of one field coordinate in an explanation: how many subjects got it, and which. */
export interface ExplainedOutcome {
  readonly decision: 'RELEASED' | 'MASKED' | 'WITHHELD';
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly mask?: string;
  readonly subjects: number;
  /** The subjects' ids, while the group is small enough to list (at most EXPLAIN_LISTED_SUBJECTS); null for records without one. */
  readonly subjectIds?: Array<string | null>;
}

/** Subject ids listed per explained outcome; larger groups give only their count. */
export const EXPLAIN_LISTED_SUBJECTS = 20;

/** The access-log decision a field decision is recorded as. */
export function recordedDecision(decision: Decision): 'RELEASED' | 'MASKED' | 'WITHHELD' {
  return decision.effect === 'allow' ? 'RELEASED' : decision.effect === 'mask' ? 'MASKED' : 'WITHHELD';
}

/** What the access log records of a field decision taken as decided (not a dry run's, not a rejected operation's). */
export interface RecordedDecision {
  readonly decision: 'RELEASED' | 'MASKED' | 'WITHHELD';
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly consentReceiptId: string | null;
  readonly maskStrategy?: string;
}

export function recordedAs(decision: Decision): RecordedDecision {
  return {
    decision: recordedDecision(decision),
    reason: decision.reason,
    legalBasis: decision.legalBasis,
    consentReceiptId: decision.consentReceiptId ?? null,
    ...(decision.effect === 'mask' ? { maskStrategy: decision.mask } : {}),
  };
}

type ResponsePath = GraphQLResolveInfo['path'];

/** The personal leaves of one object type: the fields its leaf guard decides, by name. */
export interface GuardedLeaves {
  readonly typeName: string;
  readonly byName: ReadonlyMap<string, GuardedField>;
}

/** One place a selection reads a leaf: its response key (the alias, or the field's name) and its nodes. */
interface LeafOccurrence {
  readonly responseKey: string;
  readonly nodes: readonly FieldNode[];
  /** Where the nodes are in the document, once an error at this place needed it. */
  locations?: readonly SourceLocation[];
}

/** A leaf a selection reads, once per field however many aliases read it. */
interface SelectedLeaf {
  readonly field: GuardedField;
  /** Where graphql-js reads it (none: only the executor's own nodes select it, see `selectionOf`). */
  readonly occurrences: readonly LeafOccurrence[];
}

/** The leaves a place reads of one type, and how the field there wraps its records in lists. */
interface Selection {
  /** Its position in the request's `selectionList` (how the log's slots name it). */
  readonly id: number;
  readonly selected: readonly SelectedLeaf[];
  /** How many lists the field's type wraps its records in (0: a record). */
  readonly listDepth: number;
  /** The record property holding the subject's id (every leaf of a type reads the same one). */
  readonly subjectKey: string;
  /** The selected fields as bits, laid out as one subject's words of `recorded`. */
  readonly recordedBits: Uint32Array;
  /** The policy classes of the selected fields decided per subject. */
  readonly subjectClasses: readonly number[];
  /** Whether every selected field decided without the subject (rule 1 or 2) is released. */
  readonly releasedWithoutSubjects: boolean;
}

/** A withheld leaf field reported in the response's extensions. */
export interface WithheldEntry {
  readonly path: ReadonlyArray<string | number>;
  readonly coordinate: string;
  readonly code: string;
  /** Null for a record without its subject's id. */
  readonly subjectId: string | null;
}

/**
 * Policies decided without the subject (rule 1 or 2) share one decision for every subject; the others are
 * decided once per subject and per *class*: after rule 2, `decide()` reads only whether the category is
 * special and, for a masked release, the mask strategy — so policies agreeing on both share a decision.
 */
const SUBJECT_INDEPENDENT = 0;

interface SubjectEntry {
  /** Null for records without a subject id (a data fault): never loaded, so every personal field is withheld (rule 2a). */
  readonly subjectId: string | null;
  readonly ordinal: number;
  /** Null while unknown: not loaded yet, or the load failed. */
  state: SubjectState | null;
  /** While a preload is reading the state: that load, which another preload meeting the subject waits for. */
  loading: Promise<void> | undefined;
}

/**
 * What a preload found: the entry of the subject of each record of `result` (of the record itself, when it
 * is not a list), by position; undefined where the record has no subject id, or is no record.
 */
export interface PreloadedSubjects {
  readonly result: unknown;
  readonly entries: ReadonlyArray<SubjectEntry | undefined>;
}

/** A recorded operation's call: the subject it names (`subjectArgument`), and where its answer is in the response. */
export interface RecordedOperationCall {
  readonly field: GuardedField;
  readonly subjectId: string | null;
  readonly responseKey: string;
}

/** The subject ids of a field's result: of each record of a list, or of the one record. */
function subjectIdsOf(result: unknown, subjectKey: string, isList: boolean): string[] {
  const subjectIds = [];
  for (const record of isList && Array.isArray(result) ? result : [result]) {
    const subjectId = record !== null && typeof record === 'object' ? (record as Record<string, unknown>)[subjectKey] : undefined;
    if (subjectId !== null && subjectId !== undefined) subjectIds.push(String(subjectId));
  }
  return subjectIds;
}

/** The ID or String at `path` (`input.subjectId`) in a field's arguments; the schema lint checked the path's type. */
function argumentAt(args: Readonly<Record<string, unknown>>, path: string): string | null {
  let value: unknown = args;
  for (const step of path.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[step] : undefined;
  return typeof value === 'string' ? value : null;
}

/**
 * The governance state of one request: the subjects it touched, the decisions made for them and the
 * decisions to log. Created per request and dropped with it, so nothing leaks between requests.
 * Both enforcement points — graphql-shield's rules through `enforce`, the leaf guard through
 * `guardLeaves` — apply `decide()`; nothing here decides on its own.
 *
 * The per-record path is synchronous and allocates no object per record but where it needs a copy (a leaf not
 * released in full): `decide()` runs once per (subject, policy class), where the class of each field policy
 * for this purpose is found by asking `decide()` itself whether it can answer without a subject; a record
 * whose every leaf is released is told so by its classes' decisions, and is logged in one slot.
 */
export class RequestGovernance {
  private readonly subjects = new Map<string, SubjectEntry>();
  private readonly entries: SubjectEntry[] = [];
  private readonly policyClasses: Uint8Array;
  private readonly classCount: number;
  /**
   * Each subject's decision per policy class, at subject ordinal × classCount + class (class 0 unused): one
   * array per request, not one per subject (a list of a thousand subjects allocated a thousand).
   */
  private readonly decisions: Array<Decision | undefined> = [];
  /** A policy of each class (index 0 unused), which `decide()` is asked about for the whole class. */
  private readonly classPolicies: FieldPolicy[] = [];
  private readonly subjectIndependent: Array<Decision | undefined>;
  /** 32-bit words per subject in `recorded`: one bit per field of the schema. */
  private readonly recordedStride: number;
  /**
   * Bit (field index) of word (subject ordinal × recordedStride + field index / 32) is set once the pair is
   * logged: aliases and repeats log once. Bits, not bytes: a schema has a hundred fields, a request reads a
   * few of them for hundreds of subjects, and a byte per pair made this the request's largest allocation.
   */
  private recorded = new Uint32Array(0);
  /**
   * The decisions to log, in the order they were made: slot i is of the subject with ordinal
   * `loggedOrdinals[i]`, and of one field (`loggedItems[i]` ≥ 0: its index) or of every leaf of a selection
   * (< 0: the bitwise complement of its id) — a record whose leaves were all logged at once takes one slot,
   * not one per leaf. `recorded` keeps a pair from taking two.
   */
  private loggedOrdinals: number[] = [];
  private loggedItems: number[] = [];
  /** Each selection by id. */
  private readonly selectionList: Selection[] = [];
  /**
   * Where each subject's fields were read: the object they belong to, as its parent's path
   * (`occurrenceParents`) and its key there (`occurrenceKeys`; undefined: the response's data itself),
   * and the subject's ordinal (`occurrenceOrdinals`), once per run of fields of one object. Read only when
   * null propagation may have discarded objects (see `dropRecordsOfSubjectsAbsentFrom`). Parent and key
   * rather than a path: a list's records are noted without a path object each.
   */
  private readonly occurrenceParents: Array<ResponsePath | undefined> = [];
  private readonly occurrenceKeys: Array<string | number | undefined> = [];
  private readonly occurrenceOrdinals: number[] = [];
  private readonly refusedOperations: OperationRefusal[] = [];
  private readonly filteredOnChoices = new Map<string, { field: GuardedField; subjectId: string }>();
  private readonly leftOutOnChoices = new Map<string, { field: GuardedField; subjectId: string }>();
  private readonly recordedOperationCalls: RecordedOperationCall[] = [];
  private readonly returnedSubjects = new Map<GuardedField, Set<string>>();
  private readonly resolverRecords: AccessRecordInput[] = [];
  private withheldPaths: Array<{ path: ResponsePath; field: GuardedField; subjectId: string | null; code: string }> = [];
  /** The record the previous field was decided for, the subject key it was read by, and its subject's entry. */
  private lastSource: unknown = undefined;
  private lastSubjectKey: string | undefined = undefined;
  private lastEntry: SubjectEntry | undefined = undefined;
  private lastOccurrenceParent: ResponsePath | undefined = undefined;
  private lastOccurrenceKey: string | number | undefined = undefined;
  private lastOccurrenceOrdinal = -1;
  /** The entry of records without a subject id, once one was met. */
  private unidentified: SubjectEntry | undefined = undefined;
  private readonly explainOnly: boolean;
  /** The leaves each place (a response path without list indexes) reads, per type of the records there. */
  private readonly selections = new Map<string, Map<GuardedLeaves, Selection>>();

  constructor(private readonly options: RequestGovernanceOptions) {
    const { policies, fields } = options.compiled;
    this.explainOnly = options.mode === 'explain';
    this.recordedStride = Math.ceil(fields.length / 32);
    this.policyClasses = new Uint8Array(policies.length);
    const classes = new Map<string, number>();
    this.subjectIndependent = policies.map((policy, index) => {
      const withoutSubject = decide({ field: policy, purpose: options.purpose, subjectState: null, now: options.now });
      if (withoutSubject.reason !== 'GOVERNANCE_UNAVAILABLE') return withoutSubject; // rule 1 or 2 answered
      const classKey = `${policy.special}|${declaredForm(policy, options.purpose.key) === 'masked' ? policy.mask!.strategy : ''}`;
      if (!classes.has(classKey)) {
        classes.set(classKey, classes.size + 1);
        this.classPolicies[classes.size] = policy;
      }
      this.policyClasses[index] = classes.get(classKey)!;
      return undefined;
    });
    this.classCount = classes.size + 1;
  }

  get mode(): GovernanceMode {
    return this.options.mode ?? 'release';
  }

  get rejectModeSetBy(): string | undefined {
    return this.options.rejectModeSetBy;
  }

  get purpose(): RequestPurpose {
    return this.options.purpose;
  }

  /** Root fields refused to this actor (missing role, purpose not served), once per coordinate. */
  get refusals(): readonly OperationRefusal[] {
    return this.refusedOperations;
  }

  /**
   * Every personal-field decision made so far (but those of subjects dropped by
   * `dropRecordsOfSubjectsAbsentFrom`), once per (subject, coordinate), each turned by `itemOf`
   * into what the caller needs, grouped by subject in the order the subjects were first decided: no
   * intermediate object per decision (a list response has hundreds).
   */
  recordsBySubject<T>(itemOf: (field: GuardedField, decision: Decision) => T): Array<{ subjectId: string | null; items: T[] }> {
    const { fields } = this.options.compiled;
    const byOrdinal = new Array<{ subjectId: string | null; items: T[] } | undefined>(this.entries.length);
    const groups: Array<{ subjectId: string | null; items: T[] }> = [];
    for (let slot = 0; slot < this.loggedOrdinals.length; slot++) {
      const ordinal = this.loggedOrdinals[slot];
      const item = this.loggedItems[slot];
      const entry = this.entries[ordinal];
      let group = byOrdinal[ordinal];
      if (!group) groups.push((byOrdinal[ordinal] = group = { subjectId: entry.subjectId, items: [] }));
      if (item >= 0) group.items.push(itemOf(fields[item], this.decisionFor(fields[item], entry)));
      else for (const { field } of this.selectionList[~item].selected) group.items.push(itemOf(field, this.decisionFor(field, entry)));
    }
    return groups;
  }

  /**
   * Drops the records of every subject the response's `data` no longer holds: a non-null field error
   * nulls its nearest nullable ancestor, and the values of that object's other fields never leave, though
   * they were decided (the leaf guard decides the leaves of every record of a list as the list resolves).
   * An object was discarded when `data` has no object at its path (null or missing on the way). Subject
   * granular: a subject still held at any path keeps all its records, including those of a discarded
   * object — the log may over-report, never under-report. Root fields (refusals, recorded operations)
   * are not subject records and stay. Call once the response is final; only a response with errors can
   * have discarded anything.
   *
   * Returns the subjects dropped. The response must not name them either: a withheld field's error tells
   * why the subject's value was withheld (their consent, objection or restriction), which is itself a
   * disclosure with no record now. The withheld list of `extensions` reporting drops them here; the caller
   * removes their errors (`subjectNamedBy`).
   */
  dropRecordsOfSubjectsAbsentFrom(data: unknown): ReadonlySet<string | null> {
    const held = new Uint8Array(this.entries.length);
    for (let occurrence = 0; occurrence < this.occurrenceOrdinals.length; occurrence++) {
      const ordinal = this.occurrenceOrdinals[occurrence];
      if (held[ordinal] === 0 && isObject(valueAtKey(valueAt(data, this.occurrenceParents[occurrence]), this.occurrenceKeys[occurrence]))) held[ordinal] = 1;
    }
    const kept = this.loggedOrdinals.map((ordinal) => held[ordinal] === 1);
    this.loggedItems = this.loggedItems.filter((_, slot) => kept[slot]);
    this.loggedOrdinals = this.loggedOrdinals.filter((_, slot) => kept[slot]);
    const dropped = new Set(this.entries.filter((entry) => held[entry.ordinal] === 0).map((entry) => entry.subjectId));
    this.withheldPaths = this.withheldPaths.filter(({ subjectId }) => !dropped.has(subjectId));
    return dropped;
  }

  /** Withheld leaf fields, when they are reported in extensions (empty in `errors` mode). */
  get withheld(): WithheldEntry[] {
    return this.withheldPaths.map(({ path, field, subjectId, code }) => ({ path: pathOf(path), coordinate: field.coordinate, code, subjectId }));
  }

  /** Every personal-field decision so far, per coordinate: the outcomes with their subjects (explain mode). */
  get explanation(): Array<{ coordinate: string; category: string; outcomes: ExplainedOutcome[] }> {
    const byCoordinate = new Map<string, { coordinate: string; category: string; outcomes: Map<string, ExplainedOutcome & { subjectIds: Array<string | null> }> }>();
    for (const { subjectId, items } of this.recordsBySubject((field, decision) => ({ field, decision }))) {
      for (const { field, decision } of items) {
        let explained = byCoordinate.get(field.coordinate);
        if (!explained) byCoordinate.set(field.coordinate, (explained = { coordinate: field.coordinate, category: field.category, outcomes: new Map() }));
        const outcomeKey = `${decision.effect}|${decision.reason}|${decision.legalBasis}|${decision.mask ?? ''}`;
        let outcome = explained.outcomes.get(outcomeKey);
        if (!outcome) {
          outcome = { decision: recordedDecision(decision), reason: decision.reason, legalBasis: decision.legalBasis, ...(decision.mask ? { mask: decision.mask } : {}), subjects: 0, subjectIds: [] };
          explained.outcomes.set(outcomeKey, outcome);
        }
        (outcome as { subjects: number }).subjects++;
        if (outcome.subjectIds.length < EXPLAIN_LISTED_SUBJECTS) outcome.subjectIds.push(subjectId);
      }
    }
    return [...byCoordinate.values()].map(({ coordinate, category, outcomes }) => ({
      coordinate,
      category,
      outcomes: [...outcomes.values()].map(({ subjectIds, ...outcome }) => (outcome.subjects <= EXPLAIN_LISTED_SUBJECTS ? { ...outcome, subjectIds } : outcome)),
    }));
  }

  /**
   * Notes the subjects of `result`, which a root field kept because their choices allow the purpose
   * (`filtersOnChoices`): the caller learned that much of each one's privacy preferences.
   */
  noteFilteredOnChoices(field: GuardedField, result: unknown, subjectKey: string, isList: boolean): void {
    for (const subjectId of subjectIdsOf(result, subjectKey, isList)) this.filteredOnChoices.set(`${field.index}|${subjectId}`, { field, subjectId });
  }

  /**
   * Notes the subjects whose records a recorded root field (`recordAs`, naming no subject in its arguments)
   * returned: its call is recorded once per subject it told about (the inbox names who wrote in), whatever of
   * their records' fields were selected.
   */
  noteSubjectsReturned(field: GuardedField, result: unknown, subjectKey: string, isList: boolean): void {
    let subjects = this.returnedSubjects.get(field);
    if (!subjects) this.returnedSubjects.set(field, (subjects = new Set()));
    for (const subjectId of subjectIdsOf(result, subjectKey, isList)) subjects.add(subjectId);
  }

  /** The subjects root fields returned because of their choices, once per (field, subject). */
  get subjectsFilteredOnChoices(): ReadonlyArray<{ readonly field: GuardedField; readonly subjectId: string }> {
    return [...this.filteredOnChoices.values()];
  }

  /**
   * Runs the resolver of a root field that filters its list on the subjects' choices (`filtersOnChoices`,
   * asked for): the subjects its filter leaves out of the page are noted for that field, whatever else
   * resolves meanwhile.
   */
  filteringOnChoices<T>(field: GuardedField, resolve: () => T): T {
    return resolvingFilter.run(field, resolve);
  }

  /**
   * The subjects the running filter looked at and left out (their choices do not allow the purpose): the
   * page tells that much of each, as it tells of those it keeps. Outside a filtering field's resolver this
   * throws: the list must fail rather than tell unrecorded.
   */
  noteLeftOutOnChoices(subjectIds: readonly string[]): void {
    const field = resolvingFilter.getStore();
    if (!field) throw new Error('a list filtered on the subjects\' choices outside a field that declares filtersOnChoices');
    for (const subjectId of subjectIds) this.leftOutOnChoices.set(`${field.index}|${subjectId}`, { field, subjectId });
  }

  /** The subjects root fields looked at and left out because of their choices, once per (field, subject). */
  get subjectsLeftOutOnChoices(): ReadonlyArray<{ readonly field: GuardedField; readonly subjectId: string }> {
    return [...this.leftOutOnChoices.values()];
  }

  /**
   * Authorised calls of root fields that are themselves recorded (`recordAs`): for a field that names the
   * data subject it acts on (`subjectArgument`), once per call, with that subject; for one that returned
   * data subjects' records, once per subject returned; otherwise once per coordinate, naming no subject.
   */
  get recordedOperations(): readonly RecordedOperationCall[] {
    return this.recordedOperationCalls.flatMap((call) => {
      const returned = call.field.subjectArgument ? undefined : this.returnedSubjects.get(call.field);
      return returned?.size ? [...returned].map((subjectId) => ({ ...call, subjectId })) : [call];
    });
  }

  /**
   * Records an operation made itself, as it ran (a report: its run and what it told of a subject), kept for
   * the response's records: recorded with them, withheld with them when the response is rejected, and the
   * response withdrawn when they cannot be written.
   */
  noteRecords(records: readonly AccessRecordInput[]): void {
    this.resolverRecords.push(...records);
  }

  /** The records `noteRecords` kept. */
  get operationRecords(): readonly AccessRecordInput[] {
    return this.resolverRecords;
  }

  /**
   * Loads the states of the subjects of freshly resolved records (a root field or a relation returned
   * them), so the synchronous leaf guard finds them. A failed load leaves the subjects "unknown", which
   * `decide()` turns into GOVERNANCE_UNAVAILABLE.
   */
  async preload(result: unknown, subjectKey: string, isList: boolean): Promise<PreloadedSubjects> {
    // Each new subject gets its entry now (unknown until loaded), so a subject met twice is loaded once; a
    // subject another preload (a sibling root field, say) is still loading is waited for, not decided unknown.
    const pending: SubjectEntry[] = [];
    const loadsUnderway = new Set<Promise<void>>();
    const entryOfRecord = (record: unknown): SubjectEntry | undefined => {
      if (record === null || typeof record !== 'object' || record instanceof Error) return undefined;
      const rawSubjectId = (record as Record<string, unknown>)[subjectKey];
      if (rawSubjectId === null || rawSubjectId === undefined) return undefined;
      const subjectId = String(rawSubjectId);
      const known = this.subjects.get(subjectId);
      if (known === undefined) {
        const added = this.addEntry(subjectId, null);
        pending.push(added);
        return added;
      }
      if (known.loading !== undefined) loadsUnderway.add(known.loading);
      return known;
    };
    const records = isList && Array.isArray(result) ? result : [result];
    const entries = new Array<SubjectEntry | undefined>(records.length);
    for (let index = 0; index < records.length; index++) entries[index] = entryOfRecord(records[index]);
    if (pending.length > 0) {
      // Room for every field of every subject so far, in one step rather than doubling as the leaves are decided.
      const words = this.entries.length * this.recordedStride;
      if (words > this.recorded.length) this.growRecorded(words - 1);
      const load = this.loadStates(pending);
      for (const entry of pending) entry.loading = load;
      loadsUnderway.add(load);
    }
    for (const load of loadsUnderway) await load;
    return { result, entries };
  }

  /** Reads the states of `pending` in one batch; a failed load leaves them unknown. Never rejects. */
  private async loadStates(pending: readonly SubjectEntry[]): Promise<void> {
    // Preloads only meet records with a subject id.
    const subjectIds = pending.map((entry) => entry.subjectId!);
    let states: ArrayLike<SubjectState | Error>;
    try {
      states = await this.options.loadSubjectStates(subjectIds);
    } catch (error) {
      states = subjectIds.map(() => error as Error);
    }
    for (let position = 0; position < pending.length; position++) {
      const state = states[position];
      pending[position].state = state instanceof Error || !state ? null : state;
      pending[position].loading = undefined;
    }
  }

  /**
   * Applies `decide()` to one field of the record `source` (a relation, enforced by graphql-shield) and
   * records the decision. Returns true to resolve the relation, or the coded error it resolves to instead.
   * Masking applies to leaf values only (the schema build refuses a mask on a relation); anything but
   * `allow` is a denial here.
   */
  enforce(field: GuardedField, source: unknown, info: GraphQLResolveInfo): true | GraphQLError {
    if (isReleasedWithoutSubject(field.policy)) return true;
    const decision = this.judge(field, source, info.path.prev);
    // A dry run resolves no relation (enforcement returns null for it) and tells its decision in extensions only.
    if (decision.effect === 'allow' || this.explainOnly) return true;
    return withheldError(field, decision, this.lastEntry!.subjectId, this.options.purpose.key, { locations: locationsOf(info.fieldNodes), path: info.path });
  }

  /**
   * The leaf guard of `leaves`' type, applied to what a field returning its records resolved to (a record,
   * a list, nested lists, a promise of any): decides and records each record's selected leaves, and returns
   * the record itself when every one is released, or else a copy in which each other leaf holds what it
   * resolves to — its masked form, null (explain mode; a withheld leaf reported in `extensions`, listed
   * once in the response's extensions) or the coded error, which the executor puts in its place.
   */
  guardLeaves(result: unknown, leaves: GuardedLeaves, info: GraphQLResolveInfo, preloaded?: PreloadedSubjects): unknown {
    const selection = this.selectionOf(leaves, info);
    if (selection.selected.length === 0) return result;
    return this.guardValue(result, selection.listDepth, selection, info.path.prev, info.path.key, preloaded !== undefined && preloaded.result === result ? preloaded.entries : undefined);
  }

  /**
   * Guards what a field resolved to, by the field's type as the executors read it: at a list depth, any
   * iterable is walked (the executors take any); at a record's place, anything with properties is a record
   * — an array too, whose named properties the executors would read.
   */
  private guardValue(value: unknown, listDepth: number, selection: Selection, parent: ResponsePath | undefined, key: string | number, preloaded?: PreloadedSubjects['entries']): unknown {
    if (value === null || value === undefined || value instanceof Error) return value;
    if (typeof value !== 'object' && typeof value !== 'function') return value; // no properties to read: the executor reports it
    if (typeof (value as PromiseLike<unknown>).then === 'function') return Promise.resolve(value).then((settled) => this.guardValue(settled, listDepth, selection, parent, key));
    const items = listDepth === 0 ? undefined : asArray(value);
    // Not a list where one is expected: the executor refuses it; guarded as a record all the same.
    if (items === undefined) return this.guardRecord(value as Record<string, unknown>, selection, parent, key, listDepth === 0 ? preloaded?.[0] : undefined);
    const path: ResponsePath = { prev: parent, key, typename: undefined };
    // The preload's entries are of this list's items when they are records (not of nested lists' items).
    const itemEntries = listDepth === 1 && items === value ? preloaded : undefined;
    let guarded: unknown[] | undefined = items === value ? undefined : items;
    for (let index = 0; index < items.length; index++) {
      const item: unknown = items[index];
      const entry = itemEntries?.[index];
      // A preloaded entry means a record (an object, no Error); one with a `then` is awaited, as the executors do.
      const itemGuarded =
        entry !== undefined && typeof (item as PromiseLike<unknown>).then !== 'function'
          ? this.guardRecord(item as Record<string, unknown>, selection, path, index, entry)
          : this.guardValue(item, listDepth - 1, selection, path, index);
      if (itemGuarded !== item) (guarded ??= items.slice())[index] = itemGuarded;
    }
    return guarded ?? items;
  }

  /**
   * Guards one record, found at `key` under the path `parent` (undefined `key`: the response's data); `preloaded`
   * is its subject's entry when the preload found it.
   */
  private guardRecord(source: Record<string, unknown>, selection: Selection, parent: ResponsePath | undefined, key: string | number | undefined, preloaded?: SubjectEntry): Record<string, unknown> {
    const entry = preloaded ?? this.entryOf(source, selection.subjectKey);
    this.noteOccurrence(entry, parent, key);
    // Every leaf released (the common case): the record as it is, its leaves logged in one slot.
    if (!this.explainOnly && selection.releasedWithoutSubjects && this.releasesEveryClass(entry, selection.subjectClasses)) {
      this.recordSelection(entry, selection);
      return source;
    }
    const path: ResponsePath = { prev: parent, key: key!, typename: undefined };
    let view: Record<string, unknown> | undefined;
    for (const { field, occurrences } of selection.selected) {
      const decision = this.decideAndRecord(field, entry);
      if (decision.effect === 'allow' && !this.explainOnly) continue;
      // A copy keeping the record's prototype and every other property: relations below get it as their
      // parent (so one must not read a personal leaf off it: it holds what the leaf resolves to).
      view ??= Object.assign(Object.create(Object.getPrototypeOf(source) as object | null) as Record<string, unknown>, source);
      const resolvesTo = this.explainOnly ? null : decision.effect === 'mask' ? this.maskedLeaf(decision.mask!, source[field.fieldName]) : this.withheldLeaf(field, decision, entry, path, occurrences);
      // The copy's own properties are plain data (assigned); any other is defined, not assigned: an accessor on
      // the prototype (a computed field) would take or refuse an assignment.
      if (Object.hasOwn(source, field.fieldName)) view[field.fieldName] = resolvesTo;
      else Object.defineProperty(view, field.fieldName, { value: resolvesTo, writable: true, enumerable: true, configurable: true });
    }
    if (view === undefined) return source;
    // The relations of the record read it through the copy: its subject is the one just found.
    this.lastSource = view;
    this.lastSubjectKey = selection.subjectKey;
    this.lastEntry = entry;
    return view;
  }

  /** Whether the subject's decision of every one of `policyClasses` is a release in full. */
  private releasesEveryClass(entry: SubjectEntry, policyClasses: readonly number[]): boolean {
    for (const policyClass of policyClasses) if (this.classDecision(entry, policyClass).effect !== 'allow') return false;
    return true;
  }

  /**
   * Logs every leaf of `selection` for the subject of `entry`: in one slot when none of them was logged for
   * the subject yet, nothing when all were, else leaf by leaf (a relation or another place logged some).
   */
  private recordSelection(entry: SubjectEntry, selection: Selection): void {
    const base = entry.ordinal * this.recordedStride;
    if (base + this.recordedStride > this.recorded.length) this.growRecorded(base + this.recordedStride - 1);
    const bits = selection.recordedBits;
    let loggedBefore = 0;
    let unlogged = 0;
    for (let word = 0; word < bits.length; word++) {
      loggedBefore |= this.recorded[base + word] & bits[word];
      unlogged |= bits[word] & ~this.recorded[base + word];
    }
    if (unlogged === 0) return;
    if (loggedBefore !== 0) {
      for (const { field } of selection.selected) this.decideAndRecord(field, entry);
      return;
    }
    for (let word = 0; word < bits.length; word++) this.recorded[base + word] |= bits[word];
    this.loggedOrdinals.push(entry.ordinal);
    this.loggedItems.push(~selection.id);
  }

  /**
   * A masked leaf's value. A function or promise in the record's place (what an executor would call or
   * await) has no value to mask here: it resolves to null rather than to a mask of its source text.
   */
  private maskedLeaf(strategy: MaskStrategy, value: unknown): unknown {
    const deferred = typeof value === 'function' || (value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function');
    return deferred ? null : this.options.mask(strategy, value);
  }

  /** What a withheld leaf resolves to: its coded error, or null with its paths listed for `extensions`. */
  private withheldLeaf(field: GuardedField, decision: Decision, { subjectId }: SubjectEntry, path: ResponsePath, occurrences: readonly LeafOccurrence[]): GraphQLError | null {
    if (this.options.withheldReporting === 'extensions') {
      for (const { responseKey } of occurrences) this.withheldPaths.push({ path: { prev: path, key: responseKey, typename: undefined }, field, subjectId, code: decision.reason });
      return null;
    }
    // Selected once: the error is built at its place. Aliases of one field share the record's property, so
    // the executor places the error at each: one more error object each, with a stack (graphql-js's own).
    const [only] = occurrences;
    const place = occurrences.length === 1 ? { locations: (only.locations ??= locationsOf(only.nodes)), path: { prev: path, key: only.responseKey, typename: undefined } } : undefined;
    return withheldError(field, decision, subjectId, this.options.purpose.key, place);
  }

  /**
   * The personal leaves of `leaves`' type that the selection at `info`'s place reads, once per request and
   * place (the response path without list indexes). They are the leaves graphql-js collects there — the
   * reference executor's field collection, walked from the operation down by the path, so neither depends
   * on the executor's own resolve info: graphql-jit names its resolve infos by joined response keys, and
   * two places whose keys join alike would share one (JitExecutor runs such documents on graphql-js). Leaves
   * only the executor's own nodes select are decided and recorded as well: nothing an executor reads goes
   * undecided or unrecorded (the log may over-report, never under-report). A place reached through an
   * abstract type is not cached: its selection may differ by the runtime type on the way (the schema build
   * refuses such shapes; this keeps a future one fail-closed).
   */
  private selectionOf(leaves: GuardedLeaves, info: GraphQLResolveInfo): Selection {
    const place = placeKey(info.path);
    let byLeaves = this.selections.get(place);
    if (!byLeaves) this.selections.set(place, (byLeaves = new Map()));
    let selection = byLeaves.get(leaves);
    if (!selection) {
      const type = info.schema.getType(leaves.typeName) as GraphQLObjectType;
      const byName = new Map<string, { field: GuardedField; occurrences: LeafOccurrence[] }>();
      const select = (fieldNodes: readonly FieldNode[], placed: boolean) => {
        for (const [responseKey, nodes] of collectSubfields(info.schema, info.fragments, info.variableValues, type, fieldNodes)) {
          const field = leaves.byName.get(nodes[0].name.value);
          if (!field) continue;
          let selected = byName.get(field.fieldName);
          if (!selected) byName.set(field.fieldName, (selected = { field, occurrences: [] }));
          if (placed) selected.occurrences.push({ responseKey, nodes });
        }
      };
      const collected = collectedField(info);
      select(collected.nodes, true);
      if (!sameNodes(collected.nodes, info.fieldNodes)) select(info.fieldNodes, false);
      selection = this.newSelection([...byName.values()], listDepthOf(collected.type));
      if (!collected.throughAbstractType) byLeaves.set(leaves, selection);
    }
    return selection;
  }

  /** A selection of `selected` leaves, with what the guard of a record reads of it (by this request's purpose). */
  private newSelection(selected: readonly SelectedLeaf[], listDepth: number): Selection {
    const recordedBits = new Uint32Array(this.recordedStride);
    const subjectClasses = new Set<number>();
    let releasedWithoutSubjects = true;
    for (const { field } of selected) {
      recordedBits[field.index >>> 5] |= 1 << (field.index & 31);
      const policyClass = this.policyClasses[field.policyIndex];
      if (policyClass !== SUBJECT_INDEPENDENT) subjectClasses.add(policyClass);
      else if (this.subjectIndependent[field.policyIndex]!.effect !== 'allow') releasedWithoutSubjects = false;
    }
    const selection: Selection = { id: this.selectionList.length, selected, listDepth, subjectKey: selected[0]?.field.subjectKey ?? '', recordedBits, subjectClasses: [...subjectClasses], releasedWithoutSubjects };
    this.selectionList.push(selection);
    return selection;
  }

  /**
   * Decides and records one personal field of the record `source` (a relation's parent), read at
   * `objectPath`; the subject's entry is `lastEntry` afterwards.
   */
  private judge(field: GuardedField, source: unknown, objectPath: ResponsePath | undefined): Decision {
    const entry = this.entryOf(source, field.subjectKey!);
    this.noteOccurrence(entry, objectPath?.prev, objectPath?.key);
    return this.decideAndRecord(field, entry);
  }

  /** The entry of the subject of the record `source`. Not preloaded means unknown, and unknown means deny (rule 2a). */
  private entryOf(source: unknown, subjectKey: string): SubjectEntry {
    // A record's fields are decided one after another (a relation's after its leaves): its subject is read once.
    if (source === this.lastSource && subjectKey === this.lastSubjectKey) return this.lastEntry!;
    const rawSubjectId = (source as Record<string, unknown>)[subjectKey];
    // A record without its subject's id is nobody's to decide for: one entry, never loaded, recorded under no subject.
    const entry =
      rawSubjectId === null || rawSubjectId === undefined
        ? (this.unidentified ??= this.addEntry(null, null))
        : (this.subjects.get(String(rawSubjectId)) ?? this.addEntry(String(rawSubjectId), null));
    this.lastSource = source;
    this.lastSubjectKey = subjectKey;
    this.lastEntry = entry;
    return entry;
  }

  /** Notes where a subject's fields were read: by path, not by record, as a loader may hand one record to two paths and null propagation drop one. */
  private noteOccurrence(entry: SubjectEntry, parent: ResponsePath | undefined, key: string | number | undefined): void {
    if (entry.ordinal === this.lastOccurrenceOrdinal && key === this.lastOccurrenceKey && samePath(parent, this.lastOccurrenceParent)) return;
    this.occurrenceParents.push(parent);
    this.occurrenceKeys.push(key);
    this.occurrenceOrdinals.push(entry.ordinal);
    this.lastOccurrenceParent = parent;
    this.lastOccurrenceKey = key;
    this.lastOccurrenceOrdinal = entry.ordinal;
  }

  /** The decision of `field` for the subject of `entry`, logged once per request. Allocates nothing. */
  private decideAndRecord(field: GuardedField, entry: SubjectEntry): Decision {
    const decision = this.decisionFor(field, entry);
    const word = entry.ordinal * this.recordedStride + (field.index >>> 5);
    const bit = 1 << (field.index & 31);
    if (word >= this.recorded.length) this.growRecorded(word);
    if ((this.recorded[word] & bit) === 0) {
      this.recorded[word] |= bit;
      this.loggedOrdinals.push(entry.ordinal);
      this.loggedItems.push(field.index);
    }
    return decision;
  }

  /**
   * Root fields: the actor needs the declared roles, and the request purpose must be one the operation serves.
   * A dry run runs only root fields that read data subjects (`readsSubjects`), whose fields it decides.
   */
  authorizeOperation(field: GuardedField, args: Readonly<Record<string, unknown>>, info: GraphQLResolveInfo, readsSubjects: boolean): true | GraphQLError {
    const missing = field.roles.filter((role) => !this.options.actorRoles.includes(role));
    const problem = missing.length
      ? `${field.coordinate} requires the role ${missing.join(', ')}`
      : field.policy.purposes.length && !anyCovers(field.policy.purposes, this.options.purpose.key)
        ? `${field.coordinate} serves only the purposes ${field.policy.purposes.join(', ')}`
        : undefined;
    // A dry run releases nothing, but an operation of its own (a report, a read of the log) would run in full
    // and hand over what it returns: it is not dry-run, and says so.
    const refusal = problem ?? (this.explainOnly && !readsSubjects ? `${field.coordinate} is an operation of its own, not a read of data subjects that can be dry-run: send it without X-Governance-Explain` : undefined);
    if (refusal === undefined) {
      if (field.subjectArgument) {
        this.recordedOperationCalls.push({ field, subjectId: argumentAt(args, field.subjectArgument), responseKey: info.path.key as string });
      } else if (field.recordAs && !this.recordedOperationCalls.some((call) => call.field === field)) {
        this.recordedOperationCalls.push({ field, subjectId: null, responseKey: info.path.key as string });
      }
      return true;
    }
    const code = problem === undefined ? 'EXPLAIN_QUERIES_ONLY' : 'FORBIDDEN';
    if (!this.refusedOperations.some((refused) => refused.field === field)) this.refusedOperations.push({ field, code });
    return codedError(refusal, { locations: locationsOf(info.fieldNodes), path: info.path }, { code, coordinate: field.coordinate, purpose: this.options.purpose.key });
  }

  private decisionFor(field: GuardedField, entry: SubjectEntry): Decision {
    const policyClass = this.policyClasses[field.policyIndex];
    return policyClass === SUBJECT_INDEPENDENT ? this.subjectIndependent[field.policyIndex]! : this.classDecision(entry, policyClass);
  }

  /** The subject's decision for a policy class: `decide()` for the first policy of the class (each decides alike). */
  private classDecision(entry: SubjectEntry, policyClass: number): Decision {
    return (this.decisions[entry.ordinal * this.classCount + policyClass] ??= decide({ field: this.classPolicies[policyClass], purpose: this.options.purpose, subjectState: entry.state, now: this.options.now }));
  }

  private addEntry(subjectId: string | null, state: SubjectState | null): SubjectEntry {
    const entry: SubjectEntry = { subjectId, ordinal: this.entries.length, state, loading: undefined };
    this.entries.push(entry);
    for (let policyClass = 0; policyClass < this.classCount; policyClass++) this.decisions.push(undefined);
    if (subjectId !== null) this.subjects.set(subjectId, entry);
    return entry;
  }

  private growRecorded(word: number): void {
    let size = Math.max(256, this.recorded.length * 2);
    while (size <= word) size *= 2;
    const grown = new Uint32Array(size);
    grown.set(this.recorded);
    this.recorded = grown;
  }
}

/** The subject a withheld field's error (as `withheldError` builds it, formatted or not) names, if any. */
export function subjectNamedBy(error: { readonly extensions?: Readonly<Record<string, unknown>> }): string | null | undefined {
  const governance = error.extensions?.governance as { subjectId?: unknown } | undefined;
  return typeof governance?.subjectId === 'string' || governance?.subjectId === null ? governance.subjectId : undefined;
}

/** The error a withheld field resolves to. */
function withheldError(field: GuardedField, decision: Decision, subjectId: string | null, purpose: string, place: ErrorPlace | undefined): GraphQLError {
  const reason = decision.reason as DenialReason;
  return codedError(`${field.coordinate} withheld: ${DENIAL_EXPLANATIONS[reason] ?? reason}`, place, {
    code: reason,
    governance: { coordinate: field.coordinate, category: field.category, purpose, subjectId },
  });
}

/** Where in the response an error stands: its locations in the document and its path. */
interface ErrorPlace {
  readonly locations: readonly SourceLocation[];
  readonly path: ResponsePath;
}

/** The locations of `nodes` in their document, as GraphQLError computes them (none for nodes parsed without). */
function locationsOf(nodes: readonly FieldNode[]): SourceLocation[] {
  return nodes.flatMap((node) => (node.loc ? [getLocation(node.loc.source, node.loc.start)] : []));
}

/**
 * What a coded error shares with every other: GraphQLError's prototype, and its own properties that are
 * not enumerable, as GraphQLError's constructor leaves them for an error raised without a cause.
 */
const CODED_ERROR_PROTOTYPE: object = Object.create(GraphQLError.prototype, {
  name: { value: 'GraphQLError', writable: true, configurable: true },
  nodes: { value: undefined, writable: true, configurable: true },
  source: { value: undefined, writable: true, configurable: true },
  positions: { value: undefined, writable: true, configurable: true },
  originalError: { value: undefined, writable: true, configurable: true },
});

/**
 * A coded error, located when its place is known (the executor then uses it as is), else located by the
 * executor. Not built by GraphQLError's constructor, which takes ≈ 4.7 µs an error — it redefines five of the
 * object's own properties, turning it into a dictionary, and captures a stack — where the rest of a withheld
 * leaf takes well under one: a list withholding one field of 100 subjects spent 0.5 ms in it. The object is a
 * GraphQLError to every reader (`instanceof`, `toJSON`, both executors, Apollo) with the properties its
 * constructor gives (`nodes` aside: the locations are computed), and carries no stack: a refusal has no
 * trace worth keeping, and a request may withhold thousands of fields.
 */
function codedError(message: string, place: ErrorPlace | undefined, extensions: Record<string, unknown>): GraphQLError {
  const error = Object.create(CODED_ERROR_PROTOTYPE) as { -readonly [K in keyof GraphQLError]: GraphQLError[K] };
  error.message = message;
  error.path = place ? pathOf(place.path) : undefined;
  error.locations = place && place.locations.length > 0 ? place.locations : undefined;
  error.extensions = extensions;
  return error as GraphQLError;
}

/** The response keys of `path`, list indexes left out: one string per place of an operation. */
function placeKey(path: ResponsePath): string {
  return responseKeysOf(path).join('\u0000');
}

/** The response keys of `path`, from the operation down, list indexes left out. */
function responseKeysOf(path: ResponsePath): string[] {
  const keys: string[] = [];
  for (let at: ResponsePath | undefined = path; at; at = at.prev) if (typeof at.key === 'string') keys.push(at.key);
  return keys.reverse();
}

/** A list as the executors take one (any iterable), as an array (the value itself when it is one: not to be changed); undefined for anything else. */
export function asArray(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  return typeof value === 'object' && value !== null && Symbol.iterator in value ? Array.from(value as Iterable<unknown>) : undefined;
}

/**
 * The nodes graphql-js collects for the field at `info.path`, and its type, found from the operation down
 * (graphql-js's field collection at each level; list indexes skipped). On graphql-js they are the
 * executor's own; an abstract type on the way leaves the runtime type unknown, and then the executor's
 * are taken.
 */
function collectedField(info: GraphQLResolveInfo): { readonly nodes: readonly FieldNode[]; readonly type: GraphQLOutputType; readonly throughAbstractType?: true } {
  const keys = responseKeysOf(info.path);
  let type = info.schema.getRootType(info.operation.operation);
  let fields = type ? collectFields(info.schema, info.fragments, info.variableValues, type, info.operation.selectionSet) : undefined;
  for (let depth = 0; type && fields; depth++) {
    const nodes = fields.get(keys[depth]);
    const definition = nodes && type.getFields()[nodes[0].name.value];
    if (!nodes || !definition) return { nodes: [], type: info.returnType };
    if (depth === keys.length - 1) return { nodes, type: definition.type };
    const named = getNamedType(definition.type);
    if (!isObjectType(named)) break;
    type = named;
    fields = collectSubfields(info.schema, info.fragments, info.variableValues, type, nodes);
  }
  return { nodes: info.fieldNodes, type: info.returnType, throughAbstractType: true };
}

/** How many lists `type` wraps its named type in (non-null wrappers aside). */
export function listDepthOf(type: GraphQLOutputType): number {
  let depth = 0;
  for (let at: GraphQLOutputType = type; !isNamedType(at); at = at.ofType) if (isListType(at)) depth++;
  return depth;
}

function sameNodes(a: readonly FieldNode[], b: readonly FieldNode[]): boolean {
  return a.length === b.length && a.every((node, index) => node === b[index]);
}

function pathOf(path: ResponsePath): Array<string | number> {
  const segments: Array<string | number> = [];
  for (let current: ResponsePath | undefined = path; current; current = current.prev) segments.push(current.key);
  return segments.reverse();
}

/**
 * Whether two paths name the same place. The leaf guard notes one path object per record, so identity
 * answers at once for its leaves; a relation's rule notes the executor's path (graphql-jit builds a new one
 * per field call), so keys are compared.
 */
function samePath(a: ResponsePath | undefined, b: ResponsePath | undefined): boolean {
  for (; a !== b; a = a.prev, b = b.prev) {
    if (a === undefined || b === undefined || a.key !== b.key) return false;
  }
  return true;
}

/** The value at `key` of `parent` (undefined `key`: `parent` itself); undefined past a null. */
function valueAtKey(parent: unknown, key: string | number | undefined): unknown {
  if (key === undefined) return parent;
  return isObject(parent) ? (parent as Record<string | number, unknown>)[key] : undefined;
}

/** The value at `path` (response keys and list indexes) in a response's `data`; undefined past a null. */
function valueAt(data: unknown, path: ResponsePath | undefined): unknown {
  return path === undefined ? data : valueAtKey(valueAt(data, path.prev), path.key);
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}
