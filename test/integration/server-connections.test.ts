import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { loadConfig } from '../../src/config';
import { eraseSubject } from '../../src/privacy/erasure';
import { openServices } from '../../src/server/services';
import { createDataSource, guardConnections, inAdvisoryTurn } from '../../src/storage/data-source';
import { startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { eventually } from '../support/eventually';
import { silentProxy } from '../support/silent-proxy';
import { addCustomer } from '../support/subjects';

/** The database at `url`, reached through a proxy that can go silent. */
async function throughSilentProxy(url: string) {
  const direct = new URL(url);
  const proxy = await silentProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const proxied = new URL(direct);
  proxied.host = `127.0.0.1:${proxy.port}`;
  return { proxy, database: loadConfig({ DATABASE_URL: proxied.toString(), NODE_ENV: 'test' }, {}).database };
}

// The server's PostgreSQL connections (CANDOR_QUERY_TIMEOUT_MS); SQLite is a file in the process.
(DRIVERS.includes('postgres') ? describe : describe.skip)("the server's PostgreSQL connections", () => {
  it('fail a statement the network never answers within the query timeout, and close its connection rather than hand it out again', async () => {
    const candor = await startCandor('postgres', { seed: false });
    const { proxy, database } = await throughSilentProxy(candor.database.url);
    const dataSource = createDataSource(database, { queryTimeoutMs: 500 });
    // The pool closes an idle connection after 10 s of its own (pg-pool's default): off here, so that only the
    // guard can close the timed-out connection while the test waits for it.
    dataSource.setOptions({ extra: { ...(dataSource.options.extra as object), idleTimeoutMillis: 0 } });
    await dataSource.initialize();
    guardConnections(dataSource);
    try {
      await dataSource.query('SELECT 1');
      const open = proxy.openConnections();
      expect(open).toBeGreaterThan(0);
      proxy.silence(true);
      const started = Date.now();
      await expect(dataSource.query('SELECT 1')).rejects.toThrow('Query read timeout');
      expect(Date.now() - started).toBeLessThan(500 + 5_000);
      // Still silent: the connection was closed by the server's side, not by the network coming back.
      await eventually(async () => proxy.openConnections() === open - 1, `the timed-out connection closed (${open} open before)`);
      expect(proxy.openConnections()).toBe(open - 1);
      proxy.silence(false);
      expect(await dataSource.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await dataSource.destroy();
      await proxy.close();
      await candor.stop();
    }
  });

  it("let an erasure wait for another's turn longer than the query timeout (the lock is held outside the bounded pool)", async () => {
    const candor = await startCandor('postgres', { seed: false, env: { CANDOR_QUERY_TIMEOUT_MS: '1000' } });
    const subjectId = 'cus_0000_conn_erased_after_a_wait';
    await addCustomer(candor, subjectId);
    const holder = new Client({ connectionString: candor.database.url });
    await holder.connect();
    try {
      const lockKey = String(createHash('sha256').update(`candor-erasure:${subjectId}`, 'utf8').digest().readBigInt64BE(0));
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
      const erasure = eraseSubject(candor.services, subjectId, { id: 'compliance-office', name: 'Compliance', team: 'Legal' }, 'waited-erasure');
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]);
      await expect(erasure).resolves.toEqual(expect.objectContaining({ subjectId }));
      expect(await candor.services.domain.findCustomer(subjectId)).toBeUndefined();
    } finally {
      await holder.end();
      await candor.stop();
    }
  });

  it('apply the migrations on start with no query timeout: only the serving connections are bounded (a migration may run long)', async () => {
    const candor = await startCandor('postgres', { seed: false });
    const holder = new Client({ connectionString: candor.database.url });
    await holder.connect();
    try {
      // Every run of the migrations reads their table first: held, it makes them wait past the query timeout.
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE migrations IN ACCESS EXCLUSIVE MODE');
      const config = loadConfig({ DATABASE_URL: candor.database.url, NODE_ENV: 'test', CANDOR_QUERY_TIMEOUT_MS: '300' }, {});
      const opening = openServices(config, { serving: true });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await holder.query('COMMIT');
      const services = await opening;
      try {
        expect(await services.dataSource.query('SHOW statement_timeout')).toEqual([{ statement_timeout: '300ms' }]);
      } finally {
        await services.close();
      }
    } finally {
      await holder.end();
      await candor.stop();
    }
  });

  describe('advisory-lock turns', () => {
    const lockKeyOf = (text: string) => String(createHash('sha256').update(text, 'utf8').digest().readBigInt64BE(0));
    const refused = () => new Error('turn refused');

    it('hold at most four connections at once, however many turns run', async () => {
      const candor = await startCandor('postgres', { seed: false });
      const watcher = new Client({ connectionString: candor.database.url });
      await watcher.connect();
      try {
        let most = 0;
        const turns = Array.from({ length: 10 }, (_, index) =>
          inAdvisoryTurn(candor.services.dataSource, `capped-${index}`, 10_000, async () => {
            const [{ open }] = (await watcher.query("SELECT count(*)::int AS open FROM pg_stat_activity WHERE application_name = 'candor-turn' AND datname = current_database()")).rows;
            most = Math.max(most, open);
            await new Promise((resolve) => setTimeout(resolve, 150));
            return index;
          }, refused),
        );
        expect(await Promise.all(turns)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(most).toBeGreaterThan(0);
        expect(most).toBeLessThanOrEqual(4);
      } finally {
        await watcher.end();
        await candor.stop();
      }
    });

    it("wait past a statement_timeout set on the database (the wait is the turn's own), and time out as told when the lock stays held", async () => {
      const candor = await startCandor('postgres', { seed: false });
      const holder = new Client({ connectionString: candor.database.url });
      await holder.connect();
      const database = new URL(candor.database.url).pathname.slice(1);
      try {
        await holder.query(`ALTER DATABASE "${database}" SET statement_timeout = 200`);
        await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKeyOf('held-a-while')]);
        const waited = inAdvisoryTurn(candor.services.dataSource, 'held-a-while', 5_000, async () => 'done', refused);
        await new Promise((resolve) => setTimeout(resolve, 800));
        await holder.query('SELECT pg_advisory_unlock($1::bigint)', [lockKeyOf('held-a-while')]);
        await expect(waited).resolves.toBe('done');
        await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKeyOf('held-too-long')]);
        await expect(inAdvisoryTurn(candor.services.dataSource, 'held-too-long', 500, async () => 'never', refused)).rejects.toThrow('turn refused');
      } finally {
        await holder.query(`ALTER DATABASE "${database}" RESET statement_timeout`).catch(() => undefined);
        await holder.end();
        await candor.stop();
      }
    });

    it('give up a wait whose connection stops answering, shortly after the wait', async () => {
      const candor = await startCandor('postgres', { seed: false });
      const { proxy, database } = await throughSilentProxy(candor.database.url);
      const stalled = createDataSource(database);
      const holder = new Client({ connectionString: candor.database.url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKeyOf('stalled-wait')]);
        const started = Date.now();
        const waiting = inAdvisoryTurn(stalled, 'stalled-wait', 1_000, async () => 'never', refused);
        // Connected and waiting for the lock; then the network drops everything, PostgreSQL's answer included.
        await new Promise((resolve) => setTimeout(resolve, 300));
        proxy.silence(true);
        await expect(waiting).rejects.toThrow('turn refused');
        expect(Date.now() - started).toBeLessThan(1_000 + 5_000);
      } finally {
        await holder.end();
        await proxy.close();
        await candor.stop();
      }
    });
  });
});
