import type { AppendEntry } from './audit-store';
import { type EntryHeader, type EntryItem, HEADER_FIELDS, ITEM_FIELDS } from './chain';

/**
 * Entries in the form they cross to a worker thread: every distinct value once, and one integer per field.
 * A structured clone of the entries themselves copies every string of every record (measured: ~5 µs a
 * record to clone, more than sealing it); a request's records repeat a handful of values, so this form
 * costs a Map lookup per field and an Int32Array copy.
 */
export interface PackedEntries {
  /** Each distinct field value (strings, null), once. */
  readonly values: readonly unknown[];
  /**
   * Per entry: HEADER_CODES value indices (the header's fields in canonical order), the item count, then
   * ITEM_CODES value indices per item (its fields in canonical order; an absent field is `undefined`).
   */
  readonly codes: Int32Array;
}

/**
 * A list of field names that must name every field of `T`: a field added to the chain's types without
 * being added to its canonical order fails the build instead of being dropped on its way to the worker.
 */
const everyFieldOf =
  <T>() =>
  <const F extends readonly (keyof T)[]>(fields: F & ([Exclude<keyof T, F[number]>] extends [never] ? unknown : { missingFields: Exclude<keyof T, F[number]> })): F =>
    fields;

// The canonical orders must name every field: checked here, where a missing one would be lost.
everyFieldOf<EntryHeader>()(HEADER_FIELDS);
everyFieldOf<EntryItem>()(ITEM_FIELDS);

/** Codes per entry header and per item. */
export const HEADER_CODES = HEADER_FIELDS.length;
export const ITEM_CODES = ITEM_FIELDS.length;

/** Packs entries for sealing, replacing each subject id by its pseudonym (`pseudonyms` must hold every subject). */
export function packEntries(entries: readonly AppendEntry[], pseudonyms: ReadonlyMap<string, string>): PackedEntries {
  const values: unknown[] = [];
  const indexOf = new Map<unknown, number>();
  // Each field position remembers its last value and code: consecutive records mostly repeat them, and a
  // comparison is cheaper than a Map lookup. It starts at a value no field holds (the Map itself).
  const lastValues: unknown[] = new Array(HEADER_CODES + ITEM_CODES).fill(indexOf);
  const lastCodes: number[] = new Array(HEADER_CODES + ITEM_CODES).fill(0);
  const code = (position: number, value: unknown): number => {
    if (value === lastValues[position]) return lastCodes[position];
    let index = indexOf.get(value);
    if (index === undefined) {
      index = values.push(value) - 1;
      indexOf.set(value, index);
    }
    lastValues[position] = value;
    return (lastCodes[position] = index);
  };
  let length = 0;
  for (const entry of entries) length += HEADER_CODES + 1 + entry.items.length * ITEM_CODES;
  const codes = new Int32Array(length);
  let at = 0;
  for (const entry of entries) {
    const pseudonym = entry.subjectId === null ? null : pseudonyms.get(entry.subjectId);
    if (pseudonym === undefined) throw new Error(`no pseudonym for subject ${entry.subjectId}`);
    for (let position = 0; position < HEADER_CODES; position++) {
      const field = HEADER_FIELDS[position];
      codes[at++] = code(position, field === 'subjectPseudonym' ? pseudonym : entry[field]);
    }
    codes[at++] = entry.items.length;
    for (const item of entry.items) for (let position = 0; position < ITEM_CODES; position++) codes[at++] = code(HEADER_CODES + position, item[ITEM_FIELDS[position]]);
  }
  return { values, codes };
}
