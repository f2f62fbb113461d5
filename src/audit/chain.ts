import { createHash } from 'node:crypto';

/**
 * The access log's tamper-evident format, version 1 (documented in docs/audit-format.md).
 * Pure functions shared by every appender (server, CLI, SQLite worker) and by `audit verify`.
 */
export const RECORD_FORMAT = 'candor-audit/1';
export const GENESIS_HASH = '0'.repeat(64);

export type AccessDecision = 'RELEASED' | 'WITHHELD' | 'MASKED' | 'REFUSED';

/** A logical access record as stored (values are never part of it). */
export interface SealedRecord {
  readonly seq: number;
  readonly at: string;
  readonly requestId: string;
  readonly actorId: string | null;
  readonly actorName: string | null;
  readonly actorTeam: string | null;
  readonly purpose: string | null;
  readonly operationName: string | null;
  readonly subjectPseudonym: string | null;
  readonly coordinate: string | null;
  readonly category: string | null;
  readonly decision: AccessDecision;
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly consentReceiptId: string | null;
}

/** The canonical serialisation hashed into a record's digest: a JSON array in a fixed field order. */
export function canonicalRecord(record: SealedRecord): string {
  return JSON.stringify([
    RECORD_FORMAT,
    record.seq,
    record.at,
    record.requestId,
    record.actorId,
    record.actorName,
    record.actorTeam,
    record.purpose,
    record.operationName,
    record.subjectPseudonym,
    record.coordinate,
    record.category,
    record.decision,
    record.reason,
    record.legalBasis,
    record.consentReceiptId,
  ]);
}

/** SHA-256 (hex) of the record's canonical serialisation. */
export function recordDigest(record: SealedRecord): string {
  return createHash('sha256').update(canonicalRecord(record), 'utf8').digest('hex');
}

/** hash = SHA-256(previous batch hash ‖ digest₁ ‖ … ‖ digestₙ), over the raw 32-byte values. */
export function batchHash(previousHash: string, digests: readonly string[]): string {
  const hash = createHash('sha256').update(Buffer.from(previousHash, 'hex'));
  for (const digest of digests) hash.update(Buffer.from(digest, 'hex'));
  return hash.digest('hex');
}

/** The head of the chain: the last committed batch. */
export interface ChainHead {
  readonly batchId: number;
  readonly lastSeq: number;
  readonly hash: string;
}

export const EMPTY_HEAD: ChainHead = { batchId: 0, lastSeq: 0, hash: GENESIS_HASH };

export interface SealedBatch {
  readonly id: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly committedAt: string;
  readonly records: ReadonlyArray<SealedRecord & { readonly digest: string }>;
}

/** Gives unsealed records the next gap-free sequence numbers after `head` and chains them into one batch. */
export function sealBatch(head: ChainHead, records: ReadonlyArray<Omit<SealedRecord, 'seq'>>, committedAt: string): SealedBatch {
  const sealed = records.map((record, index) => {
    const withSeq = { ...record, seq: head.lastSeq + 1 + index };
    return { ...withSeq, digest: recordDigest(withSeq) };
  });
  return {
    id: head.batchId + 1,
    firstSeq: head.lastSeq + 1,
    lastSeq: head.lastSeq + sealed.length,
    prevHash: head.hash,
    hash: batchHash(head.hash, sealed.map((record) => record.digest)),
    committedAt,
    records: sealed,
  };
}
