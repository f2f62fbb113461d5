import { PseudonymCache } from '../../src/audit/audit-store';

describe('the pseudonym cache of an appender', () => {
  it('keeps at most `limit` mappings, dropping the oldest (read again from the mapping table when needed)', () => {
    const cache = new PseudonymCache(3);
    for (const subject of ['a', 'b', 'c']) cache.set(subject, `psn_${subject}`);
    cache.set('a', 'psn_a'); // known already: nothing is dropped
    expect(['a', 'b', 'c'].map((subject) => cache.get(subject))).toEqual(['psn_a', 'psn_b', 'psn_c']);
    cache.set('d', 'psn_d');
    expect(['a', 'b', 'c', 'd'].map((subject) => cache.get(subject))).toEqual([undefined, 'psn_b', 'psn_c', 'psn_d']);
  });

  it('forgets an erased subject at once', () => {
    const cache = new PseudonymCache();
    cache.set('erased', 'psn_1');
    cache.delete('erased');
    expect(cache.get('erased')).toBeUndefined();
  });

  it('forgets every mapping at once (erasures may have been missed)', () => {
    const cache = new PseudonymCache();
    for (const subject of ['a', 'b']) cache.set(subject, `psn_${subject}`);
    cache.clear();
    expect(['a', 'b'].map((subject) => cache.get(subject))).toEqual([undefined, undefined]);
  });
});
