import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { ConfigError } from '../config';
import { badInput } from '../errors';
import { inTransaction } from '../storage/transactions';
import { CHAIN_LOCK_KEY, type SignedCheckpoint } from './audit-store';
import { AuditBatchEntity, AuditCheckpointEntity } from './audit.entities';
import { type CheckpointVerifier, logSigningKeyId, storedVerifier, verifierOf } from './checkpoint-keys';

export const CHECKPOINT_FORMAT = 'candor-checkpoint/1';

/** An Ed25519 key pair for signing checkpoints, from a 32-byte seed. */
export interface CheckpointSigner extends CheckpointVerifier {
  readonly publicKeyPem: string;
  sign(message: string): string;
}

// PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function checkpointSigner(seed: Buffer): CheckpointSigner {
  if (seed.length !== 32) throw new Error('the checkpoint signing key must be a 32-byte Ed25519 seed');
  const privateKey: KeyObject = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  return {
    ...verifierOf(publicKey),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: (message) => sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64'),
  };
}

type SignedFields = Pick<AuditCheckpointEntity, 'kind' | 'seq' | 'headHash' | 'at' | 'prunedThroughSeq'> & Partial<Pick<AuditCheckpointEntity, 'predecessorKey' | 'successorKey'>>;

/**
 * What a checkpoint signs: the sequence number and hash of the chain head at a time — and, for a rotation,
 * the two keys it hands over between (both keys sign that message).
 */
export function checkpointMessage(checkpoint: SignedFields): string {
  const signed = [CHECKPOINT_FORMAT, checkpoint.kind, checkpoint.seq, checkpoint.headHash, checkpoint.at, checkpoint.prunedThroughSeq];
  return JSON.stringify(checkpoint.kind === 'rotation' ? [...signed, checkpoint.predecessorKey ?? null, checkpoint.successorKey ?? null] : signed);
}

/** Whether `rotation` hands signing over to `key`: names it as the successor, and carries its signature of `message`. */
const handsOverTo = (rotation: AuditCheckpointEntity, key: CheckpointVerifier, message: string) =>
  rotation.successorKey === key.publicKey && rotation.successorSignature !== null && key.verify(message, rotation.successorSignature);

/** How a stored checkpoint verified, under which key, and what of it was altered if its signature held. */
export interface CheckedCheckpoint {
  readonly verified: boolean;
  readonly keyId: string;
  readonly altered?: string;
}

/** A key's stretch of the log: what it may sign (sequence numbers, and how far its prunes may reach). */
interface KeyPeriod {
  readonly key: CheckpointVerifier;
  /** The sequence number of the rotation that handed signing to this key (none for the first key). */
  readonly fromSeq: number;
  /** The sequence number of the rotation that handed signing on (none for the configured key). */
  readonly throughSeq: number;
  /** How far the log was pruned when signing was handed on: a prune under this key reaches no further. */
  readonly prunedThroughAtMost: number;
}

/**
 * Which stored checkpoints verify, and under which key each was checked. Trust runs backwards from the
 * configured key, and a key's stretch of the log is fixed by sequence numbers the rotations sign, never by
 * the order rows were stored in (row ids sign nothing): a rotation at seq S must be signed by the key it
 * hands over to (the one trusted so far, vouching for the one before it) and by the key it hands over from;
 * the older key then vouches only for checkpoints at seq ≤ S, and for prunes no further than the log was
 * pruned at the rotation (which the rotation signs). So a leaked old key can neither sign past its
 * rotation nor delete records the rotation covers. At S itself either key may sign. A newer key's prunes may
 * reach back before its rotation: retention removes the oldest records, usually older than the latest
 * rotation, and a prune is made, and signed, by the key of its day. A rotation that does not verify hands
 * over nothing.
 */
export function checkpointKeyring(signer: CheckpointVerifier, checkpoints: readonly AuditCheckpointEntity[]): Map<number, CheckedCheckpoint> {
  const checked = new Map<number, CheckedCheckpoint>();
  let period: KeyPeriod = { key: signer, fromSeq: -Infinity, throughSeq: Infinity, prunedThroughAtMost: Infinity };
  const periods: KeyPeriod[] = [];
  const rotations = checkpoints.filter((checkpoint) => checkpoint.kind === 'rotation').sort((a, b) => b.seq - a.seq || b.id - a.id);
  for (const rotation of rotations) {
    const message = checkpointMessage(rotation);
    const trusted = period.key;
    const predecessor = storedVerifier(rotation.predecessorKey);
    const verified =
      rotation.seq <= period.throughSeq &&
      (rotation.prunedThroughSeq ?? 0) <= period.prunedThroughAtMost &&
      handsOverTo(rotation, trusted, message) &&
      predecessor !== undefined &&
      predecessor.keyId === rotation.keyId &&
      predecessor.verify(message, rotation.signature);
    checked.set(rotation.id, { verified, keyId: trusted.keyId });
    if (!verified) continue;
    periods.push({ ...period, fromSeq: rotation.seq });
    period = { key: predecessor, fromSeq: -Infinity, throughSeq: rotation.seq, prunedThroughAtMost: rotation.prunedThroughSeq ?? 0 };
  }
  periods.push(period);
  for (const checkpoint of checkpoints) {
    if (checkpoint.kind === 'rotation') continue;
    const reaches = checkpoint.kind === 'prune' ? (checkpoint.prunedThroughSeq ?? checkpoint.seq) : -Infinity;
    const eligible = periods.filter((candidate) => (checkpoint.kind === 'prune' || candidate.fromSeq <= checkpoint.seq) && checkpoint.seq <= candidate.throughSeq && reaches <= candidate.prunedThroughAtMost);
    const message = checkpointMessage(checkpoint);
    const signedBy = eligible.find((candidate) => candidate.key.verify(message, checkpoint.signature));
    // The columns no signature covers must say what the signature does: the key it names (what export
    // prints and what prune and rotate take for the log's key) and no keys of a rotation.
    const unsignedColumns =
      signedBy === undefined
        ? undefined
        : checkpoint.keyId !== signedBy.key.keyId
          ? `names key ${checkpoint.keyId}, but is signed with key ${signedBy.key.keyId}: its key id was altered`
          : [checkpoint.predecessorKey, checkpoint.successorKey, checkpoint.successorSignature].some((column) => column !== null && column !== undefined)
            ? 'carries the keys of a rotation, which it is not: they were added'
            : undefined;
    // The key named in a failure: the newest whose stretch holds the checkpoint (the configured one if none does).
    checked.set(checkpoint.id, { verified: signedBy !== undefined && unsignedColumns === undefined, keyId: (signedBy ?? eligible[0] ?? periods[0]).key.keyId, altered: unsignedColumns });
  }
  return checked;
}

/** The newest checkpoint (what says which key signs the log now), or undefined when there is none. */
async function latestCheckpoint(manager: EntityManager): Promise<AuditCheckpointEntity | undefined> {
  const [latest] = await manager.getRepository(AuditCheckpointEntity).find({ order: { id: 'DESC' }, take: 1 });
  return latest;
}

/**
 * Refuses a signer whose key is not the one the log is signed with now: the newest checkpoint must verify
 * under it (its signature, or for a rotation the signature of the key it hands over to). A checkpoint signed
 * under another key (a mistyped or missing CANDOR_AUDIT_SIGNING_KEY, the key from before a rotation) would
 * fail every later `audit verify`, and on PostgreSQL it could not be taken back. A newest checkpoint that
 * names this key but does not verify under it was altered: said so, and refused too. Returns that newest
 * checkpoint (undefined for a log without one: any key may start it).
 */
export async function checkSigningKey(manager: DataSource | EntityManager, signer: CheckpointSigner): Promise<AuditCheckpointEntity | undefined> {
  const latest = await latestCheckpoint('manager' in manager ? manager.manager : manager);
  if (!latest) return undefined;
  const message = checkpointMessage(latest);
  const rotation = latest.kind === 'rotation';
  if (rotation ? handsOverTo(latest, signer, message) : signer.verify(message, latest.signature)) return latest;
  const logKey = logSigningKeyId(latest);
  const at = `checkpoint ${latest.id}${rotation ? ', a key rotation' : ''}`;
  if (logKey === signer.keyId || logKey === 'none') {
    throw new ConfigError(`the access log's newest checkpoint (${at}) ${logKey === 'none' ? 'hands over to no valid key' : `names key ${logKey} but does not verify under it`}: it was altered — run npx candor audit verify`);
  }
  throw new ConfigError(`CANDOR_AUDIT_SIGNING_KEY is not the key this access log's checkpoints are signed with${rotation ? ` since the rotation of checkpoint ${latest.id}` : ''} (key ${logKey}; this one is ${signer.keyId}): set the log's key`);
}

/**
 * Runs `work` in one transaction that holds the log's write lock before it reads anything — the chain lock
 * on PostgreSQL, SQLite's write lock (which every SQLite transaction takes first: `inTransaction`). So
 * checkpoints are written one at a time, each after checking the key the one before left: a checkpoint
 * under the old key cannot land after a rotation.
 */
function inCheckpointTransaction<T>(dataSource: DataSource, work: (manager: EntityManager) => Promise<T>): Promise<T> {
  return inTransaction(dataSource, async (manager) => {
    if (dataSource.options.type === 'postgres') await manager.query(`SET LOCAL lock_timeout = '10s'; SELECT pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
    return work(manager);
  });
}

/** The head of the chain: the newest batch's last sequence number and hash, or undefined for an empty log. */
async function chainHead(manager: EntityManager): Promise<{ seq: number; hash: string } | undefined> {
  const [batch] = await manager.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
  return batch && { seq: batch.lastSeq, hash: batch.hash };
}

/** Signs and stores a checkpoint of the current head; undefined when the log is empty. Refuses another key than the log's. */
export async function writeCheckpoint(dataSource: DataSource, signer: CheckpointSigner, kind: 'periodic' | 'manual', at: Date): Promise<AuditCheckpointEntity | undefined> {
  return inCheckpointTransaction(dataSource, async (manager) => {
    await checkSigningKey(manager, signer);
    const head = await chainHead(manager);
    return head && manager.getRepository(AuditCheckpointEntity).save(signedCheckpoint(signer, kind, at, head));
  });
}

/** A checkpoint of `head`, signed, not stored yet (a prune stores it in its own transaction). */
export function signedCheckpoint(signer: CheckpointSigner, kind: 'periodic' | 'manual' | 'prune', at: Date, head: { seq: number; hash: string; prunedThroughSeq?: number }): SignedCheckpoint {
  const checkpoint = { kind, seq: head.seq, headHash: head.hash, at: at.toISOString(), prunedThroughSeq: head.prunedThroughSeq ?? null };
  return { ...checkpoint, keyId: signer.keyId, signature: signer.sign(checkpointMessage(checkpoint)) };
}

/** What a rotation did: the checkpoint that hands over, or why there was nothing to hand over. */
export type RotationResult = { readonly rotated: AuditCheckpointEntity } | { readonly rotated: undefined; readonly reason: 'no-checkpoint' };

/**
 * Hands the log's signing over from `current` to `next`: a rotation checkpoint of the head, signed by both
 * keys over both public keys. Checkpoints after it are signed with `next` (the other keys are refused), and
 * `audit verify` under `next` trusts `current` for the checkpoints before it. A log without a checkpoint
 * has no key yet: there is nothing to rotate (the next checkpoint is signed with whichever key is configured).
 */
export async function rotateSigningKey(dataSource: DataSource, current: CheckpointSigner, next: CheckpointSigner, at: Date): Promise<RotationResult> {
  if (next.publicKey === current.publicKey) throw badInput(`the new signing key is the current one (key ${current.keyId}): nothing to rotate`);
  return inCheckpointTransaction(dataSource, async (manager) => {
    if (!(await checkSigningKey(manager, current))) return { rotated: undefined, reason: 'no-checkpoint' };
    // A key handed over from is retired for good: it may be why the log moved on (it leaked), and swapping the
    // two variables by mistake would otherwise trust it again.
    const retiredBy = await manager.getRepository(AuditCheckpointEntity).findOne({ where: { kind: 'rotation', predecessorKey: next.publicKey } });
    if (retiredBy) throw badInput(`the new signing key (key ${next.keyId}) was retired by rotation checkpoint ${retiredBy.id}: a key signing was handed over from is never trusted again — make a new one (openssl rand -base64 32)`);
    // A log with a checkpoint has a batch: the newest batch is never pruned.
    const head = (await chainHead(manager))!;
    // How far the log was pruned: signed, so that the old key's prunes can reach no further. Only from prunes
    // that verify, and only when all do: a planted prune row would widen that limit, and leaving out an altered
    // genuine one would sign a limit its restored row could never verify under again.
    const stored = await manager.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });
    const keyring = checkpointKeyring(current, stored);
    const prunes = stored.filter((checkpoint) => checkpoint.kind === 'prune');
    const unverified = prunes.filter((checkpoint) => !keyring.get(checkpoint.id)?.verified).map((checkpoint) => checkpoint.id);
    if (unverified.length > 0) {
      throw badInput(
        `prune checkpoint${unverified.length > 1 ? 's' : ''} ${unverified.join(', ')} do${unverified.length > 1 ? '' : 'es'} not verify under key ${current.keyId}: a rotation signs how far the log was pruned, and cannot while that is in doubt — run npx candor audit verify, restore or remove the row (docs/operations.md), then rotate`,
      );
    }
    const pruned = prunes.reduce<number | null>((furthest, checkpoint) => Math.max(furthest ?? 0, checkpoint.prunedThroughSeq ?? checkpoint.seq), null);
    const handOver = {
      kind: 'rotation' as const,
      seq: head.seq,
      headHash: head.hash,
      at: at.toISOString(),
      prunedThroughSeq: pruned,
      predecessorKey: current.publicKey,
      successorKey: next.publicKey,
    };
    const message = checkpointMessage(handOver);
    const rotation = { ...handOver, keyId: current.keyId, signature: current.sign(message), successorSignature: next.sign(message) };
    return { rotated: await manager.getRepository(AuditCheckpointEntity).save(rotation) };
  });
}

/**
 * Every checkpoint, oldest first, with the public key the log is signed with now; a rotation carries the
 * two keys it hands over between, so that each earlier checkpoint's key is vouched for by the one after it.
 */
export async function exportCheckpoints(dataSource: DataSource, signer: CheckpointSigner) {
  // The key it names as the log's must be the log's (an auditor may pin it).
  await checkSigningKey(dataSource, signer);
  const checkpoints = await dataSource.getRepository(AuditCheckpointEntity).find({ order: { id: 'ASC' } });
  return {
    format: CHECKPOINT_FORMAT,
    keyId: signer.keyId,
    publicKey: signer.publicKeyPem,
    checkpoints: checkpoints.map(({ id, kind, seq, headHash, at, keyId, signature, prunedThroughSeq, predecessorKey, successorKey, successorSignature }) => ({
      id,
      kind,
      seq,
      headHash,
      at,
      prunedThroughSeq,
      keyId,
      signature,
      ...(kind === 'rotation' ? { predecessorKey, successorKey, successorKeyId: storedVerifier(successorKey)?.keyId ?? null, successorSignature } : {}),
    })),
  };
}

/** A checkpoint as `exportCheckpoints` writes it: what `audit verify --checkpoints` holds the log to. */
export interface ExportedCheckpoint {
  readonly id: number;
  readonly kind: string;
  readonly seq: number;
  readonly headHash: string;
  readonly at: string;
  readonly prunedThroughSeq: number | null;
  readonly keyId: string;
  readonly signature: string;
  readonly predecessorKey?: string | null;
  readonly successorKey?: string | null;
  readonly successorSignature?: string | null;
}

/** The fields of a checkpoint an export and the log must agree on: what is signed, and the signatures (not the unsigned row id). */
const ANCHORED_FIELDS = ['kind', 'seq', 'headHash', 'at', 'prunedThroughSeq', 'keyId', 'signature', 'predecessorKey', 'successorKey', 'successorSignature'] as const;

/**
 * The checkpoints of an export (`audit checkpoint export`'s JSON), or BAD_USER_INPUT saying what is not
 * one: a file that is not an export must not pass as one that holds no checkpoint.
 */
export function readCheckpointExport(text: string, name: string): ExportedCheckpoint[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badInput(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  const { format, checkpoints } = (parsed ?? {}) as { format?: unknown; checkpoints?: unknown };
  if (format !== CHECKPOINT_FORMAT || !Array.isArray(checkpoints)) throw badInput(`${name} is not a checkpoint export (npx candor audit checkpoint export): expected "format": "${CHECKPOINT_FORMAT}" and a list of checkpoints`);
  if (checkpoints.length === 0) throw badInput(`${name} holds no checkpoint: it vouches for nothing`);
  const nullableText = (value: unknown) => value === undefined || value === null || typeof value === 'string';
  checkpoints.forEach((checkpoint: Record<string, unknown>, index) => {
    const wellFormed =
      typeof checkpoint === 'object' &&
      checkpoint !== null &&
      Number.isInteger(checkpoint.id) &&
      Number.isInteger(checkpoint.seq) &&
      (checkpoint.prunedThroughSeq === null || Number.isInteger(checkpoint.prunedThroughSeq)) &&
      ['kind', 'headHash', 'at', 'keyId', 'signature'].every((field) => typeof checkpoint[field] === 'string') &&
      ['predecessorKey', 'successorKey', 'successorSignature'].every((field) => nullableText(checkpoint[field]));
    if (!wellFormed) throw badInput(`${name}: checkpoint ${index + 1} of the list is not a checkpoint as export writes them`);
  });
  return checkpoints as ExportedCheckpoint[];
}

/**
 * Refuses an export whose checkpoints the log's keys cannot vouch for: one whose signature does not verify
 * under the key it names (the file was changed since export wrote it), or one signed with a key that is
 * neither configured nor named by a rotation the log holds (another installation's export). Either is the
 * file's fault, not the log's, and is told so before the log is compared with it. Only the log's keys are
 * trusted here: a file cannot vouch for keys of its own.
 */
export function refuseUnverifiableAnchors(exported: readonly ExportedCheckpoint[], stored: readonly AuditCheckpointEntity[], configured: CheckpointVerifier, name: string): void {
  const keys = new Map([[configured.keyId, configured]]);
  for (const checkpoint of stored) {
    for (const publicKey of [checkpoint.predecessorKey, checkpoint.successorKey]) {
      const key = storedVerifier(publicKey);
      if (key) keys.set(key.keyId, key);
    }
  }
  for (const anchor of exported) {
    const key = keys.get(anchor.keyId);
    if (!key) throw badInput(`${name}: checkpoint ${anchor.id} is signed with key ${anchor.keyId}, which neither CANDOR_AUDIT_SIGNING_KEY nor a key rotation of this log names: an export of another installation, or of this one under a key it never used`);
    // A kind the log does not know is signed as no checkpoint is: it does not verify.
    if (!key.verify(checkpointMessage(anchor as SignedFields), anchor.signature)) {
      throw badInput(`${name}: checkpoint ${anchor.id} (seq ${anchor.seq}) does not verify under key ${anchor.keyId}, the key it names: the file was changed since \`audit checkpoint export\` wrote it`);
    }
  }
}

/**
 * The first (lowest seq) checkpoint of an export the log does not hold as exported. The chain's hashes are
 * unkeyed: whoever can write the database can rewrite records, hash them again and delete the checkpoints
 * that would contradict them — the periodic one then signs the rewritten head. What was exported outside
 * the database cannot be deleted with them. A checkpoint held as exported is then held to the chain by the
 * verify (its signature, and the hash of the batch it ends).
 */
export function missingAnchor(exported: readonly ExportedCheckpoint[], stored: readonly AuditCheckpointEntity[], name: string): { seq: number; problem: string } | undefined {
  // By signature (a log keeps every checkpoint: a year of them is a hundred thousand), then field by field.
  const bySignature = new Map<string, AuditCheckpointEntity[]>();
  for (const checkpoint of stored) bySignature.set(checkpoint.signature, [...(bySignature.get(checkpoint.signature) ?? []), checkpoint]);
  const held = (anchor: ExportedCheckpoint) => (bySignature.get(anchor.signature) ?? []).some((checkpoint) => ANCHORED_FIELDS.every((field) => (checkpoint[field] ?? null) === (anchor[field] ?? null)));
  const missing = [...exported].sort((a, b) => a.seq - b.seq || a.id - b.id).find((anchor) => !held(anchor));
  if (!missing) return undefined;
  return {
    seq: missing.seq,
    problem: `checkpoint ${missing.id} of ${name} (seq ${missing.seq}, head hash ${missing.headHash}, ${missing.at}) is not in the log: its checkpoints were removed or replaced, and the records it vouched for may have been rewritten since`,
  };
}
