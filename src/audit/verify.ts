import type { DataSource } from 'typeorm';
import { AuditBatchEntity, AuditCheckpointEntity, AuditEntryEntity } from './audit.entities';
import { batchHash, decodeItems, encodeItems, GENESIS_HASH, recordDigest } from './chain';
import { inert } from '../printable';
import { alteredMappingProblem, isBound, isErasedBound, mappingPages, unmappedPseudonymProblem } from './pseudonym-binding';
import { storedVerifier } from './checkpoint-keys';
import { checkpointKeyring, type CheckpointSigner, type ExportedCheckpoint, missingAnchor, refuseUnverifiableAnchors } from './checkpoints';

export interface VerifyOptions {
  /** Start at the batch holding this sequence number (its previous hash is taken as given). */
  readonly fromSeq?: number;
  /** Entries read per query. */
  readonly pageSize?: number;
  /** Called after each batch with the records verified so far (progress output). */
  readonly onProgress?: (verified: number, headSeq: number) => void;
  /** Checkpoints exported earlier (`audit checkpoint export`), named by `name`: each must still be in the log, as exported. */
  readonly anchors?: { readonly name: string; readonly checkpoints: readonly ExportedCheckpoint[] };
}

export interface VerifyReport {
  readonly verified: boolean;
  /** Records checked. */
  readonly records: number;
  readonly headSeq: number;
  readonly headHash: string;
  /**
   * The first sequence number at which the chain breaks, if it does; for an altered pseudonym mapping, the
   * first record its pseudonym names (null when it names none).
   */
  readonly firstBrokenSeq: number | null;
  /** What is wrong there, with expected and found values. */
  readonly problem: string | null;
  /**
   * The first sequence number the run checked: the first record of the batch holding `fromSeq`, or the first
   * kept after the latest prune, which a `fromSeq` at or below it starts at (the prune's signed checkpoint
   * stands for what it removed).
   */
  readonly checkedFromSeq: number;
}

/** Runs of a verify that a prune committing meanwhile can disturb (it starts from the latest prune's checkpoint). */
const PRUNE_RACE_RETRIES = 3;

/**
 * Recomputes every record digest and batch hash, checks that sequence numbers are gap-free, that every
 * entry is stored as sealed and carries its batch's commit time, and that every signed checkpoint matches
 * the chain. Reads in pages, so memory stays flat on large logs. A break found while a prune committed is
 * checked again from the new prune.
 */
export async function verifyAccessLog(dataSource: DataSource, signer: CheckpointSigner, bindingKey: Buffer, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (options.anchors) refuseUnverifiableAnchors(options.anchors.checkpoints, await dataSource.getRepository(AuditCheckpointEntity).find(), signer, options.anchors.name);
  const latestPruneId = async () => (await dataSource.getRepository(AuditCheckpointEntity).findOne({ where: { kind: 'prune' }, order: { id: 'DESC' }, select: { id: true } }))?.id ?? 0;
  for (let attempt = 1; ; attempt++) {
    const pruneBefore = await latestPruneId();
    const report = await verifyOnce(dataSource, signer, options);
    if (report.verified || attempt === PRUNE_RACE_RETRIES || (await latestPruneId()) === pruneBefore) {
      const chain = options.anchors ? await heldToAnchors(dataSource, report, options.anchors) : report;
      return chain.verified ? withMappingsChecked(dataSource, bindingKey, chain) : chain;
    }
  }
}

/**
 * The report, or the break a mapping whose binding is missing or does not match makes (`pseudonym-binding.ts`):
 * reported at the first record its pseudonym names (null when it names none), naming the pseudonym only — the
 * subject id it holds may be the one it was swapped in from. Then, the break a mapping deleted makes: a
 * pseudonym records name that no mapping maps and no erasure accounts for (`erased_pseudonym`, bound), in the
 * records the run checked.
 */
async function withMappingsChecked(dataSource: DataSource, bindingKey: Buffer, report: VerifyReport): Promise<VerifyReport> {
  const parameter = dataSource.options.type === 'postgres' ? '$1' : '?';
  for await (const mappings of mappingPages(dataSource.manager)) {
    const altered = mappings.find((mapping) => !isBound(bindingKey, mapping.pseudonym, mapping.subjectId, mapping.binding));
    if (altered) {
      const [first] = await dataSource.query(`SELECT min(seq) AS seq FROM audit_entry WHERE subject_pseudonym = ${parameter}`, [altered.pseudonym]);
      const seq = first?.seq === null || first?.seq === undefined ? null : Number(first.seq);
      return { ...report, verified: false, firstBrokenSeq: seq, problem: inert(alteredMappingProblem(altered.pseudonym)) };
    }
  }
  // The records the run checked (all, or from --from's batch): an incremental run reads only its own stretch of the log.
  const unmapped: Array<{ pseudonym: string; seq: string | number; binding: string | null }> = await dataSource.query(
    `SELECT e.subject_pseudonym AS pseudonym, min(e.seq) AS seq, r.binding AS binding FROM audit_entry e LEFT JOIN erased_pseudonym r ON r.pseudonym = e.subject_pseudonym
     WHERE e.seq >= ${parameter} AND e.subject_pseudonym IS NOT NULL AND NOT EXISTS (SELECT 1 FROM subject_pseudonym p WHERE p.pseudonym = e.subject_pseudonym)
     GROUP BY e.subject_pseudonym, r.binding ORDER BY min(e.seq)`,
    [report.checkedFromSeq],
  );
  const unaccounted = unmapped.find((row) => !isErasedBound(bindingKey, row.pseudonym, row.binding));
  return unaccounted ? { ...report, verified: false, firstBrokenSeq: Number(unaccounted.seq), problem: inert(unmappedPseudonymProblem(unaccounted.pseudonym)) } : report;
}

/** The report, or the break an exported checkpoint the log no longer holds makes, whichever comes first. */
async function heldToAnchors(dataSource: DataSource, report: VerifyReport, anchors: NonNullable<VerifyOptions['anchors']>): Promise<VerifyReport> {
  const missing = missingAnchor(anchors.checkpoints, await dataSource.getRepository(AuditCheckpointEntity).find(), anchors.name);
  if (!missing || (!report.verified && report.firstBrokenSeq! <= missing.seq)) return report;
  return { ...report, verified: false, firstBrokenSeq: missing.seq, problem: inert(missing.problem) };
}

async function verifyOnce(dataSource: DataSource, signer: CheckpointSigner, options: VerifyOptions): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 1_000;
  const batches = dataSource.getRepository(AuditBatchEntity);
  const entriesRepository = dataSource.getRepository(AuditEntryEntity);
  const stored = await dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });
  // A checkpoint whose signature fails is a break at its sequence number, and vouches for nothing: the scan
  // runs on the others, and the lower of the two breaks is the one reported (an edited checkpoint must not
  // point investigators past an earlier altered record).
  const keyring = checkpointKeyring(signer, stored);
  const checkpoints: AuditCheckpointEntity[] = [];
  const unsigned: AuditCheckpointEntity[] = [];
  for (const checkpoint of stored) (keyring.get(checkpoint.id)!.verified ? checkpoints : unsigned).push(checkpoint);
  unsigned.sort((a, b) => a.seq - b.seq || a.id - b.id);
  const [forged] = unsigned;
  /**
   * The failed checkpoint to report instead of a break at `seq`: one below it, or a prune that removed `seq`
   * (what a prune removed reads as missing without its word: verify with the wrong key, and the log seems to
   * lose its first records, when what failed is the prune's signature).
   */
  const failedBefore = (seq: number) => unsigned.find((checkpoint) => checkpoint.seq < seq || (checkpoint.kind === 'prune' && (checkpoint.prunedThroughSeq ?? checkpoint.seq) >= seq));
  const [last] = await batches.find({ order: { id: 'DESC' }, take: 1 });
  const headSeq = last?.lastSeq ?? 0;
  const headHash = last?.hash ?? GENESIS_HASH;
  let verifiedCount = 0;
  let checkedFromSeq = options.fromSeq ?? 1;
  /** The first entry that starts inside the one before it (or at the same sequence number), or holds no record, and what is wrong with it. */
  let overlap: { seq: number; problem: string } | undefined;
  // A problem quotes what the store holds, which may be anything once tampered with: printed inert.
  const reportAt = (seq: number, problem: string): VerifyReport => ({ verified: false, records: verifiedCount, headSeq, headHash, firstBrokenSeq: seq, problem: inert(problem), checkedFromSeq });
  const failedReport = (failed: AuditCheckpointEntity) => {
    const { keyId, altered } = keyring.get(failed.id)!;
    return reportAt(failed.seq, altered ? `checkpoint ${failed.id} (seq ${failed.seq}) ${altered}` : forgedProblem(failed, keyId, signer.keyId));
  };
  const brokenAt = (seq: number, problem: string): VerifyReport => {
    const failed = failedBefore(seq);
    return failed ? failedReport(failed) : reportAt(seq, problem);
  };
  /** The log verified from the records' side: it passes unless a checkpoint's signature failed. */
  const passed = (records: number): VerifyReport => (forged ? failedReport(forged) : { verified: true, records, headSeq, headHash, firstBrokenSeq: null, problem: null, checkedFromSeq });
  const overlapReport = ({ seq, problem }: { seq: number; problem: string }) => brokenAt(seq, problem);
  /** The break at `seq`, unless an overlapping entry comes first. */
  const broken = (seq: number, problem: string): VerifyReport => (overlap && overlap.seq <= seq ? overlapReport(overlap) : brokenAt(seq, problem));

  // The prune that reached furthest (by what its signature covers, not by the order rows were stored in).
  const latestPrune = checkpoints.filter((checkpoint) => checkpoint.kind === 'prune').sort((a, b) => (b.prunedThroughSeq ?? b.seq) - (a.prunedThroughSeq ?? a.seq) || b.id - a.id)[0];
  /** Records removed from the end of the log: a signed checkpoint covers more than the log holds. */
  const truncation = (lastSeq: number): VerifyReport | undefined => {
    const beyond = checkpoints.find((checkpoint) => checkpoint.seq > lastSeq);
    return beyond
      ? broken(lastSeq + 1, `missing sequence number ${lastSeq + 1} (expected the log to reach ${beyond.seq}, as signed checkpoint ${beyond.id} says; found its end at ${lastSeq})`)
      : undefined;
  };

  // Where to start: the batch holding fromSeq, or the first batch kept after the latest prune. A start at
  // or before the latest prune is a start at the prune: its signed checkpoint stands for what it removed.
  const prunedThrough = latestPrune?.prunedThroughSeq ?? 0;
  const fromSeq = options.fromSeq !== undefined && options.fromSeq > prunedThrough + 1 ? options.fromSeq : undefined;
  checkedFromSeq = fromSeq ?? prunedThrough + 1;
  const parameter = (position: number) => (dataSource.options.type === 'postgres' ? `$${position}` : '?');
  const notCovered = (seq: number) => brokenAt(seq, `record ${seq} is not covered by any batch`);
  /**
   * The first entry below the verified range (a full verify: nothing may remain under the prune): it comes
   * before any break inside the range, so it is looked for first. Two index range reads in all (this and
   * `strayAbove`): one query with both sides in an OR would scan the whole log.
   */
  const strayBelow = async (firstSeq: number): Promise<VerifyReport | undefined> => {
    const [below] = fromSeq === undefined ? await dataSource.query(`SELECT seq FROM audit_entry WHERE seq < ${parameter(1)} ORDER BY seq LIMIT 1`, [firstSeq]) : [];
    return below ? notCovered(Number(below.seq)) : undefined;
  };
  /**
   * The first entry above the verified range that no batch committed. Entries above the head read at the
   * start that a later batch committed are the live log's, not strays.
   */
  const strayAbove = async (lastSeq: number): Promise<VerifyReport | undefined> => {
    const [above] = await dataSource.query(
      `SELECT seq FROM audit_entry WHERE seq > ${parameter(1)} AND (batch_id <= ${parameter(2)} OR NOT EXISTS (SELECT 1 FROM audit_batch WHERE audit_batch.id = audit_entry.batch_id)) ORDER BY seq LIMIT 1`,
      [lastSeq, last?.id ?? 0],
    );
    return above ? notCovered(Number(above.seq)) : undefined;
  };
  /** Of the breaks found past the verified range's end, the one at the lowest sequence number. */
  const firstOf = (...reports: Array<VerifyReport | undefined>): VerifyReport | undefined =>
    reports.filter((report): report is VerifyReport => report !== undefined).sort((a, b) => a.firstBrokenSeq! - b.firstBrokenSeq!)[0];
  const startBatch = last
    ? fromSeq !== undefined
      ? await batches.createQueryBuilder('batch').where('batch.last_seq >= :seq AND batch.id <= :head', { seq: fromSeq, head: last.id }).orderBy('batch.id', 'ASC').getOne()
      : await batches.createQueryBuilder('batch').orderBy('batch.id', 'ASC').getOne()
    : null;
  if (!startBatch) {
    // No batch at all (from `fromSeq` on): fine for a log that never reached there, not for one a signed checkpoint says did.
    const lastSeq = fromSeq !== undefined ? fromSeq - 1 : prunedThrough;
    return (
      (await strayBelow(prunedThrough + 1)) ??
      firstOf(await strayAbove(lastSeq), truncation(lastSeq)) ?? passed(0)
    );
  }
  let previousHash = fromSeq !== undefined ? startBatch.prevHash : latestPrune ? latestPrune.headHash : GENESIS_HASH;
  // From a sequence number no batch starts at or holds, that number is missing.
  let expectedSeq = fromSeq !== undefined ? Math.min(fromSeq, startBatch.firstSeq) : prunedThrough + 1;
  checkedFromSeq = expectedSeq;
  const below = await strayBelow(expectedSeq);
  if (below) return below;
  let expectedBatchId = startBatch.id;
  // The paged reads below step from one entry's last record to the next entry, so they never see an entry
  // that starts inside the previous one, or a second entry at the same sequence number (PostgreSQL does not
  // keep them unique: rows are copied ahead of the chain lock) — nor, then, one of no records planted beside
  // a genuine entry (its items would still be served). One ordered scan finds the first such entry.
  const [overlapping] = await dataSource.query(
    `SELECT seq, count, previous_end FROM (SELECT seq, count, lag(seq + count - 1) OVER (ORDER BY seq, count) AS previous_end FROM audit_entry WHERE seq >= ${parameter(1)}) AS entries
     WHERE seq <= previous_end OR count IS NULL OR count < 1 ORDER BY seq, count LIMIT 1`,
    [expectedSeq],
  );
  if (overlapping) {
    const seq = Number(overlapping.seq);
    overlap = {
      seq,
      problem: !(Number(overlapping.count) >= 1)
        ? `record ${seq}: entry holds ${overlapping.count} records, expected at least 1`
        : `record ${seq}: stored twice (expected the next entry to start at ${Number(overlapping.previous_end) + 1}, found one starting at ${seq})`,
    };
  }
  // Every checkpoint in the verified range must sit at the end of a batch with its hash: batches rewritten
  // and merged around a checkpoint's sequence number would otherwise pass by it.
  const checkpointsAhead = checkpoints.filter((checkpoint) => checkpoint.seq >= expectedSeq).sort((a, b) => a.seq - b.seq || a.id - b.id);
  let nextCheckpoint = 0;

  let batchCursor = startBatch.id - 1;
  for (;;) {
    // Up to the head read at the start: batches committed while this runs are the next verify's.
    const page = await batches.createQueryBuilder('batch').where('batch.id > :id AND batch.id <= :head', { id: batchCursor, head: last!.id }).orderBy('batch.id', 'ASC').take(200).getMany();
    if (page.length === 0) break;
    for (const batch of page) {
      batchCursor = batch.id;
      if (batch.firstSeq !== expectedSeq) return broken(expectedSeq, `missing sequence number ${expectedSeq} (expected ${expectedSeq}, found batch ${batch.id} starting at ${batch.firstSeq})`);
      if (batch.id !== expectedBatchId) return broken(expectedSeq, `batch ${expectedBatchId} is missing (expected batch ${expectedBatchId}, found ${batch.id})`);
      if (batch.prevHash !== previousHash) return broken(batch.firstSeq, `batch ${batch.id}: previous hash mismatch (expected ${previousHash}, found ${batch.prevHash})`);
      const digests: string[] = [];
      let seqCursor = batch.firstSeq - 1;
      while (seqCursor < batch.lastSeq) {
        const entries = await entriesRepository
          .createQueryBuilder('entry')
          .where('entry.seq > :from AND entry.seq <= :to', { from: seqCursor, to: batch.lastSeq })
          .orderBy('entry.seq', 'ASC')
          .take(pageSize)
          .getMany();
        if (entries.length === 0) return broken(seqCursor + 1, `missing sequence number ${seqCursor + 1} (expected ${seqCursor + 1}, found none up to ${batch.lastSeq})`);
        for (const entry of entries) {
          if (entry.seq !== seqCursor + 1) return broken(seqCursor + 1, `missing sequence number ${seqCursor + 1} (expected ${seqCursor + 1}, found ${entry.seq})`);
          if (entry.batchId !== batch.id) return broken(entry.seq, `record ${entry.seq}: belongs to batch ${entry.batchId}, expected ${batch.id}`);
          if (entry.committedAt !== batch.committedAt) return broken(entry.seq, `record ${entry.seq}: committed at ${entry.committedAt}, expected its batch's ${batch.committedAt}`);
          let items: ReturnType<typeof decodeItems>;
          let stored: string[];
          try {
            items = decodeItems(entry.items);
            stored = JSON.parse(entry.digests) as string[];
            // An object with a length and numbered keys would read like the array sealing wrote.
            if (!Array.isArray(stored)) throw new TypeError('digests are not an array');
          } catch {
            return broken(entry.seq, `record ${entry.seq}: entry is not readable (expected JSON items and digests)`);
          }
          // An entry of no records would not move the verification forward (it would read that entry forever).
          if (!(entry.count >= 1)) return broken(entry.seq, `record ${entry.seq}: entry holds ${entry.count} records, expected at least 1`);
          if (items.length !== entry.count || stored.length !== entry.count) {
            return broken(entry.seq, `record ${entry.seq}: entry holds ${items.length} records and ${stored.length} digests, expected ${entry.count}`);
          }
          if (encodeItems(items) !== entry.items) return broken(entry.seq, `record ${entry.seq}: items not stored as sealed (expected ${encodeItems(items)}, found ${entry.items})`);
          for (let index = 0; index < items.length; index++) {
            const seq = entry.seq + index;
            const digest = recordDigest(seq, entry, items[index]);
            if (digest !== stored[index]) return broken(seq, `record ${seq}: digest mismatch (expected ${digest}, found ${stored[index]})`);
            digests.push(digest);
            verifiedCount++;
          }
          seqCursor = entry.seq + entry.count - 1;
        }
      }
      if (seqCursor !== batch.lastSeq) return broken(batch.lastSeq + 1, `batch ${batch.id}: its records run to ${seqCursor}, past its last sequence number ${batch.lastSeq}`);
      const hash = batchHash(previousHash, digests);
      if (hash !== batch.hash) return broken(batch.firstSeq, `batch ${batch.id}: hash mismatch (expected ${hash}, found ${batch.hash})`);
      for (; nextCheckpoint < checkpointsAhead.length && checkpointsAhead[nextCheckpoint].seq <= batch.lastSeq; nextCheckpoint++) {
        const checkpoint = checkpointsAhead[nextCheckpoint];
        if (checkpoint.seq !== batch.lastSeq) {
          return broken(checkpoint.seq, `checkpoint ${checkpoint.id}: seq ${checkpoint.seq} is inside batch ${batch.id} (${batch.firstSeq}–${batch.lastSeq}), but checkpoints are taken at a batch's end: the batches were rewritten`);
        }
        if (checkpoint.headHash !== batch.hash) return broken(checkpoint.seq, `checkpoint ${checkpoint.id}: head hash at seq ${checkpoint.seq} is ${batch.hash}, the signed checkpoint says ${checkpoint.headHash}`);
      }
      previousHash = batch.hash;
      expectedSeq = batch.lastSeq + 1;
      expectedBatchId = batch.id + 1;
      options.onProgress?.(verifiedCount, headSeq);
    }
  }
  const afterTheRange = firstOf(await strayAbove(expectedSeq - 1), overlap && overlapReport(overlap), truncation(expectedSeq - 1));
  if (afterTheRange) return afterTheRange;
  return passed(verifiedCount);
}

/**
 * Why a checkpoint does not verify under `expectedKeyId` (the key trusted at its place, the configured one
 * `configuredKeyId` or one a later rotation vouched for). Under another key than the one expected, the likeliest
 * cause is the configuration (the key from before a rotation, say): the problem says so.
 */
function forgedProblem(checkpoint: AuditCheckpointEntity, expectedKeyId: string, configuredKeyId: string): string {
  const at = `checkpoint ${checkpoint.id} (seq ${checkpoint.seq}`;
  const tryKey = (keyId: string) => (expectedKeyId === configuredKeyId ? ` — if ${keyId} is this log's key, run verify with CANDOR_AUDIT_SIGNING_KEY set to it` : '');
  if (checkpoint.kind === 'rotation') {
    const successor = storedVerifier(checkpoint.successorKey)?.keyId ?? 'no valid key';
    if (successor !== expectedKeyId) return `${at}, a key rotation): hands over to ${successor}, but the key trusted after it is ${expectedKeyId}${tryKey(successor)}`;
    return `${at}, a key rotation from ${checkpoint.keyId} to ${successor}): its signatures do not verify`;
  }
  const other = checkpoint.keyId !== expectedKeyId ? tryKey(checkpoint.keyId) : '';
  return `${at}, signed with key ${checkpoint.keyId}): signature does not verify with key ${expectedKeyId}${other}`;
}
