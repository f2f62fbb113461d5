import fc from 'fast-check';
import { type AppendEntry, entryRow, pseudonymise } from '../../src/audit/audit-store';
import { batchHash, batchHashOfBytes, canonicalRecord, decodeItems, type EntryItem, recordDigest, sealBatch } from '../../src/audit/chain';
import { packEntries } from '../../src/audit/packed-entries';
import { sealRun } from '../../src/audit/postgres-seal-worker';

/**
 * The sealing paths build a record's canonical bytes without JSON.stringify per record (the PostgreSQL
 * worker joins each distinct value's JSON text; the chain joins each entry's header once). Whatever the
 * strings, the digests must be those of the reference `canonicalRecord` (JSON.stringify of the documented
 * array) and the stored rows those `entryRow` gives.
 */

// Characters JSON.stringify or COPY treat specially, and the ones they do not but might be mistaken for.
const ADVERSARIAL = ['"', '\\', '\\u', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u2028', '\u2029', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', 'é', '€', 'ß', ' ', ',', '[', ']', 'null'];
const text = fc.string({ unit: fc.oneof(fc.constantFrom(...ADVERSARIAL), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 12 });
const nullable = fc.option(text, { nil: null, freq: 4 });

const item: fc.Arbitrary<EntryItem> = fc
  .record({
    coordinate: nullable,
    category: nullable,
    decision: fc.constantFrom('RELEASED', 'WITHHELD', 'MASKED', 'REFUSED') as fc.Arbitrary<EntryItem['decision']>,
    reason: text,
    legalBasis: nullable,
    consentReceiptId: nullable,
    // Absent, null or a strategy: only a MASKED record's is an element of its canonical array.
    maskStrategy: fc.option(nullable, { nil: undefined }),
  })
  .map(({ maskStrategy, ...rest }) => (maskStrategy === undefined ? rest : { ...rest, maskStrategy }));

const entry: fc.Arbitrary<AppendEntry> = fc.record({
  at: text,
  requestId: text,
  actorId: nullable,
  actorName: nullable,
  actorTeam: nullable,
  purpose: nullable,
  operationName: nullable,
  subjectId: fc.option(fc.constantFrom('cus_a', 'cus_b', 'cus_c'), { nil: null }),
  items: fc.array(item, { minLength: 1, maxLength: 4 }),
});

const pseudonyms = fc.record({ cus_a: text, cus_b: text, cus_c: text }).map((mapping) => new Map(Object.entries(mapping)));

/** A row in COPY's text format: tab-separated, \N for null, backslash escapes (as the worker wrote it before it joined texts). */
const copyLine = (row: readonly unknown[]) =>
  row.map((value) => (value === null || value === undefined ? '\\N' : String(value).replace(/[\\\t\n\r]/g, (character) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[character]!))).join('\t');

/** Each record's digest by the reference serialisation, in sequence order from `firstSeq`. */
const referenceDigests = (entries: ReturnType<typeof pseudonymise>, firstSeq: number) => {
  let seq = firstSeq;
  return entries.flatMap((sealed) => sealed.items.map((record) => recordDigest(seq++, sealed, record)));
};

const RUNS = { seed: 20261129, numRuns: 300 };

describe('sealed bytes on adversarial strings (property-based)', () => {
  it('the reference serialisation is JSON.stringify of the documented array', () => {
    fc.assert(
      fc.property(entry, pseudonyms, fc.nat(1e9), (appended, mapping, seq) => {
        const [sealed] = pseudonymise([appended], mapping);
        for (const record of sealed.items) {
          const elements = [
            'candor-audit/1', seq, sealed.at, sealed.requestId, sealed.actorId, sealed.actorName, sealed.actorTeam, sealed.purpose, sealed.operationName, sealed.subjectPseudonym,
            record.coordinate, record.category, record.decision, record.reason, record.legalBasis, record.consentReceiptId,
            ...(record.decision === 'MASKED' ? [record.maskStrategy ?? null] : []),
          ];
          expect(canonicalRecord(seq, sealed, record)).toBe(JSON.stringify(elements));
        }
      }),
      RUNS,
    );
  });

  it('the chain seals every record to the digest of its reference serialisation, and stores its items as they were', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 4 }), pseudonyms, fc.nat(1e6), (appended, mapping, lastSeq) => {
        const entries = pseudonymise(appended, mapping);
        const batch = sealBatch({ batchId: 3, lastSeq, hash: 'cd'.repeat(32) }, entries, 'now');
        const digests = referenceDigests(entries, lastSeq + 1);
        expect(batch.entries.flatMap((sealed) => sealed.digests)).toEqual(digests);
        expect(batch.hash).toBe(batchHash('cd'.repeat(32), digests));
        const stored = entries.map((sealed) => sealed.items.map((record) => ({ ...record, maskStrategy: record.decision === 'MASKED' ? (record.maskStrategy ?? null) : undefined })));
        expect(batch.entries.map((sealed) => decodeItems(sealed.itemsJson))).toEqual(stored);
      }),
      RUNS,
    );
  });

  it('the PostgreSQL worker seals to the reference digests and to entryRow in COPY text, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 4 }), pseudonyms, fc.nat(1e6), text, (appended, mapping, lastSeq, committedAt) => {
        const entries = pseudonymise(appended, mapping);
        const run = sealRun(7, lastSeq + 1, packEntries(appended, mapping), committedAt);
        const whole = sealBatch({ batchId: 6, lastSeq, hash: 'ef'.repeat(32) }, entries, committedAt);
        expect(Buffer.from(run.digests).toString('hex')).toBe(referenceDigests(entries, lastSeq + 1).join(''));
        expect(batchHashOfBytes('ef'.repeat(32), [run.digests])).toBe(whole.hash);
        // Byte for byte: COPY reads UTF-8, so a lone surrogate must reach it as TextEncoder writes it too.
        const expected = whole.entries.map((sealed) => `${copyLine(entryRow(sealed, 7, committedAt))}\n`).join('');
        expect(Buffer.from(Buffer.concat(run.rows)).toString('latin1')).toBe(Buffer.from(new TextEncoder().encode(expected)).toString('latin1'));
      }),
      RUNS,
    );
  });
});
