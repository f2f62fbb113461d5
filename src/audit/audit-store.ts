import { randomBytes } from 'node:crypto';
import type { EntryHeader, EntryItem, SealedEntry, UnsealedEntry } from './chain';
import { logSigningKeyId } from './checkpoint-keys';
import { LONE_SURROGATE } from '../printable';
import type { LogPartitions } from './postgres-partitions';

/** One entry as an appender hands it over: the subject by id, to be pseudonymised by the store. */
export interface AppendEntry extends Omit<EntryHeader, 'subjectPseudonym'> {
  readonly subjectId: string | null;
  readonly items: readonly EntryItem[];
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
  /** The last pruned sequence number (the prune plan's checkpoint signed it with its batch's hash). */
  readonly throughSeq: number;
  /** The months whose partitions were dropped whole (PostgreSQL). */
  readonly droppedPartitions?: readonly string[];
}

/**
 * The longest values the log's length-limited columns take (`audit_entry`, `subject_pseudonym`); the
 * entities declare their columns with these.
 */
export const RECORD_VALUE_LIMITS = { at: 30, requestId: 64, actorId: 64, subjectId: 40 } as const;

/**
 * The longest values the log takes in its text columns: each is repeated in every entry of a request (one
 * per subject), so one request naming its operation with a megabyte would store it a thousand times.
 * Callers bound what clients send before it reaches the log (`recordedOperationName`, `recordedPurpose`).
 */
export const RECORDED_TEXT_LIMITS = { operationName: 128, purpose: 128, actorName: 200, actorTeam: 200 } as const;

/**
 * Every field's limit, merged once: this runs for each field of each entry of every request (a spread of
 * the two objects per field was measured at 3 µs, 3 ms for a 100-subject request).
 */
const VALUE_LIMITS: Readonly<Partial<Record<string, number>>> = { ...RECORD_VALUE_LIMITS, ...RECORDED_TEXT_LIMITS };

/** The header values of an entry a request or a caller supplies (items are built by Candor from the schema). */
const CHECKED_HEADER_FIELDS = ['at', 'requestId', 'actorId', 'actorName', 'actorTeam', 'purpose', 'operationName', 'subjectId'] as const;

/**
 * Why one of `entries` cannot be stored, if one cannot: a NUL character (PostgreSQL's text cannot hold
 * it), a lone surrogate, or a value longer than its column or its limit. Checked before a request's records join a batch, so that one bad
 * value fails its own request only, never the commit it would have shared with others.
 */
export function unstorableValue(entries: readonly AppendEntry[]): string | undefined {
  for (const entry of entries) {
    for (const field of CHECKED_HEADER_FIELDS) {
      const value = entry[field];
      if (value === null) continue;
      if (value.includes('\u0000')) return `${field} contains a NUL character`;
      // Hashed as JSON.stringify escapes it, stored as U+FFFD: such a record would never verify.
      if (LONE_SURROGATE.test(value)) return `${field} holds a lone UTF-16 surrogate (not text)`;
      const limit = VALUE_LIMITS[field];
      if (limit !== undefined && value.length > limit) return `${field} is longer than ${limit} characters`;
    }
  }
  return undefined;
}

/** A request's access records hold a value the log cannot store: the request fails, its batch-mates do not. */
export class UnstorableRecordError extends Error {
  constructor(problem: string) {
    super(`access record not storable: ${problem}`);
    this.name = 'UnstorableRecordError';
  }
}

export type CheckpointKind = 'periodic' | 'manual' | 'prune' | 'rotation';

/** A signed checkpoint as stored (`audit_checkpoint`, without its generated id). */
export interface SignedCheckpoint {
  readonly kind: CheckpointKind;
  readonly seq: number;
  readonly headHash: string;
  readonly at: string;
  readonly keyId: string;
  readonly signature: string;
  readonly prunedThroughSeq: number | null;
}

/**
 * What `audit prune` asks of a store, done in one transaction under the chain lock: if batch
 * `throughBatchId` — read before, with the checkpoint signed for it — is still prunable (committed before
 * `before`, not the head, and as signed), store the checkpoint and delete every batch through it.
 */
export interface PrunePlan {
  readonly before: string;
  readonly throughBatchId: number;
  readonly checkpoint: SignedCheckpoint;
}

/** The checkpoint row's insert, with the dialect's placeholders (`$n` or `?`). */
export function insertCheckpoint(checkpoint: SignedCheckpoint, placeholder: (position: number) => string): [string, unknown[]] {
  const values = [checkpoint.kind, checkpoint.seq, checkpoint.headHash, checkpoint.at, checkpoint.keyId, checkpoint.signature, checkpoint.prunedThroughSeq];
  return [`INSERT INTO audit_checkpoint (kind, seq, head_hash, at, key_id, signature, pruned_through_seq) VALUES (${values.map((_, index) => placeholder(index + 1)).join(', ')})`, values];
}

/** The newest checkpoint's columns that say which key signs the log now (`logSigningKeyId`), read under the chain lock. */
export const LATEST_CHECKPOINT_KEY = 'SELECT kind, key_id, successor_key FROM audit_checkpoint ORDER BY id DESC LIMIT 1';

/**
 * Whether the batch row read under the lock is the one the plan's checkpoint was signed for, and the plan's
 * key the one the log is signed with now (`latest`: the row of LATEST_CHECKPOINT_KEY) — a rotation committed
 * since the plan was signed leaves its checkpoint under a key no verify accepts there.
 */
export function planStillHolds(
  plan: PrunePlan,
  batch: { id: number | string; last_seq: number | string; hash: string } | undefined,
  latest: { kind: string; key_id: string; successor_key: string | null } | undefined,
): boolean {
  const logKey = logSigningKeyId(latest && { kind: latest.kind, keyId: latest.key_id, successorKey: latest.successor_key });
  return (
    batch !== undefined &&
    Number(batch.id) === plan.throughBatchId &&
    Number(batch.last_seq) === plan.checkpoint.seq &&
    batch.hash === plan.checkpoint.headHash &&
    (logKey === undefined || logKey === plan.checkpoint.keyId)
  );
}

/**
 * Where sealed batches are appended. Every implementation takes the chain lock inside its transaction
 * (PostgreSQL: pg_advisory_xact_lock; SQLite: BEGIN IMMEDIATE), reads the head, seals and inserts, so the
 * chain stays linear with any number of appending processes.
 */
export interface AuditStore {
  append(entries: readonly AppendEntry[], committedAt: string): Promise<AppendResult>;
  /** Carries out a prune plan (see PrunePlan); undefined when it no longer holds (nothing is written then). */
  prune(plan: PrunePlan): Promise<PruneResult | undefined>;
  /** Deletes the subject's pseudonym mapping (and any cached copy of it). */
  forget(subjectId: string): Promise<void>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  /** The log's monthly partitions, where the store has them (PostgreSQL). */
  readonly partitions?: LogPartitions;
  close(): Promise<void>;
}

/** The advisory-lock key of the chain on PostgreSQL ("candor" in ASCII). */
export const CHAIN_LOCK_KEY = 0x63616e646f72;

/** Most subject → pseudonym mappings an appender keeps in memory; older ones are read again when needed. */
export const PSEUDONYM_CACHE_LIMIT = 100_000;

/**
 * The subject → pseudonym mappings an appender has already read: they never change while the mapping
 * row exists (erasure deletes the row and the entry; on PostgreSQL every instance is notified to drop it).
 * Bounded, so memory does not grow with every subject ever logged: past `limit`, the oldest mapping is
 * dropped and read again if needed.
 */
export class PseudonymCache {
  private readonly mappings = new Map<string, string>();

  constructor(private readonly limit = PSEUDONYM_CACHE_LIMIT) {}

  get(subjectId: string): string | undefined {
    return this.mappings.get(subjectId);
  }

  set(subjectId: string, pseudonym: string): void {
    if (!this.mappings.has(subjectId) && this.mappings.size >= this.limit) this.mappings.delete(this.mappings.keys().next().value!);
    this.mappings.set(subjectId, pseudonym);
  }

  delete(subjectId: string): void {
    this.mappings.delete(subjectId);
  }

  clear(): void {
    this.mappings.clear();
  }
}

/** A random pseudonym: nothing about the subject can be derived from it. */
export function newPseudonym(): string {
  return `psn_${randomBytes(12).toString('hex')}`;
}

/** Replaces subject ids by their pseudonyms (the mapping must hold every subject of `entries`). */
export function pseudonymise(entries: readonly AppendEntry[], pseudonyms: ReadonlyMap<string, string>): UnsealedEntry[] {
  return entries.map(({ subjectId, ...entry }) => ({ ...entry, subjectPseudonym: subjectId === null ? null : pseudonyms.get(subjectId)! }));
}

/** Distinct subject ids of a batch. */
export function subjectsOf(entries: readonly AppendEntry[]): string[] {
  const subjects = new Set<string>();
  for (const entry of entries) if (entry.subjectId !== null) subjects.add(entry.subjectId);
  return [...subjects];
}

/** Column order shared by both stores' inserts. */
export const ENTRY_COLUMNS = ['seq', 'count', 'batch_id', 'at', 'request_id', 'actor_id', 'actor_name', 'actor_team', 'purpose', 'operation_name', 'subject_pseudonym', 'items', 'digests', 'committed_at'] as const;

/** An entry's row; it carries its batch's commit time, which places it in its batch's partition on PostgreSQL. */
export function entryRow(entry: SealedEntry, batchId: number, committedAt: string): unknown[] {
  return [
    entry.seq, entry.items.length, batchId, entry.at, entry.requestId, entry.actorId, entry.actorName, entry.actorTeam, entry.purpose,
    entry.operationName, entry.subjectPseudonym, entry.itemsJson, JSON.stringify(entry.digests), committedAt,
  ];
}

/**
 * The commit time of a batch: its own, or its predecessor's when that is later (another appender's clock
 * runs ahead, or this one stepped back). Commit times never decrease along the chain, so the batches
 * committed before any date are a prefix of it, and a time partition holds a consecutive run of batches.
 */
export function commitTimeAfter(committedAt: string, previous: string | null): string {
  return previous !== null && previous > committedAt ? previous : committedAt;
}
