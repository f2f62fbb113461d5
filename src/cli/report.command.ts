import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fsyncSync, lstatSync, openSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { badInput } from '../errors';
import { generateReport, type ReportStage, validateReportRequest } from '../reports/generate-report';
import { REPORT_FORMATS, type ReportFormat, renderReport } from '../reports/renderers';
import type { CandorServices } from '../server/services';
import { appendCliRun, cliActor, type Output } from './audit.command';
import { refuseDatabaseAsOut } from './out-file';

export interface ReportArguments {
  readonly kind?: string;
  readonly subject?: string;
  readonly from?: string;
  readonly to?: string;
  readonly format?: string;
  readonly out?: string;
}

/** Whether this process may write to `path` (the operating system's answer; tests, which run as root, replace it). */
export type WriteAccess = (path: string) => boolean;

const mayWrite: WriteAccess = (path) => {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

/** Checks a report's arguments without the database: kind, format, dates and subject as given. */
export function checkReportArguments(args: ReportArguments, writable: WriteAccess = mayWrite): void {
  if (!args.format || !(REPORT_FORMATS as readonly string[]).includes(args.format)) throw badInput(`--format must be one of ${REPORT_FORMATS.join(', ')}`);
  validateReportRequest({ kind: args.kind ?? '', subjectId: args.subject, from: args.from, to: args.to }, { subject: '--subject', subjectWithValue: '--subject ID', from: '--from', to: '--to', kind: (kind) => kind });
  if (args.out !== undefined) checkWritable(args.out, writable);
}

/**
 * Where a report asked for at `path` is written: where a symbolic link there points, as the shell's `>`
 * writes, not over the link (writeWhole's rename would replace the link with a file). A link that leads to no
 * file is refused: its target may be a typo, and the report, personal data, would appear wherever it points.
 */
function reportDestination(path: string): string {
  try {
    if (!lstatSync(path).isSymbolicLink()) return path;
  } catch {
    return path;
  }
  try {
    return realpathSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw badInput(`cannot write the report to ${path}: it is a symbolic link to ${readlinkSync(path)}, ${code === 'ENOENT' ? 'which does not exist' : `which cannot be followed (${code})`}`);
  }
}

/**
 * Whether a report can be written to `path` (where it leads, if a link), asked before it is generated:
 * generating it is recorded (REPORT_GENERATED), and a report that then could not be written would be
 * recorded all the same.
 */
function checkWritable(out: string, writable: WriteAccess): void {
  const refuse = (why: string) => badInput(`cannot write the report to ${out}: ${why}`);
  const path = reportDestination(out);
  let existing;
  try {
    existing = statSync(path);
  } catch {
    existing = undefined;
  }
  if (existing) {
    if (!existing.isFile()) throw refuse('it is not a file');
    // Another user's file could not be made readable by its owner only (chmod), after the data was written.
    if (process.getuid !== undefined && process.getuid() !== 0 && existing.uid !== process.getuid()) throw refuse('it belongs to another user');
    if (!writable(path)) throw refuse('it is not writable');
  }
  // The report goes into a new file in the directory, then replaces the path (writeWhole): the directory
  // must take a new file even when the path is a file already there.
  if (!writable(dirname(path))) throw refuse(existing ? 'its directory is not writable' : 'its directory does not exist or is not writable');
}

/**
 * Writes `data` to `path` whole or not at all: into a new file beside it, readable by its owner only from
 * its creation (a report may hold personal data: a subject-access report is all of it), flushed, then
 * renamed over `path`. Writing in place left a file that was there before readable by others while the data
 * went in, and a partial report when the disk filled up.
 */
function writeWhole(path: string, data: Buffer): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const descriptor = openSync(temporary, 'wx', 0o600);
  try {
    try {
      writeFileSync(descriptor, data);
      fsyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** `candor report <kind> [--subject ID] [--from DATE] [--to DATE] --format <fmt> [--out FILE]`. */
export async function reportCommand(services: CandorServices, args: ReportArguments, output: Output & { writeBinary(data: Buffer): void }): Promise<number> {
  checkReportArguments(args);
  if (args.out !== undefined) refuseDatabaseAsOut(args.out, services.config.database);
  const progress = (stage: ReportStage, done: number, total: number) => {
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(share * 30);
    const [doneText, totalText] = [done, total].map((value) => value.toLocaleString('en'));
    const where = { verifying: `verified ${doneText} of ${totalText} records`, reading: `through record ${doneText} of ${totalText}`, counting: `counted ${doneText} of ${totalText} customers` }[stage];
    output.err(`\r\x1b[K${stage.padEnd(9)} [${'#'.repeat(filled)}${'-'.repeat(30 - filled)}] ${(share * 100).toFixed(0).padStart(3)}%  ${where}`);
  };
  const document = await generateReport(
    services,
    { kind: args.kind ?? '', subjectId: args.subject, from: args.from, to: args.to },
    {
      actor: cliActor(),
      requestId: `cli-${process.pid}-${Date.now()}`,
      onProgress: output.interactive ? progress : undefined,
      // A report is shown only once its run is recorded: a log that cannot take the record is said to be the cause.
      record: (records) => appendCliRun(services, records[0]?.operationName ?? 'report', records),
    },
  );
  if (output.interactive) output.err('\r\x1b[K');
  const rendered = await renderReport(document, args.format as ReportFormat);
  if (args.out) {
    try {
      writeWhole(reportDestination(args.out), rendered);
    } catch (error) {
      throw badInput(`the report was generated (and recorded) but could not be written to ${args.out}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    output.err(`wrote ${document.title} (${args.format}) to ${args.out}\n`);
  } else output.writeBinary(rendered);
  return 0;
}
