import { createHash } from 'node:crypto';
import { batchHash, canonicalRecord, decodeItems, EMPTY_HEAD, type EntryItem, GENESIS_HASH, recordDigest, sealBatch } from '../../src/audit/chain';

const header = { at: '2026-11-29T03:01:17.123Z', requestId: 'r-1', actorId: 'a', actorName: 'Ann "the auditor"', actorTeam: 'T', purpose: 'essential.service', operationName: null, subjectPseudonym: 'psn_1' };
const items: EntryItem[] = [
  { coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract', consentReceiptId: null },
  { coordinate: 'Customer.phone', category: 'user.contact.phone_number', decision: 'WITHHELD', reason: 'OBJECTED', legalBasis: 'legitimate_interests', consentReceiptId: 'rcpt\t1' },
];

describe('access-log format candor-audit/1', () => {
  it('serialises a record as the documented JSON array', () => {
    expect(canonicalRecord(7, header, items[1])).toBe(
      JSON.stringify(['candor-audit/1', 7, header.at, 'r-1', 'a', 'Ann "the auditor"', 'T', 'essential.service', null, 'psn_1', 'Customer.phone', 'user.contact.phone_number', 'WITHHELD', 'OBJECTED', 'legitimate_interests', 'rcpt\t1']),
    );
    expect(recordDigest(7, header, items[1])).toBe(createHash('sha256').update(canonicalRecord(7, header, items[1])).digest('hex'));
  });

  it('a MASKED record appends its strategy; every other record keeps the 16 elements', () => {
    const masked: EntryItem = { coordinate: 'Customer.email', category: 'user.contact.email', decision: 'MASKED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', consentReceiptId: null, maskStrategy: 'partial_email' };
    const elements = JSON.parse(canonicalRecord(3, header, masked));
    expect(elements).toHaveLength(17);
    expect(elements.slice(12)).toEqual(['MASKED', 'LEGAL_BASIS', 'legitimate_interests', null, 'partial_email']);
    expect(JSON.parse(canonicalRecord(3, header, { ...items[0], maskStrategy: 'ignored' }))).toHaveLength(16);
    const batch = sealBatch(EMPTY_HEAD, [{ ...header, items: [items[0], masked] }], 'now');
    expect(decodeItems(batch.entries[0].itemsJson)).toEqual([items[0], masked]);
    expect(batch.entries[0].digests[1]).toBe(recordDigest(2, header, masked));
    expect(recordDigest(2, header, { ...masked, maskStrategy: 'year' })).not.toBe(batch.entries[0].digests[1]);
  });

  it('chains a batch over the raw digests of its records, from the genesis hash', () => {
    const batch = sealBatch(EMPTY_HEAD, [{ ...header, items }], '2026-11-29T03:01:18.000Z');
    expect([batch.id, batch.firstSeq, batch.lastSeq, batch.prevHash]).toEqual([1, 1, 2, GENESIS_HASH]);
    expect(batch.entries[0].digests).toEqual([recordDigest(1, header, items[0]), recordDigest(2, header, items[1])]);
    const expected = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), ...batch.entries[0].digests.map((digest) => Buffer.from(digest, 'hex'))])).digest('hex');
    expect(batch.hash).toBe(expected);
    expect(batchHash(GENESIS_HASH, batch.entries[0].digests)).toBe(expected);
    expect(decodeItems(batch.entries[0].itemsJson)).toEqual(items);
  });

  it('numbers the next batch after the head, across entries', () => {
    const batch = sealBatch({ batchId: 4, lastSeq: 10, hash: 'ab'.repeat(32) }, [{ ...header, items }, { ...header, subjectPseudonym: null, items: [items[0]] }], 'now');
    expect([batch.id, batch.firstSeq, batch.lastSeq, batch.prevHash]).toEqual([5, 11, 13, 'ab'.repeat(32)]);
    expect(batch.entries.map((entry) => entry.seq)).toEqual([11, 13]);
  });
});
