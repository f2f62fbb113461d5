/**
 * Seals PostgreSQL access-log records in a worker thread: a SHA-256 digest per record, the items' JSON
 * and COPY's text encoding are CPU work (~5 µs a record) that would otherwise hold the server's event
 * loop. The worker is pure: it numbers a run of entries from the sequence number it is given, digests
 * them and returns their COPY rows and digests. A record's digest depends only on its own sequence
 * number, so consecutive runs of one batch can be sealed by several workers at once; the batch hash,
 * which chains to the previous batch, is computed by the store from the runs' digests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { entryRow } from './audit-store';
import { GENESIS_HASH, sealBatch } from './chain';
import { type PackedEntries, unpackChunks } from './packed-entries';
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
  /** The entries' `audit_entry` rows (columns ENTRY_COLUMNS) in COPY text format, UTF-8, in pieces. */
  readonly rows: Uint8Array[];
  /** The records' digests, hex, back to back in sequence order. */
  readonly digests: string;
}

export interface SealAnswer extends WorkerAnswer, Partial<SealedRun> {}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One row of COPY's text format: tab-separated, \N for null, backslash escapes. */
function copyLine(values: readonly unknown[]): string {
  return values
    .map((value) => (value === null || value === undefined ? '\\N' : String(value).replace(/[\\\t\n\r]/g, (character) => COPY_ESCAPES[character])))
    .join('\t');
}

/**
 * Records sealed at a time. Sealing a whole run at once keeps all its strings alive until the end, and
 * the garbage collector then copies and promotes them (measured: V8's GC threads used about half as much
 * CPU as the sealing); a chunk's strings die young, and only its COPY bytes (off the heap) and digests
 * are kept.
 */
const CHUNK_RECORDS = 2_000;

/** Numbers the packed entries from `firstSeq` in batch `batchId`, digests their records and encodes their rows for COPY. */
export function sealRun(batchId: number, firstSeq: number, entries: PackedEntries, committedAt: string): SealedRun {
  const encoder = new TextEncoder();
  const rows: Uint8Array[] = [];
  const digests: string[] = [];
  let lastSeq = firstSeq - 1;
  for (const chunk of unpackChunks(entries, CHUNK_RECORDS)) {
    // The chain's own sealing, after a head that ends just before the chunk; the hash it chains to does
    // not enter any record's digest, and the batch hash it computes here is not used.
    const sealed = sealBatch({ batchId: batchId - 1, lastSeq, hash: GENESIS_HASH }, chunk, committedAt);
    lastSeq = sealed.lastSeq;
    rows.push(encoder.encode(sealed.entries.map((entry) => copyLine(entryRow(entry, batchId, committedAt))).join('\n') + '\n'));
    digests.push(sealed.entries.map((entry) => entry.digests.join('')).join(''));
  }
  return { rows, digests: digests.join('') };
}

if (parentPort && workerData?.candorSealWorker) {
  const port = parentPort;
  port.on('message', (request: SealRequest) => {
    try {
      const { rows, digests } = sealRun(request.batchId, request.firstSeq, request.entries, request.committedAt);
      port.postMessage({ id: request.id, rows, digests } satisfies SealAnswer, rows.map((bytes) => bytes.buffer as ArrayBuffer));
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message } satisfies SealAnswer);
    }
  });
}
