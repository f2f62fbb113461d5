import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, type ClientConfig, escapeLiteral, Pool, type PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { CHAIN_HEAD_MOVED } from '../../migrations/1764480000000-copy-ahead-of-the-chain-lock';
import type { PipelinedAuditStore } from './access-log';
import { type AppendEntry, type AppendResult, CHAIN_LOCK_KEY, commitTimeAfter, ENTRY_COLUMNS, insertCheckpoint, LATEST_CHECKPOINT_KEY, newPseudonym, planStillHolds, type PrunePlan, type PruneResult, PseudonymCache, subjectsOf } from './audit-store';
import { batchHashOfBytes, type ChainHead, EMPTY_HEAD, type SealedBatch } from './chain';
import { type PackedEntries, packEntries } from './packed-entries';
import { erasedPseudonymRows, pseudonymBinding } from './pseudonym-binding';
import { inPoolTransaction } from './pg-transaction';
import { LogPartitions } from './postgres-partitions';
import type { SealAnswer, SealRequest } from './postgres-seal-worker';
import { compiledWorkerScript, WorkerClient } from './worker-client';
import type { DatabaseConfig } from '../config';
import { abandonedSessionBounds, sessionOptions } from '../storage/postgres-sessions';

type PostgresDatabase = Extract<DatabaseConfig, { driver: 'postgres' }>;

interface Runner {
  query(sql: string, parameters?: unknown[]): Promise<any[]>;
  readonly client: PoolClient;
}

// COPY is several times faster than INSERT … unnest for wide rows (measured: ~320k vs ~95k records/s).
const COPY_ENTRIES = `COPY audit_entry (${ENTRY_COLUMNS.join(', ')}) FROM STDIN`;
const HEAD = 'SELECT id, last_seq, hash, committed_at FROM audit_batch ORDER BY id DESC LIMIT 1';
/**
 * The chain lock and the head, after a lock on the entries' table. Every appender takes the two in this
 * order — a commit copying ahead takes the table's lock with its COPY — so none waits for a lock another
 * holds while that one waits for its own: prune, which needs the table to itself to drop a partition, takes
 * it first in a mode that waits for the rows being copied and holds new copies back.
 */
const lockChain = (tableMode: 'ROW EXCLUSIVE' | 'SHARE ROW EXCLUSIVE') => `LOCK TABLE audit_entry IN ${tableMode} MODE; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY}); ${HEAD}`;
/** The head read by the last statement of a multi-statement query. */
const headIn = (results: unknown): StoredHead => headOf((results as Array<{ rows: any[] }>).at(-1)!.rows[0]);

/** A batch run too small to be worth splitting between sealing threads. */
const MIN_RUN_RECORDS = 250;

/** A run of a batch's entries, packed for a sealing worker, and how many records it holds. */
interface Run {
  readonly entries: PackedEntries;
  readonly records: number;
}

type BatchHeader = Omit<SealedBatch, 'entries'>;

/**
 * The batch row, sent with the COMMIT in one round trip (a lone request's flush has four; this saves one).
 * A multi-statement string cannot take parameters, hence literals; every value is a number or escaped.
 */
const insertBatchRow = (batch: BatchHeader) =>
  `INSERT INTO audit_batch (id, first_seq, last_seq, prev_hash, hash, committed_at) VALUES (${[batch.id, batch.firstSeq, batch.lastSeq].map(integerLiteral).join(', ')}, ${[batch.prevHash, batch.hash, batch.committedAt].map(escapeLiteral).join(', ')})`;

/** Streams COPY rows into `audit_entry` on `client`. */
async function copyRows(client: PoolClient, rows: readonly Uint8Array[]): Promise<void> {
  const buffers = rows.map((run) => Buffer.from(run.buffer, run.byteOffset, run.byteLength));
  await pipeline(Readable.from(buffers), client.query(copyFrom(COPY_ENTRIES)));
}

function integerLiteral(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return String(value);
}

/** A batch sealed after the head it expects, ready to commit (`PostgresAuditStore.prepare`). */
export interface PreparedBatch {
  /** The entries and their pseudonyms, to seal again if the head moved (the packed runs went to the workers). */
  readonly entries: readonly AppendEntry[];
  readonly pseudonyms: ReadonlyMap<string, string>;
  readonly committedAt: string;
  readonly batch: BatchHeader;
  /** The batch's COPY rows, in order. */
  readonly rows: readonly Uint8Array[];
  /** Which prepare this was (1, 2, …): only the latest one predicts the next batch's head. */
  readonly order: number;
}

const headAfter = (batch: BatchHeader): ChainHead => ({ batchId: batch.id, lastSeq: batch.lastSeq, hash: batch.hash });
const follows = (batch: BatchHeader, head: ChainHead) => batch.id === head.batchId + 1 && batch.firstSeq === head.lastSeq + 1 && batch.prevHash === head.hash;
/** The chain head and when its batch was committed (null for an empty log). */
interface StoredHead extends ChainHead {
  readonly committedAt: string | null;
}
const headOf = (row: { id: string; last_seq: string; hash: string; committed_at: string } | undefined): StoredHead =>
  row ? { batchId: Number(row.id), lastSeq: Number(row.last_seq), hash: row.hash, committedAt: row.committed_at } : { ...EMPTY_HEAD, committedAt: null };

/** Splits entries into at most `parts` consecutive runs of about equal record counts, each packed. */
function runsOf(entries: readonly AppendEntry[], pseudonyms: ReadonlyMap<string, string>, parts: number): Run[] {
  const total = entries.reduce((sum, entry) => sum + entry.items.length, 0);
  const target = Math.max(MIN_RUN_RECORDS, Math.ceil(total / parts));
  const runs: Run[] = [];
  let start = 0;
  let records = 0;
  entries.forEach((entry, index) => {
    records += entry.items.length;
    if (records >= target || index === entries.length - 1) {
      runs.push({ entries: packEntries(entries.slice(start, index + 1), pseudonyms), records });
      start = index + 1;
      records = 0;
    }
  });
  return runs;
}

/** The application name of the log's connections (operators can find them in pg_stat_activity). */
export const AUDIT_APPLICATION_NAME = 'candor-audit';
/** The application name of each store's connection that listens for erasures. */
export const AUDIT_LISTENER_APPLICATION_NAME = 'candor-audit-listener';

/**
 * The channel an erasure notifies, with the subject id as payload. Channels are per database: stores on
 * other schemas of the same database hear it too and drop a mapping they did not need to, which is harmless.
 */
export const PSEUDONYM_FORGOTTEN_CHANNEL = 'candor_pseudonym_forgotten';
/** The subject's mapping goes (its pseudonym returned, to be remembered as an erasure's with its binding). */
const DELETE_MAPPING = 'DELETE FROM subject_pseudonym WHERE subject_id = $1 RETURNING pseudonym';
/** Pseudonyms that records may name while no mapping does, with their bindings (`erased_pseudonym`). */
const REMEMBER_ERASED_PSEUDONYMS = 'INSERT INTO erased_pseudonym (pseudonym, binding) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (pseudonym) DO NOTHING';
/** The subject is remembered as erased, and every instance told, when the transaction holding it commits. */
const REMEMBER_ERASED = `WITH erased AS (INSERT INTO erased_subject (subject_id, erased_at) VALUES ($1, $2) ON CONFLICT (subject_id) DO NOTHING)
  SELECT pg_notify('${PSEUDONYM_FORGOTTEN_CHANNEL}', $1)`;
/** A mapping for each subject not erased (an erased one gets none, whatever races with its erasure). */
const MAP_SUBJECTS = `INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at, binding)
  SELECT t.subject_id, t.pseudonym, $3, t.binding FROM unnest($1::text[], $2::text[], $4::text[]) AS t(subject_id, pseudonym, binding)
  WHERE NOT EXISTS (SELECT 1 FROM erased_subject e WHERE e.subject_id = t.subject_id)
  ON CONFLICT (subject_id) DO NOTHING`;
/**
 * The subjects' mappings, read in a statement of its own, each with whether its subject is erased: one that an
 * insert above made while an erasure was committing (its row was being deleted) is not used once the erasure is
 * seen — and is deleted (`UNLINK_ERASED`): the erasure's own second deletion may have run before that insert
 * committed. Either this statement sees the erasure, or the erasure committed after the insert did and its
 * second deletion sees the row.
 */
const MAPPINGS_OF = `SELECT p.subject_id, p.pseudonym, EXISTS (SELECT 1 FROM erased_subject e WHERE e.subject_id = p.subject_id) AS erased
  FROM subject_pseudonym p WHERE p.subject_id = ANY($1::text[])`;
/** Erased subjects' mappings that raced their erasure go, their pseudonyms returned (to be remembered in the same transaction). */
const UNLINK_ERASED = 'DELETE FROM subject_pseudonym p USING erased_subject e WHERE p.subject_id = e.subject_id AND p.subject_id = ANY($1::text[]) RETURNING p.pseudonym';
/** The same for every erased subject: what a process that stopped between reading such a mapping and deleting it left. */
const UNLINK_ALL_ERASED = 'DELETE FROM subject_pseudonym p USING erased_subject e WHERE p.subject_id = e.subject_id RETURNING p.pseudonym';

const FIRST_RELISTEN_DELAY_MS = 100;
const MAX_RELISTEN_DELAY_MS = 5_000;

/**
 * A dedicated connection (a pooled one would lose its LISTEN when released) that LISTENs for erasures
 * made through any instance. `listening` is true only while LISTEN is confirmed: notifications sent while
 * it is false are lost, so the store must not trust its cache then. A lost connection is replaced, after
 * 100 ms doubling to 5 s; its errors never reach the process.
 */
class ErasureListener {
  listening = false;
  private client: Client | undefined;
  private relisten: NodeJS.Timeout | undefined;
  private relistenDelayMs = FIRST_RELISTEN_DELAY_MS;
  private closed = false;

  /**
   * @param forgotten called with the subject id of each erasure
   * @param missed called when erasures may have gone unheard: on losing the connection and after each LISTEN
   */
  constructor(
    private readonly config: ClientConfig,
    private readonly forgotten: (subjectId: string) => void,
    private readonly missed: () => void,
  ) {}

  async listen(): Promise<void> {
    const client = new Client(this.config);
    this.client = client;
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (message.payload !== undefined) this.forgotten(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${PSEUDONYM_FORGOTTEN_CHANNEL}`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.client !== client) return; // lost or closed while connecting
    this.missed();
    this.listening = true;
    this.relistenDelayMs = FIRST_RELISTEN_DELAY_MS;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.relisten);
    this.listening = false;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Idempotent: a dying connection may emit 'error', 'end' and fail its pending connect or LISTEN. */
  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.listening = false;
    this.missed();
    void client.end().catch(() => undefined);
    if (this.closed) return;
    this.relisten = setTimeout(() => void this.listen(), this.relistenDelayMs);
    this.relistenDelayMs = Math.min(2 * this.relistenDelayMs, MAX_RELISTEN_DELAY_MS);
  }
}

export interface PostgresAuditStoreOptions {
  /** Worker threads that seal a batch's records in parallel (default: 2, or 1 on a single CPU). */
  readonly sealingThreads?: number;
  /** Longest wait for a lock (the chain lock, a turn, the entries' table) before the append fails (default 10 s). */
  readonly lockWaitMs?: number;
  /**
   * Longest wait for any answer of PostgreSQL on the log's connections (default the lock wait + 20 s). A lock
   * wait is bounded by the server; a connection that went silent (a network that drops packets, a stalled
   * server) only by this: its query fails and the connection is discarded, so the log's writes fail
   * (AUDIT_UNAVAILABLE) instead of hanging every governed request behind them.
   */
  readonly queryTimeoutMs?: number;
  /** This process's wall clock, compared with PostgreSQL's (`MAX_CLOCK_SKEW_MS`); a test sets one that runs ahead. */
  readonly wallClock?: () => number;
}

/**
 * How far this process's clock may be from PostgreSQL's before its store appends nothing. Commit times never
 * decrease along the chain (`commitTimeAfter`), so one instance whose clock ran ahead stamped every later
 * batch of every instance with its time — retention (`audit prune --before`) stopped working until real time
 * caught up (found in review: 120 days ahead froze every commit time for the rest of the run). The instances
 * agree through PostgreSQL's clock instead; servers kept by NTP are within milliseconds of it.
 */
export const MAX_CLOCK_SKEW_MS = 10_000;
/** How often the store compares clocks again (a clock can jump: a virtual machine resumed, NTP stepping). */
const CLOCK_CHECK_INTERVAL_MS = 60_000;

/** As long as SQLite's busy timeout: an append waits this long for the log's locks, then fails (AUDIT_UNAVAILABLE). */
const LOCK_WAIT_MS = 10_000;

/**
 * Appends sealed batches to PostgreSQL under a transaction-scoped advisory lock. It has its own small
 * pool, so the log's writes never queue behind (or starve) the request path's connections.
 *
 * Sealing runs in worker threads and ahead of the lock (`prepare`): a batch is numbered and chained after
 * the head this store expects — the one its previous batch will leave — so the access log seals batch
 * k + 1 while batch k commits, and a large batch is split into runs sealed in parallel. `commit` copies
 * the rows before it takes the lock and checks the head under it, in the round trip of the COMMIT; if
 * another appender (another instance, the CLI) or a failed commit left the head elsewhere, nothing is
 * written and the batch is sealed again after the real head, under the lock. Numbering and chaining are
 * still decided under the lock.
 */
export class PostgresAuditStore implements PipelinedAuditStore<PreparedBatch> {
  /** One commit waits for the chain lock (its rows copied) while the one before holds it. */
  readonly commitsInFlight = 2;
  /** Used only while `erasures` is listening, so an erasure through another instance always reaches it. */
  private readonly knownPseudonyms = new PseudonymCache();
  /** Counts drops from the cache: a mapping read across one may predate an erasure, so it is not cached. */
  private pseudonymDrops = 0;
  private readonly erasures: ErasureListener;
  private readonly pool: Pool;
  /** The log's monthly partitions (created ahead, dropped whole by prune). */
  readonly partitions: LogPartitions;
  private readonly sealers: WorkerClient<SealRequest, SealAnswer>[];
  /** The head after the latest prepared batch (what the next batch is sealed after), unknown at first. */
  private expectedHead: ChainHead | undefined;
  private prepared = 0;
  /**
   * Commit turns: each commit holds the advisory lock (turnLockClass, its turn) while it runs. The class
   * is random per store, so that other instances' turns are other locks.
   */
  private readonly turnLockClass = randomInt(2 ** 31);
  /**
   * Every transaction of the log bounds its waits for locks (the chain lock, a turn, the entries' table): a
   * session holding the chain lock (a stuck CLI, a psql) must not hold governed requests forever, nor let
   * their records pile up. In the BEGIN's own statement string: no round trip of its own.
   */
  private readonly lockWait: string;
  private commitTurns = 0;
  /** Whether the latest commit found the head moved by another appender (then the next one commits under the lock). */
  private headContended = false;
  /** Resolves with the latest commit's turn once it holds that turn's lock, or undefined once it ended. */
  private lastCommitBegun: Promise<number | undefined> = Promise.resolve(undefined);

  private readonly wallClock: () => number;
  /** When this process's clock was last compared with PostgreSQL's, by `wallClock`, and how far ahead it was. */
  private clockComparedAt = -Infinity;
  private clockOffsetMs = 0;
  /** The sweep of erased subjects' mappings a start makes (`unlinkErased`), settled whatever its outcome. */
  private readonly startupSweep: Promise<void>;

  /** `bindingKey`: what the mappings the store makes are bound under (`pseudonymBindingKey`). */
  constructor(
    database: PostgresDatabase,
    private readonly bindingKey: Buffer,
    options: PostgresAuditStoreOptions = {},
  ) {
    this.wallClock = options.wallClock ?? Date.now;
    const threads = options.sealingThreads ?? Math.min(2, availableParallelism());
    const lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
    this.lockWait = `SET LOCAL lock_timeout = ${integerLiteral(lockWaitMs)}`;
    this.sealers = Array.from(
      { length: threads },
      () =>
        new WorkerClient<SealRequest, SealAnswer>(
          compiledWorkerScript('postgres-seal-worker.js'),
          { candorSealWorker: true },
          'access log sealing failed',
          // A batch's strings die young: a larger young generation keeps them out of the old one (less GC).
          { maxYoungGenerationSizeMb: 64 },
        ),
    );
    // Started now, so that the first request does not wait for a thread to boot.
    for (const sealer of this.sealers) sealer.start();
    const queryTimeoutMs = options.queryTimeoutMs ?? lockWaitMs + 20_000;
    this.pool = new Pool({
      connectionString: database.url,
      application_name: AUDIT_APPLICATION_NAME,
      max: 4,
      connectionTimeoutMillis: 5_000,
      query_timeout: queryTimeoutMs,
      // The operating system's probes notice a peer gone without a word (after 10 s idle).
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // And the server ends a session this instance left holding the chain lock as soon as this instance gives up on it.
      options: sessionOptions(database, abandonedSessionBounds(queryTimeoutMs)),
    });
    // A connection the server drops is discarded by the pool (idle) or fails its query (in use). Every
    // client also gets a permanent listener: pg can emit 'error' between checkout and our own listener.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (client) => client.on('error', () => undefined));
    this.partitions = new LogPartitions(this.pool);
    this.erasures = new ErasureListener(
      // Keepalive: an idle LISTEN connection would otherwise never notice the network dropping it silently.
      { connectionString: database.url, application_name: AUDIT_LISTENER_APPLICATION_NAME, connectionTimeoutMillis: 5_000, keepAlive: true },
      (subjectId) => this.dropCachedPseudonyms(subjectId),
      () => this.dropCachedPseudonyms(),
    );
    void this.erasures.listen();
    // A store starting after a crash finishes what the crash interrupted: an erased subject's id must not stay
    // in a mapping because no record about them is appended again. Best effort: appends do it too, per subject.
    this.startupSweep = this.unlinkErased().catch(() => undefined);
  }

  /**
   * Deletes the mapping and notifies every instance's store (this one included) to drop its cached copy. In
   * one transaction: the mapping goes, its pseudonym is remembered as an erasure's, the subject as erased, and
   * the notification is delivered exactly when all commit. Twice: a mapping another appender inserted while
   * the first ran (its snapshot did not show the erasure yet, and the deletion's did not show the insert)
   * committed before the first did, and the second deletion, after it, sees it.
   */
  async forget(subjectId: string): Promise<void> {
    const erasedAt = new Date().toISOString();
    for (let pass = 0; pass < 2; pass++) {
      await inPoolTransaction(this.pool, 'BEGIN', async (client) => {
        const { rows } = await client.query<{ pseudonym: string }>(DELETE_MAPPING, [subjectId]);
        await this.rememberErasedPseudonyms(client, rows.map((row) => row.pseudonym));
        await client.query(REMEMBER_ERASED, [subjectId, erasedAt]);
      });
    }
    this.dropCachedPseudonyms(subjectId);
  }

  /**
   * Deletes the mappings of `subjectIds` (every subject, by default) that raced their erasure. Another appender may have read such a mapping
   * in that moment and records under it, so its pseudonym is remembered as an erasure's — in the transaction
   * that deletes it: a crash between the two would leave records of a pseudonym nothing accounts for, which
   * `audit verify` reports as a deleted mapping.
   */
  private async unlinkErased(subjectIds?: readonly string[]): Promise<void> {
    await inPoolTransaction(this.pool, 'BEGIN', async (client) => {
      const { rows } = await client.query<{ pseudonym: string }>(subjectIds === undefined ? UNLINK_ALL_ERASED : UNLINK_ERASED, subjectIds === undefined ? [] : [subjectIds]);
      await this.rememberErasedPseudonyms(client, rows.map((row) => row.pseudonym));
    });
  }

  /** Accounts for records that will name `pseudonyms` while no mapping does: an erasure's, with their bindings. */
  private async rememberErasedPseudonyms(runner: Pick<PoolClient, 'query'> | Pool, pseudonyms: readonly string[]): Promise<void> {
    if (pseudonyms.length === 0) return;
    const rows = erasedPseudonymRows(this.bindingKey, pseudonyms);
    await runner.query(REMEMBER_ERASED_PSEUDONYMS, [rows.map((row) => row.pseudonym), rows.map((row) => row.binding)]);
  }

  async append(entries: readonly AppendEntry[], committedAt: string): Promise<AppendResult> {
    return this.commit(await this.prepare(entries, committedAt));
  }

  /** Seals `entries` (in the workers) after the head this store expects; nothing is written yet. */
  async prepare(entries: readonly AppendEntry[], committedAt: string): Promise<PreparedBatch> {
    await this.checkClock();
    await this.partitions.cover(committedAt);
    const pseudonyms = await this.pseudonyms(subjectsOf(entries), committedAt);
    const order = ++this.prepared;
    const head = this.expectedHead ?? headOf((await this.pool.query(HEAD)).rows[0]);
    const sealed = await this.seal(entries, pseudonyms, head, committedAt);
    if (order === this.prepared) this.expectedHead = headAfter(sealed.batch);
    return { ...sealed, entries, pseudonyms, committedAt, order };
  }

  /**
   * Commits a prepared batch: ahead of the chain lock when the head is where the batch expects it (the
   * usual case), else under the lock, sealed again after the real head. While other appenders keep moving
   * the head, commits go under the lock directly: copying ahead would be rolled back each time.
   */
  async commit(prepared: PreparedBatch): Promise<AppendResult> {
    const previous = this.lastCommitBegun;
    let begun!: (turn: number | undefined) => void;
    this.lastCommitBegun = new Promise((resolve) => (begun = resolve));
    const turn = this.commitTurns++ % 2 ** 31;
    try {
      const batch = (!this.headContended && (await this.commitAhead(prepared, turn, previous, begun))) || (await this.commitUnderLock(prepared, turn, begun));
      return { batchId: batch.id, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, hash: batch.hash };
    } catch (error) {
      // The head is not where the latest prepared batch expects it any more: read it again next time
      // (and the partitions: a prune elsewhere may have dropped the month this batch needed).
      if (prepared.order === this.prepared) this.expectedHead = undefined;
      this.partitions.forget();
      throw error;
    } finally {
      begun(undefined);
    }
  }

  /**
   * Copies the batch's rows before asking for the chain lock, then, in one round trip, waits for the
   * previous commit of this store to end, takes the lock, checks the head (`candor_audit_expect_head`),
   * writes the batch row and commits. The lock is held for no round trip to this process, and the next
   * batch's rows are copied while this one waits for it. Each commit holds the lock of its turn from its
   * BEGIN, and the next one waits for that lock in PostgreSQL (where the deadlock detector sees every wait),
   * not in this process: the store's batches reach the chain lock in order, unless one falls back to
   * `commitUnderLock` (its turn is released with the rollback, and the next batch may go first). A batch
   * that finds the head elsewhere (another appender, or its predecessor failed) writes nothing: returns
   * undefined then.
   */
  private async commitAhead(prepared: PreparedBatch, turn: number, previous: Promise<number | undefined>, begun: (turn: number) => void): Promise<BatchHeader | undefined> {
    const { batch } = prepared;
    try {
      await inPoolTransaction(
        this.pool,
        this.beginTurn(turn),
        async (client) => {
          begun(turn);
          await copyRows(client, prepared.rows);
        },
        async () => {
          const previousTurn = await previous;
          return [
            ...(previousTurn === undefined ? [] : [`SELECT pg_advisory_xact_lock(${this.turnLockClass}, ${previousTurn})`]),
            `SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`,
            `SELECT candor_audit_expect_head(${[batch.id - 1, batch.firstSeq - 1].map(integerLiteral).join(', ')}, ${[batch.prevHash, batch.committedAt].map(escapeLiteral).join(', ')})`,
            insertBatchRow(batch),
          ].join('; ');
        },
      );
      return batch;
    } catch (error) {
      if ((error as { code?: string }).code === CHAIN_HEAD_MOVED) {
        this.headContended = true;
        return undefined;
      }
      throw error;
    }
  }

  /**
   * Takes its turn's lock (announced at once, so that the next commit waits for it in PostgreSQL), then the
   * entries' table and the chain lock, reads the head, seals the batch again after it when it moved, and
   * writes it.
   */
  private async commitUnderLock(prepared: PreparedBatch, turn: number, begun: (turn: number) => void): Promise<BatchHeader> {
    return inPoolTransaction(this.pool, this.beginTurn(turn), async (client) => {
      begun(turn);
      const head = headIn(await client.query(lockChain('ROW EXCLUSIVE')));
      const committedAt = commitTimeAfter(prepared.committedAt, head.committedAt);
      const { batch, rows } =
        follows(prepared.batch, head) && committedAt === prepared.committedAt ? prepared : await this.seal(prepared.entries, prepared.pseudonyms, head, committedAt);
      if (batch !== prepared.batch && prepared.order === this.prepared) this.expectedHead = headAfter(batch);
      // Found where it was sealed for: nobody else moved the head, and the next commit may copy ahead again.
      this.headContended = batch !== prepared.batch;
      await copyRows(client, rows);
      return batch;
    }, insertBatchRow);
  }

  /**
   * Refuses to append while this process's clock is more than MAX_CLOCK_SKEW_MS from PostgreSQL's (compared
   * again every CLOCK_CHECK_INTERVAL_MS; the round trip's midpoint stands for the moment PostgreSQL read
   * its clock). The refusal fails the batch: its requests get AUDIT_UNAVAILABLE, and the server logs why.
   */
  private async checkClock(): Promise<void> {
    const now = this.wallClock();
    if (now - this.clockComparedAt >= CLOCK_CHECK_INTERVAL_MS || now < this.clockComparedAt) {
      const { rows } = await this.pool.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      const answered = this.wallClock();
      this.clockOffsetMs = (now + answered) / 2 - rows[0].now.getTime();
      this.clockComparedAt = answered;
    }
    if (Math.abs(this.clockOffsetMs) > MAX_CLOCK_SKEW_MS) {
      const seconds = (Math.abs(this.clockOffsetMs) / 1000).toFixed(1);
      throw new Error(
        `this instance's clock is ${seconds} s ${this.clockOffsetMs > 0 ? 'ahead of' : 'behind'} PostgreSQL's: it appends nothing to the access log until they agree within ${MAX_CLOCK_SKEW_MS / 1000} s (commit times would run ahead of, or behind, every other instance's) — synchronise its clock (NTP)`,
      );
    }
  }

  /** Opens a commit's transaction holding its turn's lock. */
  private beginTurn(turn: number): string {
    return `BEGIN; ${this.lockWait}; SELECT pg_advisory_xact_lock(${this.turnLockClass}, ${turn})`;
  }

  async prune(plan: PrunePlan): Promise<PruneResult | undefined> {
    const { before } = plan;
    return this.inPruneTransaction(async (runner, head) => {
      // The head batch is never pruned: the chain must keep an anchor for the next appender.
      const [last] = await runner.query('SELECT id, last_seq, hash FROM audit_batch WHERE id = $1 AND committed_at < $2 AND id < $3', [plan.throughBatchId, before, head.batchId]);
      const [latest] = await runner.query(LATEST_CHECKPOINT_KEY);
      if (!planStillHolds(plan, last, latest)) return undefined;
      // The signed checkpoint commits with the deletion, or neither does.
      await runner.query(...insertCheckpoint(plan.checkpoint, (position) => `$${position}`));
      await runner.query("SET LOCAL candor.audit_prune = 'on'");
      const [{ records }] = await runner.query('SELECT COALESCE(SUM(count), 0) AS records FROM audit_entry WHERE seq <= $1', [last.last_seq]);
      const [{ batches }] = await runner.query('SELECT count(*) AS batches FROM audit_batch WHERE id <= $1', [last.id]);
      // Months holding only pruned batches go whole; the pruned rest of a month is deleted row by row.
      const droppedPartitions = await this.partitions.dropPruned(runner.client, before, Number(last.id), Number(last.last_seq));
      await runner.query('DELETE FROM audit_entry WHERE seq <= $1', [last.last_seq]);
      await runner.query('DELETE FROM audit_batch WHERE id <= $1', [last.id]);
      return { prunedRecords: Number(records), prunedBatches: Number(batches), throughSeq: Number(last.last_seq), droppedPartitions };
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /** Ends the sealing workers abruptly, as a crash would (test seam). */
  async terminateSealers(): Promise<void> {
    await Promise.all(this.sealers.map((sealer) => sealer.terminate()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.sealers.map((sealer) => sealer.close()), this.erasures.close(), this.startupSweep]);
    await this.pool.end();
  }

  /** Seals the entries in runs, in parallel, numbered after `head`, and chains the batch to it. */
  private async seal(entries: readonly AppendEntry[], pseudonyms: ReadonlyMap<string, string>, head: ChainHead, committedAt: string): Promise<{ batch: BatchHeader; rows: Uint8Array[] }> {
    const batchId = head.batchId + 1;
    let firstSeq = head.lastSeq + 1;
    // The runs' codes are transferred, not copied (a 64-request batch packs ~2 MB): a batch sealed again packs anew.
    const sealed = await Promise.all(
      runsOf(entries, pseudonyms, this.sealers.length).map((run, index) => {
        const request = { batchId, firstSeq, committedAt, entries: run.entries };
        firstSeq += run.records;
        return this.sealers[index].request(request, [run.entries.codes.buffer as ArrayBuffer]);
      }),
    );
    // The batch hash is over the raw digests in order; each run's are already back to back.
    const hash = batchHashOfBytes(head.hash, sealed.map((run) => run.digests!));
    return { batch: { id: batchId, firstSeq: head.lastSeq + 1, lastSeq: firstSeq - 1, prevHash: head.hash, hash, committedAt }, rows: sealed.flatMap((run) => run.rows!) };
  }

  /** Runs prune's `work` holding the entries' table and the chain lock, given the head. */
  private inPruneTransaction<T>(work: (runner: Runner, head: StoredHead) => Promise<T>): Promise<T> {
    return inPoolTransaction(this.pool, `BEGIN; ${this.lockWait}; ${lockChain('SHARE ROW EXCLUSIVE')}`, (client, begun) =>
      work({ query: async (sql, parameters) => (await client.query(sql, parameters)).rows, client }, headIn(begun)),
    );
  }

  /**
   * The subjects' pseudonyms, creating missing ones. This runs before the chain transaction (sealing
   * needs them): a mapping whose batch then fails to commit stays, pointing at no record, which is harmless.
   */
  private async pseudonyms(subjectIds: string[], now: string): Promise<Map<string, string>> {
    // The batch's own mapping: filling the bounded cache may drop a mapping this batch still needs.
    const batch = new Map<string, string>();
    const unknown: string[] = [];
    const cache = this.erasures.listening ? this.knownPseudonyms : undefined;
    const drops = this.pseudonymDrops;
    for (const subjectId of subjectIds) {
      const pseudonym = cache?.get(subjectId);
      if (pseudonym === undefined) unknown.push(subjectId);
      else batch.set(subjectId, pseudonym);
    }
    if (unknown.length) {
      const created = unknown.map(() => newPseudonym());
      await this.pool.query(MAP_SUBJECTS, [unknown, created, now, unknown.map((subjectId, index) => pseudonymBinding(this.bindingKey, created[index], subjectId))]);
      const { rows } = await this.pool.query<{ subject_id: string; pseudonym: string; erased: boolean }>(MAPPINGS_OF, [unknown]);
      const cacheable = cache !== undefined && drops === this.pseudonymDrops;
      const raced: string[] = [];
      for (const row of rows) {
        if (row.erased) {
          raced.push(row.subject_id);
          continue;
        }
        if (cacheable) this.knownPseudonyms.set(row.subject_id, row.pseudonym);
        batch.set(row.subject_id, row.pseudonym);
      }
      if (raced.length) await this.unlinkErased(raced);
      const unmapped: string[] = [];
      // Erased subjects: a pseudonym of this batch's own that maps to no one.
      for (const subjectId of unknown) {
        if (batch.has(subjectId)) continue;
        const pseudonym = newPseudonym();
        batch.set(subjectId, pseudonym);
        unmapped.push(pseudonym);
      }
      // Before the batch (sealing needs the pseudonyms): one remembered for a batch that then fails names no record, which is harmless.
      await this.rememberErasedPseudonyms(this.pool, unmapped);
    }
    return batch;
  }

  /** Drops one subject's cached pseudonym, or every one. */
  private dropCachedPseudonyms(subjectId?: string): void {
    if (subjectId === undefined) this.knownPseudonyms.clear();
    else this.knownPseudonyms.delete(subjectId);
    this.pseudonymDrops++;
  }
}
