/**
 * The Ed25519 keys that sign access-log checkpoints, and which one a log is signed with now. Kept apart from
 * `checkpoints.ts` (which reads and writes through TypeORM) so that the log's store workers can check a
 * prune's key in their own transaction.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

/** A public key that checks checkpoint signatures. */
export interface CheckpointVerifier {
  /** The first 16 hex digits of the SHA-256 of the key's SPKI DER: how checkpoints and messages name it. */
  readonly keyId: string;
  /** base64 of the key's SPKI DER: how a rotation checkpoint stores the keys it hands over between. */
  readonly publicKey: string;
  verify(message: string, signature: string): boolean;
}

const keyIdOfDer = (der: Buffer) => createHash('sha256').update(der).digest('hex').slice(0, 16);

export function verifierOf(key: KeyObject): CheckpointVerifier {
  const der = key.export({ format: 'der', type: 'spki' });
  return {
    keyId: keyIdOfDer(der),
    publicKey: der.toString('base64'),
    verify: (message, signature) => {
      const bytes = strictBase64(signature);
      return bytes !== undefined && verify(null, Buffer.from(message, 'utf8'), key, bytes);
    },
  };
}

/**
 * The bytes of standard, padded base64 text, or undefined for any other text. Node's decoder skips what is
 * not base64 (spaces, text after the padding, the base64url alphabet): a stored signature or key with such
 * additions would verify in Candor and fail in a strict third-party verifier.
 */
function strictBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** The verifier of a stored public key (base64 SPKI DER), or undefined when it is not an Ed25519 public key. */
export function storedVerifier(publicKey: string | null): CheckpointVerifier | undefined {
  if (!publicKey) return undefined;
  try {
    const der = strictBase64(publicKey);
    if (!der) return undefined;
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' ? verifierOf(key) : undefined;
  } catch {
    return undefined;
  }
}

/** The columns of a stored checkpoint that say which key signs the log after it. */
export interface CheckpointKeyColumns {
  readonly kind: string;
  readonly keyId: string;
  readonly successorKey: string | null;
}

/**
 * The key the log's checkpoints are signed with after `latest` (its newest checkpoint): the key that signed
 * it, or, after a rotation, the key it handed over to. Undefined before the first checkpoint (any key may
 * start the log's).
 */
export function logSigningKeyId(latest: CheckpointKeyColumns | undefined): string | undefined {
  if (!latest) return undefined;
  if (latest.kind !== 'rotation') return latest.keyId;
  // A rotation whose successor is no key names none: every key is then refused, which is what a broken log asks.
  return storedVerifier(latest.successorKey)?.keyId ?? 'none';
}
