import { Client } from 'pg';
import { EXECUTORS, loadConfig } from '../../src/config';
import { AUDIT_APPLICATION_NAME } from '../../src/audit/postgres-audit-store';
import type { SqliteAuditStore } from '../../src/audit/sqlite-audit-store';
import { openServices } from '../../src/server/services';
import { startCandor } from '../support/candor-harness';
import { runCli, startChildServer } from '../support/child-server';
import { createTestDatabase, DRIVERS } from '../support/databases';
import { expectEveryReleaseRecorded, governedLoad, type LoadResult } from '../support/load';


describe.each(DRIVERS)('access-log durability on %s', (driver) => {
  it.each(EXECUTORS)('keeps every record of every answered request across a SIGKILL under load, with no half-written batch (executed by %s)', async (executor) => {
    const database = await createTestDatabase(driver);
    try {
      const server = await startChildServer({ DATABASE_URL: database.url, CANDOR_EXECUTOR: executor });
      let killed = false;
      let answered = 0;
      const load = governedLoad([server.url], {
        concurrency: 12,
        maxMs: 40_000,
        until: (received) => {
          answered = received.filter((response) => response.status === 200).length;
          return killed;
        },
      });
      // Kill mid-load once enough requests were answered to make the check meaningful (a busy machine is slower).
      for (const start = Date.now(); answered < 30 && Date.now() - start < 25_000; ) await new Promise((resolve) => setTimeout(resolve, 50));
      await server.kill('SIGKILL');
      killed = true;
      const result = await load;
      expect(result.received.filter((response) => response.status === 200).length).toBeGreaterThan(20);

      const restarted = await startChildServer({ DATABASE_URL: database.url });
      try {
        expect(await expectEveryReleaseRecorded(database.url, result)).toBeGreaterThan(20);
        const verify = await runCli(['audit', 'verify'], { DATABASE_URL: database.url });
        expect(verify.stdout).toMatch(/^verified \d+ records through \d+/);
        expect(verify.code).toBe(0);
      } finally {
        await restarted.kill();
      }
    } finally {
      await database.drop();
    }
  });

  it('answers AUDIT_UNAVAILABLE, never governed data, while the log store is cut off, and recovers', async () => {
    const candor = await startCandor(driver);
    try {
      let cutting = true;
      let cuts = 0;
      const cut = async () => {
        if (driver === 'sqlite') {
          while (cutting) {
            await (candor.services.accessLog.store as SqliteAuditStore).terminateWorker();
            cuts++;
            await new Promise((resolve) => setTimeout(resolve, 3));
          }
          return;
        }
        const admin = new Client({ connectionString: candor.database.url });
        await admin.connect();
        try {
          while (cutting) {
            await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [AUDIT_APPLICATION_NAME]);
            cuts++;
          }
        } finally {
          await admin.end();
        }
      };
      const cutter = cut();
      const load = await governedLoad([candor.server.url], {
        concurrency: 8,
        maxMs: 20_000,
        until: (received) => received.filter((response) => response.code === 'AUDIT_UNAVAILABLE').length >= 3,
      });
      const unavailable = load.received.filter((response) => response.code === 'AUDIT_UNAVAILABLE').length;
      cutting = false;
      await cutter;
      expect(cuts).toBeGreaterThan(0);
      // Every AUDIT_UNAVAILABLE response is a 503 without data; every 200 with data is fully recorded.
      for (const response of load.received.filter((item) => item.code === 'AUDIT_UNAVAILABLE')) expect([response.status, response.releasedData]).toEqual([503, false]);
      expect(unavailable).toBeGreaterThan(0);
      // The log is cut off again and again: any 200 of the run must be fully recorded (there may be none).
      await expectEveryReleaseRecorded(candor.database.url, load);
      const after = await candor.query({ key: 'demo-support-key', purpose: 'essential.service', query: '{ customers(limit: 2) { email } }' });
      expect(after.status).toBe(200);
      expect(after.body.errors).toBeUndefined();
      expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    } finally {
      await candor.stop();
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('PostgreSQL connections cut under load', () => {
  it('never crashes the server and never releases a governed value without its record; recovers', async () => {
    const candor = await startCandor('postgres');
    const admin = new Client({ connectionString: candor.database.url });
    await admin.connect();
    try {
      let cutting = true;
      let cuts = 0;
      const cutter = (async () => {
        while (cutting) {
          // Every connection of the request path (consent, domain, actors), not the log's own pool.
          await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> $1', [AUDIT_APPLICATION_NAME]);
          cuts++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      // Until both happened (a refusal while a connection was cut, a release between cuts) over at least 50
      // answers and 10 rounds of cuts, within 30 s: a fixed window left either to chance on a loaded machine.
      const load = await governedLoad([candor.server.url], {
        concurrency: 4,
        maxMs: 30_000,
        until: (received) =>
          cuts >= 10 && received.length >= 50 && received.some((response) => response.code === 'GOVERNANCE_UNAVAILABLE') && received.some((response) => response.status === 200 && response.releasedData),
      });
      cutting = false;
      await cutter;
      expect(cuts).toBeGreaterThanOrEqual(10);
      expect(load.failures).toBe(0); // the server kept answering
      expect(load.received.some((response) => response.code === 'GOVERNANCE_UNAVAILABLE')).toBe(true);
      expect(await expectEveryReleaseRecorded(candor.database.url, load)).toBeGreaterThan(0); // released between the cuts, and recorded
      const after = await candor.query({ key: 'demo-support-key', purpose: 'essential.service', query: '{ customers(limit: 2) { email } }' });
      expect([after.status, after.body.errors]).toEqual([200, undefined]);
    } finally {
      await admin.end();
      await candor.stop();
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('several appenders on one PostgreSQL', () => {
  it('keeps one linear chain while two servers and the CLI append concurrently', async () => {
    const database = await createTestDatabase('postgres');
    try {
      const first = await startChildServer({ DATABASE_URL: database.url });
      const second = await startChildServer({ DATABASE_URL: database.url });
      try {
        let cliRuns = 0;
        let loading = true;
        const cli = (async () => {
          while (loading) {
            const result = await runCli(['audit', 'checkpoint', 'export'], { DATABASE_URL: database.url });
            expect(result.code).toBe(0);
            cliRuns++;
          }
        })();
        // Until the two servers answered 100 requests with data, within a generous bound: a fixed 6 s window left
        // the count of answers to the machine's load. The CLI's first export starts with the load.
        const answeredWithData = (received: LoadResult['received']) => received.filter((response) => response.status === 200 && response.releasedData).length;
        const load = await governedLoad([first.url, second.url], { concurrency: 16, maxMs: 60_000, until: (received) => answeredWithData(received) >= 100 });
        loading = false;
        await cli;
        expect(cliRuns).toBeGreaterThan(0);
        expect(answeredWithData(load.received)).toBeGreaterThanOrEqual(100);
        expect(await expectEveryReleaseRecorded(database.url, load)).toBeGreaterThanOrEqual(100);
        const verify = await runCli(['audit', 'verify'], { DATABASE_URL: database.url });
        expect(verify.code).toBe(0);
        const services = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}));
        try {
          // Every export's record, and the verify's.
          const cliRecords = await services.accessLogReader.page({ team: 'cli' }, 500);
          expect(cliRecords.totalCount).toBe(cliRuns + 1);
          expect(cliRecords.edges.filter(({ node }) => node.operationName === 'audit checkpoint export')).toHaveLength(cliRuns);
          const teams = await services.dataSource.query('SELECT DISTINCT actor_team FROM audit_record');
          expect(teams.map((row: { actor_team: string }) => row.actor_team).sort()).toEqual(['Customer Support', 'cli']);
        } finally {
          await services.close();
        }
      } finally {
        await first.kill();
        await second.kill();
      }
    } finally {
      await database.drop();
    }
  });
});
