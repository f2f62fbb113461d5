import { randomBytes, scrypt } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { ConfigError, DEVELOPMENT_SECRET } from '../config';
import { SecretFingerprintEntity } from './secret-fingerprint.entity';

/**
 * scrypt's cost (16 MiB, tens of ms, once per process start): whoever reads the database may try guesses
 * of the secret against its fingerprint, and each guess should cost them as much.
 */
const SCRYPT_COST = { N: 16_384, r: 8, p: 1 };
const FINGERPRINT_BYTES = 32;
const THE_ROW = 1;

function fingerprintOf(secret: string, salt: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, Buffer.from(salt, 'base64'), FINGERPRINT_BYTES, SCRYPT_COST, (error, derived) => (error ? reject(error) : resolve(derived))),
  );
}

/**
 * Refuses a CANDOR_SECRET other than the one this database's actor keys (HMACs) and privacy links are made
 * with: a process with another one would answer every valid key 401, or print keys and links nobody else
 * accepts — passing every health check meanwhile. The first process to open a database without a
 * fingerprint records its own secret's (an upgraded database adopts the secret of the first upgraded
 * process), unless it runs on the development secret, which is checked against a recorded fingerprint only,
 * or the database was seeded under the development secret (`seededUnderDevelopmentSecret`), which is refused.
 * Processes starting together all insert-or-ignore the one row, then each compares with the row that was
 * kept: the same on both stores, no lock needed.
 */
export async function checkSecret(dataSource: DataSource | EntityManager, secret: string, at: Date, seededUnderDevelopmentSecret: () => Promise<boolean>): Promise<void> {
  const fingerprints = dataSource.getRepository(SecretFingerprintEntity);
  let recorded = await fingerprints.findOneBy({ id: THE_ROW });
  // The published development secret never becomes a database's: a command run without NODE_ENV=production
  // on a production database (the first after an upgrade, say) would lock its servers out.
  if (!recorded && secret === DEVELOPMENT_SECRET) return;
  let ours: Pick<SecretFingerprintEntity, 'salt' | 'fingerprint'> | undefined;
  if (!recorded) {
    // Nor does a demo database quietly become another secret's (a CANDOR_SECRET left in a shell, say): its
    // actors' keys are made with the development secret, and every process run as before would be refused.
    if (await seededUnderDevelopmentSecret()) {
      throw new ConfigError(
        'this database was seeded with the development secret (CANDOR_SECRET unset), and its actors\' keys are made with it: run with CANDOR_SECRET unset, or move the database to this secret with `CANDOR_NEXT_SECRET=<this secret> npx candor secret rotate`, CANDOR_SECRET unset',
      );
    }
    const salt = randomBytes(16).toString('base64');
    ours = { salt, fingerprint: (await fingerprintOf(secret, salt)).toString('base64') };
    await fingerprints.createQueryBuilder().insert().values({ id: THE_ROW, ...ours, recordedAt: at.toISOString() }).orIgnore().execute();
    recorded = await fingerprints.findOneByOrFail({ id: THE_ROW });
  }
  // The row kept is ours when our salt is in it (a salt is random): scrypt once, not twice, on that start.
  const fingerprint = recorded.salt === ours?.salt ? ours.fingerprint : (await fingerprintOf(secret, recorded.salt)).toString('base64');
  if (fingerprint !== recorded.fingerprint) {
    throw new ConfigError(
      "CANDOR_SECRET is not the secret this database's actors and links were made with: set it to theirs (to change the secret on purpose, see docs/operations.md, *Changing CANDOR_SECRET*)",
    );
  }
}

/**
 * Checks that `secret` is the database's before something the database keeps is made with it (the migration
 * binding the pseudonym mappings of an upgraded log): as `checkSecret`, which records the fingerprint on a
 * database without one — except that the development secret, which `checkSecret` lets open such a database
 * without becoming its secret, is taken only where the database was seeded under it (a demo). A command run
 * without NODE_ENV=production would otherwise bind every mapping under the published secret, and every one
 * would read as altered to the servers' secret.
 */
export async function checkSecretToMakeWith(manager: EntityManager, secret: string, at: Date, seededUnderDevelopmentSecret: () => Promise<boolean>): Promise<void> {
  if (secret === DEVELOPMENT_SECRET && !(await manager.getRepository(SecretFingerprintEntity).existsBy({ id: THE_ROW })) && !(await seededUnderDevelopmentSecret())) {
    throw new ConfigError("this database has recorded no secret yet, and this run has the development secret (CANDOR_SECRET unset): run it with CANDOR_SECRET set to the database's secret");
  }
  await checkSecret(manager, secret, at, seededUnderDevelopmentSecret);
}

/**
 * The fingerprint row, read in the caller's transaction under a lock on PostgreSQL (`replace`: FOR UPDATE,
 * `share`: FOR SHARE); SQLite's transactions hold the database's write lock from their start. `null` on a
 * database that never recorded one (the development secret).
 */
async function lockedFingerprint(manager: EntityManager, mode: 'replace' | 'share'): Promise<SecretFingerprintEntity | null> {
  const lock = manager.connection.options.type === 'postgres' ? { lock: { mode: mode === 'replace' ? ('pessimistic_write' as const) : ('pessimistic_read' as const) } } : {};
  return manager.getRepository(SecretFingerprintEntity).findOne({ where: { id: THE_ROW }, ...lock });
}

/** Whether `recorded` is `secret`'s fingerprint (no row: whether `secret` is the development secret). */
async function isFingerprintOf(secret: string, recorded: SecretFingerprintEntity | null): Promise<boolean> {
  return recorded ? (await fingerprintOf(secret, recorded.salt)).toString('base64') === recorded.fingerprint : secret === DEVELOPMENT_SECRET;
}

/**
 * Checks, in a transaction that writes something made with the secret (an actor's key, stored as an HMAC
 * under it), that the database's secret is still this process's. A `secret rotate` that committed after the
 * process started would otherwise be followed by a key made with the old secret, which no instance accepts
 * any more — printed as if it worked. The row's lock orders the two: the rotation waits for this write, or
 * this check sees the rotation (a database without the row, a demo on the development secret, has nothing to
 * lock: there the check sees only rotations that committed before it). Remembers the fingerprint it verified, so a process runs scrypt once.
 */
export class SecretWriteCheck {
  private verified?: string;

  constructor(private readonly secret: string) {}

  async assertStillCurrent(manager: EntityManager): Promise<void> {
    const recorded = await lockedFingerprint(manager, 'share');
    if (recorded && recorded.fingerprint === this.verified) return;
    if (!(await isFingerprintOf(this.secret, recorded))) {
      throw new ConfigError("nothing written: the database's secret changed since this command started (secret rotate): run it again with CANDOR_SECRET set to the database's new secret");
    }
    this.verified = recorded?.fingerprint;
  }
}

/**
 * Makes `next` the database's secret, in the caller's transaction (`secret rotate`, with the actors' new
 * keys): a new salt and fingerprint in place of the old. Checked again here, under the row's lock, that the
 * database is still `current`'s (the command was opened with it): of two rotations at once, the second is
 * refused rather than replace the first's secret and leave its printed keys dead. Processes started with the
 * old secret refuse to start from then on; those already running answer every key 401 until restarted.
 */
export async function replaceSecret(manager: EntityManager, current: string, next: string, at: Date): Promise<void> {
  const fingerprints = manager.getRepository(SecretFingerprintEntity);
  const recorded = await lockedFingerprint(manager, 'replace');
  if (!(await isFingerprintOf(current, recorded))) throw new ConfigError('nothing rotated: the database\'s secret changed since this command started (another secret rotate?): run it again with CANDOR_SECRET set to the database\'s secret');
  const salt = randomBytes(16).toString('base64');
  const fingerprint = { salt, fingerprint: (await fingerprintOf(next, salt)).toString('base64'), recordedAt: at.toISOString() };
  if (recorded) {
    await fingerprints.update({ id: THE_ROW }, fingerprint);
    return;
  }
  // No row to lock (a database on the development secret): a rotation racing this one inserts first, and this insert fails.
  await fingerprints.createQueryBuilder().insert().values({ id: THE_ROW, ...fingerprint }).orIgnore().execute();
  if ((await fingerprints.findOneBy({ id: THE_ROW }))?.salt !== salt) throw new ConfigError('nothing rotated: another secret rotate recorded its secret first: run it again with CANDOR_SECRET set to the database\'s secret');
}
