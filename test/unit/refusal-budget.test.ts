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
