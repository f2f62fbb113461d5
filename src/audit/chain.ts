import * as crypto from 'node:crypto';

/**
 * The access log's tamper-evident format, version 1 (documented in docs/audit-format.md). Pure
 * functions shared by every appender (server, CLI, SQLite worker) and by `audit verify`.
 *
 * A logical record is one decision on one field of one subject (or one refused or recorded operation).
 * Records are stored packed: one entry per (request, subject) holds that request's records for the
 * subject, with consecutive sequence numbers and one digest per record.
 */
export const RECORD_FORMAT = 'candor-audit/1';
export const GENESIS_HASH = '0'.repeat(64);

export type AccessDecision = 'RELEASED' | 'WITHHELD' | 'MASKED' | 'REFUSED';

/** What varies between the records of one entry. */
export interface EntryItem {
  readonly coordinate: string | null;
  readonly category: string | null;
  readonly decision: AccessDecision;
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly consentReceiptId: string | null;
  /** The masking strategy of a MASKED record (a seventh element of its canonical item, MASKED records only). */
  readonly maskStrategy?: string | null;
}

/** What the records of one entry share. */
export interface EntryHeader {
  readonly at: string;
  readonly requestId: string;
  readonly actorId: string | null;
  readonly actorName: string | null;
  readonly actorTeam: string | null;
  readonly purpose: string | null;
  readonly operationName: string | null;
  readonly subjectPseudonym: string | null;
}

/** An entry before sealing. */
export interface UnsealedEntry extends EntryHeader {
  readonly items: readonly EntryItem[];
}

/** An entry as stored: `seq` is its first record's sequence number; `digests[i]` belongs to seq + i. */
export interface SealedEntry extends UnsealedEntry {
  readonly seq: number;
  readonly digests: readonly string[];
  /** The items in their stored form (see `encodeItems`). */
  readonly itemsJson: string;
}

const sha256 = (data: string | Buffer): string =>
  // crypto.hash (Node ≥ 20.12) avoids a Hash object per record.
  typeof crypto.hash === 'function' ? crypto.hash('sha256', data, 'hex') : crypto.createHash('sha256').update(data).digest('hex');

/** The canonical serialisation of logical record `seq` (header + item): a JSON array in a fixed order. */
export function canonicalRecord(seq: number, header: EntryHeader, item: EntryItem): string {
  return `[${JSON.stringify(RECORD_FORMAT)},${seq},${headerPart(header)},${itemPart(item)}]`;
}

/** The header's elements of the canonical array (shared by every record of an entry). */
function headerPart(header: EntryHeader): string {
  return JSON.stringify([header.at, header.requestId, header.actorId, header.actorName, header.actorTeam, header.purpose, header.operationName, header.subjectPseudonym]).slice(1, -1);
}

function itemPart(item: EntryItem): string {
  const elements = [item.coordinate, item.category, item.decision, item.reason, item.legalBasis, item.consentReceiptId];
  // Only MASKED records carry the strategy, so every other record serialises exactly as before masking existed.
  if (item.decision === 'MASKED') elements.push(item.maskStrategy ?? null);
  return JSON.stringify(elements).slice(1, -1);
}

/** SHA-256 (hex) of a logical record's canonical serialisation. */
export function recordDigest(seq: number, header: EntryHeader, item: EntryItem): string {
  return sha256(canonicalRecord(seq, header, item));
}

/** Seals one entry: its records' digests, numbered from `firstSeq`, and its stored items (each item serialised once). */
function sealEntry(firstSeq: number, entry: UnsealedEntry): SealedEntry {
  const prefix = `[${JSON.stringify(RECORD_FORMAT)},`;
  const shared = `,${headerPart(entry)},`;
  const parts = entry.items.map(itemPart);
  const digests = parts.map((part, index) => sha256(`${prefix}${firstSeq + index}${shared}${part}]`));
  return { ...entry, seq: firstSeq, digests, itemsJson: `[${parts.map((part) => `[${part}]`).join(',')}]` };
}

/** hash = SHA-256(previous batch hash ‖ digest₁ ‖ … ‖ digestₙ), over the raw 32-byte values, in seq order. */
export function batchHash(previousHash: string, digests: readonly string[]): string {
  return sha256(Buffer.from(previousHash + digests.join(''), 'hex'));
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
  readonly entries: readonly SealedEntry[];
}

/** Gives the entries' records the next gap-free sequence numbers after `head` and chains them into one batch. */
export function sealBatch(head: ChainHead, entries: readonly UnsealedEntry[], committedAt: string): SealedBatch {
  let seq = head.lastSeq + 1;
  const allDigests: string[] = [];
  const sealed = entries.map((entry) => {
    const sealedEntry = sealEntry(seq, entry);
    seq += sealedEntry.digests.length;
    for (const digest of sealedEntry.digests) allDigests.push(digest);
    return sealedEntry;
  });
  return {
    id: head.batchId + 1,
    firstSeq: head.lastSeq + 1,
    lastSeq: seq - 1,
    prevHash: head.hash,
    hash: batchHash(head.hash, allDigests),
    committedAt,
    entries: sealed,
  };
}

/** Stored form of an entry's items: one compact JSON array per item (what `sealEntry` produces). */
export function decodeItems(text: string): EntryItem[] {
  return (JSON.parse(text) as Array<[string | null, string | null, AccessDecision, string, string | null, string | null, (string | null)?]>).map(
    ([coordinate, category, decision, reason, legalBasis, consentReceiptId, maskStrategy]) =>
      decision === 'MASKED' ? { coordinate, category, decision, reason, legalBasis, consentReceiptId, maskStrategy: maskStrategy ?? null } : { coordinate, category, decision, reason, legalBasis, consentReceiptId },
  );
}
