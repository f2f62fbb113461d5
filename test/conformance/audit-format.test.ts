import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AccessLog } from '../../src/audit/access-log';
import { AuditBatchEntity, AuditCheckpointEntity, AuditEntryEntity } from '../../src/audit/audit.entities';
import { recordCliOperation } from '../../src/cli/audit.command';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { DRIVERS } from '../support/databases';
import { tamper } from '../support/raw-sql';

/**
 * docs/audit-format.md claims a third party can verify the access log without Candor's code.
 * verify_audit_log.py is such a third party, written from the document alone: on a log Candor wrote for
 * real, it must reach Candor's verdict — the same count and head, or a break at the same sequence number for
 * the same problem.
 */
const VERIFIER = join(__dirname, 'verify_audit_log.py');

type Outcome = { verified: true; records: number; headSeq: number; headHash: string } | { verified: false; brokenAt: number; problem: string };

function outcome(result: { code: number | null; stdout: string; stderr: string }, who: string): Outcome {
  const verified = /^verified (\d+) records through (\d+) \(head hash ([0-9a-f]{64})\)\n$/.exec(result.stdout);
  if (result.code === 0 && verified) return { verified: true, records: Number(verified[1]), headSeq: Number(verified[2]), headHash: verified[3] };
  const broken = /^access log broken at seq (\d+): (.*)\n/.exec(result.stderr);
  if (result.code === 1 && broken) return { verified: false, brokenAt: Number(broken[1]), problem: broken[2] };
  throw new Error(`${who} answered neither a verification nor a break (exit ${result.code}):\n${result.stdout}${result.stderr}`);
}

/** The PKCS#8 DER prefix of an Ed25519 seed (*Checkpoints*, Signing key): the public key is derived as the document says. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const publicKeyOf = (seed: Buffer) => createPublicKey(createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' }).toString('base64');

describe.each(DRIVERS)('docs/audit-format.md: an independent verifier (Python) agrees with `candor audit verify` on %s', (driver) => {
  let candor: Harness;
  // Signing passes from the first key to the second by a rotation; verification trusts the second.
  const [firstSeed, secondSeed] = [randomBytes(32), randomBytes(32)];
  const cli = (args: string[], keys: { signing: Buffer; next?: Buffer }) =>
    runCli(['audit', ...args], {
      DATABASE_URL: candor.database.url,
      CANDOR_AUDIT_SIGNING_KEY: keys.signing.toString('base64'),
      ...(keys.next ? { CANDOR_AUDIT_NEXT_SIGNING_KEY: keys.next.toString('base64') } : {}),
    });

  const python = async (args: string[] = []): Promise<Outcome> => {
    try {
      const { stdout, stderr } = await promisify(execFile)('python3', [VERIFIER, candor.database.url, '--public-key', publicKeyOf(secondSeed), ...args]);
      return outcome({ code: 0, stdout, stderr }, 'verify_audit_log.py');
    } catch (error) {
      const failed = error as NodeJS.ErrnoException & { code: number | string; stdout: string; stderr: string };
      if (failed.code === 'ENOENT') throw new Error('python3 is not on PATH: the access-log conformance test needs it (Python 3, standard library; `cryptography` or `openssl` for Ed25519)');
      return outcome({ code: Number(failed.code), stdout: failed.stdout, stderr: failed.stderr }, 'verify_audit_log.py');
    }
  };
  // Python first: Candor's verify records its own run, a record more for the next reader.
  const bothVerify = async (args: string[] = []) => {
    const independent = await python(args);
    const candorVerify = outcome(await cli(['verify', ...args], { signing: secondSeed }), 'candor audit verify');
    return { independent, candor: candorVerify };
  };

  const traffic = async (requests: number) => {
    for (let index = 0; index < requests; index++) {
      await candor.query({ key: KEYS.support, purpose: 'essential.service', operationName: 'Conformance', query: `query Conformance { customers(limit: 3, offset: ${index * 3}) { email phone } }` });
    }
    // Masked releases carry a 7th item element and a 17-element canonical array.
    await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: '{ customers(limit: 2) { email phone birthDate } }' });
    await candor.query({ purpose: 'essential.service', query: '{ customers { email } }' }); // a refusal: no subject, no actor
  };
  const entries = () => candor.services.dataSource.getRepository(AuditEntryEntity);

  beforeAll(async () => {
    candor = await startCandor(driver, { env: { CANDOR_AUDIT_SIGNING_KEY: firstSeed.toString('base64'), CANDOR_AUDIT_CHECKPOINT_SECONDS: '0' } });
    await traffic(3);
    await recordCliOperation(candor.services, 'consent import', 'CONSENT_IMPORTED');
    expect((await cli(['checkpoint', 'create'], { signing: firstSeed })).code).toBe(0);
    await traffic(2);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the prune date lies after the last commit
    expect((await cli(['prune', '--before', new Date().toISOString()], { signing: firstSeed })).stdout).toMatch(/^pruned \d+ records/);
    // Records the new key will prune after its rotation.
    await traffic(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const beforeRotation = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await traffic(3);
    // Group commit: the first append commits alone, the ones queued meanwhile share one batch of many entries.
    const log = new AccessLog(candor.services.accessLog.store);
    const refusal = (index: number) => ({ at: new Date(), requestId: `conformance-${index}`, actor: null, purpose: null, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED' as const, reason: 'UNAUTHENTICATED', legalBasis: null });
    await Promise.all(Array.from({ length: 12 }, (_, index) => log.append([refusal(index)])));
    await recordCliOperation(candor.services, 'inbox list', 'SUBJECT_MESSAGES_READ');
    expect((await cli(['checkpoint', 'rotate'], { signing: firstSeed, next: secondSeed })).code).toBe(0);
    await traffic(2);
    expect((await cli(['checkpoint', 'create'], { signing: secondSeed })).code).toBe(0);
    // The new key prunes records from before its rotation: its prune checkpoint's seq lies below the rotation's.
    expect((await cli(['prune', '--before', beforeRotation], { signing: secondSeed })).stdout).toMatch(/^pruned \d+ records/);
    await traffic(2);
  }, 180_000);
  afterAll(async () => {
    await candor?.stop();
  });

  it('the genuine log: a prune, a key rotation, packed and single-record entries, shared batches — same count and head, in full and --from', async () => {
    const kinds = (await candor.services.dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } })).map((checkpoint) => checkpoint.kind);
    expect(kinds).toEqual(['manual', 'prune', 'rotation', 'manual', 'prune']);
    const stored = await entries().find();
    expect(stored.some((entry) => entry.items.includes('"MASKED"'))).toBe(true);
    expect(stored.some((entry) => entry.count > 1)).toBe(true);
    const entriesPerBatch = new Map<number, number>();
    for (const entry of stored) entriesPerBatch.set(entry.batchId, (entriesPerBatch.get(entry.batchId) ?? 0) + 1);
    expect(Math.max(...entriesPerBatch.values())).toBeGreaterThan(1);

    const full = await bothVerify();
    expect(full.candor).toEqual(expect.objectContaining({ verified: true }));
    expect(full.independent).toEqual(full.candor);
    // From inside a packed entry: the walk starts at the first record of the batch holding it.
    const [latest] = await entries().find({ where: { operationName: 'Conformance' }, order: { seq: 'DESC' }, take: 1 });
    const from = await bothVerify(['--from', String(latest.seq + 1)]);
    expect(from.candor).toEqual(expect.objectContaining({ verified: true }));
    expect(from.independent).toEqual(from.candor);
  });

  /** A packed entry of the remaining log that is not in the head batch, so Candor's own appends chain on untouched. */
  const packedEntry = async () => {
    const [entry] = await entries().find({ where: { operationName: 'Conformance' }, order: { seq: 'ASC' }, take: 1 });
    expect(entry.count).toBeGreaterThan(1);
    return entry;
  };

  type Statements = Array<[string, unknown[]]>;
  interface Tampering {
    /** The sequence number the document says verification reports. */
    readonly expected: number;
    readonly apply: Statements;
    readonly restore: Statements | (() => Promise<unknown>);
  }

  it.each<[string, () => Promise<Tampering>]>([
    [
      'one byte of one record changed',
      async () => {
        const entry = await packedEntry();
        const items = JSON.parse(entry.items);
        const reason: string = items[1][3];
        items[1][3] = reason.slice(0, -1) + (reason.endsWith('X') ? 'Y' : 'X');
        return {
          expected: entry.seq + 1,
          apply: [['UPDATE audit_entry SET items = ? WHERE seq = ?', [JSON.stringify(items), entry.seq]]],
          restore: [['UPDATE audit_entry SET items = ? WHERE seq = ?', [entry.items, entry.seq]]],
        };
      },
    ],
    [
      'one record deleted',
      async () => {
        const [single] = await entries().find({ where: { operationName: 'inbox list' }, take: 1 });
        return { expected: single.seq, apply: [['DELETE FROM audit_entry WHERE seq = ?', [single.seq]]], restore: () => entries().insert(single) };
      },
    ],
    [
      'two records reordered (their digests moved with them)',
      async () => {
        const entry = await packedEntry();
        const swapFirstTwo = (json: string) => JSON.stringify(((list: unknown[]) => [list[1], list[0], ...list.slice(2)])(JSON.parse(json)));
        return {
          expected: entry.seq,
          apply: [['UPDATE audit_entry SET items = ?, digests = ? WHERE seq = ?', [swapFirstTwo(entry.items), swapFirstTwo(entry.digests), entry.seq]]],
          restore: [['UPDATE audit_entry SET items = ?, digests = ? WHERE seq = ?', [entry.items, entry.digests, entry.seq]]],
        };
      },
    ],
    [
      'a batch hash changed',
      async () => {
        const entry = await packedEntry();
        const [batch] = await candor.services.dataSource.getRepository(AuditBatchEntity).findBy({ id: entry.batchId });
        const altered = (batch.hash[0] === '0' ? '1' : '0') + batch.hash.slice(1);
        return {
          expected: batch.firstSeq,
          apply: [['UPDATE audit_batch SET hash = ? WHERE id = ?', [altered, batch.id]]],
          restore: [['UPDATE audit_batch SET hash = ? WHERE id = ?', [batch.hash, batch.id]]],
        };
      },
    ],
    [
      'a checkpoint signature changed',
      async () => {
        const [checkpoint] = await candor.services.dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'DESC' }, take: 1 });
        const altered = (checkpoint.signature[0] === 'A' ? 'B' : 'A') + checkpoint.signature.slice(1);
        return {
          expected: checkpoint.seq,
          apply: [['UPDATE audit_checkpoint SET signature = ? WHERE id = ?', [altered, checkpoint.id]]],
          restore: [['UPDATE audit_checkpoint SET signature = ? WHERE id = ?', [checkpoint.signature, checkpoint.id]]],
        };
      },
    ],
  ])('%s: both report the break at the same sequence number, in the same words', async (_, plan) => {
    const { expected, apply, restore } = await plan();
    await tamper(candor, apply);
    try {
      const { independent, candor: candorVerify } = await bothVerify();
      expect(candorVerify).toEqual(expect.objectContaining({ verified: false, brokenAt: expected }));
      // The document gives these problems' texts too: the same words, not only the same place.
      expect(independent).toEqual(candorVerify);
    } finally {
      await (typeof restore === 'function' ? restore() : tamper(candor, restore));
    }
    expect(await python()).toEqual(expect.objectContaining({ verified: true }));
  });
});
