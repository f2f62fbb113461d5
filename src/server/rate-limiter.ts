import { Pool } from 'pg';
import type { DatabaseConfig } from '../config';
import { sessionOptions } from '../storage/postgres-sessions';

/** Takes one request from a key's budget: true when the key may make it. */
export interface RequestBudget {
  take(key: string): boolean | Promise<boolean>;
}

/**
 * The seconds a key refused by a bucket of `perMinute` waits for its next token, at most: a refused bucket
 * holds less than one token (never less than none) and refills one every 60 / perMinute seconds. What a
 * refusal's `Retry-After` says (exact for a bucket spent to nothing, the usual refused one).
 */
export function secondsUntilNextToken(perMinute: number): number {
  return Math.ceil(60 / perMinute);
}

/**
 * A token bucket per key: `perMinute` requests a minute, refilled continuously, bursts up to the same
 * number. Kept per instance (in memory): with N instances behind a balancer a key gets up to N times the
 * limit (actors on PostgreSQL share `SharedRateLimiter`'s buckets instead).
 */
export class RateLimiter implements RequestBudget {
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

/**
 * The token bucket of `RateLimiter`, one per key in PostgreSQL (`actor_rate_bucket`), so that every instance
 * on the database draws on it: refilled and taken in one statement (the row lock orders instances), by the
 * database's clock (instances' clocks may disagree). A bucket refused leaves its row as it was.
 */
const TAKE_SHARED = `INSERT INTO actor_rate_bucket AS bucket (actor_id, tokens, at_ms)
  VALUES ($1, $2::double precision - 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
  ON CONFLICT (actor_id) DO UPDATE
    SET tokens = LEAST($2::double precision, bucket.tokens + GREATEST(0, EXCLUDED.at_ms - bucket.at_ms) * $2::double precision / 60000) - 1,
        at_ms = GREATEST(bucket.at_ms, EXCLUDED.at_ms)
    WHERE LEAST($2::double precision, bucket.tokens + GREATEST(0, EXCLUDED.at_ms - bucket.at_ms) * $2::double precision / 60000) >= 1
      -- Read after any wait for the row's lock: past the caller's deadline it has refused the request already.
      AND clock_timestamp() < statement_timestamp() + $3 * interval '1 millisecond'
  RETURNING tokens`;
/** Buckets idle for a minute are full again: what an absent row stands for. */
const FORGET_REFILLED = 'DELETE FROM actor_rate_bucket WHERE at_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 60000';
const SWEEP_EVERY_MS = 60_000;

/** The application name of the shared rate limit's connections (operators find them in pg_stat_activity). */
const RATE_LIMIT_APPLICATION_NAME = 'candor-rate-limit';

/**
 * `perMinute` requests a minute per key across every instance on one PostgreSQL database
 * (CANDOR_RATE_LIMIT_SCOPE=cluster): one statement a request, on a small pool of its own, so that a slow
 * bucket (a row locked, a stalled server) never holds the request path's connections. PostgreSQL cancels a
 * statement that runs past `deadlineMs`, the caller stops waiting at the same deadline, and a statement that
 * gets the bucket only after the caller's deadline takes nothing. A failing or cancelled statement rejects: the caller refuses the request (a budget that cannot
 * be read is not granted).
 */
export class SharedRateLimiter implements RequestBudget {
  private sweptAt = Date.now();
  private readonly pool: Pool;

  constructor(
    database: Extract<DatabaseConfig, { driver: 'postgres' }>,
    private readonly perMinute: number,
    private readonly deadlineMs: number,
  ) {
    this.pool = new Pool({
      connectionString: database.url,
      application_name: RATE_LIMIT_APPLICATION_NAME,
      max: 4,
      connectionTimeoutMillis: deadlineMs,
      statement_timeout: deadlineMs,
      options: sessionOptions(database),
    });
    // A connection the server drops is discarded (idle) or fails its statement (in use): never the process.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  async take(key: string): Promise<boolean> {
    if (this.perMinute === 0) return true;
    if (Date.now() - this.sweptAt >= SWEEP_EVERY_MS) {
      this.sweptAt = Date.now();
      // Keeps the table as small as the actors active in the last minute; losing a sweep costs nothing.
      void this.pool.query(FORGET_REFILLED).catch(() => undefined);
    }
    // A statement that waited for a pool connection has less of the caller's deadline left: it takes nothing
    // once that is spent (the caller has refused the request by then), however long a locked bucket held it.
    const started = Date.now();
    const client = await this.pool.connect();
    try {
      const remainingMs = this.deadlineMs - (Date.now() - started);
      if (remainingMs <= 0) throw new Error('the rate limit could not be read within its deadline');
      const taken = await client.query(TAKE_SHARED, [key, this.perMinute, remainingMs]);
      return taken.rowCount === 1;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The bucket keys share once a limiter holds `maxKeys` buckets, none of them refilled (no key is empty). */
const OVERFLOW_KEY = '';

