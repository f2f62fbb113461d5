import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ResourceLimits, type TransferListItem, Worker } from 'node:worker_threads';
import { projectRoot } from '../config';

/** A compiled worker script of this folder (tests run from TypeScript sources, workers always from dist/). */
export function compiledWorkerScript(file: string): string {
  const sibling = join(__dirname, file);
  return existsSync(sibling) ? sibling : join(projectRoot(), 'dist', 'src', 'audit', file);
}

/** What every worker answer carries: the request's id, and an error message when it failed. */
export interface WorkerAnswer {
  readonly id: number;
  readonly error?: string;
}

/** A request waiting for its answer, and the worker it was sent to (only that worker's death fails it). */
type Pending<Answer> = { resolve: (answer: Answer) => void; reject: (error: Error) => void; worker: Worker };

/** A request before it gets its id; distributes over a union of request kinds. */
type WithoutId<Request> = Request extends unknown ? Omit<Request, 'id'> : never;

/**
 * Requests to a worker thread, each answered once by id. The worker starts with `start` or on the first
 * request; if it dies, every pending request rejects (none hangs) and the next request starts a new
 * worker. An idle worker does not keep the process alive; one with requests pending does.
 */
export class WorkerClient<Request extends { readonly id: number }, Answer extends WorkerAnswer> {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending<Answer>>();
  private nextId = 1;

  /**
   * @param script  the worker's compiled file (`compiledWorkerScript`)
   * @param workerData  what the worker is started with
   * @param failure  prefixes the error message of a request the worker answered with an error
   */
  constructor(
    private readonly script: string,
    private readonly workerData: unknown,
    private readonly failure: string,
    private readonly resourceLimits?: ResourceLimits,
  ) {}

  /** Sends `body` with a fresh id; `transfer` lists buffers handed over rather than copied. */
  request(body: WithoutId<Request>, transfer: readonly TransferListItem[] = []): Promise<Answer> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      worker.ref();
      worker.postMessage({ ...body, id }, transfer);
    });
  }

  /** Starts the worker now (if it is not running), so that the first request does not wait for it. */
  start(): Worker {
    return this.worker ?? this.startWorker();
  }

  /** Ends the worker abruptly, as a crash would (test seam); pending requests reject. */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private startWorker(): Worker {
    const worker = new Worker(this.script, { workerData: this.workerData, resourceLimits: this.resourceLimits });
    worker.on('message', (answer: Answer) => {
      const pending = this.pending.get(answer.id);
      if (!pending) return;
      this.pending.delete(answer.id);
      if (this.pending.size === 0) worker.unref();
      if (answer.error !== undefined) pending.reject(new Error(`${this.failure}: ${answer.error}`));
      else pending.resolve(answer);
    });
    // A dead worker's 'error' comes before its 'exit': a request may reach the new worker in between, and the
    // old one's exit must not fail it.
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, pending] of this.pending) {
        if (pending.worker !== worker) continue;
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${this.failure}: worker exited (${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}
