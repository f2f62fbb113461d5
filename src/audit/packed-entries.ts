import type { AppendEntry } from './audit-store';
import type { EntryHeader, EntryItem, UnsealedEntry } from './chain';

/**
 * Entries in the form they cross to a worker thread: every distinct value once, and one integer per field.
 * A structured clone of the entries themselves copies every string of every record (measured: ~5 µs a
 * record to clone, more than sealing it); a request's records repeat a handful of values, so this form
 * costs a Map lookup per field and an Int32Array copy.
 */
export interface PackedEntries {
  /** Each distinct field value (strings, null), once. */
  readonly values: readonly unknown[];
  /** Per entry: HEADER_FIELDS.length value indices, the item count, then ITEM_FIELDS.length value indices per item. */
  readonly codes: Int32Array;
}

/**
 * A list of field names that must name every field of `T`: a field added to the chain's types without
 * being added here fails the build instead of being dropped from the log on its way to the worker.
 */
const everyFieldOf =
  <T>() =>
  <const F extends readonly (keyof T)[]>(fields: F & ([Exclude<keyof T, F[number]>] extends [never] ? unknown : { missingFields: Exclude<keyof T, F[number]> })): F =>
    fields;

const HEADER_FIELDS = everyFieldOf<EntryHeader>()(['at', 'requestId', 'actorId', 'actorName', 'actorTeam', 'purpose', 'operationName', 'subjectPseudonym']);
const ITEM_FIELDS = everyFieldOf<EntryItem>()(['coordinate', 'category', 'decision', 'reason', 'legalBasis', 'consentReceiptId', 'maskStrategy']);

/** Packs entries for sealing, replacing each subject id by its pseudonym (`pseudonyms` must hold every subject). */
export function packEntries(entries: readonly AppendEntry[], pseudonyms: ReadonlyMap<string, string>): PackedEntries {
  const values: unknown[] = [];
  const indexOf = new Map<unknown, number>();
  const code = (value: unknown): number => {
    let index = indexOf.get(value);
    if (index === undefined) {
      index = values.push(value) - 1;
      indexOf.set(value, index);
    }
    return index;
  };
  let length = 0;
  for (const entry of entries) length += HEADER_FIELDS.length + 1 + entry.items.length * ITEM_FIELDS.length;
  const codes = new Int32Array(length);
  let at = 0;
  for (const entry of entries) {
    const pseudonym = entry.subjectId === null ? null : pseudonyms.get(entry.subjectId);
    if (pseudonym === undefined) throw new Error(`no pseudonym for subject ${entry.subjectId}`);
    for (const field of HEADER_FIELDS) codes[at++] = code(field === 'subjectPseudonym' ? pseudonym : entry[field]);
    codes[at++] = entry.items.length;
    for (const item of entry.items) for (const field of ITEM_FIELDS) codes[at++] = code(item[field]);
  }
  return { values, codes };
}

/** The entries `packEntries` packed, as the chain seals them. */
export function unpackEntries(packed: PackedEntries): UnsealedEntry[] {
  return [...unpackChunks(packed, Infinity)].flat();
}

/**
 * The entries `packEntries` packed, a few at a time: each chunk holds whole entries, as many as reach
 * `records` records (the last one fewer), so that a worker can drop one chunk's objects before the next.
 */
export function* unpackChunks({ values, codes }: PackedEntries, records: number): Generator<UnsealedEntry[]> {
  let chunk: UnsealedEntry[] = [];
  let size = 0;
  let at = 0;
  while (at < codes.length) {
    const entry: Record<string, unknown> = {};
    for (const field of HEADER_FIELDS) entry[field] = values[codes[at++]];
    const items: Record<string, unknown>[] = new Array(codes[at++]);
    for (let index = 0; index < items.length; index++) {
      const item: Record<string, unknown> = {};
      for (const field of ITEM_FIELDS) {
        // An optional field that was absent stays absent.
        const value = values[codes[at++]];
        if (value !== undefined) item[field] = value;
      }
      items[index] = item;
    }
    entry.items = items;
    chunk.push(entry as unknown as UnsealedEntry);
    size += items.length;
    if (size >= records) {
      yield chunk;
      chunk = [];
      size = 0;
    }
  }
  if (chunk.length) yield chunk;
}
