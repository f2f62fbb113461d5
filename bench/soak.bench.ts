/**
 * Memory under steady load: does the server's resident set stay flat (no per-request state outliving its
 * request)?
 *
 * One Candor process on a scratch PostgreSQL database (demo seed, durable access log on), closed-loop load
 * from CONCURRENCY loops for SECONDS: a mix of released reads (support, `essential.service`, 20 customers)
 * and partly withheld ones (marketing, one customer or 10 customers' e-mail, `CONSENT_REQUIRED` errors for
 * those who did not consent). Every 10 s the server's VmRSS (`/proc/<pid>/status`) and its V8 heap in use
 * (`/metrics`) are sampled. The verdict is on the least-squares slope of RSS over the second half (the first
 * half includes the heap growing to its working size and JIT warm-up).
 *
 * Threshold: "flat" when |slope| < 1 MiB/min. The question is whether per-request state outlives its request;
 * a request allocates tens of KB (context, loaders, decisions, access records) and at ~75 requests/s
 * 1 MiB/min is ~230 bytes a request, so keeping any of that state would be tens of MiB/min, far above
 * it. The slope's standard error is reported too: V8's heap saws by ~100 MiB between major GCs, so one
 * 10-minute run cannot resolve drifts much smaller than twice that error. The lowest heap in use per minute
 * (the level just after a major GC) is the cleaner sign of retained JavaScript state.
 *
 *   npm run bench:soak     (CANDOR_SOAK_SECONDS default 600, CANDOR_SOAK_CONCURRENCY default 8)
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { combine, DEMO, describeLoad, type Load, type LoadWindow, type Operation, post, runOnFleet, writeResults } from './child-candor';

const SECONDS = Number(process.env.CANDOR_SOAK_SECONDS ?? 600);
const CONCURRENCY = Number(process.env.CANDOR_SOAK_CONCURRENCY ?? 8);
const SAMPLE_SECONDS = 10;
const FLAT_MIB_PER_MINUTE = 1;
const MiB = 2 ** 20;

/** Resident set of `pid` in bytes, as the kernel counts it. */
function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** One gauge of the server's Prometheus metrics. */
function gauge(metrics: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics);
  return match ? Number(match[1]) : NaN;
}

/** Least-squares slope of y over x, with its standard error. */
function slope(points: ReadonlyArray<readonly [number, number]>): { slope: number; standardError: number } {
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const value = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0) / sxx;
  const residuals = points.reduce((sum, [x, y]) => sum + (y - meanY - value * (x - meanX)) ** 2, 0);
  return { slope: value, standardError: n > 2 ? Math.sqrt(residuals / (n - 2) / sxx) : NaN };
}

interface Sample {
  readonly atSeconds: number;
  readonly rssMiB: number;
  /** V8's heap: committed (total) and in use. */
  readonly heapTotalMiB: number;
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
  /** Of the load in the 10 s before the sample. */
  readonly requestsPerSecond: number;
  readonly failures: number;
}

const mib = (bytes: number) => +(bytes / MiB).toFixed(1);

runOnFleet(1, async ({ servers: [server], machine, startLoad }) => {
  const pid = server.process.pid!;
  const metricsUrl = server.url.replace(/\/graphql$/, '/metrics');
  let load: Load | undefined;

  const listed = await post(server.url, { ...DEMO.support, query: '{ customers(limit: 200) { id } }' });
  const ids: string[] = listed.body.data!.customers.map((customer: { id: string }) => customer.id);
  const operation = (worker: number, i: number): Operation => {
    const n = worker * 7919 + i;
    if (n % 3 === 0) return { ...DEMO.support, query: `{ customers(limit: 20, offset: ${n % 180}) { id fullName email phone country postalAddress } }` };
    if (n % 3 === 1) return { ...DEMO.marketing, query: `{ customer(id: "${ids[n % ids.length]}") { id email } }` };
    return { ...DEMO.marketing, query: `{ customers(limit: 10, offset: ${n % 190}) { id email } }` };
  };

  const samples: Sample[] = [];
  const sample = async (atSeconds: number) => {
    const metrics = await (await fetch(metricsUrl)).text();
    const window = load?.take();
    const entry: Sample = {
      atSeconds,
      rssMiB: mib(residentBytes(pid)),
      heapTotalMiB: mib(gauge(metrics, 'nodejs_heap_size_total_bytes')),
      heapUsedMiB: mib(gauge(metrics, 'nodejs_heap_size_used_bytes')),
      externalMiB: mib(gauge(metrics, 'nodejs_external_memory_bytes')),
      requestsPerSecond: window ? Math.round(window.requests / window.seconds) : 0,
      failures: window?.failures ?? 0,
    };
    samples.push(entry);
    console.log(`${String(atSeconds).padStart(5)} s  RSS ${String(entry.rssMiB).padStart(6)} MiB  heap ${String(entry.heapUsedMiB).padStart(6)} MiB  ${String(entry.requestsPerSecond).padStart(4)} req/s  ${entry.failures} failures`);
    return window;
  };

  await sample(0); // idle, right after start-up and seeding
  const started = performance.now();
  load = startLoad([server.url], CONCURRENCY, operation);
  const windows: LoadWindow[] = [];
  for (let tick = 1; tick * SAMPLE_SECONDS <= SECONDS; tick++) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + tick * SAMPLE_SECONDS * 1000 - performance.now())));
    windows.push((await sample(tick * SAMPLE_SECONDS))!);
  }
  await load.stop();
  const total = describeLoad(combine(windows));

  type Measure = 'rssMiB' | 'heapTotalMiB' | 'heapUsedMiB';
  const secondHalf = samples.filter((entry) => entry.atSeconds >= SECONDS / 2);
  const trend = (key: Measure) => {
    const values = samples.map((entry) => entry[key]);
    const fit = slope(secondHalf.map((entry) => [entry.atSeconds / 60, entry[key]] as const));
    return { startMiB: values[0], endMiB: values[values.length - 1], maxMiB: Math.max(...values), secondHalfSlopeMiBPerMinute: +fit.slope.toFixed(2), standardError: +fit.standardError.toFixed(2) };
  };
  const rss = trend('rssMiB');
  const requestsPerMinute = total.requestsPerSecond * 60;
  const summary = {
    rss,
    heapTotal: trend('heapTotalMiB'),
    heapUsed: trend('heapUsedMiB'),
    /** The lowest heap in use in each minute of load: the level just after a major GC, where retained state would show. */
    heapUsedLowestPerMinuteMiB: Array.from({ length: Math.floor(SECONDS / 60) }, (_, minute) => Math.min(...samples.filter((entry) => entry.atSeconds > minute * 60 && entry.atSeconds <= (minute + 1) * 60).map((entry) => entry.heapUsedMiB))),
    flatThresholdMiBPerMinute: FLAT_MIB_PER_MINUTE,
    thresholdBytesPerRequest: Math.round((FLAT_MIB_PER_MINUTE * MiB) / requestsPerMinute),
    rssSlopeBytesPerRequest: Math.round((rss.secondHalfSlopeMiBPerMinute * MiB) / requestsPerMinute),
    verdict: Math.abs(rss.secondHalfSlopeMiBPerMinute) < FLAT_MIB_PER_MINUTE ? 'flat' : rss.secondHalfSlopeMiBPerMinute > 0 ? 'growing' : 'shrinking',
  };

  console.log(`\nSoak: one instance on PostgreSQL, ${CONCURRENCY} loops for ${SECONDS} s, ${total.requests} requests (${total.requestsPerSecond} req/s, p50 ${total.latency.p50Ms} ms, p99 ${total.latency.p99Ms} ms, ${total.failures} failures)\n`);
  console.log('              start MiB   end MiB   max MiB   2nd-half slope MiB/min (± s.e.)');
  for (const [label, value] of [['RSS', rss], ['heap total', summary.heapTotal], ['heap used', summary.heapUsed]] as const) {
    console.log(`${label.padEnd(12)}${String(value.startMiB).padStart(11)}${String(value.endMiB).padStart(10)}${String(value.maxMiB).padStart(10)}   ${value.secondHalfSlopeMiBPerMinute} (± ${value.standardError})`);
  }
  console.log(`lowest heap used per minute of load: ${summary.heapUsedLowestPerMinuteMiB.join(', ')} MiB`);
  console.log(`\nverdict: ${summary.verdict} (flat: |RSS slope| < ${FLAT_MIB_PER_MINUTE} MiB/min, at this rate < ${summary.thresholdBytesPerRequest} bytes retained per request; measured ${summary.rssSlopeBytesPerRequest})`);
  if (rss.standardError > FLAT_MIB_PER_MINUTE / 2) console.log(`note: the slope's standard error (${rss.standardError} MiB/min, the GC sawtooth) is large against the threshold; one run rules out only leaks above ~${Math.ceil(2 * rss.standardError)} MiB/min`);

  const file = writeResults('soak', {
    machine,
    loadAverage1mAtEnd: +loadavg()[0].toFixed(2),
    note: '2-core machine shared with other benchmarks and builds; RSS is of the server process only (the load runs in the benchmark process)',
    setup: { database: 'postgres (scratch database, demo seed, durable access log)', seconds: SECONDS, sampleSeconds: SAMPLE_SECONDS, concurrency: CONCURRENCY, mix: ['support customers(limit: 20) 6 fields', 'marketing customer(id) { id email }', 'marketing customers(limit: 10) { id email }'] },
    summary,
    load: total,
    samples,
  });
  console.log(`wrote ${file}`);
});
