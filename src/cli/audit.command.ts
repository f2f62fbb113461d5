import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { LessThan, LessThanOrEqual, MoreThanOrEqual } from 'typeorm';
import type { AccessActor, AccessRecordInput } from '../audit/access-log';
import { AuditBatchEntity } from '../audit/audit.entities';
import { checkpointSigner, checkSigningKey, exportCheckpoints, readCheckpointExport, rotateSigningKey, signedCheckpoint, writeCheckpoint } from '../audit/checkpoints';
import { PARTITION_MONTHS_AHEAD } from '../audit/postgres-partitions';
import type { VerifyReport } from '../audit/verify';
import { decimal, signingSeed } from '../config';
import { auditUnavailable, badInput, isoTime } from '../errors';
import { inert } from '../printable';
import type { CandorServices } from '../server/services';
import { usageOf } from './help';

/** What CLI runs act for: the operator's legal obligations (answering subjects, keeping the log). */
export const CLI_PURPOSE = 'essential.legal_obligation';

/** What every record of one CLI run shares. */
export type CliRun = Pick<AccessRecordInput, 'at' | 'requestId' | 'actor' | 'purpose' | 'operationName'>;

export interface CliRecordOptions {
  /** A change: what it has done already (said when the log cannot record it, so that nobody repeats it). */
  readonly done?: string;
  /** With `done`: what to do about it (default: do not repeat it). */
  readonly advice?: string;
  /** The data subject the run is about. */
  readonly subjectId?: string;
  /** What the run showed of data subjects: records of the same run. */
  readonly accesses?: (run: CliRun) => AccessRecordInput[];
}

/** CLI runs are recorded as actor `cli:<os user>`. */
export function cliActor(): AccessActor {
  const user = userInfo().username || 'unknown';
  return { id: `cli:${user}`, name: `CLI (${user})`, team: 'cli' };
}

/**
 * Records one operation of the CLI in the access log (same chain lock as every appender), once it is done
 * and before anything it read is shown. If the log cannot take the record, the error says what a change
 * has `done` already, so that nobody runs it (an import, say) a second time believing the first failed; a
 * read (no `done`) shows nothing, and is safe to run again.
 */
export async function recordCliOperation(services: CandorServices, operationName: string, reason: string, options: CliRecordOptions = {}): Promise<void> {
  const { subjectId = null, accesses = () => [] } = options;
  const run = { at: services.clock(), requestId: `cli-${process.pid}-${Date.now()}`, actor: cliActor(), purpose: CLI_PURPOSE, operationName };
  await appendCliRun(services, operationName, [{ ...run, subjectId, coordinate: null, category: null, decision: 'RELEASED', reason, legalBasis: 'legal_obligation' }, ...accesses(run)], options);
}

/** Appends the records of the CLI run `operationName`; a log that cannot take them is refused as `recordCliOperation` says. */
export async function appendCliRun(services: CandorServices, operationName: string, records: readonly AccessRecordInput[], options: Pick<CliRecordOptions, 'done' | 'advice'> = {}): Promise<void> {
  const { done, advice = 'do not repeat it' } = options;
  try {
    await services.accessLog.append(records);
  } catch (error) {
    const refused = auditUnavailable(
      done === undefined
        ? `the access log could not record this run (${operationName}), so nothing it read is shown — check the log's store, then run it again`
        : `${done}, but the access log could not record this run (${operationName}); ${advice} — check the log's store`,
    );
    throw Object.assign(refused, { cause: error });
  }
}

/** What the log's store said when it refused a run's record (`audit verify` names it). */
function causeOf(refused: Error): string {
  return refused.cause instanceof Error ? refused.cause.message : refused.message;
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal (progress is shown only then). */
  readonly interactive: boolean;
}

function readExport(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * Where a `--from` run started checking, when that is not the record asked for, and why: a line of its own on
 * stderr, so that the verdict on stdout keeps the one form scripts and other verifiers read.
 */
function checkedFrom(asked: number, checked: number): string | undefined {
  if (checked > asked) return `checked from seq ${checked}: the log was pruned through ${checked - 1}, and the prune's signed checkpoint stands for the records it removed\n`;
  if (checked < asked) return `checked from seq ${checked}: the first record of the batch holding ${asked}\n`;
  return undefined;
}

/** Where a verify found its break, for messages: ` at seq S`, or nothing (an altered pseudonym mapping that names no record). */
const placeOfBreak = (report: VerifyReport) => (report.firstBrokenSeq === null ? '' : ` at seq ${report.firstBrokenSeq}`);

/**
 * `candor audit verify [--from SEQ] [--checkpoints FILE]`: exit 0 when the chain verifies (and holds every
 * checkpoint of FILE, an earlier export), 1 with the first break otherwise.
 */
export async function auditVerify(services: CandorServices, options: { readonly from?: string; readonly checkpoints?: string }, output: Output): Promise<number> {
  const { from } = options;
  // An exported checkpoint before the start would be taken as held without its records being checked.
  if (from !== undefined && options.checkpoints !== undefined) throw badInput('--checkpoints holds the whole log to the export: run it without --from');
  let fromSeq: number | undefined;
  if (from !== undefined) {
    fromSeq = decimal(from);
    if (!Number.isInteger(fromSeq) || fromSeq < 1) throw badInput('--from must be a sequence number ≥ 1');
  }
  const anchors = options.checkpoints === undefined ? undefined : { name: options.checkpoints, checkpoints: readCheckpointExport(readExport(options.checkpoints), options.checkpoints) };
  const report = await services.verifyAccessLog({
    fromSeq,
    anchors,
    onProgress: output.interactive ? (verified, head) => output.err(`\rverifying… ${verified} records (head ${head})`) : undefined,
  });
  if (output.interactive) output.err('\r\x1b[K');
  // A log that refuses appends (a row planted above its head, say) is what verify is run to diagnose: its
  // finding — sequence numbers and hashes, no subject's data — is shown even when this run cannot be
  // recorded, which is said, and fails the run.
  const unrecorded = await recordCliOperation(services, 'audit verify', 'ACCESS_LOG_READ').then(
    () => undefined,
    (error: Error) => error,
  );
  // "verified 0 records" would read as a pass for records the log does not hold (the head's next is fine: nothing new yet).
  const pastHead = report.verified && fromSeq !== undefined && fromSeq > report.headSeq + 1 ? `--from ${fromSeq} is past the log's head (seq ${report.headSeq}): nothing to verify` : undefined;
  if (pastHead && !unrecorded) throw badInput(pastHead);
  if (pastHead) output.err(`${pastHead}\n`);
  else if (report.verified) {
    output.out(`verified ${report.records} records through ${report.headSeq} (head hash ${report.headHash})\n`);
    const started = fromSeq === undefined ? undefined : checkedFrom(fromSeq, report.checkedFromSeq);
    if (started) output.err(started);
    if (anchors) {
      const held = anchors.checkpoints.length === 1 ? 'the checkpoint' : `all ${anchors.checkpoints.length} checkpoints`;
      output.out(`the log holds ${held} of ${anchors.name}, through seq ${Math.max(...anchors.checkpoints.map((checkpoint) => checkpoint.seq))}\n`);
    }
  }
  else output.err(`access log broken${placeOfBreak(report)}: ${report.problem}\n`);
  if (unrecorded) output.err(`this run is unrecorded: the access log refused its record (${inert(causeOf(unrecorded))})\n`);
  return report.verified && !unrecorded ? 0 : 1;
}

export const CHECKPOINT_ACTIONS: readonly string[] = ['create', 'export', 'rotate'];
/** `candor audit checkpoint <create|export|rotate>`. */
export async function auditCheckpoint(services: CandorServices, action: string | undefined, output: Output): Promise<number> {
  if (action === 'create') {
    const checkpoint = await writeCheckpoint(services.dataSource, services.checkpointSigner, 'manual', services.clock());
    output.out(checkpoint ? `signed checkpoint ${checkpoint.id}: seq ${checkpoint.seq}, head ${checkpoint.headHash}\n` : 'the access log is empty: nothing to sign\n');
    return 0;
  }
  if (action === 'export') {
    await recordCliOperation(services, 'audit checkpoint export', 'ACCESS_LOG_READ');
    output.out(JSON.stringify(await exportCheckpoints(services.dataSource, services.checkpointSigner), null, 2) + '\n');
    return 0;
  }
  if (action === 'rotate') return auditRotateKey(services, output);
  output.err(`candor: ${usageOf('audit', 'checkpoint')}\n`);
  return 2;
}

/**
 * `candor audit checkpoint rotate`: hands the log's signing over from CANDOR_AUDIT_SIGNING_KEY to
 * CANDOR_AUDIT_NEXT_SIGNING_KEY with a rotation checkpoint signed by both. Recorded once done.
 */
async function auditRotateKey(services: CandorServices, output: Output): Promise<number> {
  const nextKey = services.config.auditNextSigningKey;
  if (!nextKey) throw badInput('CANDOR_AUDIT_NEXT_SIGNING_KEY is required: base64 of the new 32-byte Ed25519 seed (e.g. openssl rand -base64 32)');
  const next = checkpointSigner(signingSeed('CANDOR_AUDIT_NEXT_SIGNING_KEY', nextKey));
  const result = await rotateSigningKey(services.dataSource, services.checkpointSigner, next, services.clock());
  if (!result.rotated) {
    output.out(`the access log has no signed checkpoint yet, so no key to hand over from: set CANDOR_AUDIT_SIGNING_KEY to the new key (${next.keyId}) and its checkpoints will be signed with it\n`);
    return 0;
  }
  const { rotated } = result;
  await recordCliOperation(services, 'audit checkpoint rotate', 'CHECKPOINT_KEY_ROTATED', { done: `the log's signing key was rotated to ${next.keyId} (checkpoint ${rotated.id})` });
  output.out(
    `rotation checkpoint ${rotated.id} (seq ${rotated.seq}): the access log's checkpoints are signed with key ${next.keyId} from now on (was ${services.checkpointSigner.keyId}).\n` +
      'Set CANDOR_AUDIT_SIGNING_KEY to the new key on every instance and restart them: until then their checkpoints are refused (the old key no longer signs), and they do not start with it.\n',
  );
  return 0;
}

/** `candor audit prune --before DATE`: removes whole batches committed before DATE, signed and recorded. */
export async function auditPrune(services: CandorServices, before: string | undefined, output: Output): Promise<number> {
  if (!before) throw badInput('--before DATE is required (ISO-8601)');
  const time = isoTime(before, '--before');
  if (time.getTime() > services.clock().getTime()) throw badInput('--before must not be in the future');
  const cutoff = time.toISOString();
  // Its checkpoint must be signed with the log's key (the store checks again, under the lock).
  await checkSigningKey(services.dataSource, services.checkpointSigner);
  // A prune signs the hash it removes the records under: over a broken chain, it would vouch for the break
  // and remove its evidence (and it selects batches by commit time, which only a verified chain keeps in order).
  const integrity = await services.verifyAccessLog({
    onProgress: output.interactive ? (verified, head) => output.err(`\rverifying before the prune… ${verified} records (head ${head})`) : undefined,
  });
  if (output.interactive) output.err('\r\x1b[K');
  if (!integrity.verified) {
    // The run read the whole log, as verify does, and is recorded as its read; as with verify, the finding is
    // shown even when the broken log refuses that record, which is said.
    const unrecorded = await recordCliOperation(services, 'audit prune', 'ACCESS_LOG_READ').then(
      () => undefined,
      (error: Error) => error,
    );
    output.err(`nothing pruned: the access log is broken${placeOfBreak(integrity)} (${integrity.problem}); a prune would sign over the break and remove its evidence — investigate it first (npx candor audit verify)\n`);
    if (unrecorded) output.err(`this run is unrecorded: the access log refused its record (${inert(causeOf(unrecorded))})\n`);
    return 1;
  }
  // What goes is a prefix of the chain: the batches before the first one committed at or after the date
  // (commit times are not covered by the hashes, so one moved earlier cannot take later batches with it),
  // never the head, and only batches the verify above checked. The store prunes through the last of them,
  // with the checkpoint signed for it here, in one transaction — or, if the log moved meanwhile, not at all.
  const batches = services.dataSource.getRepository(AuditBatchEntity);
  const [head] = await batches.find({ order: { id: 'DESC' }, take: 1 });
  const [firstKept] = await batches.find({ where: { committedAt: MoreThanOrEqual(cutoff) }, order: { id: 'ASC' }, take: 1 });
  const bound = Math.min(firstKept?.id ?? Number.MAX_SAFE_INTEGER, head?.id ?? 0);
  const [candidate] = await batches.find({ where: { id: LessThan(bound), lastSeq: LessThanOrEqual(integrity.headSeq) }, order: { id: 'DESC' }, take: 1 });
  const pruned = candidate
    ? await services.accessLog.store.prune({
        before: cutoff,
        throughBatchId: candidate.id,
        checkpoint: signedCheckpoint(services.checkpointSigner, 'prune', services.clock(), { seq: candidate.lastSeq, hash: candidate.hash, prunedThroughSeq: candidate.lastSeq }),
      })
    : undefined;
  if (!pruned) {
    // Nothing removed, but the log was read through (verified): recorded as a read, like verify.
    await recordCliOperation(services, 'audit prune', 'ACCESS_LOG_READ');
    output.out(candidate ? 'nothing pruned: the log changed while the prune was prepared (another prune?); run it again\n' : 'nothing to prune: no batch comes before the first one committed at or after that date (the newest batch is always kept)\n');
    return 0;
  }
  await recordCliOperation(services, 'audit prune', 'ACCESS_LOG_PRUNED', { done: `the log was pruned through seq ${pruned.throughSeq} under a signed checkpoint` });
  const dropped = pruned.droppedPartitions?.length ? ` (dropped the partitions of ${pruned.droppedPartitions.join(', ')} whole)` : '';
  output.out(`pruned ${pruned.prunedRecords} records in ${pruned.prunedBatches} batches through seq ${pruned.throughSeq}${dropped}; signed a prune checkpoint\n`);
  return 0;
}

/**
 * `candor audit partitions [--ahead N]`: creates the access log's missing monthly partitions for this
 * month and N months after it (PostgreSQL), then lists every month with what it holds.
 */
export async function auditPartitions(services: CandorServices, ahead: string | undefined, output: Output): Promise<number> {
  const months = ahead === undefined ? PARTITION_MONTHS_AHEAD : decimal(ahead);
  if (!Number.isInteger(months) || months < 0 || months > 120) throw badInput(`--ahead must be a whole number of months from 0 to 120, got "${ahead}"`);
  const partitions = services.accessLog.store.partitions;
  if (!partitions) {
    output.out('the SQLite access log is one table: partitions are a PostgreSQL feature, nothing to do\n');
    return 0;
  }
  await partitions.ensure(services.clock(), months);
  const rows = (await partitions.list()).map((partition) => [partition.month, partition.from, partition.to, String(partition.batches), String(partition.records), partition.lastSeq === null ? '-' : String(partition.lastSeq)]);
  // Creating missing months again is harmless: a read, as far as repeating it goes.
  await recordCliOperation(services, 'audit partitions', 'ACCESS_LOG_READ');
  output.out(table(['month', 'from', 'to (excl.)', 'batches', 'records', 'last seq'], rows));
  return 0;
}

/** A plain-text table, columns padded to their widest cell. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd() + '\n').join('');
}
