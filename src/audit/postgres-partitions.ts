import { escapeIdentifier, type Pool, type PoolClient } from 'pg';
import { inPoolTransaction } from './pg-transaction';

/** Months of partitions kept ready after the current one (the migration creates as many). */
export const PARTITION_MONTHS_AHEAD = 3;

/** The advisory-lock key under which partitions are created ("cndprt"): one creator at a time, any instance. */
const PARTITION_LOCK_KEY = 0x636e64707274;

/**
 * How long partition DDL may wait for its table locks. An ACCESS EXCLUSIVE request that waits also holds
 * back every later reader and writer of the log behind it, so it gives up (and is retried) instead.
 */
const DDL_LOCK_TIMEOUT = '5s';

/** One month of the access log on PostgreSQL: an `audit_entry` and an `audit_batch` partition. */
export interface LogPartition {
  /** The month, `YYYY_MM`: the partitions are `audit_entry_p<month>` and `audit_batch_p<month>`. */
  readonly month: string;
  /** Commit times from (inclusive) and to (exclusive), ISO-8601 UTC. */
  readonly from: string;
  readonly to: string;
  readonly batches: number;
  readonly records: number;
  /** The last sequence number held, or null when empty. */
  readonly lastSeq: number | null;
}

/** A partition's bounds as PostgreSQL prints them: FOR VALUES FROM ('…') TO ('…'). */
const BOUNDS = /^FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)$/;
const PARTITIONS = `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_batch'::regclass ORDER BY c.relname`;

interface Bounds {
  readonly month: string;
  readonly from: string;
  readonly to: string;
}

type Queryable = Pick<PoolClient, 'query'>;

async function boundsOf(client: Queryable): Promise<Bounds[]> {
  const { rows } = await client.query<{ name: string; bound: string }>(PARTITIONS);
  return rows.flatMap(({ name, bound }) => {
    const match = BOUNDS.exec(bound);
    return match ? [{ month: name.replace(/^audit_batch_p/, ''), from: match[1], to: match[2] }] : [];
  });
}

const monthStart = (time: Date, monthsLater = 0) => new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth() + monthsLater, 1)).toISOString().slice(0, 10);

/**
 * The access log's monthly partitions on PostgreSQL (see the time-partitioned-access-log migration):
 * created ahead of time, listed for the CLI, and dropped whole by `audit prune`.
 *
 * A batch's commit time decides its partition, and every entry carries its batch's, so a batch never
 * straddles two partitions; commit times never decrease along the chain (`commitTimeAfter`), so a
 * partition holds one consecutive run of batches.
 */
export class LogPartitions {
  /** The months known to exist, as last read (undefined: read again). */
  private known: Bounds[] | undefined;
  private creating: Promise<void> | undefined;

  constructor(private readonly pool: Pool) {}

  /**
   * Makes sure a partition holds `committedAt` before a batch with that commit time is written, and
   * that the following month exists too (created in the background, so a request never waits for
   * DDL while its own month is in place).
   */
  async cover(committedAt: string): Promise<void> {
    const known = this.known ?? (this.known = await boundsOf(this.pool));
    const holds = (time: string) => known.some((bounds) => bounds.from <= time && time < bounds.to);
    const time = new Date(committedAt);
    if (!holds(committedAt)) return this.ensure(time);
    if (!holds(`${monthStart(time, 1)}T00:00:00.000Z`)) void this.ensure(time).catch(() => undefined);
  }

  /** Creates the partitions of `now`'s month and PARTITION_MONTHS_AHEAD months after it that are missing. */
  ensure(now: Date, monthsAhead = PARTITION_MONTHS_AHEAD): Promise<void> {
    this.creating ??= this.create(now, monthsAhead).finally(() => (this.creating = undefined));
    return this.creating;
  }

  /** Every month's partitions with what they hold, oldest first. */
  async list(): Promise<LogPartition[]> {
    const months = await boundsOf(this.pool);
    return Promise.all(
      months.map(async (bounds) => {
        const { rows } = await this.pool.query<{ batches: string; records: string | null; last_seq: string | null }>(
          `SELECT count(*) AS batches, sum(last_seq - first_seq + 1) AS records, max(last_seq) AS last_seq FROM ${escapeIdentifier(`audit_batch_p${bounds.month}`)}`,
        );
        const [{ batches, records, last_seq }] = rows;
        return { ...bounds, batches: Number(batches), records: Number(records ?? 0), lastSeq: last_seq === null ? null : Number(last_seq) };
      }),
    );
  }

  /**
   * Inside the prune transaction (chain lock held, prune flag set): drops the months that end by
   * `before` and hold nothing after batch `throughBatch` / sequence number `throughSeq` — what the
   * prune removes anyway — and returns them. Rows of the remaining pruned batches are deleted by the caller.
   */
  async dropPruned(client: Queryable, before: string, throughBatch: number, throughSeq: number): Promise<string[]> {
    await client.query(`SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`);
    const dropped: string[] = [];
    for (const bounds of await boundsOf(client)) {
      if (bounds.to > before) continue;
      const batch = escapeIdentifier(`audit_batch_p${bounds.month}`);
      const entry = escapeIdentifier(`audit_entry_p${bounds.month}`);
      const { rows } = await client.query<{ kept: boolean }>(
        `SELECT coalesce((SELECT max(id) FROM ${batch}), 0) > $1 OR coalesce((SELECT max(seq) FROM ${entry}), 0) > $2 AS kept`,
        [throughBatch, throughSeq],
      );
      if (rows[0].kept) continue;
      await client.query(`DROP TABLE ${entry}, ${batch}`);
      dropped.push(bounds.month);
    }
    this.known = undefined;
    return dropped;
  }

  /** Forgets the months read, so the next `cover` reads them again (after a failed write or a prune elsewhere). */
  forget(): void {
    this.known = undefined;
  }

  private async create(now: Date, monthsAhead: number): Promise<void> {
    try {
      this.known = await inPoolTransaction(this.pool, `BEGIN; SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'; SELECT pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`, async (client) => {
        await client.query('SELECT candor_audit_create_partitions($1::date, $2::date)', [monthStart(now), monthStart(now, monthsAhead)]);
        return boundsOf(client);
      });
    } catch (error) {
      this.known = undefined;
      throw error;
    }
  }
}
