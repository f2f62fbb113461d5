/**
 * A large consent import while a server serves governed reads: how long `candor consent import` takes, and
 * what the requests served meanwhile went through. The import is one transaction; on SQLite it holds the
 * database's write lock, which the access log's writer needs for every governed request, and a request
 * that waits past the busy timeout (10 s) is answered `AUDIT_UNAVAILABLE`.
 *
 * Per store: a scratch database, one `candor serve` child (migrates and seeds the demo's 200 customers),
 * MANY more customers added, LOOPS closed loops of marketing reads of 20 customers' e-mail (each read
 * durably logged); then, one after the other, two imports of ROWS statements (four kinds, five purposes and
 * sub-purposes, each with its own past `recordedAt`, out of time order), run as the CLI runs, in a process
 * of its own: one about the 200 demo customers (many statements each, which supersede one another), one
 * about the MANY customers (the projection written back row for row). An import's seconds are the CLI's
 * run, starting Node, reading and checking the file (≈ 1 s for 50,000 rows) included; the reads' longest
 * wait shows how long the write transaction held them up.
 *
 *   npm run build && node dist/bench/consent-import.bench.js
 *   ROWS (default 50,000), MANY (default 50,000), LOOPS (default 4), BENCH_STORES=sqlite,postgres (default
 *   both), BENCH_PG_URL
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config';
import { buildDemoData, DEMO_CUSTOMER_COUNT, insertDemoDomain } from '../src/domain/demo-seed';
import { createDataSource } from '../src/storage/data-source';
import { CLI, startChildServer } from '../test/support/child-server';
import { DEMO, describeLoad, describeMachine, post, startLoad, writeResults } from './child-candor';
import { createScratchDatabase } from './scratch-database';

const ROWS = Number(process.env.ROWS ?? 50_000);
const MANY = Number(process.env.MANY ?? 50_000);
const LOOPS = Number(process.env.LOOPS ?? 4);
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',') as Array<'sqlite' | 'postgres'>;
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KINDS = ['grant', 'withdraw', 'object', 'withdraw_objection'];
const PURPOSES = ['marketing', 'marketing.communications', 'marketing.advertising', 'personalize.content', 'analytics.reporting'];
const READ = { ...DEMO.marketing, query: '{ customers(limit: 20) { id email } }' };
/** The load alone before the import, as the reference for the requests served during it. */
const BEFORE_MS = 3_000;

/**
 * An import file of `rows` statements about `subjects`, made at distinct minutes of 2025 in a shuffled order
 * (7,919 is a prime: row × 7,919 mod rows visits every minute once when rows is not a multiple of it).
 */
function importFile(directory: string, name: string, subjects: readonly string[], rows: number): string {
  const lines = ['subjectId,action,purpose,explicit,source,expiresAt,recordedAt'];
  const first = Date.UTC(2025, 0, 1);
  for (let row = 0; row < rows; row++) {
    const made = new Date(first + ((row * 7919) % rows) * 60_000).toISOString();
    lines.push(`${subjects[(row * 7919) % subjects.length]},${KINDS[row % KINDS.length]},${PURPOSES[(row * 3) % PURPOSES.length]},,crm-export,,${made}`);
  }
  const file = join(directory, `${name}.csv`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Adds `count` customers to the store (the demo generator's, after the seeded ones) and returns their ids. */
async function addCustomers(databaseUrl: string, count: number): Promise<string[]> {
  const dataSource = createDataSource(loadConfig({ DATABASE_URL: databaseUrl, NODE_ENV: 'test' }).database);
  await dataSource.initialize();
  try {
    const customers = buildDemoData(DEMO_CUSTOMER_COUNT + count).customers.slice(DEMO_CUSTOMER_COUNT);
    await insertDemoDomain(dataSource, { customers, payments: [], watchEvents: [], consentChanges: [] });
    return customers.map((customer) => customer.id);
  } finally {
    await dataSource.destroy();
  }
}

async function measure(driver: 'sqlite' | 'postgres', directory: string) {
  const database = await createScratchDatabase(driver, ADMIN_URL);
  const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_LOG_LEVEL: 'warn', CANDOR_RATE_LIMIT_PER_MINUTE: '0' });
  try {
    const listed = await post(server.url, { ...DEMO.support, query: `{ customers(limit: ${DEMO_CUSTOMER_COUNT}) { id } }` });
    const cases = [
      { name: 'demo', subjects: (listed.body.data?.customers as Array<{ id: string }>).map((customer) => customer.id) },
      { name: 'many', subjects: await addCustomers(database.url, MANY) },
    ];
    const load = startLoad([server.url], LOOPS, () => READ);
    const results = [];
    for (const { name, subjects } of cases) {
      const file = importFile(directory, `${driver}-${name}`, subjects, ROWS);
      await new Promise((resolve) => setTimeout(resolve, BEFORE_MS));
      const before = load.take();
      const started = performance.now();
      // Not the tests' runCli: no deadline, however long an import of ROWS takes.
      await promisify(execFile)(process.execPath, [CLI, 'consent', 'import', file], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url } });
      const importSeconds = (performance.now() - started) / 1000;
      const during = load.take();
      results.push({ store: driver, rows: ROWS, subjects: subjects.length, importSeconds: Math.round(importSeconds * 100) / 100, before: describeLoad(before), duringImport: describeLoad(during) });
    }
    await load.stop();
    return results;
  } finally {
    await server.kill('SIGTERM');
    await database.drop();
  }
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'candor-import-bench-'));
  try {
    const machine = await describeMachine(STORES.includes('postgres') ? ADMIN_URL : undefined);
    const results = [];
    for (const store of STORES) results.push(...(await measure(store, directory)));
    console.log(`\nConsent import of ${ROWS.toLocaleString('en')} statements while ${LOOPS} loops read (durable log)\n`);
    console.log('store     subjects   import s   before: p50 / max ms   during: reads    p50 / p99 / max ms   failed   AUDIT_UNAVAILABLE');
    for (const result of results) {
      const { before, duringImport: during } = result;
      console.log(
        [
          result.store.padEnd(8),
          String(result.subjects).padStart(9),
          result.importSeconds.toFixed(2).padStart(10),
          `${before.latency.p50Ms} / ${before.latency.maxMs}`.padStart(23),
          String(during.requests).padStart(15),
          `${during.latency.p50Ms} / ${during.latency.p99Ms} / ${during.latency.maxMs}`.padStart(22),
          String(during.failures).padStart(8),
          String(during.errorCodes.AUDIT_UNAVAILABLE ?? 0).padStart(19),
        ].join(' '),
      );
    }
    console.log(`\nwrote ${writeResults('consent-import', { machine, rows: ROWS, many: MANY, loops: LOOPS, results })}`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
