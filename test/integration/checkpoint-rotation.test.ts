import { randomBytes } from 'node:crypto';
import { AuditBatchEntity, AuditCheckpointEntity } from '../../src/audit/audit.entities';
import { checkpointMessage, checkpointSigner, rotateSigningKey, signedCheckpoint, writeCheckpoint } from '../../src/audit/checkpoints';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli, startChildServer } from '../support/child-server';
import { DRIVERS } from '../support/databases';
import { tamper } from '../support/raw-sql';

describe.each(DRIVERS)('rotating the checkpoint signing key on %s', (driver) => {
  let candor: Harness;
  const [firstSeed, secondSeed, thirdSeed] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const [first, second] = [checkpointSigner(firstSeed), checkpointSigner(secondSeed)];
  /** The CLI under a signing key (the default one, derived from the development secret, when none is given). */
  const cli = (args: string[], keys: { signing?: Buffer; next?: Buffer } = {}) =>
    runCli(['audit', ...args], {
      DATABASE_URL: candor.database.url,
      ...(keys.signing ? { CANDOR_AUDIT_SIGNING_KEY: keys.signing.toString('base64') } : {}),
      ...(keys.next ? { CANDOR_AUDIT_NEXT_SIGNING_KEY: keys.next.toString('base64') } : {}),
    });
  const traffic = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 3) { email } }' });
  const checkpoints = () => candor.services.dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });

  beforeAll(async () => {
    candor = await startCandor(driver);
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('a log without a checkpoint has no key to hand over from: nothing is written, the advice names the new key', async () => {
    await traffic();
    const result = await cli(['checkpoint', 'rotate'], { next: firstSeed });
    expect([result.code, result.stdout]).toEqual([0, `the access log has no signed checkpoint yet, so no key to hand over from: set CANDOR_AUDIT_SIGNING_KEY to the new key (${first.keyId}) and its checkpoints will be signed with it\n`]);
    expect(await checkpoints()).toEqual([]);
  });

  it('refuses without a new key, with the current key as the new one, and with a malformed one', async () => {
    expect((await cli(['checkpoint', 'create'])).code).toBe(0);
    const before = await checkpoints();
    const missing = await cli(['checkpoint', 'rotate']);
    expect([missing.code, missing.stderr]).toEqual([1, 'candor: CANDOR_AUDIT_NEXT_SIGNING_KEY is required: base64 of the new 32-byte Ed25519 seed (e.g. openssl rand -base64 32)\n']);
    const same = await runCli(['audit', 'checkpoint', 'rotate'], { DATABASE_URL: candor.database.url, CANDOR_AUDIT_SIGNING_KEY: firstSeed.toString('base64'), CANDOR_AUDIT_NEXT_SIGNING_KEY: firstSeed.toString('base64') });
    expect(same.code).toBe(1);
    const malformed = await runCli(['audit', 'checkpoint', 'rotate'], { DATABASE_URL: candor.database.url, CANDOR_AUDIT_NEXT_SIGNING_KEY: 'c2hvcnQ=' });
    expect([malformed.code, malformed.stderr]).toEqual([1, expect.stringContaining('CANDOR_AUDIT_NEXT_SIGNING_KEY must be base64 of exactly 32 bytes (an Ed25519 seed)')]);
    // Only the rotation reads it: a leftover value stops no other command.
    expect((await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, CANDOR_AUDIT_NEXT_SIGNING_KEY: 'c2hvcnQ=' })).code).toBe(0);
    expect(await checkpoints()).toEqual(before);
    const sameKey = await cli(['checkpoint', 'rotate'], { next: Buffer.from(candor.services.config.auditSigningSeed) });
    expect([sameKey.code, sameKey.stderr]).toEqual([1, `candor: the new signing key is the current one (key ${candor.services.checkpointSigner.keyId}): nothing to rotate\n`]);
  });

  it('hands signing over: signed by both keys, recorded; verify passes under the new key and names the rotation under the old one', async () => {
    const old = candor.services.checkpointSigner;
    const result = await cli(['checkpoint', 'rotate'], { next: firstSeed });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^rotation checkpoint \\d+ \\(seq \\d+\\): the access log's checkpoints are signed with key ${first.keyId} from now on \\(was ${old.keyId}\\)\\.\n`));
    const rotation = (await checkpoints()).at(-1)!;
    expect(rotation).toMatchObject({ kind: 'rotation', keyId: old.keyId, predecessorKey: old.publicKey, successorKey: first.publicKey });
    expect(old.verify(checkpointMessage(rotation), rotation.signature) && first.verify(checkpointMessage(rotation), rotation.successorSignature!)).toBe(true);
    const recorded = await candor.services.accessLogReader.page({ reason: 'CHECKPOINT_KEY_ROTATED' }, 10);
    expect(recorded.edges.map((edge) => edge.node.operationName)).toEqual(['audit checkpoint rotate']);

    expect(await cli(['verify'], { signing: firstSeed })).toMatchObject({ code: 0, stderr: '' });
    const underOld = await cli(['verify']);
    expect(underOld.code).toBe(1);
    expect(underOld.stderr).toBe(
      `access log broken at seq ${rotation.seq}: checkpoint ${rotation.id} (seq ${rotation.seq}, a key rotation): hands over to ${first.keyId}, but the key trusted after it is ${old.keyId} — if ${first.keyId} is this log's key, run verify with CANDOR_AUDIT_SIGNING_KEY set to it\n`,
    );
  });

  it('the old key signs nothing after the rotation: checkpoint, prune (also one planned before it), serve', async () => {
    const before = await checkpoints();
    const refusal = expect.stringMatching(new RegExp(`is not the key this access log's checkpoints are signed with since the rotation of checkpoint ${before.at(-1)!.id} \\(key ${first.keyId}; this one is ${candor.services.checkpointSigner.keyId}\\)`));
    expect(await cli(['checkpoint', 'create'])).toMatchObject({ code: 1, stderr: refusal });
    await expect(writeCheckpoint(candor.services.dataSource, candor.services.checkpointSigner, 'periodic', new Date())).rejects.toThrow(/since the rotation of checkpoint/);
    expect(await cli(['prune', '--before', new Date().toISOString()])).toMatchObject({ code: 1, stderr: refusal });
    // Nor does it export as the log's key: an auditor might pin it.
    expect(await cli(['checkpoint', 'export'])).toMatchObject({ code: 1, stderr: refusal });
    await expect(startChildServer({ DATABASE_URL: candor.database.url, CANDOR_SEED_DEMO: 'false' })).rejects.toThrow(/server exited with 1 before serving:[^]*since the rotation of checkpoint/);
    // A prune signed before the rotation committed: the store checks the key under the chain lock, and writes nothing.
    const [oldest] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'ASC' }, take: 1 });
    const plan = { before: new Date().toISOString(), throughBatchId: oldest.id, checkpoint: signedCheckpoint(candor.services.checkpointSigner, 'prune', new Date(), { seq: oldest.lastSeq, hash: oldest.hash, prunedThroughSeq: oldest.lastSeq }) };
    expect(await candor.services.accessLog.store.prune(plan)).toBeUndefined();
    expect(await checkpoints()).toEqual(before);
  });

  it('the new key signs on, prunes, and a second rotation chains: verify passes under the newest key', async () => {
    await traffic();
    expect((await cli(['checkpoint', 'create'], { signing: firstSeed })).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const pruned = await cli(['prune', '--before', new Date().toISOString()], { signing: firstSeed });
    expect([pruned.code, pruned.stdout]).toEqual([0, expect.stringMatching(/^pruned \d+ records/)]);
    await traffic();
    expect((await cli(['checkpoint', 'rotate'], { signing: firstSeed, next: secondSeed })).code).toBe(0);
    await traffic();
    expect((await cli(['checkpoint', 'create'], { signing: secondSeed })).code).toBe(0);
    expect((await checkpoints()).map((checkpoint) => checkpoint.kind)).toEqual(['manual', 'rotation', 'manual', 'prune', 'rotation', 'manual']);
    expect(await cli(['verify'], { signing: secondSeed })).toMatchObject({ code: 0, stderr: '' });
    expect((await cli(['verify'], { signing: firstSeed })).code).toBe(1);
    const exported = JSON.parse((await cli(['checkpoint', 'export'], { signing: secondSeed })).stdout);
    expect(exported.keyId).toBe(second.keyId);
    expect(exported.checkpoints.filter((checkpoint: { kind: string }) => checkpoint.kind === 'rotation').map((checkpoint: { keyId: string; successorKeyId: string }) => [checkpoint.keyId, checkpoint.successorKeyId])).toEqual([
      [candor.services.checkpointSigner.keyId, first.keyId],
      [first.keyId, second.keyId],
    ]);
  });

  it('a newest checkpoint that names the configured key but does not verify under it was altered: said so, nothing signed', async () => {
    const [newest] = (await checkpoints()).slice(-1);
    await tamper(candor, [['UPDATE audit_checkpoint SET head_hash = ? WHERE id = ?', ['0'.repeat(64), newest.id]]]);
    try {
      const refused = await cli(['checkpoint', 'create'], { signing: secondSeed });
      expect([refused.code, refused.stderr]).toEqual([1, `candor: the access log's newest checkpoint (checkpoint ${newest.id}) names key ${second.keyId} but does not verify under it: it was altered — run npx candor audit verify\n`]);
    } finally {
      await tamper(candor, [['UPDATE audit_checkpoint SET head_hash = ? WHERE id = ?', [newest.headHash, newest.id]]]);
    }
  });

  it('a leaked old key signs nothing verify accepts past its rotation, whatever row id it is stored under', async () => {
    const stored = await checkpoints();
    const [firstRotation] = stored.filter((checkpoint) => checkpoint.kind === 'rotation');
    const [head] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
    const old = candor.services.checkpointSigner;
    // A checkpoint of today's head under the key from before the first rotation, slipped in below every row.
    const forged = signedCheckpoint(old, 'periodic', new Date(), { seq: head.lastSeq, hash: head.hash });
    await candor.services.dataSource.query(`INSERT INTO audit_checkpoint (id, kind, seq, head_hash, at, key_id, signature) VALUES (-1, 'periodic', ${head.lastSeq}, '${head.hash}', '${forged.at}', '${forged.keyId}', '${forged.signature}')`);
    try {
      expect(head.lastSeq).toBeGreaterThan(firstRotation.seq);
      const result = await cli(['verify'], { signing: secondSeed });
      expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^access log broken at seq ${head.lastSeq}: checkpoint -1 \\(seq ${head.lastSeq}, signed with key ${old.keyId}\\)`))]);
    } finally {
      await tamper(candor, [['DELETE FROM audit_checkpoint WHERE id = ?', [-1]]]);
    }
  });

  it('undoing the rotation migration is refused while a rotation is stored (the checkpoints before it would not verify)', async () => {
    const runner = candor.services.dataSource.createQueryRunner();
    try {
      const rotationMigration = candor.services.dataSource.migrations.find((migration) => migration.name === 'CheckpointKeyRotation1764540000000')!;
      await expect(rotationMigration.down(runner)).rejects.toThrow(/the access log's signing key was rotated \(checkpoint \d+\): undoing this migration would leave the checkpoints before the rotation unverifiable/);
    } finally {
      await runner.release();
    }
    expect(await cli(['verify'], { signing: secondSeed })).toMatchObject({ code: 0 });
  });

  it('a forged hand-over (an intruder key in place of the old one, its checkpoints re-signed) breaks verify at the first checkpoint it would vouch for', async () => {
    const intruder = checkpointSigner(randomBytes(32));
    const stored = await checkpoints();
    const [firstRotation] = stored.filter((checkpoint) => checkpoint.kind === 'rotation');
    const resign = stored.filter((checkpoint) => checkpoint.id < firstRotation.id);
    const forged = { ...firstRotation, predecessorKey: intruder.publicKey, keyId: intruder.keyId };
    await tamper(candor, [
      ...resign.map((checkpoint): [string, unknown[]] => ['UPDATE audit_checkpoint SET key_id = ?, signature = ? WHERE id = ?', [intruder.keyId, intruder.sign(checkpointMessage(checkpoint)), checkpoint.id]]),
      ['UPDATE audit_checkpoint SET predecessor_key = ?, key_id = ?, signature = ? WHERE id = ?', [forged.predecessorKey, forged.keyId, intruder.sign(checkpointMessage(forged)), forged.id]],
    ]);
    try {
      const result = await cli(['verify'], { signing: secondSeed });
      expect(result.code).toBe(1);
      const earliest = [...resign, firstRotation].sort((a, b) => a.seq - b.seq || a.id - b.id)[0];
      expect(result.stderr).toMatch(new RegExp(`^access log broken at seq ${earliest.seq}: checkpoint ${earliest.id} \\(seq ${earliest.seq}`));
    } finally {
      await tamper(candor, [
        ...[...resign, firstRotation].map((checkpoint): [string, unknown[]] => ['UPDATE audit_checkpoint SET predecessor_key = ?, key_id = ?, signature = ? WHERE id = ?', [checkpoint.predecessorKey, checkpoint.keyId, checkpoint.signature, checkpoint.id]]),
      ]);
    }
    expect((await cli(['verify'], { signing: secondSeed })).code).toBe(0);
  });

  it('the newest key prunes records from before its rotation (retention reaching further back than the last rotation): verify passes, and prunes on', async () => {
    await traffic();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const beforeRotation = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await traffic();
    expect((await cli(['checkpoint', 'rotate'], { signing: secondSeed, next: thirdSeed })).code).toBe(0);
    await traffic();
    const pruned = await cli(['prune', '--before', beforeRotation], { signing: thirdSeed });
    expect([pruned.code, pruned.stdout]).toEqual([0, expect.stringMatching(/^pruned \d+ records/)]);
    const [rotation] = (await checkpoints()).filter((checkpoint) => checkpoint.kind === 'rotation').slice(-1);
    const [prune] = (await checkpoints()).slice(-1);
    expect([prune.kind, prune.seq < rotation.seq]).toEqual(['prune', true]);
    expect(await cli(['verify'], { signing: thirdSeed })).toMatchObject({ code: 0, stderr: '' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await cli(['prune', '--before', new Date().toISOString()], { signing: thirdSeed })).code).toBe(0);
    expect(await cli(['verify'], { signing: thirdSeed })).toMatchObject({ code: 0, stderr: '' });
    // A key signing was handed over from is never trusted again (the two variables swapped by mistake, say).
    const before = await checkpoints();
    const [retiredBy] = before.filter((checkpoint) => checkpoint.kind === 'rotation' && checkpoint.predecessorKey === first.publicKey);
    const back = await cli(['checkpoint', 'rotate'], { signing: thirdSeed, next: firstSeed });
    expect([back.code, back.stderr]).toEqual([1, `candor: the new signing key (key ${first.keyId}) was retired by rotation checkpoint ${retiredBy.id}: a key signing was handed over from is never trusted again — make a new one (openssl rand -base64 32)\n`]);
    expect(await checkpoints()).toEqual(before);
  });

  it('a rotation is refused while a prune checkpoint does not verify (a planted one would widen the old key\'s prune limit), and signs the prunes\' reach once it is gone', async () => {
    const fourthSeed = randomBytes(32);
    const [lastPrune] = (await checkpoints()).filter((checkpoint) => checkpoint.kind === 'prune').slice(-1);
    await traffic();
    const [head] = await candor.services.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
    // A prune "through" today's head, signed by a key the log never trusted: were it counted, a later leak of
    // the key handed over from could prune the whole log and verify.
    const planted = signedCheckpoint(checkpointSigner(randomBytes(32)), 'prune', new Date(), { seq: head.lastSeq, hash: head.hash, prunedThroughSeq: head.lastSeq });
    await candor.services.dataSource.query(
      `INSERT INTO audit_checkpoint (id, kind, seq, head_hash, at, key_id, signature, pruned_through_seq) VALUES (-2, 'prune', ${head.lastSeq}, '${head.hash}', '${planted.at}', '${planted.keyId}', '${planted.signature}', ${head.lastSeq})`,
    );
    const before = await checkpoints();
    try {
      const refused = await cli(['checkpoint', 'rotate'], { signing: thirdSeed, next: fourthSeed });
      expect([refused.code, refused.stderr]).toEqual([
        1,
        `candor: prune checkpoint -2 does not verify under key ${checkpointSigner(thirdSeed).keyId}: a rotation signs how far the log was pruned, and cannot while that is in doubt — run npx candor audit verify, restore or remove the row (docs/operations.md), then rotate\n`,
      ]);
      expect(await checkpoints()).toEqual(before);
    } finally {
      await tamper(candor, [['DELETE FROM audit_checkpoint WHERE id = ?', [-2]]]);
    }
    expect((await cli(['checkpoint', 'rotate'], { signing: thirdSeed, next: fourthSeed })).code).toBe(0);
    const [rotation] = (await checkpoints()).filter((checkpoint) => checkpoint.kind === 'rotation').slice(-1);
    expect([rotation.prunedThroughSeq, lastPrune.prunedThroughSeq! < head.lastSeq]).toEqual([lastPrune.prunedThroughSeq, true]);
    expect(await cli(['verify'], { signing: fourthSeed })).toMatchObject({ code: 0, stderr: '' });
  });
});

describe.each(DRIVERS)('a rotation racing the old key on %s', (driver) => {
  it('lands between checkpoints, never under them: no checkpoint under the old key past it, verify passes under the new key', async () => {
    const candor = await startCandor(driver);
    const next = randomBytes(32);
    try {
      const old = candor.services.checkpointSigner;
      await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 5) { email } }' });
      expect(await writeCheckpoint(candor.services.dataSource, old, 'manual', new Date())).toBeDefined();
      let stop = false;
      const traffic = Array.from({ length: 4 }, async () => {
        while (!stop) await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 5) { email } }' });
      });
      // Periodic checkpoints under the old key, all along, as a not yet restarted instance writes them.
      const periodic = Array.from({ length: 4 }, async () => {
        for (let round = 0; round < 15; round++) await writeCheckpoint(candor.services.dataSource, old, 'periodic', new Date()).catch(() => undefined);
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const { rotated } = await rotateSigningKey(candor.services.dataSource, old, checkpointSigner(next), new Date());
      expect(rotated).toBeDefined();
      await Promise.all(periodic);
      stop = true;
      await Promise.all(traffic);
      const after = (await candor.services.dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } })).filter((checkpoint) => checkpoint.id > rotated!.id);
      expect(after.filter((checkpoint) => checkpoint.keyId === old.keyId)).toEqual([]);
      expect((await runCli(['audit', 'verify'], { DATABASE_URL: candor.database.url, CANDOR_AUDIT_SIGNING_KEY: next.toString('base64') })).code).toBe(0);
    } finally {
      await candor.stop();
    }
  });
});
