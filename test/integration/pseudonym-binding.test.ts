import type { DataSource } from 'typeorm';
import { SubjectPseudonymEntity } from '../../src/audit/audit.entities';
import { pseudonymBinding, pseudonymBindingKey } from '../../src/audit/pseudonym-binding';
import { DEVELOPMENT_SECRET, loadConfig } from '../../src/config';
import { eraseSubject } from '../../src/privacy/erasure';
import { generateReport } from '../../src/reports/generate-report';
import { openServices } from '../../src/server/services';
import { createDataSource, migrate } from '../../src/storage/data-source';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../support/databases';
import { tamper } from '../support/raw-sql';
import { addCustomer } from '../support/subjects';

const A = 'cus_binding_a';
const B = 'cus_binding_b';
const THEIRS = 'the-secret-the-mappings-were-bound-with';
const NEXT = 'the-secret-after-the-incident';
const ALTERED = (pseudonym: string) => `the mapping of pseudonym ${pseudonym} was altered (its binding is missing or does not match): its records would be attributed to a subject they are not about`;

/** Runs `sql` (with `?` placeholders) on either store, behind Candor's back. */
const rawQuery = (dataSource: DataSource, sql: string, parameters: unknown[] = []) =>
  dataSource.query(dataSource.options.type === 'postgres' ? sql.replace(/\?/g, (_, offset: number, all: string) => `$${all.slice(0, offset).split('?').length}`) : sql, parameters);

/** Exchanges the pseudonyms of two subjects' mappings, each row keeping its binding, as an attacker with write access would. */
const swapStatements = (pseudonyms: Record<string, string>): Array<[string, unknown[]]> => [
  ['UPDATE subject_pseudonym SET pseudonym = ? WHERE subject_id = ?', ['psn_being_swapped', A]],
  ['UPDATE subject_pseudonym SET pseudonym = ? WHERE subject_id = ?', [pseudonyms[A], B]],
  ['UPDATE subject_pseudonym SET pseudonym = ? WHERE subject_id = ?', [pseudonyms[B], A]],
];

describe.each(DRIVERS)('the bindings of the access log\'s pseudonym mappings on %s', (driver) => {
  describe('on a running server', () => {
    let candor: Harness;
    let pseudonyms: Record<string, string>;
    const auditor = (query: string, variables?: Record<string, unknown>) => candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query, variables });
    const subjectsIn = async (filter: Record<string, unknown>) => auditor('query Log($filter: AccessLogFilter) { accessLog(filter: $filter, first: 100) { totalCount edges { node { subjectId } } } }', { filter });
    const mapping = (subjectId: string) => candor.services.dataSource.getRepository(SubjectPseudonymEntity).findOneByOrFail({ subjectId });

    beforeAll(async () => {
      candor = await startCandor(driver);
      await addCustomer(candor, A);
      await addCustomer(candor, B);
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ a: customer(id: "${A}") { email } }` });
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ b: customer(id: "${B}") { email phone } }` });
      pseudonyms = { [A]: (await mapping(A)).pseudonym, [B]: (await mapping(B)).pseudonym };
    });
    afterAll(async () => {
      await candor?.stop();
    });

    it('binds every mapping it makes, and the log verifies', async () => {
      for (const subjectId of [A, B]) {
        const { pseudonym, binding } = await mapping(subjectId);
        expect(binding).toBe(pseudonymBinding(candor.services.pseudonymBindingKey, pseudonym, subjectId));
      }
      expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, problem: null }));
    });

    it("finds two subjects' mappings swapped: verify names the pseudonym (not the subject), accessLog and a subject-access report refuse", async () => {
      const recordsOf = async (subjectId: string) => (await subjectsIn({ subjectId })).body.data!.accessLog.totalCount as number;
      const before = { [A]: await recordsOf(A), [B]: await recordsOf(B) };
      expect(before[A]).not.toBe(before[B]);
      await tamper(candor, swapStatements(pseudonyms));
      try {
        const report = await candor.services.verifyAccessLog();
        const [firstOfB] = await rawQuery(candor.services.dataSource, 'SELECT min(seq) AS seq FROM audit_entry WHERE subject_pseudonym = ?', [pseudonyms[B]]);
        // A's row, first by subject id, now holds B's pseudonym.
        expect(report).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: Number(firstOfB.seq), problem: ALTERED(pseudonyms[B]) }));
        expect(report.problem).not.toContain('cus_');
        const cli = await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, NODE_ENV: 'test' });
        expect([cli.code, cli.stderr]).toEqual([1, `access log broken at seq ${firstOfB.seq}: ${ALTERED(pseudonyms[B])}\n`]);

        for (const filter of [{ subjectId: A }, { subjectId: B }, {}]) {
          const refused = await subjectsIn(filter);
          expect(refused.body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([['AUDIT_LOG_BROKEN', expect.stringContaining('was altered (its binding is missing or does not match)')]]);
        }
        await expect(generateReport(candor.services, { kind: 'subject-access', subjectId: A }, { actor: { id: 'test', name: 'Test', team: 'test' }, requestId: 'binding-report' })).rejects.toThrow(
          `${ALTERED(pseudonyms[B])} — nothing is attributed from it`,
        );
      } finally {
        await tamper(candor, swapStatements({ [A]: pseudonyms[B], [B]: pseudonyms[A] }));
      }
      expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
      expect({ [A]: await recordsOf(A), [B]: await recordsOf(B) }).toEqual(before);
    });

    it('finds a mapping without its binding', async () => {
      const { binding } = await mapping(B);
      await tamper(candor, [['UPDATE subject_pseudonym SET binding = NULL WHERE subject_id = ?', [B]]]);
      try {
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, problem: ALTERED(pseudonyms[B]) }));
      } finally {
        await tamper(candor, [['UPDATE subject_pseudonym SET binding = ? WHERE subject_id = ?', [binding, B]]]);
      }
    });

    it("finds a mapping deleted behind Candor's back (the subject's records would read as no one's), and not one an erasure removed", async () => {
      // A record about B late in the log, for the incremental run below.
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${B}") { email } }` });
      const { pseudonym, binding, createdAt } = await mapping(B);
      await tamper(candor, [['DELETE FROM subject_pseudonym WHERE subject_id = ?', [B]]]);
      try {
        const [firstOfB] = await rawQuery(candor.services.dataSource, 'SELECT min(seq) AS seq FROM audit_entry WHERE subject_pseudonym = ?', [pseudonym]);
        const problem = `pseudonym ${pseudonym} names records, but no mapping maps it and no erasure removed one (its mapping was deleted): its subject's records would be attributed to no one`;
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: Number(firstOfB.seq), problem }));
        const cli = await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, NODE_ENV: 'test' });
        expect([cli.code, cli.stderr]).toEqual([1, `access log broken at seq ${firstOfB.seq}: ${problem}\n`]);
        // An incremental run (--from) reads its own stretch of the log: it finds the pseudonym at its first record
        // there, and a run starting after its last record has none of them to check.
        const [[laterOfB], [head]] = [await rawQuery(candor.services.dataSource, 'SELECT max(seq) AS seq FROM audit_entry WHERE subject_pseudonym = ?', [pseudonym]), await rawQuery(candor.services.dataSource, 'SELECT max(last_seq) AS seq FROM audit_batch')];
        expect(await candor.services.verifyAccessLog({ fromSeq: Number(laterOfB.seq) })).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: Number(laterOfB.seq), problem }));
        await candor.services.accessLog.append([{ at: new Date(), requestId: 'after-b', actor: null, purpose: null, operationName: null, subjectId: A, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
        expect(await candor.services.verifyAccessLog({ fromSeq: Number(head.seq) + 1 })).toEqual(expect.objectContaining({ verified: true }));
        // Accounted for as an erasure only with the secret: a row made without it accounts for nothing.
        await tamper(candor, [['INSERT INTO erased_pseudonym (pseudonym, binding) VALUES (?, ?)', [pseudonym, 'f'.repeat(64)]]]);
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, problem }));
      } finally {
        await tamper(candor, [
          ['DELETE FROM erased_pseudonym WHERE pseudonym = ?', [pseudonym]],
          ['INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at, binding) VALUES (?, ?, ?, ?)', [B, pseudonym, createdAt, binding]],
        ]);
      }
      expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
      // An erasure removes a mapping and accounts for it; a record about the subject made after it names a
      // pseudonym no mapping ever held, accounted for too.
      const erased = 'cus_binding_erased';
      await addCustomer(candor, erased);
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${erased}") { email } }` });
      await eraseSubject(candor.services, erased, { id: 'privacy-desk', name: 'Privacy desk', team: 'Privacy' }, 'binding-erasure');
      await candor.services.accessLog.append([{ at: new Date(), requestId: 'after-the-erasure', actor: null, purpose: null, operationName: null, subjectId: erased, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
      const [after] = await rawQuery(candor.services.dataSource, "SELECT subject_pseudonym FROM audit_entry WHERE request_id = 'after-the-erasure'");
      expect(await rawQuery(candor.services.dataSource, 'SELECT pseudonym FROM erased_pseudonym WHERE pseudonym = ?', [after.subject_pseudonym])).toEqual([{ pseudonym: after.subject_pseudonym }]);
      expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, problem: null }));
    });

    it('finds a planted mapping that names no record, and says so without a sequence number', async () => {
      await tamper(candor, [['INSERT INTO subject_pseudonym (subject_id, pseudonym, created_at) VALUES (?, ?, ?)', ['cus_binding_planted', 'psn_planted', new Date().toISOString()]]]);
      try {
        expect(await candor.services.verifyAccessLog()).toEqual(expect.objectContaining({ verified: false, firstBrokenSeq: null, problem: ALTERED('psn_planted') }));
        const cli = await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, NODE_ENV: 'test' });
        expect([cli.code, cli.stderr]).toEqual([1, `access log broken: ${ALTERED('psn_planted')}\n`]);
      } finally {
        await tamper(candor, [['DELETE FROM subject_pseudonym WHERE subject_id = ?', ['cus_binding_planted']]]);
      }
    });
  });

  describe('on a database upgraded or re-keyed', () => {
    let database: TestDatabase;
    beforeEach(async () => {
      database = await createTestDatabase(driver);
    });
    afterEach(async () => {
      await database?.drop();
    });
    const configWith = (secret: string) => loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: secret }, {});
    const open = (secret: string) => openServices(configWith(secret), { migrate: 'require' });
    /** A log with records about A and B, under THEIRS. */
    const logAboutTwoSubjects = async () => {
      const services = await openServices(configWith(THEIRS));
      for (const subjectId of [A, B]) {
        await services.accessLog.append([{ at: new Date(), requestId: `about-${subjectId}`, actor: null, purpose: null, operationName: null, subjectId, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
      }
      return services;
    };

    /** A DataSource of the database that migrates only when told (the upgrade tests run the last migration themselves). */
    const withMigratingSource = async (work: (migrating: DataSource) => Promise<void>) => {
      const migrating = createDataSource(configWith(THEIRS).database);
      await migrating.initialize();
      try {
        await work(migrating);
      } finally {
        await migrating.destroy();
      }
    };

    it("binds an upgraded log's mappings when Candor migrates it with the database's secret; refuses without the secret, or with another", async () => {
      const before = await logAboutTwoSubjects();
      try {
        // Back to the version before bindings (and the migration after it): the mappings are there, unbound.
        for (let undone = 0; undone < 2; undone++) await before.dataSource.undoLastMigration({ transaction: 'each' });
      } finally {
        await before.close();
      }
      await withMigratingSource(async (migrating) => {
        await expect(migrate(migrating)).rejects.toThrow("the access log's pseudonym mappings must be bound with CANDOR_SECRET, which this migration run was not given: run `npx candor migrate` (with CANDOR_SECRET set) instead");
        await expect(migrate(migrating, 'another-secret-of-some-length')).rejects.toThrow("CANDOR_SECRET is not the secret this database's actors and links were made with");
        expect(await migrate(migrating, THEIRS)).toEqual(['PseudonymBinding1764700000000', 'ErasedPseudonyms1764720000000']);
      });
      const upgraded = await open(THEIRS);
      try {
        const key = pseudonymBindingKey(THEIRS);
        for (const { pseudonym, subjectId, binding } of await upgraded.dataSource.getRepository(SubjectPseudonymEntity).find()) expect(binding).toBe(pseudonymBinding(key, pseudonym, subjectId));
        expect(await upgraded.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
        expect((await upgraded.accessLogReader.page({ requestId: `about-${A}` })).edges.map(({ node }) => node.subjectId)).toEqual([A]);
      } finally {
        await upgraded.close();
      }
    });

    it('does not bind an upgraded log that has recorded no secret under the development secret (a command run without NODE_ENV=production): the servers\' secret binds it', async () => {
      const development = await openServices(loadConfig({ DATABASE_URL: database.url, NODE_ENV: 'test' }, {}));
      try {
        await development.accessLog.append([{ at: new Date(), requestId: 'before-any-secret', actor: null, purpose: null, operationName: null, subjectId: A, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
        for (let undone = 0; undone < 2; undone++) await development.dataSource.undoLastMigration({ transaction: 'each' });
      } finally {
        await development.close();
      }
      await withMigratingSource(async (migrating) => {
        await expect(migrate(migrating, DEVELOPMENT_SECRET)).rejects.toThrow("this database has recorded no secret yet, and this run has the development secret (CANDOR_SECRET unset): run it with CANDOR_SECRET set to the database's secret");
        expect(await migrate(migrating, THEIRS)).toEqual(['PseudonymBinding1764700000000', 'ErasedPseudonyms1764720000000']);
      });
      const upgraded = await open(THEIRS);
      try {
        expect(await upgraded.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
      } finally {
        await upgraded.close();
      }
    });

    it("remembers an upgraded log's erased pseudonyms when Candor migrates it with the database's secret, so that it verifies; refuses without the secret", async () => {
      const before = await logAboutTwoSubjects();
      try {
        await before.accessLog.forgetSubject(A);
        // Back to the version before erased pseudonyms were remembered: A's records name a pseudonym no row accounts for.
        await before.dataSource.undoLastMigration({ transaction: 'each' });
      } finally {
        await before.close();
      }
      await withMigratingSource(async (migrating) => {
        await expect(migrate(migrating)).rejects.toThrow("the access log's erased pseudonyms must be bound with CANDOR_SECRET, which this migration run was not given");
        expect(await migrate(migrating, THEIRS)).toEqual(['ErasedPseudonyms1764720000000']);
      });
      const upgraded = await open(THEIRS);
      try {
        expect(await upgraded.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true, problem: null }));
      } finally {
        await upgraded.close();
      }
    });

    it('secret rotate binds every mapping, and every erased pseudonym, anew under the new secret', async () => {
      const services = await logAboutTwoSubjects();
      await services.accessLog.forgetSubject(A);
      await services.close();
      const rotated = await runCli(['secret', 'rotate'], { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS, CANDOR_NEXT_SECRET: NEXT });
      expect([rotated.code, rotated.stderr]).toEqual([0, '']);
      const after = await open(NEXT);
      try {
        expect(await after.verifyAccessLog()).toEqual(expect.objectContaining({ verified: true }));
        expect((await after.accessLogReader.page({ requestId: `about-${B}` })).edges.map(({ node }) => node.subjectId)).toEqual([B]);
      } finally {
        await after.close();
      }
    });

    it('secret rotate refuses, changing nothing, when a mapping was altered', async () => {
      const services = await logAboutTwoSubjects();
      const pseudonymOfB = (await services.dataSource.getRepository(SubjectPseudonymEntity).findOneByOrFail({ subjectId: B })).pseudonym;
      await rawQuery(services.dataSource, 'UPDATE subject_pseudonym SET binding = NULL WHERE subject_id = ?', [B]);
      await services.close();
      const refused = await runCli(['secret', 'rotate'], { DATABASE_URL: database.url, NODE_ENV: 'test', CANDOR_SECRET: THEIRS, CANDOR_NEXT_SECRET: NEXT });
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([1, '', `candor: nothing rotated: ${ALTERED(pseudonymOfB)} — investigate it first (npx candor audit verify)\n`]);
      const unchanged = await open(THEIRS);
      try {
        const key = pseudonymBindingKey(THEIRS);
        const mappings = await unchanged.dataSource.getRepository(SubjectPseudonymEntity).find({ order: { subjectId: 'ASC' } });
        expect(mappings.map(({ pseudonym, subjectId, binding }) => [subjectId, binding === null ? null : binding === pseudonymBinding(key, pseudonym, subjectId)])).toEqual([[A, true], [B, null]]);
      } finally {
        await unchanged.close();
      }
    });
  });
});
