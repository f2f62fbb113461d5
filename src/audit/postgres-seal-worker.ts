/**
 * Seals PostgreSQL access-log records in a worker thread: a SHA-256 digest per record, the items' JSON
 * and COPY's text encoding are CPU work that would otherwise hold the server's event loop. The worker is
 * pure: it numbers a run of entries from the sequence number it is given, digests them and returns their
 * COPY rows and digests. A record's digest depends only on its own sequence number, so consecutive runs
 * of one batch can be sealed by several workers at once; the batch hash, which chains to the previous
 * batch, is computed by the store from the runs' digests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HEADER_FIELDS, itemElementCount, jsonElement, partsDigest } from './chain';
import { HEADER_CODES, ITEM_CODES, type PackedEntries } from './packed-entries';
import type { WorkerAnswer } from './worker-client';

export interface SealRequest {
  readonly id: number;
  /** The batch the entries belong to. */
  readonly batchId: number;
  /** The sequence number of the first record. */
  readonly firstSeq: number;
  readonly committedAt: string;
  readonly entries: PackedEntries;
}

export interface SealedRun {
  /** The entries' `audit_entry` rows (columns ENTRY_COLUMNS, as `entryRow` gives them) in COPY text format, UTF-8, in pieces. */
  readonly rows: Uint8Array[];
  /** The records' digests, raw 32-byte values back to back in sequence order (what the batch hash is over). */
  readonly digests: Uint8Array;
}

export interface SealAnswer extends WorkerAnswer, Partial<SealedRun> {}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One field of COPY's text format: \N for null, backslash escapes. */
function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = String(value);
  return COPY_SPECIAL.test(text) ? text.replace(/[\\\t\n\r]/g, (character) => COPY_ESCAPES[character]) : text;
}

/**
 * Where rows are written as soon as they are built, so that their strings die young: sealing a whole run
 * of strings at once had the garbage collector copy and promote them (measured: V8's GC threads used about
 * half as much CPU as the sealing), and one long string of rows cost a flatten before its UTF-8 encoding.
 * It is reused: each piece sent is an exact-size copy of it, because every buffer allocated counts as
 * external memory, and allocating more of it made V8 run full collections more often (measured: 4 times
 * as often with 256 KiB per run, and a slower tail).
 */
let scratch = Buffer.allocUnsafeSlow(256 * 1024);

/** How many records packed entries hold. */
function recordsOf(codes: Int32Array): number {
  let records = 0;
  for (let at = 0; at < codes.length; at += HEADER_CODES + 1 + codes[at + HEADER_CODES] * ITEM_CODES) records += codes[at + HEADER_CODES];
  return records;
}

/**
 * Numbers the packed entries from `firstSeq` in batch `batchId`, digests their records and encodes their
 * rows for COPY. It works on the packed codes: each distinct value's JSON text and COPY text is made once
 * per run, and a record's canonical bytes are those texts joined (`partsDigest`), so no object, array or
 * JSON.stringify is made per record. The rows are byte for byte `entryRow` of `sealBatch`'s entries (the
 * unit tests compare them).
 */
export function sealRun(batchId: number, firstSeq: number, { values, codes }: PackedEntries, committedAt: string): SealedRun {
  const json = values.map(jsonElement);
  const copy = values.map(copyField);
  // JSON text never holds a raw tab, newline or carriage return, so this escapes only its backslashes.
  const copyJson = json.map(copyField);
  const rowEnd = `\t${copyField(committedAt)}\n`;
  // Buffers of their own, never the shared pool: the bytes are transferred to the store's thread.
  const rows: Uint8Array[] = [];
  let used = 0;
  const digests = Buffer.alloc(32 * recordsOf(codes));
  let written = 0;
  let seq = firstSeq;
  let at = 0;
  while (at < codes.length) {
    let header = json[codes[at]];
    let headerColumns = copy[codes[at]];
    for (let field = 1; field < HEADER_FIELDS.length; field++) {
      header += `,${json[codes[at + field]]}`;
      headerColumns += `\t${copy[codes[at + field]]}`;
    }
    at += HEADER_CODES;
    const count = codes[at++];
    const entrySeq = seq;
    let items = '';
    let digestsHex = '';
    let digestsJson = '';
    for (let index = 0; index < count; index++, at += ITEM_CODES) {
      let part = json[codes[at]];
      let storedPart = copyJson[codes[at]];
      for (let field = 1, elements = itemElementCount(values[codes[at + 2]]); field < elements; field++) {
        part += `,${json[codes[at + field]]}`;
        storedPart += `,${copyJson[codes[at + field]]}`;
      }
      const digest = partsDigest(seq++, header, part);
      digestsHex += digest;
      items += index === 0 ? `[${storedPart}]` : `,[${storedPart}]`;
      digestsJson += index === 0 ? `"${digest}"` : `,"${digest}"`;
    }
    // entryRow's columns: seq, count, batch_id, the header, items, digests, committed_at.
    const row = `${entrySeq}\t${count}\t${batchId}\t${headerColumns}\t[${items}]\t[${digestsJson}]${rowEnd}`;
    // A row's UTF-8 takes at most 3 bytes per UTF-16 unit; a piece that might not hold it is sent first.
    if (used + 3 * row.length > scratch.length) {
      if (used > 0) rows.push(new Uint8Array(scratch.subarray(0, used)));
      if (3 * row.length > scratch.length) scratch = Buffer.allocUnsafeSlow(3 * row.length);
      used = 0;
    }
    used += scratch.write(row, used);
    written += digests.write(digestsHex, written, 'hex');
  }
  if (used > 0) rows.push(new Uint8Array(scratch.subarray(0, used)));
  return { rows, digests: new Uint8Array(digests.buffer, digests.byteOffset, digests.byteLength) };
}

if (parentPort && workerData?.candorSealWorker) {
  const port = parentPort;
  port.on('message', (request: SealRequest) => {
    try {
      const { rows, digests } = sealRun(request.batchId, request.firstSeq, request.entries, request.committedAt);
      port.postMessage({ id: request.id, rows, digests } satisfies SealAnswer, [...rows, digests].map((bytes) => bytes.buffer as ArrayBuffer));
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message } satisfies SealAnswer);
    }
  });
}
