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

export const ACCESS_DECISIONS = ['RELEASED', 'WITHHELD', 'MASKED', 'REFUSED'] as const;
export type AccessDecision = (typeof ACCESS_DECISIONS)[number];

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

/** The fields of an entry's header, in the order of the canonical array. */
export const HEADER_FIELDS = ['at', 'requestId', 'actorId', 'actorName', 'actorTeam', 'purpose', 'operationName', 'subjectPseudonym'] as const;
/** The fields of an item, in the order of the canonical array; `maskStrategy` is an element of MASKED items only. */
export const ITEM_FIELDS = ['coordinate', 'category', 'decision', 'reason', 'legalBasis', 'consentReceiptId', 'maskStrategy'] as const;

/** How many of ITEM_FIELDS an item's canonical elements hold: MASKED items carry their strategy as a seventh. */
export const itemElementCount = (decision: unknown): number => (decision === 'MASKED' ? 7 : 6);

/**
 * The JSON text of one element of the canonical array: what JSON.stringify writes for it inside an array
 * (an absent value is `null`). Sealing makes it once per distinct value, not per record.
 */
export const jsonElement = (value: unknown): string => JSON.stringify(value) ?? 'null';

const RECORD_PREFIX = `[${JSON.stringify(RECORD_FORMAT)},`;

/**
 * The digest of record `seq` from its header's and its item's canonical elements (each the elements' JSON
 * texts joined by commas): what `recordDigest` computes, without building the elements again per record.
 */
export function partsDigest(seq: number, headerElements: string, itemElements: string): string {
  return sha256(`${RECORD_PREFIX}${seq},${headerElements},${itemElements}]`);
}

/**
 * The canonical serialisation of logical record `seq` (header + item): a JSON array in a fixed order. This
 * is the reference (JSON.stringify of the documented array); sealing builds the same bytes faster.
 */
export function canonicalRecord(seq: number, header: EntryHeader, item: EntryItem): string {
  const elements: unknown[] = [RECORD_FORMAT, seq, header.at, header.requestId, header.actorId, header.actorName, header.actorTeam, header.purpose, header.operationName, header.subjectPseudonym];
  elements.push(item.coordinate, item.category, item.decision, item.reason, item.legalBasis, item.consentReceiptId);
  // Only MASKED records carry the strategy, so every other record serialises exactly as before masking existed.
  if (item.decision === 'MASKED') elements.push(item.maskStrategy ?? null);
  return JSON.stringify(elements);
}

/** The header's elements of the canonical array (shared by every record of an entry), comma-separated. */
function headerElements(header: EntryHeader): string {
  // JSON.stringify of the whole array, once: measured faster than serialising its elements one by one.
  return JSON.stringify([header.at, header.requestId, header.actorId, header.actorName, header.actorTeam, header.purpose, header.operationName, header.subjectPseudonym]).slice(1, -1);
}

/** The item's elements of the canonical array, comma-separated (also its stored form, between brackets). */
function itemElements(item: EntryItem): string {
  const elements = [item.coordinate, item.category, item.decision, item.reason, item.legalBasis, item.consentReceiptId];
  if (itemElementCount(item.decision) === 7) elements.push(item.maskStrategy ?? null);
  return JSON.stringify(elements).slice(1, -1);
}

/** SHA-256 (hex) of a logical record's canonical serialisation. */
export function recordDigest(seq: number, header: EntryHeader, item: EntryItem): string {
  return sha256(canonicalRecord(seq, header, item));
}

/** The stored form of an entry's items (from each item's canonical elements). */
const storedItems = (parts: readonly string[]) => `[${parts.map((part) => `[${part}]`).join(',')}]`;

/**
 * The stored form of `items`: what sealing wrote. A stored text that decodes to the same items but differs
 * from it holds something no digest covers (an element a decision does not carry, say).
 */
export const encodeItems = (items: readonly EntryItem[]): string => storedItems(items.map(itemElements));

/** Seals one entry: its records' digests, numbered from `firstSeq`, and its stored items (each item serialised once). */
function sealEntry(firstSeq: number, entry: UnsealedEntry): SealedEntry {
  const header = headerElements(entry);
  const parts = entry.items.map(itemElements);
  const digests = parts.map((part, index) => partsDigest(firstSeq + index, header, part));
  return { ...entry, seq: firstSeq, digests, itemsJson: storedItems(parts) };
}

/** hash = SHA-256(previous batch hash ‖ digest₁ ‖ … ‖ digestₙ), over the raw 32-byte values, in seq order. */
export function batchHash(previousHash: string, digests: readonly string[]): string {
  return batchHashOfBytes(previousHash, [Buffer.from(digests.join(''), 'hex')]);
}

/** `batchHash` over digests already in raw bytes, back to back in seq order (in one or more pieces). */
export function batchHashOfBytes(previousHash: string, digests: readonly Uint8Array[]): string {
  const hash = crypto.createHash('sha256').update(Buffer.from(previousHash, 'hex'));
  for (const piece of digests) hash.update(piece);
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
