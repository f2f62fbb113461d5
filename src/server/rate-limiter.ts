/**
 * A token bucket per actor: `perMinute` requests a minute, refilled continuously, bursts up to the same
 * number. Kept per instance (in memory): with N instances behind a balancer an actor gets up to N times the
 * limit; a shared limiter belongs in the balancer or PostgreSQL when that matters.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** When refilled buckets were last forgotten: a full map is swept at most once a second, not per new key. */
  private sweptAt = -Infinity;

  /**
   * `maxKeys` bounds the memory when keys are not a closed set (client addresses): past it, buckets that
   * have refilled are forgotten (a full bucket is what an unknown key gets anyway), and when every bucket
   * is in use, new keys share one overflow bucket — they are limited together rather than not at all.
   */
  constructor(
    private readonly perMinute: number,
    private readonly clock: () => Date,
    private readonly maxKeys = Infinity,
  ) {}

  /** True when the key (an actor, a client) may make one more request now (and takes a token). */
  take(key: string): boolean {
    if (this.perMinute === 0) return true;
    const now = this.clock().getTime();
    const bucket = this.buckets.get(key) ?? this.newBucket(key, now);
    // An injected clock may move backwards (tests); time never takes tokens away.
    bucket.tokens = this.refilled(bucket, now);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private refilled(bucket: { tokens: number; at: number }, now: number): number {
    return Math.min(this.perMinute, bucket.tokens + (Math.max(0, now - bucket.at) * this.perMinute) / 60_000);
  }

  /** The budget `key` draws on: its own, or the shared overflow bucket while the limiter is full. */
  budgetOf(key: string): string {
    return this.buckets.has(key) ? key : OVERFLOW_KEY;
  }

  private newBucket(key: string, now: number): { tokens: number; at: number } {
    if (this.buckets.size >= this.maxKeys && now - this.sweptAt >= 1_000) {
      this.sweptAt = now;
      for (const [known, bucket] of this.buckets) if (this.refilled(bucket, now) >= this.perMinute) this.buckets.delete(known);
    }
    if (this.buckets.size >= this.maxKeys) return this.buckets.get(OVERFLOW_KEY) ?? this.buckets.set(OVERFLOW_KEY, { tokens: this.perMinute, at: now }).get(OVERFLOW_KEY)!;
    const bucket = { tokens: this.perMinute, at: now };
    this.buckets.set(key, bucket);
    return bucket;
  }
}

/** The bucket keys share once a limiter holds `maxKeys` buckets, none of them refilled (no key is empty). */
const OVERFLOW_KEY = '';

/** Rejects when `work` takes longer than `ms`: a slow store counts as an unavailable one. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
