import { RateLimiter } from '../../src/server/rate-limiter';
import { clientOf } from '../../src/server/refusal-recorder';

const socketAt = (remoteAddress: string | undefined) => ({ socket: { remoteAddress } }) as Parameters<typeof clientOf>[0];

describe('the client an anonymous refusal is counted against', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s counts as %s', (address, client) => {
    expect(clientOf(socketAt(address))).toBe(client);
  });
});

describe('a rate limiter over an open set of keys', () => {
  it('forgets refilled buckets past its bound, and puts new keys in one shared bucket while none has refilled', () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => new Date(now), 2);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false]);
    expect(limiter.take('b')).toBe(true);
    // Two buckets in use, none full: c and d share the overflow bucket.
    expect([limiter.take('c'), limiter.take('d'), limiter.take('c')]).toEqual([true, true, false]);
    // A minute later every bucket has refilled: they are forgotten, and e gets its own again.
    now = 60_000;
    expect([limiter.take('e'), limiter.take('e'), limiter.take('e')]).toEqual([true, true, false]);
    expect(limiter.take('a')).toBe(true);
  });
});

describe('a rate limiter refilling its buckets', () => {
  it('refills a bucket no fuller than the limit, however long it was idle: no burst past it', () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => new Date(now));
    expect(limiter.take('a')).toBe(true);
    now = 10 * 60_000; // ten idle minutes would be twenty tokens
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false]);
  });

  it('gives each new key its own bucket again once the full ones are forgotten, rather than one shared bucket for good', () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => new Date(now), 2);
    expect([limiter.take('a'), limiter.take('b')]).toEqual([true, true]);
    // A minute later a and b have refilled: forgotten, they make room for e and f, each with a budget of its own.
    now = 60_000;
    expect([limiter.take('e'), limiter.take('e'), limiter.take('f'), limiter.take('f')]).toEqual([true, true, true, true]);
    expect([limiter.budgetOf('e'), limiter.budgetOf('f')]).toEqual(['e', 'f']);
  });

  it('takes no tokens away when the clock moves backwards', () => {
    let now = 60_000;
    const limiter = new RateLimiter(2, () => new Date(now));
    expect(limiter.take('a')).toBe(true);
    now = 0;
    expect([limiter.take('a'), limiter.take('a')]).toEqual([true, false]);
  });
});
