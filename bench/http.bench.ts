/**
 * HTTP end to end, loopback only, bounded: a 100-row `customers` query (10 fields) at 1, 16 and 64
 * connections against
 *   (i)   a stock ungoverned Apollo Server 5 (default plugins) on the same type-graphql schema,
 *   (ii)  the same, tuned (cache-control plugin off),
 *   (iii) Candor with the access log kept in memory, on its default executor (graphql-jit),
 *   (iii-js) the same on graphql-js (CANDOR_EXECUTOR=graphql-js),
 *   (iv)  Candor with the durable access log on PostgreSQL (default executor),
 *   (v)   Candor with the durable access log on SQLite (default executor).
 * Every server reads the same in-memory rows and consent states, so only governance and the log differ.
 *
 *   npm run build && node dist/bench/http.bench.js      (BENCH_SECONDS per point, default 5)
 *
 * Each point is measured in BENCH_ROUNDS rounds (default 3), the variants in alternating order (forward,
 * then backward), and reported as the median round, with the range of requests/s: these machines drift
 * within minutes, and a variant measured always first or always last would carry the drift into its ratio.
 * BENCH_VARIANTS picks variants by numeral (`BENCH_VARIANTS=ii,iii`: no database needed without iv and v);
 * BENCH_CONNECTIONS the connection counts (default 1,16,64). Ratios to (ii) compare points of one run only.
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import autocannon from 'autocannon';
import DataLoader from 'dataloader';
import express from 'express';
import { AccessLog, createAuditStore } from '../src/audit/access-log';
import { pseudonymBindingKey } from '../src/audit/pseudonym-binding';
import type { AuditStore } from '../src/audit/audit-store';
import { DEVELOPMENT_SECRET, type Executor, loadConfig, projectRoot } from '../src/config';
import type { CustomerEntity } from '../src/domain/customer.entity';
import { buildCandorSchema } from '../src/graphql/schema';
import type { SubjectState } from '../src/policy/decide';
import { startHttpServer } from '../src/server/http-server';
import { createLogger, createMetrics } from '../src/server/observability';
import { buildGovernedSchema, type CandorServices, loadConfiguredTaxonomy } from '../src/server/services';
import { createDataSource, migrate } from '../src/storage/data-source';
import { type CpuSplit, cpuMeter } from './cpu-accounting';
import { createScratchDatabase } from './scratch-database';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,16,64').split(',').map(Number);
const VARIANTS = process.env.BENCH_VARIANTS?.split(',');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const QUERY = JSON.stringify({ query: '{ customers(limit: 100) { id fullName displayName email phone birthDate country postalAddress accessibilityNeeds createdAt } }' });
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer bench-key', 'x-purpose': 'essential.service' };

const rows: CustomerEntity[] = Array.from({ length: 100 }, (_, index) => ({
  id: `cus_${String(index).padStart(6, '0')}`, fullName: `Person ${index}`, displayName: `person${index}`, email: `person${index}@example.com`, phone: '+49 30 5550000',
  birthDate: '1990-01-01', country: 'DE', postalAddress: `${index} Main Street`, favoriteGenres: ['drama'], accessibilityNeeds: 'subtitles', createdAt: '2025-01-01T00:00:00.000Z', erasedAt: null,
}));
const states = new Map<string, SubjectState>(rows.map((row) => [row.id, { subjectId: row.id, restricted: false, objections: [], consents: [{ purpose: 'essential.service', granted: true, explicit: true, expiresAt: null }] }]));
const domain = { listCustomers: async () => rows, findCustomer: async () => undefined, createLoaders: () => ({}) };

/** CPU milliseconds per request, by where they were spent (cpu-accounting.ts): the load generator runs on the main thread too. */
function cpuPerRequest(split: CpuSplit | undefined, requests: number) {
  if (!split) return undefined;
  const perRequest = (seconds: number | null) => (seconds === null ? null : +((seconds * 1000) / requests).toFixed(3));
  return { mainThreadMs: perRequest(split.mainThread), otherThreadsMs: perRequest(split.otherThreads), postgresMs: perRequest(split.postgres), machineBusy: +split.machineBusy.toFixed(2) };
}

async function measure(url: string, connections: number) {
  const cpu = cpuMeter();
  const result = await autocannon({ url, method: 'POST', headers: HEADERS, body: QUERY, connections, duration: SECONDS, pipelining: 1 });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx responses, ${result.errors} errors at ${url}`);
  return { requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, cpu: cpuPerRequest(cpu(), result.requests.total) };
}

async function plainApollo(tuned: boolean) {
  const app = express();
  const httpServer = createServer(app);
  const apollo = new ApolloServer({ schema: await buildCandorSchema(loadConfiguredTaxonomy(loadConfig({}, {}))), plugins: tuned ? [ApolloServerPluginCacheControlDisabled()] : [] });
  await apollo.start();
  app.use('/graphql', express.json(), expressMiddleware(apollo, { context: async () => ({ domain }) }));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/graphql`, stop: async () => { await apollo.stop(); httpServer.close(); } };
}

const memoryStore: AuditStore = {
  append: async (entries) => ({ batchId: 0, firstSeq: 0, lastSeq: entries.length, hash: '' }),
  prune: async () => undefined,
  forget: async () => undefined,
  ping: async () => undefined,
  close: async () => undefined,
};

/** Candor on `executor`, or on its default executor (graphql-jit) when none is named. */
async function candor(store: AuditStore, executor?: Executor) {
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', CANDOR_RATE_LIMIT_PER_MINUTE: '0', DATABASE_URL: 'sqlite:/tmp/candor-bench-unused.sqlite', ...(executor ? { CANDOR_EXECUTOR: executor } : {}) }, {});
  const taxonomy = loadConfiguredTaxonomy(config);
  const accessLog = new AccessLog(store);
  const services = {
    config,
    taxonomy,
    dataSource: {} as never,
    domain,
    consent: { createStateLoader: () => new DataLoader(async (ids: readonly string[]) => ids.map((id) => states.get(id)!)) },
    actors: { authenticate: async () => ({ id: 'bench', name: 'Bench', team: 'Bench', roles: [], purposes: ['essential.service'] }) },
    accessLog,
    accessLogReader: {} as never,
    checkpointSigner: {} as never,
    verifyAccessLog: async () => ({}) as never,
    clock: () => new Date(),
    metrics: createMetrics(),
    logger: createLogger('silent'),
    receipts: {} as never,
    fields: [],
    // The rate limit is off in every variant (CANDOR_RATE_LIMIT_PER_MINUTE=0): stock Apollo has none.
    actorBudget: { take: () => true },
    close: async () => accessLog.close(),
  } as unknown as CandorServices;
  const server = await startHttpServer(services, await buildGovernedSchema(taxonomy), { port: 0, host: '127.0.0.1' });
  return { url: server.url, stop: async () => { await server.stop(); await accessLog.close(); } };
}

async function scratchStores() {
  const admin = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const scratch = [await createScratchDatabase('sqlite', admin), await createScratchDatabase('postgres', admin)];
  const [sqlite, postgres] = scratch.map((database) => loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}).database);
  for (const database of [sqlite, postgres]) {
    const dataSource = createDataSource(database);
    await dataSource.initialize();
    await migrate(dataSource, DEVELOPMENT_SECRET);
    await dataSource.destroy();
  }
  const bindingKey = pseudonymBindingKey(DEVELOPMENT_SECRET);
  return {
    // A store per start: stopping a variant closes its log's store.
    open: (kind: 'sqlite' | 'postgres'): AuditStore => createAuditStore(kind === 'sqlite' ? sqlite : postgres, bindingKey),
    cleanup: async () => {
      for (const database of scratch) await database.drop();
    },
  };
}

type Measurement = Awaited<ReturnType<typeof measure>>;

/** The round of median requests/s (its latencies and CPU with it), and the range of requests/s over the rounds. */
function medianRound(rounds: readonly Measurement[]) {
  const sorted = [...rounds].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { ...median, requestsPerSecondRange: [sorted[0].requestsPerSecond, sorted.at(-1)!.requestsPerSecond], rounds: rounds.length };
}

async function main(): Promise<void> {
  const durable = !VARIANTS || VARIANTS.includes('iv') || VARIANTS.includes('v');
  const stores = durable ? await scratchStores() : undefined;
  const variants: Array<[string, () => Promise<{ url: string; stop(): Promise<void> }>]> = (
    [
      ['i stock Apollo (ungoverned)', () => plainApollo(false)],
      ['ii tuned Apollo (ungoverned)', () => plainApollo(true)],
      ['iii Candor (graphql-jit, the default), log in memory', () => candor(memoryStore)],
      ['iii-js Candor on graphql-js, log in memory', () => candor(memoryStore, 'graphql-js')],
      ['iv Candor, durable log on PostgreSQL', () => candor(stores!.open('postgres'))],
      ['v Candor, durable log on SQLite', () => candor(stores!.open('sqlite'))],
    ] as Array<[string, () => Promise<{ url: string; stop(): Promise<void> }>]>
  ).filter(([name]) => !VARIANTS || VARIANTS.includes(name.split(' ')[0]));
  const measured = new Map<string, Measurement[]>(variants.flatMap(([name]) => CONNECTIONS.map((connections) => [`${name}|${connections}`, []])));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, start] of round % 2 === 0 ? variants : [...variants].reverse()) {
        const server = await start();
        try {
          await measure(server.url, 4); // warm-up
          for (const connections of CONNECTIONS) measured.get(`${name}|${connections}`)!.push(await measure(server.url, connections));
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await stores?.cleanup();
  }
  const results = variants.flatMap(([name]) => CONNECTIONS.map((connections) => ({ variant: name, connections, ...medianRound(measured.get(`${name}|${connections}`)!) })));
  console.log(`\nHTTP, 100-row query, ${SECONDS} s per point (loopback), the median of ${ROUNDS} rounds in alternating order\n`);
  console.log(`${'variant'.padEnd(56)}conns   req/s (min–max)     p50 ms   p99 ms   ×(ii) req/s  ×(ii) p99   CPU ms/request: main  other threads  PostgreSQL  (cores busy)`);
  const cpuColumns = (cpu: ReturnType<typeof cpuPerRequest>) =>
    cpu ? `${cpu.mainThreadMs!.toFixed(2).padStart(25)}${cpu.otherThreadsMs!.toFixed(2).padStart(15)}${(cpu.postgresMs ?? NaN).toFixed(2).padStart(12)}${`(${Math.round(cpu.machineBusy * 100)} %)`.padStart(14)}` : '';
  for (const row of results) {
    const tuned = results.find((other) => other.variant.startsWith('ii ') && other.connections === row.connections);
    const ratios = tuned ? `${(row.requestsPerSecond / tuned.requestsPerSecond).toFixed(2).padStart(14)}${(row.p99Ms / tuned.p99Ms).toFixed(2).padStart(11)}` : ' '.repeat(25);
    const range = `(${row.requestsPerSecondRange.join('–')})`;
    console.log(`${row.variant.padEnd(56)}${String(row.connections).padStart(5)}${String(row.requestsPerSecond).padStart(8)} ${range.padEnd(12)}${String(row.p50Ms).padStart(8)}${String(row.p99Ms).padStart(9)}${ratios}${cpuColumns(row.cpu)}`);
  }
  if (VARIANTS || process.env.BENCH_CONNECTIONS) return; // a partial run does not replace the recorded figures
  const directory = join(projectRoot(), 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, 'http.json'), JSON.stringify({ at: new Date().toISOString(), machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version }, secondsPerPoint: SECONDS, rounds: ROUNDS, results }, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
