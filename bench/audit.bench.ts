/**
 * Access-log throughput and flush wait, durably committed into SQLite and PostgreSQL. Each request carries
 * 100 customers × 10 fields = 1,000 logical records. Two ways of loading the log:
 *
 *   closed loop  1, 8 and 64 concurrent requests, each re-submitted the moment the previous one committed
 *                (saturation: the most the log can take; the wait grows with the queue, by Little's law);
 *                and 64 spread over two appenders on the same database, as two instances would be (their
 *                batches contend for the one hash chain)
 *   open loop    64 clients that together offer BENCH_OPEN_RATES records/s (default 100,000, the goal, and
 *                50,000, to show the wait below saturation): each client submits its next request at times
 *                drawn from a Poisson process (fixed draws), and the wait is measured from the *scheduled*
 *                time, so a late or backed-up log counts against it (no coordinated omission)
 *
 * Every point runs BENCH_ROUNDS times (default 3), rounds interleaved, and the table shows the median
 * round; bench/results/audit.json keeps every round. "main busy" is the event-loop utilisation of the
 * main thread during the point (the thread that serves requests in the server), bench's own record
 * generation included; "CPU µs/record" is this process's CPU time (every thread) per committed record.
 * Bounded: BENCH_SECONDS per point (default 5), loopback PostgreSQL only.
 *
 *   npm run build && node dist/bench/audit.bench.js
 *   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test   admin URL used to create a scratch database
 *   BENCH_STORES=postgres,sqlite   which stores (default both); BENCH_OUT_DIR: where audit.json goes (default bench/results)
 */
import 'reflect-metadata';
import { pseudonymBindingKey } from '../src/audit/pseudonym-binding';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessLog, createAuditStore } from '../src/audit/access-log';
import type { AppendEntry } from '../src/audit/audit-store';
import type { EntryItem } from '../src/audit/chain';
import { loadConfig, projectRoot } from '../src/config';
import { createDataSource, migrate } from '../src/storage/data-source';
import { createScratchDatabase } from './scratch-database';

type Driver = 'sqlite' | 'postgres';

const CLOSED_CONCURRENCY = [1, 8, 64];
/** Appenders (each its own store and group-commit writer, like one instance) of the contended closed-loop point. */
const CONTENDING_APPENDERS = 2;
const OPEN_CLIENTS = 64;
const OPEN_RATES = (process.env.BENCH_OPEN_RATES ?? '100000,50000').split(',').map(Number);
const SECONDS_PER_POINT = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const STORES = (process.env.BENCH_STORES ?? 'postgres,sqlite').split(',') as Driver[];
const RECORDS_PER_REQUEST = 1_000;
const FIELDS = ['fullName', 'displayName', 'email', 'phone', 'birthDate', 'country', 'postalAddress', 'favoriteGenres', 'accessibilityNeeds', 'createdAt'];

/**
 * One request's records as the server's access-log plugin hands them over: one entry per subject, whose
 * items are shared by every subject decided alike (the plugin builds one item per field and outcome).
 */
const RELEASED_ITEMS: readonly EntryItem[] = FIELDS.map((field) => ({
  coordinate: `Customer.${field}`, category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract', consentReceiptId: null,
}));

function requestEntries(request: number): AppendEntry[] {
  const at = new Date().toISOString();
  const requestId = `bench-${request}`;
  return Array.from({ length: 100 }, (_, customer) => ({
    at, requestId, actorId: 'bench', actorName: 'Bench', actorTeam: 'Bench', purpose: 'essential.service', operationName: 'Bench',
    subjectId: `cus_bench_${(request * 37 + customer) % 500}`, items: RELEASED_ITEMS,
  }));
}

const quantile = (values: readonly number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
const median = (values: readonly number[]) => quantile(values, 0.5);

/** A uniform draw in [0, 1) fixed by its key: every run offers the same arrival times, whatever the order of draws. */
const uniform = (key: string) => createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;

interface Point {
  readonly recordsPerSecond: number;
  readonly requests: number;
  readonly flushWaitP50Ms: number;
  readonly flushWaitP99Ms: number;
  readonly mainThreadBusy: number;
  /** CPU time of this process (all its threads: main, workers, GC) per committed record; not PostgreSQL's. */
  readonly cpuMicrosPerRecord: number;
}

/** What a point measures: the main thread's event-loop utilisation and the process's CPU time, from now on. */
function meter() {
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const started = performance.now();
  return (records: number, waits: readonly number[]): Point => {
    const used = process.cpuUsage(cpu);
    return {
      recordsPerSecond: Math.round(records / ((performance.now() - started) / 1000)),
      requests: waits.length,
      flushWaitP50Ms: +quantile(waits, 0.5).toFixed(2),
      flushWaitP99Ms: +quantile(waits, 0.99).toFixed(2),
      mainThreadBusy: +performance.eventLoopUtilization(loop).utilization.toFixed(2),
      cpuMicrosPerRecord: +((used.user + used.system) / records).toFixed(2),
    };
  };
}

let nextRequest = 1;

/** Closed loop: `concurrency` clients spread over `logs`, each re-submitting as soon as its previous request committed. */
async function closedLoop(logs: readonly AccessLog[], concurrency: number): Promise<Point> {
  let committed = 0;
  const waits: number[] = [];
  const done = meter();
  const deadline = performance.now() + SECONDS_PER_POINT * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      const log = logs[client % logs.length];
      while (performance.now() < deadline) {
        const entries = requestEntries(nextRequest++);
        const start = performance.now();
        await log.appendEntries(entries);
        waits.push(performance.now() - start);
        committed += RECORDS_PER_REQUEST;
      }
    }),
  );
  return done(committed, waits);
}

/**
 * Open loop: OPEN_CLIENTS clients offering `rate` records/s together, each on its own seeded Poisson
 * schedule. A client sends one request at a time; when it falls behind it sends the next one at once, and
 * the wait still counts from the scheduled time. Requests are scheduled for SECONDS_PER_POINT; the point
 * ends when the last of them committed, and the achieved rate is over that whole time.
 */
async function openLoop(log: AccessLog, rate: number, seed: number): Promise<Point> {
  let committed = 0;
  const waits: number[] = [];
  const meanGapMs = (OPEN_CLIENTS * RECORDS_PER_REQUEST * 1000) / rate;
  const done = meter();
  const started = performance.now();
  const end = started + SECONDS_PER_POINT * 1000;
  await Promise.all(
    Array.from({ length: OPEN_CLIENTS }, async (_, client) => {
      let draw = 0;
      const gap = () => -Math.log(1 - uniform(`${seed}:${client}:${draw++}`)) * meanGapMs;
      for (let scheduled = started + gap(); scheduled < end; scheduled += gap()) {
        const entries = requestEntries(nextRequest++); // built before its time: the request's own work, not the log's
        const early = scheduled - performance.now();
        if (early > 0) await sleep(early);
        await log.appendEntries(entries);
        waits.push(performance.now() - scheduled);
        committed += RECORDS_PER_REQUEST;
      }
    }),
  );
  return done(committed, waits);
}

interface Scenario {
  readonly mode: 'closed' | 'open';
  /** Concurrent requests (closed) or clients (open). */
  readonly concurrency: number;
  /** Appenders the requests are spread over (closed loop). */
  readonly appenders: number;
  /** Offered records/s (open loop only). */
  readonly offered?: number;
}

const SCENARIOS: Scenario[] = [
  ...CLOSED_CONCURRENCY.map((concurrency) => ({ mode: 'closed' as const, concurrency, appenders: 1 })),
  { mode: 'closed', concurrency: 64, appenders: CONTENDING_APPENDERS },
  ...OPEN_RATES.map((offered) => ({ mode: 'open' as const, concurrency: OPEN_CLIENTS, appenders: 1, offered })),
];

async function openLog(driver: Driver) {
  const scratch = await createScratchDatabase(driver, process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  const config = loadConfig({ DATABASE_URL: scratch.url, NODE_ENV: 'test' }, {});
  const dataSource = createDataSource(config.database);
  await dataSource.initialize();
  await migrate(dataSource, config.secret);
  const logs = Array.from({ length: CONTENDING_APPENDERS }, () => new AccessLog(createAuditStore(config.database, pseudonymBindingKey(config.secret))));
  for (let warmUp = 0; warmUp < 20; warmUp++) for (const log of logs) await log.appendEntries(requestEntries(warmUp)); // worker start, pseudonyms, JIT
  return {
    logs,
    close: async () => {
      for (const log of logs) await log.close();
      await dataSource.destroy();
      await scratch.drop();
    },
  };
}

async function main(): Promise<void> {
  // Other jobs share the machine: the 1-minute load average at the start and the end says how much.
  const loadAverage = { start: loadavg()[0] } as { start: number; end?: number };
  const logs = new Map<Driver, Awaited<ReturnType<typeof openLog>>>();
  for (const driver of STORES) logs.set(driver, await openLog(driver));
  const rounds: Array<{ round: number; driver: Driver } & Scenario & Point> = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [driver, { logs: appenders }] of logs) {
        for (const scenario of SCENARIOS) {
          const point =
            scenario.mode === 'closed' ? await closedLoop(appenders.slice(0, scenario.appenders), scenario.concurrency) : await openLoop(appenders[0], scenario.offered!, round);
          rounds.push({ round, driver, ...scenario, ...point });
          process.stderr.write(`round ${round} ${driver} ${scenario.mode} ${scenario.concurrency}×${scenario.appenders}: ${JSON.stringify(point)}\n`);
        }
      }
    }
  } finally {
    for (const { close } of logs.values()) await close();
  }
  loadAverage.end = loadavg()[0];

  // The median round of each point (by records/s for the closed loop, by p99 for the open loop), with the spread.
  const results = [...logs.keys()].flatMap((driver) =>
    SCENARIOS.map((scenario) => {
      const runs = rounds.filter(
        (run) => run.driver === driver && run.mode === scenario.mode && run.concurrency === scenario.concurrency && run.appenders === scenario.appenders && run.offered === scenario.offered,
      );
      const pick = (key: keyof Point) => median(runs.map((run) => run[key]));
      return {
        driver,
        ...scenario,
        rounds: runs.length,
        recordsPerSecond: pick('recordsPerSecond'),
        recordsPerSecondRange: [Math.min(...runs.map((run) => run.recordsPerSecond)), Math.max(...runs.map((run) => run.recordsPerSecond))],
        requests: pick('requests'),
        flushWaitP50Ms: pick('flushWaitP50Ms'),
        flushWaitP99Ms: pick('flushWaitP99Ms'),
        flushWaitP99MsRange: [Math.min(...runs.map((run) => run.flushWaitP99Ms)), Math.max(...runs.map((run) => run.flushWaitP99Ms))],
        mainThreadBusy: pick('mainThreadBusy'),
        cpuMicrosPerRecord: pick('cpuMicrosPerRecord'),
      };
    }),
  );

  console.log(`\nAccess-log throughput (1,000 records per request, ${SECONDS_PER_POINT} s per point, durable commits, median of ${ROUNDS} rounds)`);
  console.log(`1-minute load average ${loadAverage.start.toFixed(2)} at the start, ${loadAverage.end.toFixed(2)} at the end\n`);
  console.log('store       mode    clients  appenders  offered/s   records/s (min–max)        flush wait p50 ms   p99 ms (min–max)        main busy  CPU µs/record');
  for (const row of results) {
    const cells = [
      row.driver.padEnd(12),
      row.mode.padEnd(8),
      String(row.concurrency).padStart(7),
      String(row.appenders).padStart(10),
      (row.offered ? String(row.offered) : '—').padStart(10),
      `${String(row.recordsPerSecond).padStart(10)} (${row.recordsPerSecondRange.join('–')})`.padEnd(27),
      String(row.flushWaitP50Ms).padStart(18),
      `${String(row.flushWaitP99Ms).padStart(9)} (${row.flushWaitP99MsRange.join('–')})`.padEnd(24),
      `${Math.round(row.mainThreadBusy * 100)} %`.padStart(9),
      String(row.cpuMicrosPerRecord).padStart(14),
    ];
    console.log(cells.join(' '));
  }
  const directory = process.env.BENCH_OUT_DIR ?? join(projectRoot(), 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = join(directory, 'audit.json');
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage };
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine, secondsPerPoint: SECONDS_PER_POINT, openLoopClients: OPEN_CLIENTS, results, rounds }, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
