/**
 * Reports over a large access log run in bounded memory: fills a fresh store with RECORDS logical records
 * (default 1,000,000) through the real appender, then generates the purpose-usage, denials and RoPA reports
 * while sampling the process's RSS. Not part of `npm test` (it takes minutes).
 *
 *   npm run build && node dist/bench/report-memory.bench.js            (SQLite)
 *   BENCH_DATABASE_URL=postgres://… node dist/bench/report-memory.bench.js
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessRecordInput } from '../src/audit/access-log';
import { loadConfig, projectRoot } from '../src/config';
import { generateReport } from '../src/reports/generate-report';
import { renderReport } from '../src/reports/renderers';
import { openServices, seedDemo } from '../src/server/services';
import { createScratchDatabase } from './scratch-database';

const RECORDS = Number(process.env.RECORDS ?? 1_000_000);
const PER_APPEND = 10_000;
const PURPOSES = ['essential.service', 'marketing.communications', 'analytics.reporting', 'third_party_sharing'];
const FIELDS: Array<[string, string]> = [['Customer.email', 'user.contact.email'], ['Customer.fullName', 'user.name'], ['Customer.country', 'user.location.imprecise'], ['Customer.birthDate', 'user.demographic.date_of_birth'], ['Customer.phone', 'user.contact.phone_number']];

async function main(): Promise<void> {
  const scratch = process.env.BENCH_DATABASE_URL ? undefined : await createScratchDatabase('sqlite', '');
  const url = process.env.BENCH_DATABASE_URL ?? scratch!.url;
  const services = await openServices(loadConfig({ DATABASE_URL: url, NODE_ENV: 'test' }, {}));
  try {
    await seedDemo(services);
    const subjects = (await services.domain.listCustomers({ limit: 1000, offset: 0 })).map((customer) => customer.id);
    const started = Date.now();
    for (let written = 0; written < RECORDS; written += PER_APPEND) {
      const records: AccessRecordInput[] = [];
      for (let index = 0; index < PER_APPEND && written + index < RECORDS; index++) {
        const n = written + index;
        const [coordinate, category] = FIELDS[n % FIELDS.length];
        const withheld = n % 7 === 0;
        records.push({
          at: new Date(Date.UTC(2026, 0, 1 + Math.floor(n / (RECORDS / 60)))),
          requestId: `bench-${Math.floor(n / 500)}`,
          actor: { id: `team-${n % 4}`, name: `Team ${n % 4}`, team: `Team ${n % 4}` },
          purpose: PURPOSES[Math.floor(n / 500) % PURPOSES.length],
          operationName: 'Bench',
          subjectId: subjects[Math.floor(n / FIELDS.length) % subjects.length],
          coordinate,
          category,
          decision: withheld ? 'WITHHELD' : 'RELEASED',
          reason: withheld ? 'CONSENT_REQUIRED' : 'LEGAL_BASIS',
          legalBasis: 'contract',
        });
      }
      await services.accessLog.append(records);
      if (process.stderr.isTTY) process.stderr.write(`\rfilling the log… ${(written + PER_APPEND).toLocaleString('en')}/${RECORDS.toLocaleString('en')}`);
    }
    const fillSeconds = (Date.now() - started) / 1000;
    if (process.stderr.isTTY) process.stderr.write('\n');
    global.gc?.();
    const results = [];
    for (const kind of ['purpose-usage', 'denials', 'ropa']) {
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      const start = Date.now();
      const document = await generateReport(services, { kind }, { actor: { id: 'bench', name: 'Bench', team: 'Bench' }, requestId: `bench-report-${kind}` });
      await renderReport(document, 'html');
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      results.push({ kind, records: RECORDS, seconds: (Date.now() - start) / 1000, baselineRssMiB: Math.round(baseline / 2 ** 20), peakRssMiB: Math.round(peak / 2 ** 20) });
    }
    console.log(`\nReports over ${RECORDS.toLocaleString('en')} access records (${services.config.database.driver}; log filled in ${fillSeconds.toFixed(0)} s)\n`);
    console.log('report          seconds   RSS before MiB   peak RSS MiB');
    for (const row of results) console.log(`${row.kind.padEnd(16)}${row.seconds.toFixed(1).padStart(7)}${String(row.baselineRssMiB).padStart(17)}${String(row.peakRssMiB).padStart(15)}`);
    const out = join(projectRoot(), 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `report-memory-${services.config.database.driver}.json`), JSON.stringify({ at: new Date().toISOString(), fillSeconds, results }, null, 2) + '\n');
  } finally {
    await services.close();
    await scratch?.drop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
