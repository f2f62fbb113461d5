import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../config';
import type { AppendEntry, AppendResult, AuditStore, PruneResult } from './audit-store';
import type { WorkerRequest, WorkerResponse } from './sqlite-audit-worker';

/** A worker request before it gets its id (distributes over the request kinds). */
type RequestBody = WorkerRequest extends infer Request ? (Request extends WorkerRequest ? Omit<Request, 'id'> : never) : never;

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** The compiled worker (tests run from TypeScript sources, the worker always from dist/). */
function workerScript(): string {
  const sibling = join(__dirname, 'sqlite-audit-worker.js');
  return existsSync(sibling) ? sibling : join(projectRoot(), 'dist', 'src', 'audit', 'sqlite-audit-worker.js');
}

/**
 * Appends to SQLite through a worker thread holding its own connection. If the worker dies, pending
 * appends fail (the caller answers AUDIT_UNAVAILABLE) and the next append starts a new worker.
 */
export class SqliteAuditStore implements AuditStore {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly path: string) {}

  append(entries: readonly AppendEntry[], committedAt: string): Promise<AppendResult> {
    return this.request({ kind: 'append', entries, committedAt }) as Promise<AppendResult>;
  }

  async prune(before: string): Promise<PruneResult | undefined> {
    return ((await this.request({ kind: 'prune', before })) as PruneResult | null) ?? undefined;
  }

  async forget(subjectId: string): Promise<void> {
    await this.request({ kind: 'forget', subjectId });
  }

  async ping(): Promise<void> {
    await this.request({ kind: 'ping' });
  }

  /** Test seam: ends the worker abruptly, as a crash would. */
  async terminateWorker(): Promise<void> {
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private request(body: RequestBody): Promise<unknown> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...body, id } as WorkerRequest);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerScript(), { workerData: { candorAuditDatabase: this.path } });
    worker.on('message', (response: WorkerResponse) => {
      const pending = this.pending.get(response.id);
      if (!pending) return;
      this.pending.delete(response.id);
      if (response.error !== undefined) pending.reject(new Error(`access log write failed: ${response.error}`));
      else pending.resolve(response.result);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`access log worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
