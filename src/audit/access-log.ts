import type { DatabaseConfig } from '../config';
import { type AppendEntry, type AppendResult, type AuditStore, UnstorableRecordError, unstorableValue } from './audit-store';
import type { AccessDecision } from './chain';
import { PostgresAuditStore } from './postgres-audit-store';
import { SqliteAuditStore } from './sqlite-audit-store';

export interface AccessActor {
  readonly id: string;
  readonly name: string;
  readonly team: string;
}

/** One logical access record before it is sealed. Values are never part of it. */
export interface AccessRecordInput {
  readonly at: Date;
  readonly requestId: string;
  readonly actor: AccessActor | null;
  readonly purpose: string | null;
  readonly operationName: string | null;
  readonly subjectId: string | null;
  readonly coordinate: string | null;
  readonly category: string | null;
  readonly decision: AccessDecision;
  readonly reason: string;
  readonly legalBasis: string | null;
  readonly consentReceiptId?: string | null;
  /** MASKED records: the strategy the value was reduced by. */
  readonly maskStrategy?: string | null;
}

export interface AccessLogOptions {
  /** Most records one transaction carries; a larger queue is split (default 50,000). */
  readonly maxBatchRecords?: number;
  /**
   * Most records waiting for a transaction (default 250,000, ≈ 250 requests of 1,000): past it, appends are
   * refused at once (AUDIT_UNAVAILABLE) instead of queueing without bound behind a store that stopped answering.
   */
  readonly maxQueuedRecords?: number;
  /** Told about every committed batch (records, seconds it took, each request's entries): metrics. */
  readonly onFlush?: (records: number, seconds: number, entriesByRequest: ReadonlyArray<readonly AppendEntry[]>) => void;
  /** Told about every batch that failed to commit, and whether it is the first since the log last committed: metrics, the operator's log. */
  readonly onFailure?: (error: Error, records: number, firstSinceCommit: boolean) => void;
}

/**
 * A store that seals a batch apart from committing it, so the log seals the next batch while the
 * previous one commits. `commit` must keep the chain linear whatever `prepare` assumed, and whatever
 * commits overlap (PostgreSQL).
 */
export interface PipelinedAuditStore<Prepared> extends AuditStore {
  /** How many commits may run at once; they are started in the order their batches were prepared. */
  readonly commitsInFlight: number;
  prepare(entries: readonly AppendEntry[], committedAt: string): Promise<Prepared>;
  commit(prepared: Prepared): Promise<AppendResult>;
}

/** The log's store is not keeping up (or not answering): records are refused rather than queued without bound. */
export class LogBackedUpError extends Error {
  constructor(queued: number) {
    super(`the access log has ${queued} records waiting for its store: refused until it catches up`);
    this.name = 'LogBackedUpError';
  }
}

const isPipelined = (store: AuditStore): store is PipelinedAuditStore<unknown> => typeof (store as Partial<PipelinedAuditStore<unknown>>).prepare === 'function';

interface Waiting {
  readonly entries: AppendEntry[];
  readonly size: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The access log's appender, with group commit: each request hands over its records once, and every
 * request that arrives while a transaction is being committed shares the next one. A request's promise
 * resolves only when its records are durably committed; it rejects when they are not, and the caller
 * must then release no governed data. On a pipelined store the next group is sealed while the previous
 * ones commit, and up to the store's `commitsInFlight` commits overlap, started in order.
 */
export class AccessLog {
  private readonly queue: Waiting[] = [];
  private flushing = false;
  /** The flush loop while `flushing`: it ends once the queue is empty and no commit is in flight. */
  private flushRun: Promise<void> | undefined;
  /** Wakes a flush that waits for its commit in flight, so a new request is sealed meanwhile. */
  private wake: (() => void) | undefined;
  private readonly maxBatchRecords: number;
  private readonly maxQueuedRecords: number;
  /** Records in `queue`. */
  private queuedRecords = 0;
  private readonly onFlush: AccessLogOptions['onFlush'];
  private readonly onFailure: AccessLogOptions['onFailure'];
  /** When the latest commit failed (ms since the epoch), while no later batch has committed since. */
  private latestFailureAt: number | undefined;
  /** Batches started so far, and which of them failed last: commits overlap, and an older one's success clears no newer failure. */
  private batchesStarted = 0;
  private latestFailedBatch = 0;

  constructor(
    readonly store: AuditStore,
    private readonly clock: () => Date = () => new Date(),
    options: AccessLogOptions = {},
  ) {
    this.maxBatchRecords = options.maxBatchRecords ?? 50_000;
    this.maxQueuedRecords = options.maxQueuedRecords ?? 250_000;
    this.onFlush = options.onFlush;
    this.onFailure = options.onFailure;
  }

  /** Appends `records` and resolves once they are durably committed (rejects when they are not). */
  append(records: readonly AccessRecordInput[]): Promise<AppendResult | undefined> {
    return this.appendEntries(entriesOf(records));
  }

  /**
   * Appends records already grouped into entries (one per request and subject), as `append` does. Rejects
   * at once, with UnstorableRecordError, entries holding a value the store cannot take.
   */
  appendEntries(entries: readonly AppendEntry[]): Promise<AppendResult | undefined> {
    const size = entries.reduce((sum, entry) => sum + entry.items.length, 0);
    if (size === 0) return Promise.resolve(undefined);
    const unstorable = unstorableValue(entries);
    if (unstorable !== undefined) return Promise.reject(new UnstorableRecordError(unstorable));
    if (this.queuedRecords + size > this.maxQueuedRecords) return Promise.reject(new LogBackedUpError(this.queuedRecords));
    return new Promise((resolve, reject) => {
      this.queue.push({ entries: [...entries], size, resolve, reject });
      this.queuedRecords += size;
      if (!this.flushing) this.flushRun = this.flush();
      else this.wake?.();
    });
  }

  /** Whether the log's store answers (readiness). */
  ping(): Promise<void> {
    return this.store.ping();
  }

  /**
   * Whether a commit failed within the last `windowMs` and none has succeeded since (readiness): the store
   * may answer a ping and still refuse the log's writes (a lock held past the wait, a full disk, a trigger).
   */
  failedWithin(windowMs: number, now = Date.now()): boolean {
    return this.latestFailureAt !== undefined && now - this.latestFailureAt < windowMs;
  }

  /** Deletes a subject's pseudonym mapping (erasure): their records stay, and verify, but are unlinked. */
  forgetSubject(subjectId: string): Promise<void> {
    return this.store.forget(subjectId);
  }

  /** Resolves once what is queued or in flight (a refusal recorded after its answer, say) is committed or failed. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushRun;
  }

  /** Commits what is queued or in flight, then closes the store. */
  async close(): Promise<void> {
    await this.drain();
    return this.store.close();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    const store = this.store;
    // Commits in flight while the next group is sealed (pipelined stores only), oldest first; they never reject.
    const committing: Promise<void>[] = [];
    try {
      for (;;) {
        if (this.queue.length === 0) {
          if (committing.length === 0) break;
          const inFlight = Promise.all(committing);
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            void inFlight.then(() => resolve());
          });
          this.wake = undefined;
          continue;
        }
        const group = this.nextGroup();
        const entries = group.flatMap((waiting) => waiting.entries);
        const committedAt = this.clock().toISOString();
        const started = performance.now();
        if (!isPipelined(store)) {
          await this.settle(group, ++this.batchesStarted, started, store.append(entries, committedAt));
          continue;
        }
        let prepared: unknown;
        const batch = ++this.batchesStarted;
        try {
          prepared = await store.prepare(entries, committedAt);
        } catch (error) {
          this.failed(batch, group, error as Error);
          for (const waiting of group) waiting.reject(error as Error);
          continue;
        }
        while (committing.length >= store.commitsInFlight) await Promise.race(committing);
        const commit: Promise<void> = this.settle(group, batch, started, store.commit(prepared)).then(() => {
          committing.splice(committing.indexOf(commit), 1);
        });
        committing.push(commit);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The next group to commit: at least one request, then as many as fit in `maxBatchRecords`. */
  private nextGroup(): Waiting[] {
    const group: Waiting[] = [];
    let size = 0;
    while (this.queue.length > 0 && (group.length === 0 || size + this.queue[0].size <= this.maxBatchRecords)) {
      const next = this.queue.shift()!;
      group.push(next);
      size += next.size;
      this.queuedRecords -= next.size;
    }
    return group;
  }

  /** Resolves the group's requests when `committed` does, rejects them when it fails. */
  private async settle(group: readonly Waiting[], batch: number, started: number, committed: Promise<AppendResult>): Promise<void> {
    try {
      const result = await committed;
      if (batch > this.latestFailedBatch) this.latestFailureAt = undefined;
      this.onFlush?.(
        group.reduce((sum, waiting) => sum + waiting.size, 0),
        (performance.now() - started) / 1000,
        group.map((waiting) => waiting.entries),
      );
      for (const waiting of group) waiting.resolve(result);
    } catch (error) {
      this.failed(batch, group, error as Error);
      for (const waiting of group) waiting.reject(error as Error);
    }
  }

  private failed(batch: number, group: readonly Waiting[], error: Error): void {
    const firstSinceCommit = this.latestFailureAt === undefined;
    this.latestFailureAt = Date.now();
    this.latestFailedBatch = Math.max(this.latestFailedBatch, batch);
    this.onFailure?.(error, group.reduce((sum, waiting) => sum + waiting.size, 0), firstSinceCommit);
  }
}

/**
 * Packs records into entries: the records of one request about one subject share an entry (and its
 * header), which is how the log stores them.
 */
export function entriesOf(records: readonly AccessRecordInput[]): AppendEntry[] {
  const entries: Array<AppendEntry & { items: AppendEntry['items'][number][] }> = [];
  const bySubject = new Map<string | null, number[]>();
  let lastAt: Date | undefined;
  let lastAtText = '';
  for (const record of records) {
    if (record.at !== lastAt) {
      lastAt = record.at;
      lastAtText = record.at.toISOString();
    }
    const actorId = record.actor?.id ?? null;
    // Records of one request about one subject share a header; anything else starts a new entry.
    const sameHeader = (index: number) => {
      const candidate = entries[index];
      return candidate.requestId === record.requestId && candidate.at === lastAtText && candidate.actorId === actorId && candidate.purpose === record.purpose && candidate.operationName === record.operationName;
    };
    const candidates = bySubject.get(record.subjectId);
    let entry: (typeof entries)[number] | undefined;
    if (candidates) for (const index of candidates) if (sameHeader(index)) entry = entries[index];
    if (!entry) {
      entry = {
        at: lastAtText,
        requestId: record.requestId,
        actorId,
        actorName: record.actor?.name ?? null,
        actorTeam: record.actor?.team ?? null,
        purpose: record.purpose,
        operationName: record.operationName,
        subjectId: record.subjectId,
        items: [],
      };
      if (candidates) candidates.push(entries.length);
      else bySubject.set(record.subjectId, [entries.length]);
      entries.push(entry);
    }
    entry.items.push({ coordinate: record.coordinate, category: record.category, decision: record.decision, reason: record.reason, legalBasis: record.legalBasis, consentReceiptId: record.consentReceiptId ?? null, ...(record.decision === 'MASKED' ? { maskStrategy: record.maskStrategy ?? null } : {}) });
  }
  return entries;
}

/**
 * The appender for the configured store: a worker-thread connection on SQLite, the pool on PostgreSQL.
 * `bindingKey` (`pseudonymBindingKey`) binds each mapping the store makes.
 */
export function createAuditStore(database: DatabaseConfig, bindingKey: Buffer): AuditStore {
  return database.driver === 'sqlite' ? new SqliteAuditStore(database.path, bindingKey) : new PostgresAuditStore(database, bindingKey);
}
