import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import type { EntityManager } from 'typeorm';
import { SUBJECT_ACTOR_ID } from '../actors/actor-directory';
import { badInput, isoTime } from '../errors';
import { counted } from '../printable';
import { CONSENT_EVENT_KINDS, type ConsentEventEntity } from './consent-event.entity';
import { ConsentImportEntity } from './consent-import.entity';
import type { ConsentChange, ConsentLedger } from './consent-ledger';
import { repeatedKeys } from './repeated-keys';

/** The columns (CSV header / JSON keys) of an import file. */
export const IMPORT_COLUMNS = ['subjectId', 'action', 'purpose', 'explicit', 'source', 'expiresAt', 'recordedAt'] as const;

export interface ImportReport {
  readonly rows: number;
  readonly imported: number;
  /** Rejected rows, numbered as in the file (CSV: the line the row starts on; JSON: array position from 1). */
  readonly rejected: ReadonlyArray<{ readonly row: number; readonly problem: string }>;
  /** When and by whom the ledger imported this file before (imported once more with `again`). */
  readonly importedBefore?: Pick<ConsentImportEntity, 'importedAt' | 'actorId'>;
}

type RawRow = Record<string, unknown>;

/** An ISO-8601 date without a time (`isoTime` reads it as midnight UTC). */
const DATE_ALONE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The earliest time a statement may have been made: no system that exports consents held one before 1970, and
 * an older time is a placeholder (0000-01-01, a spreadsheet's 1899-12-30) that would also start every
 * period-less report's period there.
 */
const EARLIEST_STATEMENT = new Date('1970-01-01T00:00:00Z');

/**
 * A row that could not be read as one (a CSV line whose field count differs from the header's, a JSON object
 * naming a key twice): rejected on its own.
 */
class UnreadableRow {
  constructor(readonly problem: string) {}
}

/** Reads a CSV (with a header row) or JSON (array of objects) file of existing consents. */
export function readImportFile(file: string): { rows: Array<RawRow | UnreadableRow>; rowNumber: (index: number) => number; text: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    // Its system code says why: ENOENT (no such file), EISDIR (a directory), EACCES (not allowed).
    throw badInput(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  // Spreadsheets save "CSV UTF-8" with a byte-order mark, which would otherwise become part of the first column's name.
  const text = utf8TextOf(file, bytes).replace(/^\uFEFF/, '');
  if (extname(file).toLowerCase() === '.json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw badInput(`${file} is not valid JSON: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw badInput(`${file} must hold a JSON array of consent statements`);
    // JSON.parse kept the last of a key named twice: `"action": "withdraw", …, "action": "grant"` read as a grant.
    const repeated = repeatedKeys(text);
    return {
      rows: parsed.map((row: RawRow, index) => (repeated.has(index) ? new UnreadableRow(`the key "${repeated.get(index)}" appears twice`) : row)),
      rowNumber: (index) => index + 1,
      text,
    };
  }
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    // Line ends normalised first: the parser's line count is then the file's (it miscounts CRLF after a blank line).
    records = parseCsv(text.replace(/\r\n?/g, '\n'), { info: true, skip_empty_lines: true, trim: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    throw badInput(`${file} is not valid CSV: ${(error as Error).message}`);
  }
  const [header, ...body] = records;
  const columns = header?.record ?? [];
  const unnamed = columns.indexOf('');
  if (unnamed >= 0) throw badInput(`${file}: column ${unnamed + 1} of the header has no name (a stray cell or trailing comma?)`);
  const repeated = columns.find((column, position) => columns.indexOf(column) !== position);
  // The parser would keep the last of two same-named columns and drop the other's values without a word.
  if (repeated !== undefined) throw badInput(`${file}: the column "${repeated}" appears twice in the header`);
  // Once for the file, not once per row: a misspelt column would otherwise reject every row alike.
  const unknown = columns.filter((column) => !(IMPORT_COLUMNS as readonly string[]).includes(column));
  if (unknown.length) throw badInput(`${file}: the header names ${counted(unknown.length, 'unknown column')} (${unknown.map((column) => `"${column}"`).join(', ')}): the columns are ${IMPORT_COLUMNS.join(', ')}`);
  return {
    rows: body.map(({ record }) =>
      record.length === columns.length
        ? Object.fromEntries(columns.map((column, position) => [column, record[position]]))
        : new UnreadableRow(`has ${counted(record.length, 'field')} where the header has ${columns.length}`),
    ),
    // The line a row starts on: where it ends, less the line breaks inside its quoted fields.
    rowNumber: (index) => body[index].info.lines - body[index].record.join('').split('\n').length + 1,
    text,
  };
}

function toChange(row: RawRow | UnreadableRow, actorId: string): ConsentChange | string {
  if (row instanceof UnreadableRow) return row.problem;
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'not an object';
  const unknown = Object.keys(row).filter((key) => !(IMPORT_COLUMNS as readonly string[]).includes(key));
  if (unknown.length) return `unknown column ${unknown.map((key) => `"${key}"`).join(', ')}`;
  // JSON may hold any type: a list or an object would be read as its string form ("[object Object]"). Explicit
  // may be a JSON boolean, or 1 or 0 as exports from systems without booleans write it (as CSV's "1" and "0").
  const mistyped = IMPORT_COLUMNS.find((key) => row[key] !== undefined && row[key] !== null && typeof row[key] !== 'string' && !(key === 'explicit' && (typeof row[key] === 'boolean' || row[key] === 1 || row[key] === 0)));
  if (mistyped === 'explicit') return 'explicit must be true or false';
  if (mistyped !== undefined) return `${mistyped} must be a string`;
  const text = (key: string) => (row[key] === undefined || row[key] === null || row[key] === '' ? undefined : String(row[key]));
  const action = text('action');
  if (!action || !(CONSENT_EVENT_KINDS as readonly string[]).includes(action)) return `action must be one of ${CONSENT_EVENT_KINDS.join(', ')}`;
  const time = (key: string, value: string): Date | string => {
    try {
      return isoTime(value, key);
    } catch (error) {
      return (error as Error).message;
    }
  };
  const expiry = text('expiresAt');
  const expiresAt = expiry === undefined ? null : time('expiresAt', expiry);
  if (typeof expiresAt === 'string') return expiresAt;
  const made = text('recordedAt');
  // The ledger stamps a statement without a time as made now, after its subject's latest one: an old grant
  // imported so would undo the withdrawal the subject made on their privacy page an hour ago.
  if (made === undefined) return 'recordedAt is required: when the statement was made (an import records existing statements; without a time it would count as made now, after everything the subject chose since)';
  // A date alone is midnight UTC: a withdrawal dated 2026-11-29 would lose to a grant made at noon that day.
  if (DATE_ALONE.test(made)) return 'recordedAt must be a date and time with its offset (2026-11-29T12:30:00Z): a date alone would be read as midnight UTC, before anything else said that day';
  const recordedAt = time('recordedAt', made);
  if (typeof recordedAt === 'string') return `recordedAt must be a date and time with its offset (2026-11-29T12:30:00Z), got "${made}"`;
  if (recordedAt < EARLIEST_STATEMENT) return `recordedAt must not be before 1970, got "${made}": a placeholder, not when the statement was made`;
  const explicit = text('explicit');
  if (explicit !== undefined && !['true', 'false', 'yes', 'no', '1', '0'].includes(explicit.toLowerCase())) return 'explicit must be true or false';
  return {
    subjectId: text('subjectId') ?? '',
    kind: action as ConsentChange['kind'],
    purpose: text('purpose'),
    explicit: explicit !== undefined && ['true', 'yes', '1'].includes(explicit.toLowerCase()),
    source: text('source') ?? '',
    expiresAt,
    recordedAt,
    actorId,
  };
}

/** How far an import is: rows checked (against the taxonomy and the subjects), then statements written. */
export type ImportProgress = (phase: 'checking' | 'importing', done: number, total: number) => void;

export interface ImportOptions {
  readonly onProgress?: ImportProgress;
  /** Record the statements once more, each with a receipt: of a file the ledger imported before, and those it holds from elsewhere. */
  readonly again?: boolean;
  /** Check the file as an import would, and write nothing (the report's `imported` is 0). */
  readonly checkOnly?: boolean;
}

/** PostgreSQL's and SQLite's word for a second row with the same key. */
const isDuplicateKey = (error: unknown): boolean => {
  const { code, driverError } = error as { code?: string; driverError?: { code?: string } };
  return [code, driverError?.code].some((found) => found === '23505' || found === 'SQLITE_CONSTRAINT_PRIMARYKEY');
};

/** Who recorded a ledger entry, as a rejected row names them: the subject, the demo's seed, or the actor (`cli:…` for an import). */
const recordedBy = (entry: ConsentEventEntity): string => (entry.actorId === SUBJECT_ACTOR_ID ? 'the subject on their privacy page' : (entry.actorId ?? "the demo's seed"));

/** Rows whose statements a run racing this one recorded after they were checked: found in the import's own transaction. */
class HeldMeanwhile extends Error {
  constructor(readonly rejected: ImportReport['rejected']) {
    super('the ledger holds statements of the file already');
  }
}

/**
 * Imports existing consents, all or nothing: every row is validated first; if any is rejected nothing is
 * written and the report lists each rejected row with its problem. A file is known by the SHA-256 of its
 * text: one the ledger already holds is refused (its statements would be recorded twice, each with a
 * receipt), also when two runs of it race, unless `again` is set. So is a row whose statement the ledger
 * holds already (`ConsentLedger.entriesHolding`), whatever file brought it, also when two runs race: it is
 * looked for again in the transaction that writes, where no other change of its subject can commit first.
 */
export async function importConsents(ledger: ConsentLedger, file: string, actorId: string, options: ImportOptions = {}): Promise<ImportReport> {
  const { rows, rowNumber, text } = readImportFile(file);
  if (rows.length === 0) throw badInput(`${file} holds no rows`);
  const digest = sha256Hex(sameTextAnySave(text));
  const alreadyImported = (earlier: ConsentImportEntity) =>
    badInput(
      `${file} was imported on ${earlier.importedAt} by ${earlier.actorId} (${counted(earlier.statements, 'statement')}, as ${earlier.fileName}): ${
        options.checkOnly ? 'to check it for importing once more, add --again' : 'nothing was imported — to record its statements once more, run it again with --again'
      }`,
    );
  // Imports recorded before line ends were set aside are known by the digest of their text as it was.
  const asSaved = sha256Hex(text);
  const importOfFile = async () => (await ledger.importOf(digest)) ?? (asSaved === digest ? undefined : await ledger.importOf(asSaved));
  const earlier = await importOfFile();
  if (earlier && !options.again) throw alreadyImported(earlier);
  const { onProgress } = options;
  const rejected: Array<{ row: number; problem: string }> = [];
  const candidates: ConsentChange[] = [];
  const candidatePositions: number[] = [];
  for (const [index, row] of rows.entries()) {
    const change = toChange(row, actorId);
    if (typeof change === 'string') {
      rejected.push({ row: rowNumber(index), problem: change });
      continue;
    }
    candidates.push(change);
    candidatePositions.push(index);
  }
  const problems = await ledger.check(candidates, (done, total) => onProgress?.('checking', done, total));
  // A statement repeated in the file (an export that ran twice into it) would be recorded twice, each with a receipt.
  // The same statement as the ledger tells them (`entriesHolding`): subject, action, purpose and time; a row
  // that describes it otherwise (another source, explicit or expiry) is still the subject's one statement.
  // Looked for among rows the ledger would take, so that a row's own problem is the one it is rejected for.
  const changes: ConsentChange[] = [];
  const positions: number[] = [];
  const rowOfStatement = new Map<string, number>();
  for (const [candidate, change] of candidates.entries()) {
    const index = candidatePositions[candidate];
    const problem = problems.get(candidate);
    if (problem !== undefined) {
      rejected.push({ row: rowNumber(index), problem });
      continue;
    }
    const statement = JSON.stringify([change.subjectId, change.kind, change.purpose?.trim(), change.recordedAt?.toISOString()]);
    const earlierRow = rowOfStatement.get(statement);
    if (earlierRow !== undefined) {
      rejected.push({ row: rowNumber(index), problem: `repeats row ${earlierRow}: the same statement, made at the same time, would be recorded twice` });
      continue;
    }
    rowOfStatement.set(statement, rowNumber(index));
    changes.push(change);
    positions.push(index);
  }
  // `again` records the file's statements once more: those the ledger holds (all of them, for a file imported before) included.
  const heldRows = async (manager?: EntityManager) =>
    options.again
      ? []
      : [...(await ledger.entriesHolding(changes, manager))].map(([index, entry]) => ({
          row: rowNumber(positions[index]),
          problem: `the ledger holds this statement already (entry ${entry.id}, recorded ${entry.recordedAt} by ${recordedBy(entry)}): it would be recorded twice, each with a receipt (--again records it once more)`,
        }));
  const held = await heldRows();
  if (held.length) {
    // The statements of this very file, which a run racing this one imported after it was looked up: said as the file.
    const imported = await importOfFile();
    if (imported) throw alreadyImported(imported);
    rejected.push(...held);
  }
  rejected.sort((a, b) => a.row - b.row);
  const importedBefore = earlier ? { importedAt: earlier.importedAt, actorId: earlier.actorId } : undefined;
  if (rejected.length || options.checkOnly) return { rows: rows.length, imported: 0, rejected, importedBefore };
  const record = { digest, fileName: file, importedAt: new Date().toISOString(), statements: changes.length, actorId };
  try {
    // In the statements' transaction: a run racing this one waits for it, then finds the file recorded (first,
    // so that a race of one file is told as the file) or, another file's, the statements it shares.
    await ledger.appendMany(
      changes,
      (done, total) => onProgress?.('importing', done, total),
      async (manager) => {
        if (!earlier) await manager.getRepository(ConsentImportEntity).insert(record);
        const heldMeanwhile = await heldRows(manager);
        if (heldMeanwhile.length) throw new HeldMeanwhile(heldMeanwhile);
      },
    );
  } catch (error) {
    if (isDuplicateKey(error)) throw alreadyImported((await ledger.importOf(digest)) ?? record);
    if (error instanceof HeldMeanwhile) return { rows: rows.length, imported: 0, rejected: error.rejected, importedBefore };
    throw error;
  }
  return { rows: rows.length, imported: changes.length, rejected: [], importedBefore };
}

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The text by which the ledger knows a file: line ends as `\n`, and no blank lines or spaces at its end — what
 * saving it again in a spreadsheet or an editor changes and reading it does not, so that such a copy of a file
 * already imported is refused as the file itself is.
 */
function sameTextAnySave(text: string): string {
  return text.replace(/\r\n?/g, '\n').trimEnd();
}

/**
 * The file's bytes as UTF-8 text, or a refusal naming the first line that is not: decoding anything else as
 * UTF-8 would replace its characters by U+FFFD, and the ledger keeps what it is given for good.
 */
function utf8TextOf(file: string, bytes: Buffer): string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(bytes);
  } catch {
    let lineStart = 0;
    for (let line = 1; ; line++) {
      const lineEnd = bytes.indexOf(0x0a, lineStart);
      try {
        decoder.decode(bytes.subarray(lineStart, lineEnd < 0 ? bytes.length : lineEnd));
      } catch {
        throw badInput(`${file} is not UTF-8 text (line ${line} is not): save it as UTF-8 ("CSV UTF-8" in a spreadsheet) and import it again`);
      }
      if (lineEnd < 0) throw badInput(`${file} is not UTF-8 text: save it as UTF-8 ("CSV UTF-8" in a spreadsheet) and import it again`);
      lineStart = lineEnd + 1;
    }
  }
}
