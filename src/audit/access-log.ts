import type { DatabaseConfig } from '../config';
import type { AppendRecord, AppendResult, AuditStore } from './audit-store';
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
}

export interface AccessLogOptions {
  /** Most records one transaction carries; a larger queue is split (default 50,000). */
  readonly maxBatchRecords?: number;
}

interface Waiting {
  readonly records: AppendRecord[];
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The access log's appender, with group commit: each request hands over its records once, and every
 * request that arrives while a transaction is being committed shares the next one. A request's promise
 * resolves only when its records are durably committed; it rejects when they are not, and the caller
 * must then release no governed data.
 */
export class AccessLog {
  private readonly queue: Waiting[] = [];
  private flushing = false;
  private readonly maxBatchRecords: number;

  constructor(
    readonly store: AuditStore,
    private readonly clock: () => Date = () => new Date(),
    options: AccessLogOptions = {},
  ) {
    this.maxBatchRecords = options.maxBatchRecords ?? 50_000;
  }

  append(records: readonly AccessRecordInput[]): Promise<AppendResult | undefined> {
    if (records.length === 0) return Promise.resolve(undefined);
    const rows = records.map(toAppendRecord);
    return new Promise((resolve, reject) => {
      this.queue.push({ records: rows, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group: Waiting[] = [];
        let size = 0;
        while (this.queue.length > 0 && (group.length === 0 || size + this.queue[0].records.length <= this.maxBatchRecords)) {
          const next = this.queue.shift()!;
          group.push(next);
          size += next.records.length;
        }
        try {
          const result = await this.store.append(
            group.flatMap((waiting) => waiting.records),
            this.clock().toISOString(),
          );
          for (const waiting of group) waiting.resolve(result);
        } catch (error) {
          for (const waiting of group) waiting.reject(error as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

function toAppendRecord(record: AccessRecordInput): AppendRecord {
  return {
    at: record.at.toISOString(),
    requestId: record.requestId,
    actorId: record.actor?.id ?? null,
    actorName: record.actor?.name ?? null,
    actorTeam: record.actor?.team ?? null,
    purpose: record.purpose,
    operationName: record.operationName,
    subjectId: record.subjectId,
    coordinate: record.coordinate,
    category: record.category,
    decision: record.decision,
    reason: record.reason,
    legalBasis: record.legalBasis,
    consentReceiptId: record.consentReceiptId ?? null,
  };
}

/** The appender for the configured store: a worker-thread connection on SQLite, the pool on PostgreSQL. */
export function createAuditStore(database: DatabaseConfig): AuditStore {
  return database.driver === 'sqlite' ? new SqliteAuditStore(database.path) : new PostgresAuditStore(database.url, database.schema);
}
