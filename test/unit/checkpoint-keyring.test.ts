import { randomBytes } from 'node:crypto';
import type { AuditCheckpointEntity } from '../../src/audit/audit.entities';
import { logSigningKeyId, storedVerifier } from '../../src/audit/checkpoint-keys';
import { checkpointKeyring, checkpointMessage, type CheckpointSigner, checkpointSigner } from '../../src/audit/checkpoints';

const [oldKey, newKey, newerKey, intruder] = Array.from({ length: 4 }, () => checkpointSigner(randomBytes(32)));
const hash = (seq: number) => String(seq % 10).repeat(64);

/** A plain checkpoint at seq 10 × id (or `seq`), signed by `signer`. */
function plain(id: number, signer: CheckpointSigner, seq = id * 10): AuditCheckpointEntity {
  const fields = { kind: 'manual' as const, seq, headHash: hash(id), at: '2026-11-30T08:00:00.000Z', prunedThroughSeq: null };
  return { id, ...fields, keyId: signer.keyId, signature: signer.sign(checkpointMessage(fields)), predecessorKey: null, successorKey: null, successorSignature: null };
}

/** A prune checkpoint through `seq`, signed by `signer`. */
function prune(id: number, signer: CheckpointSigner, seq: number): AuditCheckpointEntity {
  const fields = { kind: 'prune' as const, seq, headHash: hash(id), at: '2026-11-30T08:00:00.000Z', prunedThroughSeq: seq };
  return { id, ...fields, keyId: signer.keyId, signature: signer.sign(checkpointMessage(fields)), predecessorKey: null, successorKey: null, successorSignature: null };
}

/** A rotation at seq 10 × id from `from` to `to`, each signature by the key given (by default the two keys themselves). */
function rotation(id: number, from: CheckpointSigner, to: CheckpointSigner, signers: { old?: CheckpointSigner; new?: CheckpointSigner } = {}, prunedThroughSeq: number | null = null): AuditCheckpointEntity {
  const fields = { kind: 'rotation' as const, seq: id * 10, headHash: hash(id), at: '2026-11-30T08:00:00.000Z', prunedThroughSeq, predecessorKey: from.publicKey, successorKey: to.publicKey };
  const message = checkpointMessage(fields);
  return { id, ...fields, keyId: from.keyId, signature: (signers.old ?? from).sign(message), successorSignature: (signers.new ?? to).sign(message) };
}

/** The checkpoints' ids that verify under `configured`. */
const verifiedIds = (configured: CheckpointSigner, checkpoints: AuditCheckpointEntity[]) =>
  [...checkpointKeyring(configured, checkpoints)].filter(([, checked]) => checked.verified).map(([id]) => id).sort((a, b) => a - b);

describe('checkpointKeyring: trust runs back from the configured key through rotations signed by both keys', () => {
  it.each<[string, CheckpointSigner, () => AuditCheckpointEntity[], number[]]>([
    ['no rotation: every checkpoint under the configured key', oldKey, () => [plain(1, oldKey), plain(2, oldKey)], [1, 2]],
    ['no rotation, another key configured: none', newKey, () => [plain(1, oldKey), plain(2, oldKey)], []],
    ['one rotation: the old key before it, the new one after', newKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, newKey)], [1, 2, 3]],
    ['one rotation, verified with the old key: the rotation and what follows fail', oldKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, newKey)], [1]],
    ['two rotations: each key for its stretch', newerKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, newKey), rotation(4, newKey, newerKey), plain(5, newerKey)], [1, 2, 3, 4, 5]],
    ['the old key after its rotation: refused', newKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, oldKey)], [1, 2]],
    ['the new key before its rotation: refused', newKey, () => [plain(1, newKey), rotation(2, oldKey, newKey)], [2]],
    [
      'a rotation the new key did not sign (an intruder vouching for a key of its own): it and everything before it fail',
      newKey,
      () => [plain(1, intruder), rotation(2, intruder, newKey, { new: intruder }), plain(3, newKey)],
      [3],
    ],
    ['a rotation the old key did not sign: it and everything before it fail', newKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey, { old: intruder }), plain(3, newKey)], [3]],
    [
      'a rotation whose old key was swapped after signing: fails',
      newKey,
      () => {
        const swapped = rotation(2, oldKey, newKey);
        return [plain(1, intruder), { ...swapped, predecessorKey: intruder.publicKey, keyId: intruder.keyId, signature: intruder.sign(checkpointMessage({ ...swapped, predecessorKey: intruder.publicKey })) }];
      },
      [],
    ],
    ['a rotation turned into a plain checkpoint: fails', newKey, () => [plain(1, oldKey), { ...rotation(2, oldKey, newKey), kind: 'manual' as const }], []],
    ['a plain checkpoint turned into a rotation: fails', oldKey, () => [{ ...plain(1, oldKey), kind: 'rotation' as const }], []],
    // A leaked old key, after its rotation: row ids are the writer's choice and sign nothing.
    ['the old key at a seq past its rotation, stored with a low id: refused', newKey, () => [plain(-1, oldKey, 30), rotation(2, oldKey, newKey), plain(3, newKey)], [2, 3]],
    ['the old key at the rotation\'s own seq (the same head): accepted', newKey, () => [plain(-1, oldKey, 20), rotation(2, oldKey, newKey)], [-1, 2]],
    ['an old-key prune reaching past the prune the rotation signed: refused', newKey, () => [prune(-2, oldKey, 15), rotation(2, oldKey, newKey, {}, 5)], [2]],
    ['an old-key prune no further than the rotation signed: accepted', newKey, () => [prune(1, oldKey, 5), rotation(2, oldKey, newKey, {}, 5)], [1, 2]],
    ['a new-key prune past the rotation: accepted', newKey, () => [rotation(2, oldKey, newKey, {}, 5), prune(3, newKey, 25)], [2, 3]],
    [
      'an older rotation at a seq past the newer one (a forked hand-over): it and its stretch fail',
      newerKey,
      () => [rotation(2, oldKey, newKey), rotation(5, newKey, newerKey), { ...rotation(7, intruder, newKey, { new: newKey }) }, plain(1, oldKey)],
      [1, 2, 5],
    ],
    ['a rotation naming no valid old key: fails', newKey, () => [{ ...rotation(1, oldKey, newKey), predecessorKey: 'bm90IGEga2V5' }], []],
    // Columns no signature covers must agree with it: prune, rotate and export read the key id.
    ['a plain checkpoint whose key id was altered: fails', oldKey, () => [{ ...plain(1, oldKey), keyId: 'deadbeefdeadbeef' }, plain(2, oldKey)], [2]],
    ['a plain checkpoint given the keys of a rotation: fails', oldKey, () => [{ ...plain(1, oldKey), successorKey: newKey.publicKey }, plain(2, oldKey)], [2]],
    ['KILL-CK1 two rotations at one seq: both hand over', newerKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), { ...rotation(2, newKey, newerKey), id: 3 }], [1, 2, 3]],
    ['KILL-CK2 an older rotation signing a prune past the newer one (a leaked key inventing a predecessor): fails', newerKey, () => [rotation(4, newKey, newerKey, {}, 3), rotation(2, intruder, newKey, {}, 15), prune(-1, intruder, 15)], [4]],
    ['KILL-CK3 a rotation the configured key signed, naming another successor: fails', newKey, () => [plain(1, oldKey), rotation(2, oldKey, intruder, { new: newKey })], []],
    ['KILL-CK4 a rotation whose key id was altered: fails', newKey, () => [{ ...rotation(2, oldKey, newKey), keyId: 'deadbeefdeadbeef' }], []],
    ['KILL-CK5 the new key at its rotation\'s own seq: accepted', newKey, () => [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, newKey, 20)], [1, 2, 3]],
    ['KILL-CK6 a new-key prune reaching back before its rotation (retention prunes the oldest records): accepted', newKey, () => [rotation(2, oldKey, newKey, {}, 5), prune(3, newKey, 10)], [2, 3]],
    ['KILL-CK9 an old-key prune after a rotation that signed no prune: refused', newKey, () => [prune(-2, oldKey, 15), rotation(2, oldKey, newKey)], [2]],
    ['KILL-CK10 rotations stored in another order than their seqs (row ids sign nothing)', newerKey, () => [plain(1, oldKey), { ...rotation(2, oldKey, newKey), id: 9 }, { ...rotation(4, newKey, newerKey), id: 3 }], [1, 3, 9]],
    ['KILL-CK12 a plain checkpoint given a successor signature: fails', oldKey, () => [{ ...plain(1, oldKey), successorSignature: oldKey.sign('x') }, plain(2, oldKey)], [2]],
    [
      'KILL-CK13 an old-key prune of no stated reach, past what its rotation signed: refused',
      newKey,
      () => {
        const fields = { kind: 'prune' as const, seq: 15, headHash: hash(1), at: '2026-11-30T08:00:00.000Z', prunedThroughSeq: null };
        return [{ id: -2, ...fields, keyId: oldKey.keyId, signature: oldKey.sign(checkpointMessage(fields)), predecessorKey: null, successorKey: null, successorSignature: null }, rotation(2, oldKey, newKey, {}, 5)];
      },
      [2],
    ],
  ])('%s', (_, configured, checkpoints, expected) => {
    expect(verifiedIds(configured, checkpoints())).toEqual(expected);
  });

  it('says what of a checkpoint was altered when its signature holds', () => {
    const checked = checkpointKeyring(oldKey, [{ ...plain(1, oldKey), keyId: 'deadbeefdeadbeef' }]);
    expect(checked.get(1)).toEqual({ verified: false, keyId: oldKey.keyId, altered: `names key deadbeefdeadbeef, but is signed with key ${oldKey.keyId}: its key id was altered` });
  });

  it('names the key each checkpoint was checked under', () => {
    const checked = checkpointKeyring(newKey, [plain(1, oldKey), rotation(2, oldKey, newKey), plain(3, newKey)]);
    expect([1, 2, 3].map((id) => checked.get(id)!.keyId)).toEqual([oldKey.keyId, newKey.keyId, newKey.keyId]);
  });
});

describe('logSigningKeyId: the key the log is signed with after its newest checkpoint', () => {
  it.each<[string, Parameters<typeof logSigningKeyId>[0], string | undefined]>([
    ['no checkpoint: none yet', undefined, undefined],
    ['a plain checkpoint: its key', { kind: 'periodic', keyId: oldKey.keyId, successorKey: null }, oldKey.keyId],
    ['a rotation: the key it hands over to', { kind: 'rotation', keyId: oldKey.keyId, successorKey: newKey.publicKey }, newKey.keyId],
    ['a rotation to no valid key: none will do', { kind: 'rotation', keyId: oldKey.keyId, successorKey: 'garbage' }, 'none'],
  ])('%s', (_, latest, expected) => {
    expect(logSigningKeyId(latest)).toBe(expected);
  });
});

describe('signatures and keys are read as standard base64 only', () => {
  it('refuses a signature or a stored key that decodes only leniently (spaces, text after the padding, the base64url alphabet)', () => {
    const message = 'candor-checkpoint/1';
    const signature = oldKey.sign(message);
    expect(oldKey.verify(message, signature)).toBe(true);
    const urlSafe = signature.replace(/\+/g, '-').replace(/\//g, '_');
    for (const lenient of [`${signature.slice(0, 20)} ${signature.slice(20)}`, `${signature}AAAA`, `${signature}\n`, urlSafe === signature ? `${signature.slice(0, -2)}-_` : urlSafe, signature.replace(/=+$/, '')]) {
      expect([lenient, oldKey.verify(message, lenient)]).toEqual([lenient, false]);
    }
    expect(storedVerifier(oldKey.publicKey)?.keyId).toBe(oldKey.keyId);
    expect(storedVerifier(` ${oldKey.publicKey}`)).toBeUndefined();
  });
});
