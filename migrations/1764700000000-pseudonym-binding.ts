import type { MigrationInterface, QueryRunner } from 'typeorm';
import { holdsDemoKeysMadeWith } from '../src/actors/actor-directory';
import { pseudonymBindingKey, secretOfMigrationRun, storeBinding } from '../src/audit/pseudonym-binding';
import { DEVELOPMENT_SECRET } from '../src/config';
import { checkSecretToMakeWith } from '../src/storage/secret-fingerprint';

/**
 * The key rows are bound under in this migration run (`pseudonymBindingKey` of the secret Candor's own runs hand
 * over, once checked to be the database's): `bound` names what needs it, for a run that has no secret.
 */
export async function bindingKeyOfMigrationRun(queryRunner: QueryRunner, bound: string): Promise<Buffer> {
  const secret = secretOfMigrationRun();
  if (secret === undefined) {
    throw new Error(`${bound} must be bound with CANDOR_SECRET, which this migration run was not given: run \`npx candor migrate\` (with CANDOR_SECRET set) instead`);
  }
  // A wrong secret would bind every row wrongly: each would read as altered from then on.
  await checkSecretToMakeWith(queryRunner.manager, secret, new Date(), () => holdsDemoKeysMadeWith(queryRunner.manager, DEVELOPMENT_SECRET));
  return pseudonymBindingKey(secret);
}

/** Mappings bound per statement read. */
const BINDING_PAGE = 1_000;

/**
 * Both dialects: each `subject_pseudonym` row gets its `binding`, an HMAC of the row under a key derived from
 * CANDOR_SECRET (`src/audit/pseudonym-binding.ts`), so that a row altered or swapped with another is found by
 * verify and refused by the readers. The rows already there are bound here, with the secret Candor's own
 * migration runs hand over (`withMigrationSecret`) once it is checked to be the database's; a run without it
 * (TypeORM's CLI) is refused on a database with rows to bind. From here on a row without a binding is a break.
 */
export class PseudonymBinding1764700000000 implements MigrationInterface {
  name = 'PseudonymBinding1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE subject_pseudonym ADD COLUMN binding varchar(64)');
    const [unbound] = await queryRunner.query('SELECT subject_id FROM subject_pseudonym WHERE binding IS NULL LIMIT 1');
    if (!unbound) return;
    const key = await bindingKeyOfMigrationRun(queryRunner, "the access log's pseudonym mappings");
    for (;;) {
      const rows: Array<{ subject_id: string; pseudonym: string }> = await queryRunner.query(`SELECT subject_id, pseudonym FROM subject_pseudonym WHERE binding IS NULL ORDER BY subject_id LIMIT ${BINDING_PAGE}`);
      if (rows.length === 0) return;
      for (const row of rows) await storeBinding(queryRunner.manager, key, row.pseudonym, row.subject_id);
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE subject_pseudonym DROP COLUMN binding');
  }
}
