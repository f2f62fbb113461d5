/**
 * A token bucket per actor: `perMinute` requests a minute, refilled continuously, bursts up to the same
 * number. Kept per instance (in memory): with N instances behind a balancer an actor gets up to N times the
 * limit; a shared limiter belongs in the balancer or PostgreSQL when that matters.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly clock: () => Date,
  ) {}

  /** True when the actor may make one more request now (and takes a token). */
  take(actorId: string): boolean {
    if (this.perMinute === 0) return true;
    const now = this.clock().getTime();
    const bucket = this.buckets.get(actorId) ?? { tokens: this.perMinute, at: now };
    // An injected clock may move backwards (tests); time never takes tokens away.
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (Math.max(0, now - bucket.at) * this.perMinute) / 60_000);
    bucket.at = now;
    this.buckets.set(actorId, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/** Rejects when `work` takes longer than `ms`: a slow store counts as an unavailable one. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
