/**
 * Access-log throughput: logical records/s durably committed into SQLite and PostgreSQL at 1, 8 and 64
 * concurrent requests, each request carrying 100 customers × 10 fields = 1,000 records, and the time a
 * request waits for its flush (p50/p99). Bounded: a few seconds per point, loopback PostgreSQL only.
 *
 *   npm run bench        (also runs the execution benchmark)
 *   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test   admin URL used to create a scratch database
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { AccessLog, type AccessRecordInput, createAuditStore } from '../src/audit/access-log';
import { loadConfig, projectRoot } from '../src/config';
import { createDataSource, migrate } from '../src/storage/data-source';
import { createScratchDatabase } from './scratch-database';

const CONCURRENCY = [1, 8, 64];
const SECONDS_PER_POINT = Number(process.env.BENCH_SECONDS ?? 5);
const FIELDS = ['fullName', 'displayName', 'email', 'phone', 'birthDate', 'country', 'postalAddress', 'favoriteGenres', 'accessibilityNeeds', 'createdAt'];

function requestRecords(request: number): AccessRecordInput[] {
  const at = new Date();
  const requestId = `bench-${request}`;
  const records: AccessRecordInput[] = [];
  for (let customer = 0; customer < 100; customer++) {
    const subjectId = `cus_bench_${(request * 37 + customer) % 500}`;
    for (const field of FIELDS) {
      records.push({ at, requestId, actor: { id: 'bench', name: 'Bench', team: 'Bench' }, purpose: 'essential.service', operationName: 'Bench', subjectId, coordinate: `Customer.${field}`, category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract' });
    }
  }
  return records;
}

const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;

async function measure(log: AccessLog, concurrency: number) {
  let request = 0;
  let committed = 0;
  const waits: number[] = [];
  const deadline = performance.now() + SECONDS_PER_POINT * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const records = requestRecords(request++);
        const start = performance.now();
        await log.append(records);
        waits.push(performance.now() - start);
        committed += records.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { concurrency, recordsPerSecond: Math.round(committed / seconds), requests: waits.length, flushWaitP50Ms: +quantile(waits, 0.5).toFixed(2), flushWaitP99Ms: +quantile(waits, 0.99).toFixed(2) };
}

async function benchStore(driver: 'sqlite' | 'postgres') {
  const scratch = await createScratchDatabase(driver, process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  const url = scratch.url;
  const cleanup = () => scratch.drop();
  const config = loadConfig({ DATABASE_URL: url, NODE_ENV: 'test' }, {});
  const dataSource = createDataSource(config.database);
  await dataSource.initialize();
  await migrate(dataSource);
  const log = new AccessLog(createAuditStore(config.database));
  try {
    await log.append(requestRecords(0)); // warm-up: worker start, pseudonyms
    const points = [];
    for (const concurrency of CONCURRENCY) points.push({ driver, ...(await measure(log, concurrency)) });
    return points;
  } finally {
    await log.close();
    await dataSource.destroy();
    await cleanup();
  }
}

async function main(): Promise<void> {
  const results = [...(await benchStore('sqlite')), ...(await benchStore('postgres'))];
  console.log(`\nAccess-log throughput (1,000 records per request, ${SECONDS_PER_POINT} s per point, durable commits)\n`);
  console.log('store      concurrency   records/s   requests   flush wait p50 ms   p99 ms');
  for (const row of results) {
    console.log(`${row.driver.padEnd(11)}${String(row.concurrency).padStart(11)}${String(row.recordsPerSecond).padStart(12)}${String(row.requests).padStart(11)}${String(row.flushWaitP50Ms).padStart(20)}${String(row.flushWaitP99Ms).padStart(9)}`);
  }
  const directory = join(projectRoot(), 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = join(directory, 'audit.json');
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine, secondsPerPoint: SECONDS_PER_POINT, results }, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
