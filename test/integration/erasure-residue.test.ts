import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SubjectMessageEntity } from '../../src/consent/subject-message.entity';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { WatchEventEntity } from '../../src/domain/watch-event.entity';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';

/**
 * What an erasure leaves in the database's own files. SQLite keeps a deleted row's bytes in the page it was
 * on, and the old page images in the write-ahead log, unless Candor overwrites them; PostgreSQL keeps old row
 * versions until VACUUM, which an erasure does not run: it says so.
 */
describe.each(DRIVERS)('what an erasure leaves behind on %s', (driver) => {
  let candor: Harness;

  const manage = (query: string) => candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query });

  /** A subject with values found nowhere else in the database, a viewing record and a message of their own. */
  const addDistinctiveSubject = async (id: string, mark: string): Promise<string[]> => {
    const values = {
      fullName: `Zephyrine ${mark} Quillfeather`,
      displayName: `zq_${mark}_handle`,
      email: `zephyrine.${mark}@residue.example`,
      phone: `+49 30 ${mark}-7319`,
      postalAddress: `17 Vesperlane ${mark}, Quedlinburg`,
      accessibilityNeeds: `tactile captions ${mark}`,
    };
    await addCustomer(candor, id, values);
    const title = `Nocturne of ${mark}`;
    await candor.services.dataSource.getRepository(WatchEventEntity).insert({ id: `${id}_w`, customerId: id, title, watchedAt: '2026-11-01T00:00:00.000Z', seconds: 60 });
    const body = `Please stop writing to me about ${mark}`;
    await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId: id, context: null, body, createdAt: '2026-11-02T00:00:00.000Z' });
    // Read by support: the access log maps a pseudonym to the subject.
    expect((await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${id}") { email phone } }` })).body.errors).toBeUndefined();
    return [...Object.values(values), title, body];
  };

  beforeAll(async () => {
    candor = await startCandor(driver);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  if (driver === 'sqlite') {
    const databasePath = () => candor.database.url.slice('sqlite:'.length);
    /** Everything SQLite keeps of the database on disk: the file and its write-ahead log. */
    const storedBytes = () => {
      const path = databasePath();
      return Buffer.concat([readFileSync(path), existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0)]);
    };
    const foundIn = (bytes: Buffer, values: readonly string[]) => values.filter((value) => bytes.includes(Buffer.from(value, 'utf8')));

    it('overwrites the erased values in the database file and its write-ahead log, whether the server or the CLI erases', async () => {
      const kept = await addDistinctiveSubject('cus_0000_residue_kept', 'KEPT4711');
      const byServer = await addDistinctiveSubject('cus_0000_residue_server', 'SRVR0815');
      const byCli = await addDistinctiveSubject('cus_0000_residue_cli', 'CLI90210');
      // All of them are on disk before the erasures: the search finds what is there.
      expect(foundIn(storedBytes(), [...kept, ...byServer, ...byCli])).toEqual([...kept, ...byServer, ...byCli]);

      const erased = await manage('mutation { eraseSubject(subjectId: "cus_0000_residue_server") { subjectId oldCopies } }');
      expect(erased.body).toEqual({ data: { eraseSubject: { subjectId: 'cus_0000_residue_server', oldCopies: 'OVERWRITTEN' } } });
      // The CLI erases while the server holds its own connections to the file.
      const cli = await runCli(['subject', 'erase', '--subject', 'cus_0000_residue_cli'], { DATABASE_URL: candor.database.url, NODE_ENV: 'test' });
      expect([cli.code, cli.stderr]).toEqual([0, '']);
      expect(cli.stdout).toContain('the erased values were overwritten in the database file, and its write-ahead log emptied');

      const bytes = storedBytes();
      expect(foundIn(bytes, [...byServer, ...byCli])).toEqual([]);
      expect(foundIn(bytes, kept)).toEqual(kept);
    });

    it('erases while another connection holds the write-ahead log, says old copies remain, and the next erasure overwrites them', async () => {
      const held = await addDistinctiveSubject('cus_0000_residue_held', 'HELD3141');
      const next = await addDistinctiveSubject('cus_0000_residue_next', 'NEXT2718');
      const reader = new Database(databasePath());
      try {
        // A read transaction begun before the erasure: its snapshot needs the pages the checkpoint would overwrite.
        reader.exec('BEGIN');
        reader.prepare('SELECT count(*) FROM customer').get();
        const erased = await manage('mutation { eraseSubject(subjectId: "cus_0000_residue_held") { subjectId oldCopies } }');
        expect(erased.body).toEqual({ data: { eraseSubject: { subjectId: 'cus_0000_residue_held', oldCopies: 'KEPT_UNTIL_CHECKPOINT' } } });
        expect((await candor.services.dataSource.getRepository(CustomerEntity).findOneByOrFail({ id: 'cus_0000_residue_held' })).fullName).toBeNull();
        expect(foundIn(storedBytes(), held)).not.toEqual([]);
        reader.exec('COMMIT');
      } finally {
        reader.close();
      }
      const erased = await manage('mutation { eraseSubject(subjectId: "cus_0000_residue_next") { oldCopies } }');
      expect(erased.body).toEqual({ data: { eraseSubject: { oldCopies: 'OVERWRITTEN' } } });
      expect(foundIn(storedBytes(), [...held, ...next])).toEqual([]);
    });
  }

  if (driver === 'postgres')
    it('says the old row versions remain until VACUUM, naming the tables, and does not run it', async () => {
      await addDistinctiveSubject('cus_0000_residue_server', 'PGSRV1234');
      await addDistinctiveSubject('cus_0000_residue_cli', 'PGCLI5678');
      const erased = await manage('mutation { eraseSubject(subjectId: "cus_0000_residue_server") { subjectId oldCopies } }');
      expect(erased.body).toEqual({ data: { eraseSubject: { subjectId: 'cus_0000_residue_server', oldCopies: 'KEPT_UNTIL_VACUUM' } } });
      const cli = await runCli(['subject', 'erase', '--subject', 'cus_0000_residue_cli'], { DATABASE_URL: candor.database.url, NODE_ENV: 'test' });
      expect([cli.code, cli.stderr]).toEqual([0, '']);
      expect(cli.stdout).toContain('PostgreSQL: the old row versions remain in the tables until the operator runs VACUUM on them, their bytes until VACUUM FULL (docs/operations.md names the tables). The tables: customer, watch_event, payment, consent_event, consent_receipt, consent_state, subject_message, subject_pseudonym.');
    });
});
