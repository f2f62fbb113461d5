import type { AppendEntry, AppendResult, AuditStore, PrunePlan, PruneResult } from './audit-store';
import type { WorkerRequest, WorkerResponse } from './sqlite-audit-worker';
import { compiledWorkerScript, WorkerClient } from './worker-client';

/**
 * Appends to SQLite through a worker thread holding its own connection. If the worker dies, pending
 * appends fail (the caller answers AUDIT_UNAVAILABLE) and the next append starts a new worker.
 */
export class SqliteAuditStore implements AuditStore {
  private readonly worker: WorkerClient<WorkerRequest, WorkerResponse>;

  /** `bindingKey`: what the mappings the store makes are bound under (`pseudonymBindingKey`). */
  constructor(path: string, bindingKey: Buffer) {
    this.worker = new WorkerClient(compiledWorkerScript('sqlite-audit-worker.js'), { candorAuditDatabase: path, candorPseudonymBindingKey: bindingKey }, 'access log write failed');
  }

  async append(entries: readonly AppendEntry[], committedAt: string): Promise<AppendResult> {
    return (await this.worker.request({ kind: 'append', entries, committedAt })).result as AppendResult;
  }

  async prune(plan: PrunePlan): Promise<PruneResult | undefined> {
    return ((await this.worker.request({ kind: 'prune', plan })).result as PruneResult | null) ?? undefined;
  }

  async forget(subjectId: string): Promise<void> {
    await this.worker.request({ kind: 'forget', subjectId });
  }

  async ping(): Promise<void> {
    await this.worker.request({ kind: 'ping' });
  }

  /** Test seam: ends the worker abruptly, as a crash would. */
  async terminateWorker(): Promise<void> {
    await this.worker.terminate();
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}
