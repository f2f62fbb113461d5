import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { In, IsNull, MoreThan, MoreThanOrEqual } from 'typeorm';
import { AuditBatchEntity, AuditCheckpointEntity, AuditEntryEntity } from '../../src/audit/audit.entities';
import { batchHash } from '../../src/audit/chain';
import { checkpointMessage, signedCheckpoint, writeCheckpoint } from '../../src/audit/checkpoints';
import { auditCheckpoint, auditVerify, cliActor, recordCliOperation } from '../../src/cli/audit.command';
import { reportCommand } from '../../src/cli/report.command';
import { parseDatabaseUrl, projectRoot } from '../../src/config';
import { SubjectMessageEntity } from '../../src/consent/subject-message.entity';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { createDataSource, migrate } from '../../src/storage/data-source';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { createTestDatabase, DRIVERS } from '../support/databases';
import { forgeLoneRecord, tamper } from '../support/raw-sql';

/** A file of `text` in `dir`: an export to verify against. */
const written = (dir: string, text: string) => {
  const path = join(dir, 'checkpoints.json');
  writeFileSync(path, text);
  return path;
};
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe.each(DRIVERS)('`candor audit` on %s', (driver) => {
  let candor: Harness;
  const cli = (...args: string[]) => runCli(['audit', ...args], { DATABASE_URL: candor.database.url });
  const traffic = async (requests: number) => {
    for (let index = 0; index < requests; index++) {
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `query Traffic { customers(limit: 3, offset: ${index * 3}) { email phone } }` });
    }
  };

  beforeAll(async () => {
    candor = await startCandor(driver);
    await traffic(5);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('verify: exit 0 with the count and head', async () => {
    const result = await cli('verify');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^verified \d+ records through \d+ \(head hash [0-9a-f]{64}\)\n$/);
    expect(result.stderr).toBe('');
  });

  it('verify: exit 1 naming the first broken record with expected and found digests; the run itself is recorded', async () => {
    // Flip the decision of the second record of a multi-record entry: verify must name that record exactly.
    const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { operationName: 'Traffic' }, order: { seq: 'ASC' }, take: 1 });
    expect(target.count).toBeGreaterThan(1);
    const items = JSON.parse(target.items);
    items[1][2] = items[1][2] === 'RELEASED' ? 'WITHHELD' : 'RELEASED';
    await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [JSON.stringify(items), target.seq]]]);
    try {
      const result = await cli('verify');
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^access log broken at seq ${target.seq + 1}: record ${target.seq + 1}: digest mismatch \\(expected [0-9a-f]{64}, found [0-9a-f]{64}\\)\n$`));
      // No report is computed from it: its figures would count the altered decision.
      const refused = `the access log does not verify (record ${target.seq + 1}: digest mismatch`;
      const cliReport = await runCli(['report', 'purpose-usage', '--format', 'json'], { DATABASE_URL: candor.database.url });
      expect([cliReport.code, cliReport.stdout, cliReport.stderr]).toEqual([1, '', expect.stringContaining(`candor: ${refused}`)]);
      const graphqlReport = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: '{ report(kind: DENIALS) { json } }' });
      expect(graphqlReport.body.errors?.map((error) => [error.extensions?.code, error.message.slice(0, refused.length)])).toEqual([['AUDIT_LOG_BROKEN', refused]]);
      // Without a signed checkpoint since, a period that starts later is verified from the log's beginning: refused too.
      const later = () => runCli(['report', 'purpose-usage', '--from', new Date().toISOString(), '--format', 'json'], { DATABASE_URL: candor.database.url });
      expect((await later()).code).toBe(1);
      // A period that starts after a signed checkpoint past the altered batch rests on records that verify.
      await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date());
      expect((await later()).code).toBe(0);
      // Its batch's commit time (which no digest covers) moved before the period does not take the altered record out of what is verified.
      const [batch] = await candor.services.dataSource.getRepository(AuditBatchEntity).findBy({ id: target.batchId });
      const monthStart = `${target.at.slice(0, 7)}-01T00:00:00.000Z`;
      const moveBatch = (committedAt: string) => tamper(candor, [['UPDATE audit_batch SET committed_at = ? WHERE id = ?', [committedAt, batch.id]], ['UPDATE audit_entry SET committed_at = ? WHERE batch_id = ?', [committedAt, batch.id]]]);
      await moveBatch(monthStart);
      try {
        const moved = await runCli(['report', 'purpose-usage', '--from', target.at, '--format', 'json'], { DATABASE_URL: candor.database.url });
        expect([moved.code, moved.stderr]).toEqual([1, expect.stringContaining(`candor: ${refused}`)]);
      } finally {
        await moveBatch(batch.committedAt);
      }
    } finally {
      await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items, target.seq]]]);
    }
    const runs = await candor.services.accessLogReader.page({ reason: 'ACCESS_LOG_READ' }, 100);
    expect(runs.edges.some((edge) => edge.node.operationName === 'audit verify' && edge.node.actor.id?.startsWith('cli:'))).toBe(true);
  });

  it('a prune that removes nothing — no batch before the date, or a log that does not verify — is recorded as a read of the log, as verify is', async () => {
    const pruneReads = async () => (await candor.services.accessLogReader.page({ reason: 'ACCESS_LOG_READ', actorId: cliActor().id }, 500)).edges.filter((edge) => edge.node.operationName === 'audit prune').length;
    const batches = candor.services.dataSource.getRepository(AuditBatchEntity);
    const before = await pruneReads();
    const nothing = await cli('prune', '--before', '2020-01-01');
    expect([nothing.code, nothing.stdout, nothing.stderr]).toEqual([0, 'nothing to prune: no batch comes before the first one committed at or after that date (the newest batch is always kept)\n', '']);
    expect(await pruneReads()).toBe(before + 1);
    const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { operationName: 'Traffic' }, order: { seq: 'ASC' }, take: 1 });
    const items = JSON.parse(target.items);
    items[0][2] = items[0][2] === 'RELEASED' ? 'WITHHELD' : 'RELEASED';
    await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [JSON.stringify(items), target.seq]]]);
    const batchesBefore = await batches.count();
    try {
      const refused = await cli('prune', '--before', new Date().toISOString());
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([1, '', expect.stringMatching(new RegExp(`^nothing pruned: the access log is broken at seq ${target.seq} \\(record ${target.seq}: digest mismatch .+ — investigate it first \\(npx candor audit verify\\)\n$`))]);
    } finally {
      await tamper(candor, [['UPDATE audit_entry SET items = ? WHERE seq = ?', [target.items, target.seq]]]);
    }
    // Its record is one batch more, and nothing was removed.
    expect(await batches.count()).toBe(batchesBefore + 1);
    expect(await pruneReads()).toBe(before + 2);
  });

  it('verify refuses digests stored as anything but the array sealing wrote (an object with a length and numbered keys reads alike)', async () => {
    const [target] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { operationName: 'Traffic' }, order: { seq: 'ASC' }, take: 1 });
    const digests = JSON.parse(target.digests) as string[];
    await tamper(candor, [['UPDATE audit_entry SET digests = ? WHERE seq = ?', [JSON.stringify({ ...digests, length: digests.length }), target.seq]]]);
    try {
      const result = await cli('verify');
      expect([result.code, result.stderr]).toEqual([1, `access log broken at seq ${target.seq}: record ${target.seq}: entry is not readable (expected JSON items and digests)\n`]);
    } finally {
      await tamper(candor, [['UPDATE audit_entry SET digests = ? WHERE seq = ?', [target.digests, target.seq]]]);
    }
    expect((await cli('verify')).code).toBe(0);
  });

  it("records who created, rotated or revoked an actor's key and who issued a link to a subject's page", async () => {
    const env = { DATABASE_URL: candor.database.url };
    const [subject] = await candor.services.domain.listCustomers({ limit: 1, offset: 0 });
    for (const command of [
      ['actor', 'create', '--id', 'audited-actor', '--name', 'Audited', '--team', 'Audit', '--purposes', 'essential.service'],
      ['actor', 'rotate', '--id', 'audited-actor'],
      ['actor', 'revoke', '--id', 'audited-actor'],
      ['subject', 'link', '--subject', subject.id],
    ]) {
      expect((await runCli(command, env)).code).toBe(0);
    }
    const recorded = async (reason: string) => (await candor.services.accessLogReader.page({ reason }, 10)).edges.map(({ node }) => [node.operationName, node.subjectId, node.actor.team]);
    expect(await recorded('ACTOR_CREATED')).toEqual([['actor create audited-actor', null, 'cli']]);
    expect(await recorded('ACTOR_KEY_ROTATED')).toEqual([['actor rotate audited-actor', null, 'cli']]);
    expect(await recorded('ACTOR_REVOKED')).toEqual([['actor revoke audited-actor', null, 'cli']]);
    expect(await recorded('SUBJECT_LINK_ISSUED')).toEqual([['subject link', subject.id, 'cli']]);
  });

  it('verify --from SEQ starts at the batch holding SEQ', async () => {
    const head = await candor.services.accessLogReader.headSeq();
    const result = await cli('verify', '--from', String(head));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^verified \d+ records through/);
    expect(Number(/verified (\d+)/.exec(result.stdout)![1])).toBeLessThan(head);
    // It says where it started when that is not the record asked for.
    const [holding] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ where: { lastSeq: MoreThanOrEqual(head) }, order: { id: 'ASC' }, take: 1 });
    expect(result.stdout).toMatch(/^verified \d+ records through \d+ \(head hash [0-9a-f]{64}\)\n$/);
    expect(result.stderr).toBe(holding.firstSeq < head ? `checked from seq ${holding.firstSeq}: the first record of the batch holding ${head}\n` : '');
    // From the record after the head: nothing new yet, which is no error (an incremental check's answer).
    const next = await cli('verify', '--from', String((await candor.services.accessLogReader.headSeq()) + 1));
    expect([next.code, next.stdout]).toEqual([0, expect.stringMatching(/^verified 0 records through \d+/)]);
    const past = await cli('verify', '--from', String(head + 1_000));
    expect([past.code, past.stdout, past.stderr]).toEqual([1, '', expect.stringMatching(new RegExp(`^candor: --from ${head + 1_000} is past the log's head \\(seq \\d+\\): nothing to verify\n$`))]);
  });

  it.each([
    [['verify', '--from', 'abc'], 'candor: --from must be a sequence number ≥ 1\n'],
    [['prune'], 'candor: --before DATE is required (ISO-8601)\n'],
    [['prune', '--before', 'someday'], 'candor: --before must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "someday"\n'],
    [['prune', '--before', '2999-01-01'], 'candor: --before must not be in the future\n'],
  ])('rejects bad input %j with one line and exit 1', async (args, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(message);
  });

  it('checkpoint create and export: signatures verify with the exported public key', async () => {
    expect((await cli('checkpoint', 'create')).stdout).toMatch(/^signed checkpoint \d+: seq \d+, head [0-9a-f]{64}\n$/);
    const exported = JSON.parse((await cli('checkpoint', 'export')).stdout);
    expect(exported.checkpoints.length).toBeGreaterThan(0);
    const publicKey = createPublicKey(exported.publicKey);
    for (const checkpoint of exported.checkpoints) {
      expect(verify(null, Buffer.from(checkpointMessage(checkpoint)), publicKey, Buffer.from(checkpoint.signature, 'base64'))).toBe(true);
    }
  });

  it('verify --checkpoints FILE catches a chain rewritten with its checkpoints deleted, which the hashes alone cannot', async () => {
    await candor.services.accessLog.append([{ at: new Date(), requestId: 'anchored', actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: 'UNAUTHENTICATED', legalBasis: null }]);
    const checkpoint = (await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date()))!;
    const exportFile = join(mkdtempSync(join(tmpdir(), 'candor-anchors-')), 'checkpoints.json');
    const exported = (await cli('checkpoint', 'export')).stdout;
    writeFileSync(exportFile, exported);
    const exportedCount = (JSON.parse(exported) as { checkpoints: unknown[] }).checkpoints.length;
    // Held to the whole log: from a sequence number on, the exported checkpoints before it would go unchecked.
    expect(await cli('verify', '--from', '1', '--checkpoints', exportFile)).toEqual({ code: 1, stdout: '', stderr: 'candor: --checkpoints holds the whole log to the export: run it without --from\n' });
    const anchored = await cli('verify', '--checkpoints', exportFile);
    expect([anchored.code, anchored.stderr]).toEqual([0, '']);
    expect(anchored.stdout).toMatch(new RegExp(`^verified \\d+ records through \\d+ \\(head hash [0-9a-f]{64}\\)\nthe log holds ${exportedCount === 1 ? 'the checkpoint' : `all ${exportedCount} checkpoints`} of ${exportFile}, through seq ${checkpoint.seq}\n$`));

    // Someone with write access to the database rewrites the record, hashes it and its batch again, and
    // removes every checkpoint that would contradict them: the chain is consistent again.
    const { batch, entry, forgedHash, forgery } = await forgeLoneRecord(candor, checkpoint.seq);
    expect([entry.seq, entry.count, batch.firstSeq]).toEqual([checkpoint.seq, 1, checkpoint.seq]);
    const checkpoints = await candor.services.dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });
    // The batches after it (the export's and verify's own records) chain from its hash: hashed again too.
    const rechainedAfter = async (hash: string): Promise<Array<[string, unknown[]]>> => {
      const statements: Array<[string, unknown[]]> = [];
      let previousHash = hash;
      for (const next of await candor.services.dataSource.getRepository(AuditBatchEntity).find({ where: { id: MoreThan(batch.id) }, order: { id: 'ASC' } })) {
        const digests = (await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { batchId: next.id }, order: { seq: 'ASC' } })).flatMap((stored) => JSON.parse(stored.digests) as string[]);
        const nextHash = batchHash(previousHash, digests);
        statements.push(['UPDATE audit_batch SET prev_hash = ?, hash = ? WHERE id = ?', [previousHash, nextHash, next.id]]);
        previousHash = nextHash;
      }
      return statements;
    };
    await tamper(candor, [
      ...forgery,
      ...(await rechainedAfter(forgedHash)),
      ['DELETE FROM audit_checkpoint', []],
    ]);
    try {
      expect((await cli('verify')).code).toBe(0);
      const caught = await cli('verify', '--checkpoints', exportFile);
      const [first] = checkpoints;
      expect([caught.code, caught.stdout, caught.stderr]).toEqual([
        1,
        '',
        `access log broken at seq ${first.seq}: checkpoint ${first.id} of ${exportFile} (seq ${first.seq}, head hash ${first.headHash}, ${first.at}) is not in the log: its checkpoints were removed or replaced, and the records it vouched for may have been rewritten since\n`,
      ]);
    } finally {
      // Put back as it was, with the batches the verifies above appended meanwhile chained to it.
      await tamper(candor, [
        ['UPDATE audit_entry SET items = ?, digests = ? WHERE seq = ?', [entry.items, entry.digests, entry.seq]],
        ['UPDATE audit_batch SET hash = ? WHERE id = ?', [batch.hash, batch.id]],
        ...(await rechainedAfter(batch.hash)),
      ]);
      await candor.services.dataSource.getRepository(AuditCheckpointEntity).insert(checkpoints);
    }
    // One of them altered instead: its own signature fails first, at the same place. (Put back, the rows may
    // have new ids: a checkpoint is known by its signature.)
    const { id: heldAs } = await candor.services.dataSource.getRepository(AuditCheckpointEntity).findOneByOrFail({ signature: checkpoint.signature });
    await tamper(candor, [['UPDATE audit_checkpoint SET at = ? WHERE id = ?', ['2001-01-01T00:00:00.000Z', heldAs]]]);
    try {
      const altered = await cli('verify', '--checkpoints', exportFile);
      expect([altered.code, altered.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^access log broken at seq ${checkpoint.seq}: checkpoint ${heldAs} \\(seq ${checkpoint.seq}, signed with key \\w+\\): signature does not verify`))]);
    } finally {
      await tamper(candor, [['UPDATE audit_checkpoint SET at = ? WHERE id = ?', [checkpoint.at, heldAs]]]);
    }
    expect((await cli('verify', '--checkpoints', exportFile)).code).toBe(0);
  });

  it('verify --checkpoints blames the file, not the log, for an export its keys cannot vouch for: changed since export, or signed with a key the log never used', async () => {
    await writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'manual', new Date());
    const { checkpoints } = JSON.parse((await cli('checkpoint', 'export')).stdout) as { checkpoints: Array<Record<string, unknown>> };
    const [first] = checkpoints;
    const exportOf = (changed: Record<string, unknown>) => written(mkdtempSync(join(tmpdir(), 'candor-anchors-')), JSON.stringify({ format: 'candor-checkpoint/1', checkpoints: [{ ...first, ...changed }, ...checkpoints.slice(1)] }));
    const edited = exportOf({ headHash: 'f'.repeat(64) });
    expect(await cli('verify', '--checkpoints', edited)).toEqual({
      code: 1,
      stdout: '',
      stderr: `candor: ${edited}: checkpoint ${first.id} (seq ${first.seq}) does not verify under key ${first.keyId}, the key it names: the file was changed since \`audit checkpoint export\` wrote it\n`,
    });
    const foreign = exportOf({ keyId: '0123456789abcdef' });
    expect(await cli('verify', '--checkpoints', foreign)).toEqual({
      code: 1,
      stdout: '',
      stderr: `candor: ${foreign}: checkpoint ${first.id} is signed with key 0123456789abcdef, which neither CANDOR_AUDIT_SIGNING_KEY nor a key rotation of this log names: an export of another installation, or of this one under a key it never used\n`,
    });
  });

  it.each([
    ['a file that does not exist', () => '/nonexistent/checkpoints.json', 'candor: cannot read /nonexistent/checkpoints.json (ENOENT)\n'],
    ['a file that is not JSON', (dir: string) => written(dir, 'not json'), (file: string) => `candor: ${file} is not valid JSON: `],
    ['JSON that is not an export', (dir: string) => written(dir, '{"checkpoints": []}'), (file: string) => `candor: ${file} is not a checkpoint export (npx candor audit checkpoint export): expected "format": "candor-checkpoint/1" and a list of checkpoints\n`],
    ['an export of no checkpoint', (dir: string) => written(dir, '{"format": "candor-checkpoint/1", "checkpoints": []}'), (file: string) => `candor: ${file} holds no checkpoint: it vouches for nothing\n`],
    ['a checkpoint without its signature', (dir: string) => written(dir, '{"format": "candor-checkpoint/1", "checkpoints": [{"id": 1, "kind": "manual", "seq": 1, "headHash": "ab", "at": "x", "prunedThroughSeq": null, "keyId": "k"}]}'), (file: string) => `candor: ${file}: checkpoint 1 of the list is not a checkpoint as export writes them\n`],
  ])('verify --checkpoints refuses %s (exit 1, one line)', async (_case, file, message) => {
    const path = file(mkdtempSync(join(tmpdir(), 'candor-anchors-')));
    const result = await cli('verify', '--checkpoints', path);
    expect([result.code, result.stdout]).toEqual([1, '']);
    expect(result.stderr).toEqual(typeof message === 'string' ? message : expect.stringMatching(new RegExp(`^${escapeRegExp(message(path))}`)));
  });

  it('shows nothing a read found when the log cannot record the read, and says it is safe to run again (a change says not to); verify shows its finding marked unrecorded, and fails', async () => {
    const written: string[] = [];
    const output = { interactive: false, out: (text: string) => void written.push(text), err: (text: string) => void written.push(text) };
    const down = jest.spyOn(candor.services.accessLog, 'append').mockRejectedValue(new Error('connection terminated'));
    try {
      await expect(auditCheckpoint(candor.services, 'export', output)).rejects.toThrow(
        "the access log could not record this run (audit checkpoint export), so nothing it read is shown — check the log's store, then run it again",
      );
      expect(written).toEqual([]);
      // A report alike: generated, but not shown, and the log named as the cause.
      await expect(reportCommand(candor.services, { kind: 'denials', format: 'json' }, { ...output, writeBinary: (data: Buffer) => void written.push(data.toString()) })).rejects.toThrow(
        "the access log could not record this run (report denials), so nothing it read is shown — check the log's store, then run it again",
      );
      expect(written).toEqual([]);
      // Verify diagnoses a log that refuses appends: what it found (sequence numbers and hashes) is shown.
      expect(await auditVerify(candor.services, {}, output)).toBe(1);
      expect(written).toEqual([expect.stringMatching(/^verified \d+ records through \d+ \(head hash [0-9a-f]{64}\)\n$/), 'this run is unrecorded: the access log refused its record (connection terminated)\n']);
      // A --from past the head verified nothing: said so, not "verified 0 records".
      written.length = 0;
      expect(await auditVerify(candor.services, { from: '999999999' }, output)).toBe(1);
      expect(written).toEqual([expect.stringMatching(/^--from 999999999 is past the log's head \(seq \d+\): nothing to verify\n$/), 'this run is unrecorded: the access log refused its record (connection terminated)\n']);
      await expect(recordCliOperation(candor.services, 'consent import', 'CONSENT_IMPORTED', { done: '3 consent statements were imported' })).rejects.toThrow(
        "3 consent statements were imported, but the access log could not record this run (consent import); do not repeat it — check the log's store",
      );
    } finally {
      down.mockRestore();
    }
  });

  it("verify and prune name a row planted above the head, also where that row makes the log refuse the run's own record (SQLite: its sequence number is taken)", async () => {
    const entries = candor.services.dataSource.getRepository(AuditEntryEntity);
    const [head] = await entries.find({ order: { seq: 'DESC' }, take: 1 });
    const planted = head.seq + head.count;
    const NO_BATCH = 999_999_999;
    await entries.insert({ ...head, seq: planted, batchId: NO_BATCH });
    try {
      const result = await cli('verify');
      expect([result.code, result.stdout]).toEqual([1, '']);
      const found = `access log broken at seq ${planted}: record ${planted} is not covered by any batch\n`;
      const unrecorded = 'this run is unrecorded: the access log refused its record (';
      expect([result.stderr.startsWith(found), result.stderr.slice(found.length).startsWith(unrecorded)]).toEqual([true, driver === 'sqlite']);
      if (driver === 'postgres') expect(result.stderr).toBe(found);
      // A prune refused over it says so as verify does, its run unrecorded where the log refuses the record
      // (on PostgreSQL verify's own record went in: the break is that row, now stored twice).
      const prune = await cli('prune', '--before', new Date().toISOString());
      const notPruned = new RegExp(`^nothing pruned: the access log is broken at seq ${planted} \\(record ${planted}[ :].*\\); a prune would sign over the break and remove its evidence — investigate it first \\(npx candor audit verify\\)\n`);
      expect([prune.code, prune.stdout, prune.stderr]).toEqual([1, '', expect.stringMatching(notPruned)]);
      expect(prune.stderr.replace(notPruned, '').startsWith(unrecorded)).toBe(driver === 'sqlite');
      if (driver === 'postgres') expect(prune.stderr.replace(notPruned, '')).toBe('');
    } finally {
      await tamper(candor, [['DELETE FROM audit_entry WHERE batch_id = ?', [NO_BATCH]]]);
    }
    expect((await cli('verify')).code).toBe(0);
  });

  it("refuses to sign with a key that is not the log's (a checkpoint no verify would accept), and serve does not start with it", async () => {
    expect((await cli('checkpoint', 'create')).code).toBe(0);
    const checkpoints = () => candor.services.dataSource.getRepository(AuditCheckpointEntity).count();
    const before = await checkpoints();
    const otherKey = { DATABASE_URL: candor.database.url, CANDOR_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
    const refused = await runCli(['audit', 'checkpoint', 'create'], otherKey);
    expect([refused.code, refused.stdout]).toEqual([1, '']);
    expect(refused.stderr).toMatch(/^candor: CANDOR_AUDIT_SIGNING_KEY is not the key this access log's checkpoints are signed with \(key [0-9a-f]{16}; this one is [0-9a-f]{16}\): set the log's key\n$/);
    const serve = await runCli(['serve'], { ...otherKey, PORT: '0' });
    expect([serve.code, serve.stderr]).toEqual([1, refused.stderr]);
    expect(await checkpoints()).toBe(before);
    expect((await cli('verify')).code).toBe(0);
    // Verified with another key, the log cannot be vouched for, and the likeliest cause is said.
    const wrongKeyVerify = await runCli(['audit', 'verify'], otherKey);
    expect([wrongKeyVerify.code, wrongKeyVerify.stderr]).toEqual([1, expect.stringMatching(/signature does not verify with key [0-9a-f]{16} — if [0-9a-f]{16} is this log's key, run verify with CANDOR_AUDIT_SIGNING_KEY set to it\n$/)]);
  });

  it('refuses an option the command does not take, or one without its value (exit 2), or a loose date (exit 1), before doing anything', async () => {
    const batches = () => candor.services.dataSource.getRepository(AuditBatchEntity).count();
    const before = await batches();
    const dryRun = await cli('prune', '--before', new Date().toISOString(), '--dry-run');
    expect([dryRun.code, dryRun.stderr, dryRun.stdout]).toEqual([2, 'candor: unknown option --dry-run for "audit prune" (it takes --before)\n', '']);
    const noValue = await cli('verify', '--from');
    expect([noValue.code, noValue.stderr]).toEqual([2, 'candor: --from needs a value\n']);
    // An empty value is a variable left unset: not "the whole log", not "print the subject's data to stdout".
    for (const [args, option] of [
      [['report', 'purpose-usage', '--from', '', '--format', 'json'], 'from'],
      [['report', 'denials', '--format', 'csv', '--out', ' '], 'out'],
    ] as const) {
      const empty = await runCli([...args], { DATABASE_URL: candor.database.url });
      expect([empty.code, empty.stderr, empty.stdout]).toEqual([2, `candor: --${option} needs a value\n`, '']);
    }
    // A word more than the command takes is refused, not dropped (the answer would have been "We"); a switch takes no value.
    const env = { DATABASE_URL: candor.database.url };
    const unquoted = await runCli(['inbox', 'answer', '12', '--text', 'We', 'deleted', 'it'], env);
    expect([unquoted.code, unquoted.stdout, unquoted.stderr]).toEqual([2, '', 'candor: unexpected argument "deleted" for "inbox answer": a value goes after its option (npx candor inbox answer --help lists them), and a value that holds spaces goes in quotes\n']);
    const twoFiles = await runCli(['policy', 'test', 'a.yaml', 'b.yaml'], env);
    expect([twoFiles.code, twoFiles.stderr]).toEqual([2, 'candor: unexpected argument "b.yaml" for "policy test": a value goes after its option (npx candor policy test --help lists them), and a value that holds spaces goes in quotes\n']);
    const extraVerify = await cli('verify', 'now');
    expect([extraVerify.code, extraVerify.stderr]).toEqual([2, 'candor: unexpected argument "now" for "audit verify": a value goes after its option (npx candor audit verify --help lists them), and a value that holds spaces goes in quotes\n']);
    // An option given instead of a command is named before the help.
    const typo = await runCli(['--versoin'], env);
    expect([typo.code, typo.stderr.split('\n')[0]]).toEqual([2, 'candor: unknown option --versoin: give a command (below)']);
    const switchValue = await runCli(['inbox', 'list', '--all=false'], env);
    expect([switchValue.code, switchValue.stderr]).toEqual([2, 'candor: --all takes no value\n']);
    // A sequence number is written in decimal digits: `0x1` or `1e0` is no sequence number.
    for (const from of ['0x1', '1e0', ' 1']) {
      const loose = await cli('verify', '--from', from);
      expect([loose.code, loose.stderr]).toEqual([1, 'candor: --from must be a sequence number ≥ 1\n']);
    }
    // `new Date('12')` is 1 December 2001: a prune date must be an ISO-8601 one.
    const looseDate = await cli('prune', '--before', '12');
    expect([looseDate.code, looseDate.stderr]).toEqual([1, 'candor: --before must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "12"\n']);
    expect(await batches()).toBe(before);
  });

  it('refuses an option given twice, or an option taken for the value before it (exit 2), before anything runs; a value that begins with dashes is written inline', async () => {
    const env = { DATABASE_URL: candor.database.url };
    const customers = candor.services.dataSource.getRepository(CustomerEntity);
    const [first, second] = await customers.find({ where: { erasedAt: IsNull() }, order: { id: 'ASC' }, take: 2 });
    // parseArgs keeps the last: `--subject A --subject B` erased B only.
    const twoSubjects = await runCli(['subject', 'erase', '--subject', first.id, '--subject', second.id], env);
    expect([twoSubjects.code, twoSubjects.stdout, twoSubjects.stderr]).toEqual([2, '', 'candor: --subject is given more than once: give each option once\n']);
    expect((await customers.find({ where: { id: In([first.id, second.id]) }, order: { id: 'ASC' } })).map((customer) => customer.erasedAt)).toEqual([null, null]);
    const twoFormats = await runCli(['report', 'purpose-usage', '--format', 'json', '--format', 'md'], env);
    expect([twoFormats.code, twoFormats.stdout, twoFormats.stderr]).toEqual([2, '', 'candor: --format is given more than once: give each option once\n']);
    // `--text --all` saved the answer "--all".
    const messages = candor.services.dataSource.getRepository(SubjectMessageEntity);
    const message = await messages.save({ subjectId: first.id, context: null, body: 'What do you hold about me?', createdAt: new Date().toISOString() });
    const swallowed = await runCli(['inbox', 'answer', String(message.id), '--text', '--all'], env);
    expect([swallowed.code, swallowed.stdout, swallowed.stderr]).toEqual([2, '', 'candor: --text needs a value, not the option "--all" (a value that begins with dashes is written --text=VALUE)\n']);
    expect((await messages.findOneByOrFail({ id: message.id })).answer).toBeNull();
    const inline = await runCli(['inbox', 'answer', String(message.id), '--text=--all of it, deleted'], env);
    expect([inline.code, inline.stderr]).toEqual([0, '']);
    expect((await messages.findOneByOrFail({ id: message.id })).answer).toBe('--all of it, deleted');
  });

  // Apart from the options above: each case spawns a CLI process, and together they outlast a test's time on a loaded machine.
  it('refuses a missing operand, another subcommand\'s option, an unknown report or checkpoint action (exit 2) before opening any database', async () => {
    const offline = { DATABASE_URL: 'sqlite:/nonexistent/candor.sqlite' };
    // A missing operand is a usage error too, found before the database is opened.
    for (const args of [['report', '--format', 'json'], ['consent', 'import']]) {
      const missing = await runCli(args, offline);
      expect([missing.code, missing.stdout, missing.stderr]).toEqual([2, '', expect.stringMatching(/^candor: usage: npx candor (report <ropa\|subject-access\|purpose-usage\|denials\|consent-coverage>|consent import FILE)/)]);
    }
    // Each subcommand takes its own options: one another subcommand of the command takes is refused too.
    const listWithId = await runCli(['actor', 'list', '--id', 'x1'], offline);
    expect([listWithId.code, listWithId.stderr]).toEqual([2, 'candor: unknown option --id for "actor list" (it takes no options)\n']);
    // The value of an option a command does not take is no part of the command's name.
    const servePort = await runCli(['serve', '--port', '4611'], offline);
    expect([servePort.code, servePort.stderr]).toEqual([2, 'candor: unknown option --port for "serve" (it takes no options)\n']);
    const listWithText = await runCli(['inbox', 'list', '--text', 'x'], offline);
    expect([listWithText.code, listWithText.stderr]).toEqual([2, 'candor: unknown option --text for "inbox list" (it takes --all, --after)\n']);
    const unknownReport = await runCli(['report', 'bogus', '--format', 'json'], offline);
    expect([unknownReport.code, unknownReport.stdout, unknownReport.stderr]).toEqual([2, '', 'candor: unknown report "bogus": use one of ropa, subject-access, purpose-usage, denials, consent-coverage\n']);
    // A missing or unknown action is a usage error before any database is opened.
    for (const action of [[], ['frobnicate']]) {
      const checkpoint = await runCli(['audit', 'checkpoint', ...action], offline);
      expect([checkpoint.code, checkpoint.stderr]).toEqual([2, 'candor: usage: npx candor audit checkpoint <create|export|rotate>\n']);
    }
  });

  it('a prune whose signed checkpoint no longer matches the log writes nothing: no checkpoint, no deletion', async () => {
    const batches = candor.services.dataSource.getRepository(AuditBatchEntity);
    const checkpoints = candor.services.dataSource.getRepository(AuditCheckpointEntity);
    const [oldest] = await batches.find({ order: { id: 'ASC' }, take: 1 });
    const counts = async () => [await batches.count(), await checkpoints.count()];
    const before = await counts();
    const plan = (hash: string) => ({
      before: new Date().toISOString(),
      throughBatchId: oldest.id,
      checkpoint: signedCheckpoint(candor.services.checkpointSigner, 'prune' as const, new Date(), { seq: oldest.lastSeq, hash, prunedThroughSeq: oldest.lastSeq }),
    });
    expect(await candor.services.accessLog.store.prune(plan('f'.repeat(64)))).toBeUndefined();
    expect(await counts()).toEqual(before);
  });

  it('prune removes whole old batches under a signed checkpoint, is recorded, and verify still passes — but catches later deletions', async () => {
    const batchesBefore = await candor.services.dataSource.getRepository(AuditBatchEntity).count();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const result = await cli('prune', '--before', new Date().toISOString());
    expect(result.code).toBe(0);
    const [, records, batches, throughSeq] = (/^pruned (\d+) records in (\d+) batches through seq (\d+); signed a prune checkpoint\n$/.exec(result.stdout) ?? []).map(Number);
    expect([records, batches, throughSeq].every((figure) => figure >= 1)).toBe(true);
    // The pruned batches are gone, their records with them; the prune's own record is one batch more.
    const batchesAfter = await candor.services.dataSource.getRepository(AuditBatchEntity).count();
    expect(batchesAfter).toBe(batchesBefore - batches + 1);
    const [{ remaining }] = await candor.services.dataSource.query(`SELECT count(*) AS remaining FROM audit_entry WHERE seq <= ${throughSeq}`);
    expect(Number(remaining)).toBe(0);
    const [oldestLeft] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'ASC' }, take: 1 });
    expect(oldestLeft.firstSeq).toBe(throughSeq + 1);
    const verified = await cli('verify');
    expect([verified.code, verified.stderr]).toEqual([0, '']);
    // A --from below the prune starts at the first record kept, and says so.
    const fromBelow = await cli('verify', '--from', '1');
    expect([fromBelow.code, fromBelow.stdout, fromBelow.stderr]).toEqual([
      0,
      expect.stringMatching(/^verified \d+ records through \d+ \(head hash [0-9a-f]{64}\)\n$/),
      `checked from seq ${throughSeq + 1}: the log was pruned through ${throughSeq}, and the prune's signed checkpoint stands for the records it removed\n`,
    ]);
    // Under another key the prune's signature fails: that is what is reported, not the records it removed as missing.
    const otherKey = await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, CANDOR_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') });
    expect([otherKey.code, otherKey.stderr]).toEqual([
      1,
      expect.stringMatching(/^access log broken at seq \d+: checkpoint \d+ \(seq \d+, signed with key [0-9a-f]{16}\): signature does not verify with key [0-9a-f]{16} — if [0-9a-f]{16} is this log's key, run verify with CANDOR_AUDIT_SIGNING_KEY set to it\n$/),
    ]);
    const recorded = await candor.services.accessLogReader.page({ reason: 'ACCESS_LOG_PRUNED' }, 10);
    expect(recorded.totalCount).toBe(1);
    // A report over the log says what it can no longer see.
    const report = await runCli(['report', 'denials', '--from', '2026-01-01', '--format', 'json'], { DATABASE_URL: candor.database.url });
    expect(JSON.parse(report.stdout).summary.at(-1)).toMatch(/^The access log was pruned through record \d+: it holds the records committed from .+ on; this report's period starts before that/);

    await traffic(2);
    const [oldest] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'ASC' }, take: 1 });
    await tamper(candor, [
      ['DELETE FROM audit_entry WHERE batch_id = ?', [oldest.id]],
      ['DELETE FROM audit_batch WHERE id = ?', [oldest.id]],
    ]);
    const broken = await cli('verify');
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`access log broken at seq ${oldest.firstSeq}`);
  });
});

describe('the options of the CLI itself', () => {
  const offline = { DATABASE_URL: 'sqlite:/nonexistent/candor.sqlite' };

  it.each([['--version'], ['-V']])('%s prints the version of package.json and exits 0', async (option) => {
    const { version } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8'));
    const result = await runCli([option], offline);
    expect([result.code, result.stdout, result.stderr]).toEqual([0, `${version}\n`, '']);
  });

  it('names an unknown option as it was typed, one dash or two', async () => {
    for (const option of ['-f', '--f']) {
      const result = await runCli(['report', 'denials', option, 'json'], offline);
      expect([result.code, result.stdout, result.stderr]).toEqual([2, '', `candor: unknown option ${option} for "report denials" (it takes --subject, --from, --to, --format, --out)\n`]);
    }
  });
});

(DRIVERS.includes('postgres') ? describe : describe.skip)('a DATABASE_URL naming a PostgreSQL schema that does not exist', () => {
  it('is refused by every command, migrate and serve included, with how to create it; nothing is created', async () => {
    const database = await createTestDatabase('postgres');
    try {
      const env = { DATABASE_URL: `${database.url}${database.url.includes('?') ? '&' : '?'}schema=nope`, PORT: '0' };
      const refusal = /^candor: the database at [^@]+ has no schema "nope" \(DATABASE_URL's \?schema=\): create it \(CREATE SCHEMA nope\), or correct the URL\n$/;
      for (const args of [['audit', 'verify'], ['migrate'], ['serve']]) {
        const result = await runCli(args, env);
        expect([args, result.code, result.stdout, result.stderr]).toEqual([args, 1, '', expect.stringMatching(refusal)]);
      }
      const admin = createDataSource(parseDatabaseUrl(database.url));
      await admin.initialize();
      try {
        expect(await admin.query(`SELECT nspname FROM pg_namespace WHERE nspname = 'nope'`)).toEqual([]);
      } finally {
        await admin.destroy();
      }
    } finally {
      await database.drop();
    }
  });
});

describe.each(DRIVERS)('commands on a database that is not (yet) Candor’s, on %s', (driver) => {
  it('refuse it rather than create or migrate it as a side effect, and say what to do', async () => {
    const database = await createTestDatabase(driver);
    try {
      const verify = () => runCli(['audit', 'verify'], { DATABASE_URL: database.url });
      if (driver === 'sqlite') {
        const path = database.url.slice('sqlite:'.length);
        const missing = await verify();
        expect([missing.code, missing.stderr, existsSync(path)]).toEqual([1, `candor: no Candor database at ${path}: set DATABASE_URL, or create one with \`npx candor migrate\`\n`, false]);
        // An empty file is none either, and is left as it was (opened, SQLite would write a first page into it).
        new Database(path).close();
        const empty = await verify();
        expect([empty.code, empty.stderr, statSync(path).size]).toEqual([1, `candor: no Candor database at ${path} (the file is empty): set DATABASE_URL, or create one with \`npx candor migrate\`\n`, 0]);
        // A database, but not migrated.
        const unrelated = new Database(path);
        unrelated.exec('CREATE TABLE unrelated (id INTEGER)');
        unrelated.close();
      }
      const unmigrated = await verify();
      expect([unmigrated.code, unmigrated.stdout]).toEqual([1, '']);
      // A usage error or a bad argument is said as such, before the database is looked at.
      for (const [args, code, stderr] of [
        [['actor', 'promote'], 2, 'candor: usage: npx candor actor <create|list|rotate|revoke> …\n'],
        [['inbox'], 2, 'candor: usage: npx candor inbox <list [--all] [--after ID] | answer ID --text "…">\n'],
        [['report', 'gossip', '--format', 'json'], 2, 'candor: unknown report "gossip": use one of ropa, subject-access, purpose-usage, denials, consent-coverage\n'],
        [['report', 'denials', '--format', 'docx'], 1, 'candor: --format must be one of json, csv, html, pdf, md\n'],
      ] as const) {
        const result = await runCli([...args], { DATABASE_URL: database.url });
        expect([result.code, result.stderr]).toEqual([code, stderr]);
      }
      expect(unmigrated.stderr).toMatch(/^candor: the database at .+ has pending migrations: run `npx candor migrate` first \(upgrade notes: docs\/operations\.md\)\n$/);
      expect(unmigrated.stderr).not.toMatch(/postgres:\/\/|@/); // no credentials in the message
      const migrated = await runCli(['migrate'], { DATABASE_URL: database.url });
      expect(migrated.code).toBe(0);
      expect((await verify()).stdout).toMatch(/^verified 0 records through 0 /);
    } finally {
      await database.drop();
    }
  });
});

// SQLite's alone: on PostgreSQL a CLI command waits for a lock as long as it is held (it runs without a statement timeout).
describe('a command that cannot get the SQLite write lock', () => {
  it('says so in one line, and that it wrote nothing only when its change is one transaction', async () => {
    const database = await createTestDatabase('sqlite');
    const path = database.url.slice('sqlite:'.length);
    try {
      // In this process: a CLI run would add seconds to a test that waits out the busy timeout already.
      const dataSource = createDataSource(parseDatabaseUrl(database.url));
      await dataSource.initialize();
      await migrate(dataSource);
      await dataSource.destroy();
      const holder = new Database(path);
      holder.exec('BEGIN IMMEDIATE');
      let runs: Awaited<ReturnType<typeof runCli>>[];
      try {
        runs = await Promise.all([
          runCli(['actor', 'create', '--id', 'waits-for-the-lock', '--name', 'Waiting', '--team', 'ops', '--purposes', 'essential.service'], { DATABASE_URL: database.url }),
          runCli(['seed'], { DATABASE_URL: database.url }),
        ]);
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      const [create, seed] = runs;
      const busy = 'candor: the database is busy: another process held its write lock (a command waits up to 10 s for it); ';
      expect([create.code, create.stdout, create.stderr]).toEqual([1, '', `${busy}nothing was written by this command, try again\n`]);
      // seed writes the demo actors, then the platform, in several transactions: an earlier one may have committed.
      expect([seed.code, seed.stderr]).toEqual([1, `${busy}try again\n`]);
      const reader = new Database(path, { readonly: true });
      try {
        expect(reader.prepare("SELECT count(*) AS actors FROM actor WHERE id = 'waits-for-the-lock'").get()).toEqual({ actors: 0 });
      } finally {
        reader.close();
      }
    } finally {
      await database.drop();
    }
  });
});
