import Database from 'better-sqlite3';
import { openAppender } from '../../src/audit/sqlite-audit-worker';
import { inTransaction } from '../../src/storage/transactions';
import { type Harness, startCandor } from '../support/candor-harness';

/**
 * SQLite's appender inserts a subject's pseudonym mapping inside the batch's transaction (PostgreSQL commits
 * mappings before it): a batch that fails must take the mapping out of the appender's cache as well.
 */
describe('the SQLite appender after a failed batch', () => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor('sqlite', { seed: false });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it("names the subject's later records by a pseudonym that maps to them", async () => {
    // A commit that fails after the mapping was inserted (a full disk, an I/O error), simulated by a trigger.
    await candor.services.dataSource.query("CREATE TRIGGER failing_batch BEFORE INSERT ON audit_entry WHEN NEW.request_id = 'failing' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    const appender = openAppender(candor.database.url.replace(/^sqlite:/, ''), candor.services.pseudonymBindingKey);
    const entry = (requestId: string) => ({
      at: new Date().toISOString(), requestId, actorId: 'support-agent', actorName: 'Support', actorTeam: 'Support', purpose: 'essential.service', operationName: 'Q', subjectId: 'cus_after_failure',
      items: [{ coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED' as const, reason: 'LEGAL_BASIS', legalBasis: 'contract', consentReceiptId: null }],
    });
    try {
      expect(() => appender.append([entry('failing')], new Date().toISOString())).toThrow('disk full');
      appender.append([entry('after')], new Date().toISOString());
    } finally {
      appender.close();
    }
    const page = await candor.services.accessLogReader.page({ requestId: 'after' }, 10);
    expect(page.edges.map(({ node }) => [node.requestId, node.subjectId])).toEqual([['after', 'cus_after_failure']]);
  });
});

/**
 * The log's writer commits on a connection of its own, many times a second under load. A transaction of
 * the server's connection (a consent change, an answer, an erasure) that read before the writer committed
 * could not write after it (SQLITE_BUSY_SNAPSHOT, at once): it holds the write lock from its start instead.
 */
describe("a SQLite transaction beside the log's writer", () => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor('sqlite', { seed: false });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('holds the write lock from its first statement, so it still writes after reading', async () => {
    // Another connection that does not wait: it shows whether the lock is held between the read and the write.
    const writer = new Database(candor.database.url.replace(/^sqlite:/, ''), { timeout: 0 });
    let writerFailure: unknown;
    try {
      await inTransaction(candor.services.dataSource, async (manager) => {
        await manager.query('SELECT count(*) FROM consent_event');
        try {
          writer.prepare("INSERT INTO consent_import (digest, file_name, statements, imported_at, actor_id) VALUES ('by-writer', 'f', 0, '2026-11-30T00:00:00.000Z', 'cli:test')").run();
        } catch (error) {
          writerFailure = error;
        }
        await manager.query("INSERT INTO consent_import (digest, file_name, statements, imported_at, actor_id) VALUES ('by-transaction', 'f', 0, '2026-11-30T00:00:00.000Z', 'cli:test')");
      });
    } finally {
      writer.close();
    }
    expect((writerFailure as { code?: string } | undefined)?.code).toBe('SQLITE_BUSY');
    expect(await candor.services.dataSource.query('SELECT digest FROM consent_import')).toEqual([{ digest: 'by-transaction' }]);
  });
});
