import { randomBytes } from 'node:crypto';
import type { AccessDecision, SealedRecord } from './chain';

/** One record as an appender hands it over: the subject by id, to be pseudonymised by the store. */
export interface AppendRecord {
  readonly at: string;
  readonly requestId: string;
  readonly actorId: string | null;
  readonly actorName: string | null;
  readonly actorTeam: string | null;
  readonly purpose: string | null;
  readonly operationName: string | null;
  readonly subjectId: string | null;
  readonly coordinate: string | null;
  readonly category: string | null;
  readonly decision: AccessDecision;
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly consentReceiptId: string | null;
}

export interface AppendResult {
  readonly batchId: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly hash: string;
}

/** Result of pruning whole batches committed before a date. */
export interface PruneResult {
  readonly prunedRecords: number;
  readonly prunedBatches: number;
  /** The last pruned sequence number and the hash of the last pruned batch (what the checkpoint signs). */
  readonly throughSeq: number;
  readonly throughHash: string;
}

/**
 * Where sealed batches are appended. Every implementation takes the chain lock inside its transaction
 * (PostgreSQL: pg_advisory_xact_lock; SQLite: BEGIN IMMEDIATE), reads the head, seals and inserts, so the
 * chain stays linear with any number of appending processes.
 */
export interface AuditStore {
  append(records: readonly AppendRecord[], committedAt: string): Promise<AppendResult>;
  /** Deletes whole batches committed before `before` (ISO time) under the prune flag; nothing if none. */
  prune(before: string): Promise<PruneResult | undefined>;
  close(): Promise<void>;
}

/** The advisory-lock key of the chain on PostgreSQL ("candor" in ASCII). */
export const CHAIN_LOCK_KEY = 0x63616e646f72;

/** A random pseudonym: nothing about the subject can be derived from it. */
export function newPseudonym(): string {
  return `psn_${randomBytes(12).toString('hex')}`;
}

/** Replaces subject ids by their pseudonyms (the mapping must hold every subject of `records`). */
export function pseudonymise(records: readonly AppendRecord[], pseudonyms: ReadonlyMap<string, string>): Array<Omit<SealedRecord, 'seq'>> {
  return records.map(({ subjectId, ...record }) => ({ ...record, subjectPseudonym: subjectId === null ? null : pseudonyms.get(subjectId)! }));
}

/** Distinct subject ids of a batch. */
export function subjectsOf(records: readonly AppendRecord[]): string[] {
  const subjects = new Set<string>();
  for (const record of records) if (record.subjectId !== null) subjects.add(record.subjectId);
  return [...subjects];
}

/** Column order shared by both stores' inserts. */
export const RECORD_COLUMNS = [
  'seq', 'batch_id', 'at', 'request_id', 'actor_id', 'actor_name', 'actor_team', 'purpose', 'operation_name',
  'subject_pseudonym', 'coordinate', 'category', 'decision', 'reason', 'legal_basis', 'consent_receipt_id', 'digest',
] as const;

export function recordRow(record: SealedRecord & { digest: string }, batchId: number): unknown[] {
  return [
    record.seq, batchId, record.at, record.requestId, record.actorId, record.actorName, record.actorTeam, record.purpose, record.operationName,
    record.subjectPseudonym, record.coordinate, record.category, record.decision, record.reason, record.legalBasis, record.consentReceiptId, record.digest,
  ];
}
