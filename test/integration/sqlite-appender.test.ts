import { openAppender } from '../../src/audit/sqlite-audit-worker';
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
    const appender = openAppender(candor.database.url.replace(/^sqlite:/, ''));
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
    const page = await candor.services.accessLogReader.page({ subjectId: 'cus_after_failure' }, 10);
    expect(page.edges.map(({ node }) => [node.requestId, node.subjectId])).toEqual([['after', 'cus_after_failure']]);
  });
});
