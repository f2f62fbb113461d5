import { GraphQLError, type GraphQLResolveInfo } from 'graphql';
import { anyCovers } from '../taxonomy/keys';
import { DENIAL_EXPLANATIONS, type DenialReason } from './codes';
import { type Decision, decide, isReleasedWithoutSubject, type RequestPurpose, type SubjectState } from './decide';
import type { GuardedField } from './guarded-field';

/** One decision on one personal field of one subject, as handed to the access log. */
export interface FieldDecision {
  readonly subjectId: string;
  readonly field: GuardedField;
  readonly decision: Decision;
}

/** A root field refused to the actor. */
export interface OperationRefusal {
  readonly field: GuardedField;
  readonly code: 'FORBIDDEN';
}

export interface RequestGovernanceOptions {
  readonly purpose: RequestPurpose;
  readonly actorRoles: readonly string[];
  readonly now: Date;
  /** Batch-loads subject states; an Error in place of a state (or a rejected batch) means "unknown". */
  readonly loadSubjectStates: (subjectIds: readonly string[]) => Promise<ArrayLike<SubjectState | Error>>;
  /** Number of guarded fields in the schema (sizes the per-subject bookkeeping). */
  readonly fieldCount: number;
}

interface SubjectEntry {
  readonly state: SubjectState | null;
  /** Decisions by policy index: `decide()` runs once per (subject, distinct policy) per request. */
  readonly decisions: Array<Decision | undefined>;
  /** Fields already recorded for this subject: aliases and repeats collapse to one record. */
  readonly recorded: Uint8Array;
}

/**
 * The governance state of one request: the subjects it touched, the decisions made for them and the
 * decisions to log. Created per request and dropped with it, so nothing leaks between requests.
 * Both enforcement points call `enforce`, which applies `decide()`; nothing here decides on its own.
 */
export class RequestGovernance {
  private readonly subjects = new Map<string, SubjectEntry>();
  private readonly log: FieldDecision[] = [];
  private readonly refusedOperations: OperationRefusal[] = [];

  constructor(private readonly options: RequestGovernanceOptions) {}

  get purpose(): RequestPurpose {
    return this.options.purpose;
  }

  /** Every personal-field decision made so far, once per (subject, coordinate). */
  get decisions(): readonly FieldDecision[] {
    return this.log;
  }

  /** Root fields refused to this actor (missing role, purpose not served), once per coordinate. */
  get refusals(): readonly OperationRefusal[] {
    return this.refusedOperations;
  }

  /**
   * Loads the states of the subjects of freshly resolved records (a root field or a relation returned
   * them), so the synchronous leaf guard finds them. A failed load leaves the subjects "unknown", which
   * `decide()` turns into GOVERNANCE_UNAVAILABLE.
   */
  async preload(result: unknown, subjectKey: string): Promise<void> {
    const pending = new Set<string>();
    const collect = (record: unknown) => {
      if (record === null || typeof record !== 'object' || record instanceof Error) return;
      const subjectId = (record as Record<string, unknown>)[subjectKey];
      if (subjectId !== null && subjectId !== undefined && !this.subjects.has(String(subjectId))) pending.add(String(subjectId));
    };
    if (Array.isArray(result)) result.forEach(collect);
    else collect(result);
    if (pending.size === 0) return;
    const subjectIds = [...pending];
    let states: ArrayLike<SubjectState | Error>;
    try {
      states = await this.options.loadSubjectStates(subjectIds);
    } catch (error) {
      states = subjectIds.map(() => error as Error);
    }
    subjectIds.forEach((subjectId, position) => {
      const state = states[position];
      if (!this.subjects.has(subjectId)) this.subjects.set(subjectId, this.newEntry(state instanceof Error || !state ? null : state));
    });
  }

  /**
   * Applies `decide()` to one field of the record `source` and records the decision. Returns true to
   * release, or the coded error the field resolves to instead of its value.
   */
  enforce(field: GuardedField, source: unknown, info: GraphQLResolveInfo): true | GraphQLError {
    if (isReleasedWithoutSubject(field.policy)) return true;
    const subjectId = String((source as Record<string, unknown>)[field.subjectKey!]);
    let entry = this.subjects.get(subjectId);
    if (entry === undefined) {
      // Not preloaded: the state is unknown, and unknown means deny (rule 2a).
      entry = this.newEntry(null);
      this.subjects.set(subjectId, entry);
    }
    let decision = entry.decisions[field.policyIndex];
    if (decision === undefined) {
      decision = decide({ field: field.policy, purpose: this.options.purpose, subjectState: entry.state, now: this.options.now });
      entry.decisions[field.policyIndex] = decision;
    }
    if (entry.recorded[field.index] === 0) {
      entry.recorded[field.index] = 1;
      this.log.push({ subjectId, field, decision });
    }
    return decision.effect === 'allow' ? true : withheldError(field, decision, subjectId, this.options.purpose.key, info);
  }

  /** Root fields: the actor needs the declared roles, and the request purpose must be one the operation serves. */
  authorizeOperation(field: GuardedField, info: GraphQLResolveInfo): true | GraphQLError {
    const missing = field.roles.filter((role) => !this.options.actorRoles.includes(role));
    const problem = missing.length
      ? `${field.coordinate} requires the role ${missing.join(', ')}`
      : field.policy.purposes.length && !anyCovers(field.policy.purposes, this.options.purpose.key)
        ? `${field.coordinate} serves only the purposes ${field.policy.purposes.join(', ')}`
        : undefined;
    if (problem === undefined) return true;
    if (!this.refusedOperations.some((refusal) => refusal.field === field)) this.refusedOperations.push({ field, code: 'FORBIDDEN' });
    return locatedError(problem, info, { code: 'FORBIDDEN', coordinate: field.coordinate, purpose: this.options.purpose.key });
  }

  private newEntry(state: SubjectState | null): SubjectEntry {
    return { state, decisions: [], recorded: new Uint8Array(this.options.fieldCount) };
  }
}

/**
 * Builds the error a withheld field resolves to. It carries its path so graphql-js uses it as is, and no
 * stack: a request may withhold thousands of fields and a stack trace costs more than the whole check.
 */
function withheldError(field: GuardedField, decision: Decision, subjectId: string, purpose: string, info: GraphQLResolveInfo): GraphQLError {
  const reason = decision.reason as DenialReason;
  return locatedError(`${field.coordinate} withheld: ${DENIAL_EXPLANATIONS[reason] ?? reason}`, info, {
    code: reason,
    governance: { coordinate: field.coordinate, category: field.category, purpose, subjectId },
  });
}

function locatedError(message: string, info: GraphQLResolveInfo, extensions: Record<string, unknown>): GraphQLError {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new GraphQLError(message, { nodes: info.fieldNodes, path: pathOf(info.path), extensions });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

function pathOf(path: GraphQLResolveInfo['path']): Array<string | number> {
  const segments: Array<string | number> = [];
  for (let current: GraphQLResolveInfo['path'] | undefined = path; current; current = current.prev) segments.push(current.key);
  return segments.reverse();
}
