/**
 * What the benchmarks that drive real Candor processes share: servers started as `node dist/src/cli/main.js
 * serve` (the tests' `startChildServer`: own process group, port 0), a GraphQL client, closed-loop load,
 * quantiles and the results file with the machine it ran on.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { projectRoot } from '../src/config';
import { type ChildServer, startChildServer } from '../test/support/child-server';
import { createScratchDatabase } from './scratch-database';

/** `BENCH_PG_URL` (default the test database): where scratch PostgreSQL databases are created. */
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Demo keys (seeded by `serve` on an empty store) and the purposes they may declare. */
export const DEMO = {
  support: { key: 'demo-support-key', purpose: 'essential.service' },
  marketing: { key: 'demo-marketing-key', purpose: 'marketing.communications' },
  compliance: { key: 'demo-compliance-key', purpose: 'essential.legal_obligation' },
} as const;

export interface Operation {
  readonly key: string;
  readonly purpose: string;
  readonly query: string;
}

export interface GraphQLBody {
  data?: Record<string, any> | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/** POSTs one operation; the caller judges the answer. */
export async function post(url: string, { key, purpose, query }: Operation): Promise<{ status: number; body: GraphQLBody }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-purpose': purpose }, body: JSON.stringify({ query }) });
  return { status: response.status, body: (await response.json()) as GraphQLBody };
}

/**
 * Starts `count` servers on one database, one after the other: the first applies the migrations and seeds
 * the demo, the others find both done (concurrent starts do not coordinate migrations). Logs at `warn`, so
 * the output kept in memory stays small; no rate limit, so the load is not refused.
 */
async function startServers(databaseUrl: string, count: number): Promise<ChildServer[]> {
  const servers: ChildServer[] = [];
  try {
    for (let index = 0; index < count; index++) servers.push(await startChildServer({ DATABASE_URL: databaseUrl, CANDOR_LOG_LEVEL: 'warn', CANDOR_RATE_LIMIT_PER_MINUTE: '0' }));
  } catch (error) {
    await stopServers(servers);
    throw error;
  }
  return servers;
}

/** SIGTERM to each group (a graceful stop that flushes the log); SIGKILL to what still runs 10 s later. */
async function stopServers(servers: readonly ChildServer[]): Promise<void> {
  await Promise.all(servers.map((server) => Promise.race([server.kill('SIGTERM'), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]).then(() => server.kill('SIGKILL'))));
}

export interface LoadWindow {
  readonly requests: number;
  /** Thrown fetches, non-200 answers and answers without data. */
  readonly failures: number;
  readonly seconds: number;
  readonly latenciesMs: number[];
  /** Error codes in the answers (`CONSENT_REQUIRED` for withheld fields is expected). */
  readonly codes: Record<string, number>;
}

export interface Load {
  /** What happened since the previous `take()` (or the start). */
  take(): LoadWindow;
  /** Stops the loops and returns what happened since the previous `take()`. */
  stop(): Promise<LoadWindow>;
}

/**
 * Closed-loop load: `concurrency` loops, each sending its next operation as soon as the previous answer
 * arrived. Loop `worker` sends `operation(worker, i)` to `urls[(worker + i) % urls.length]`.
 */
export function startLoad(urls: readonly string[], concurrency: number, operation: (worker: number, iteration: number) => Operation): Load {
  let running = true;
  let window = { requests: 0, failures: 0, started: performance.now(), latenciesMs: [] as number[], codes: {} as Record<string, number> };
  const loop = async (worker: number) => {
    for (let i = 0; running; i++) {
      const started = performance.now();
      try {
        const { status, body } = await post(urls[(worker + i) % urls.length], operation(worker, i));
        if (status !== 200 || !body.data) window.failures++;
        for (const error of body.errors ?? []) window.codes[error.extensions?.code ?? 'none'] = (window.codes[error.extensions?.code ?? 'none'] ?? 0) + 1;
      } catch {
        window.failures++;
      }
      window.requests++;
      window.latenciesMs.push(performance.now() - started);
    }
  };
  const loops = Promise.all(Array.from({ length: concurrency }, (_, worker) => loop(worker)));
  const take = (): LoadWindow => {
    const now = performance.now();
    const { requests, failures, started, latenciesMs, codes } = window;
    window = { requests: 0, failures: 0, started: now, latenciesMs: [], codes: {} };
    return { requests, failures, seconds: (now - started) / 1000, latenciesMs, codes };
  };
  return {
    take,
    async stop() {
      running = false;
      await loops;
      return take();
    },
  };
}

/** Several load windows as one. */
export function combine(windows: readonly LoadWindow[]): LoadWindow {
  const codes: Record<string, number> = {};
  for (const window of windows) for (const [code, count] of Object.entries(window.codes)) codes[code] = (codes[code] ?? 0) + count;
  const sum = (key: 'requests' | 'failures' | 'seconds') => windows.reduce((total, window) => total + window[key], 0);
  return { requests: sum('requests'), failures: sum('failures'), seconds: sum('seconds'), latenciesMs: windows.flatMap((window) => window.latenciesMs), codes };
}

/** Nearest-rank quantile of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** p50, p99 and max in ms, rounded to 0.1 ms. */
export function spread(valuesMs: readonly number[]): { p50Ms: number; p99Ms: number; maxMs: number } {
  const round = (value: number) => Math.round(value * 10) / 10;
  // A loop, not Math.max(...values): a 10-minute soak collects more latencies than a call's arguments may hold.
  const maxMs = valuesMs.reduce((max, value) => (value > max ? value : max), -Infinity);
  return { p50Ms: round(quantile(valuesMs, 0.5)), p99Ms: round(quantile(valuesMs, 0.99)), maxMs: round(maxMs) };
}

/** The requests, their rate and latency of one load window, for the results file. */
export function describeLoad(window: LoadWindow) {
  return { requests: window.requests, requestsPerSecond: Math.round(window.requests / window.seconds), failures: window.failures, latency: spread(window.latenciesMs), errorCodes: window.codes };
}

export interface Fleet {
  readonly servers: readonly ChildServer[];
  readonly urls: readonly string[];
  /** Described before the servers started. */
  readonly machine: Awaited<ReturnType<typeof describeMachine>>;
  /** `startLoad`, stopped with the fleet if the benchmark has not stopped it. */
  startLoad: typeof startLoad;
}

/**
 * Runs a benchmark against `count` servers on a scratch PostgreSQL database, then stops its load and the
 * servers and drops the database, whatever happened; exits 0, or 1 with the error.
 */
export function runOnFleet(count: number, benchmark: (fleet: Fleet) => Promise<void>): void {
  const run = async () => {
    const database = await createScratchDatabase('postgres', ADMIN_URL);
    const loads: Load[] = [];
    let servers: ChildServer[] = [];
    try {
      const machine = await describeMachine(database.url);
      servers = await startServers(database.url, count);
      const tracked: typeof startLoad = (...args) => {
        const load = startLoad(...args);
        loads.push(load);
        return load;
      };
      await benchmark({ servers, urls: servers.map((server) => server.url), machine, startLoad: tracked });
    } finally {
      for (const load of loads) await load.stop();
      await stopServers(servers);
      await database.drop();
    }
  };
  run().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * The machine and the code measured. The development machines have 2 cores shared with other benchmarks and
 * builds, so the load average is recorded too. `commit` is `BENCH_COMMIT` or the checkout's HEAD, with the
 * source files that differ from it.
 */
export async function describeMachine(postgresUrl?: string) {
  let postgres: string | undefined;
  if (postgresUrl) {
    const client = new Client({ connectionString: postgresUrl });
    await client.connect();
    postgres = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
    await client.end();
  }
  const git = (...args: string[]) => execFileSync('git', args, { cwd: projectRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  let code: { commit?: string; uncommittedSourceChanges?: string[] } = { commit: process.env.BENCH_COMMIT };
  if (!code.commit) {
    try {
      code = { commit: git('rev-parse', 'HEAD'), uncommittedSourceChanges: git('status', '--porcelain', '--', 'src', 'migrations').split('\n').filter(Boolean) };
    } catch {
      code = {}; // not a git checkout
    }
  }
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, postgres, loadAverage1m: +loadavg()[0].toFixed(2), ...code };
}

/** Writes `bench/results/<name>.json`: when, where, then the body. */
export function writeResults(name: string, body: Record<string, unknown>): string {
  const directory = join(projectRoot(), 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = join(directory, `${name}.json`);
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), ...body }, null, 2) + '\n');
  return file;
}
