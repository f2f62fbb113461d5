import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ConfigError } from '../config';
import type { SignedCheckpoint } from './audit-store';
import { AuditBatchEntity, AuditCheckpointEntity } from './audit.entities';

export const CHECKPOINT_FORMAT = 'candor-checkpoint/1';

/** An Ed25519 key pair for signing checkpoints, from a 32-byte seed. */
export interface CheckpointSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  sign(message: string): string;
  verify(message: string, signature: string): boolean;
}

// PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function checkpointSigner(seed: Buffer): CheckpointSigner {
  if (seed.length !== 32) throw new Error('the checkpoint signing key must be a 32-byte Ed25519 seed');
  const privateKey: KeyObject = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const publicDer = publicKey.export({ format: 'der', type: 'spki' });
  return {
    keyId: createHash('sha256').update(publicDer).digest('hex').slice(0, 16),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: (message) => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64'),
    verify: (message, signature) => verify(null, Buffer.from(message, 'utf8'), publicKey, Buffer.from(signature, 'base64')),
  };
}

/** What a checkpoint signs: the sequence number and hash of the chain head at a time. */
export function checkpointMessage(checkpoint: Pick<AuditCheckpointEntity, 'kind' | 'seq' | 'headHash' | 'at' | 'prunedThroughSeq'>): string {
  return JSON.stringify([CHECKPOINT_FORMAT, checkpoint.kind, checkpoint.seq, checkpoint.headHash, checkpoint.at, checkpoint.prunedThroughSeq]);
}

/**
 * Refuses a signer whose key is not the one the log's latest checkpoint is signed with: a checkpoint signed
 * under another key (a mistyped or missing CANDOR_AUDIT_SIGNING_KEY) would fail every later `audit verify`,
 * and on PostgreSQL it could not be taken back.
 */
export async function checkSigningKey(dataSource: DataSource, signer: CheckpointSigner): Promise<void> {
  const [latest] = await dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'DESC' }, take: 1 });
  if (latest && latest.keyId !== signer.keyId) {
    throw new ConfigError(`CANDOR_AUDIT_SIGNING_KEY is not the key this access log's checkpoints are signed with (key ${latest.keyId}; this one is ${signer.keyId}): set the log's key`);
  }
}

/** Signs and stores a checkpoint of the current head; undefined when the log is empty. Refuses another key than the log's. */
export async function writeCheckpoint(
  dataSource: DataSource,
  signer: CheckpointSigner,
  kind: AuditCheckpointEntity['kind'],
  at: Date,
  head?: { seq: number; hash: string; prunedThroughSeq?: number },
): Promise<AuditCheckpointEntity | undefined> {
  await checkSigningKey(dataSource, signer);
  let target = head;
  if (!target) {
    const [batch] = await dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
    if (!batch) return undefined;
    target = { seq: batch.lastSeq, hash: batch.hash };
  }
  return dataSource.getRepository(AuditCheckpointEntity).save(signedCheckpoint(signer, kind, at, target));
}

/** A checkpoint of `head`, signed, not stored yet (a prune stores it in its own transaction). */
export function signedCheckpoint(signer: CheckpointSigner, kind: SignedCheckpoint['kind'], at: Date, head: { seq: number; hash: string; prunedThroughSeq?: number }): SignedCheckpoint {
  const checkpoint = { kind, seq: head.seq, headHash: head.hash, at: at.toISOString(), prunedThroughSeq: head.prunedThroughSeq ?? null };
  return { ...checkpoint, keyId: signer.keyId, signature: signer.sign(checkpointMessage(checkpoint)) };
}

/** Every checkpoint, oldest first, with the public key needed to check it. */
export async function exportCheckpoints(dataSource: DataSource, signer: CheckpointSigner) {
  const checkpoints = await dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });
  return {
    format: CHECKPOINT_FORMAT,
    keyId: signer.keyId,
    publicKey: signer.publicKeyPem,
    checkpoints: checkpoints.map(({ id, kind, seq, headHash, at, keyId, signature, prunedThroughSeq }) => ({ id, kind, seq, headHash, at, prunedThroughSeq, keyId, signature })),
  };
}
