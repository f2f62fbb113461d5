import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { loadConfig } from '../../src/config';
import { eraseSubject } from '../../src/privacy/erasure';
import { createDataSource, guardConnections } from '../../src/storage/data-source';
import { startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { silentProxy } from '../support/silent-proxy';
import { addCustomer } from '../support/subjects';

// The server's PostgreSQL connections (CANDOR_QUERY_TIMEOUT_MS); SQLite is a file in the process.
(DRIVERS.includes('postgres') ? describe : describe.skip)("the server's PostgreSQL connections", () => {
  it('fail a statement the network never answers within the query timeout, and close its connection rather than hand it out again', async () => {
    const candor = await startCandor('postgres', { seed: false });
    const database = new URL(candor.database.url);
    const proxy = await silentProxy({ host: database.hostname, port: Number(database.port || 5432) });
    const throughProxy = new URL(database);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    const dataSource = createDataSource(loadConfig({ DATABASE_URL: throughProxy.toString(), NODE_ENV: 'test' }, {}).database, { queryTimeoutMs: 500 });
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
      await new Promise((resolve) => setTimeout(resolve, 100));
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
});
