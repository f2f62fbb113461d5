import type { MigrationInterface, QueryRunner } from 'typeorm';
import { erasedPseudonymRows } from '../src/audit/pseudonym-binding';
import { bindingKeyOfMigrationRun } from './1764700000000-pseudonym-binding';

/** Pseudonyms remembered per statement. */
const PAGE = 1_000;

/**
 * Both dialects: `erased_pseudonym` holds each pseudonym records may name while no mapping does — an erasure
 * deleted its mapping, or the subject was erased before it was made — with its binding under the mappings' key
 * (`src/audit/pseudonym-binding.ts`). Verify then finds a mapping deleted behind Candor's back, which hid the
 * subject's records from every report of them. The log's unmapped pseudonyms so far were left by erasures (no
 * other code path deletes a mapping): they are remembered here, bound with the secret Candor's own migration
 * runs hand over; a run without it (TypeORM's CLI) is refused on a log that has any.
 */
export class ErasedPseudonyms1764720000000 implements MigrationInterface {
  name = 'ErasedPseudonyms1764720000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE TABLE erased_pseudonym (pseudonym varchar(40) PRIMARY KEY, binding varchar(64) NOT NULL)');
    const unmapped = `SELECT DISTINCT e.subject_pseudonym AS pseudonym FROM audit_entry e
      WHERE e.subject_pseudonym IS NOT NULL AND NOT EXISTS (SELECT 1 FROM subject_pseudonym p WHERE p.pseudonym = e.subject_pseudonym)
        AND NOT EXISTS (SELECT 1 FROM erased_pseudonym r WHERE r.pseudonym = e.subject_pseudonym)`;
    const [any] = await queryRunner.query(`${unmapped} LIMIT 1`);
    if (!any) return;
    const key = await bindingKeyOfMigrationRun(queryRunner, "the access log's erased pseudonyms");
    const postgres = queryRunner.connection.options.type === 'postgres';
    for (;;) {
      const pseudonyms = ((await queryRunner.query(`${unmapped} LIMIT ${PAGE}`)) as Array<{ pseudonym: string }>).map((row) => row.pseudonym);
      if (pseudonyms.length === 0) return;
      for (const { pseudonym, binding } of erasedPseudonymRows(key, pseudonyms)) {
        await queryRunner.query(`INSERT INTO erased_pseudonym (pseudonym, binding) VALUES (${postgres ? '$1, $2' : '?, ?'})`, [pseudonym, binding]);
      }
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE erased_pseudonym');
  }
}
