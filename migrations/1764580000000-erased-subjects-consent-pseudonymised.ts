import { createHash, randomBytes } from 'node:crypto';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Both dialects: an erasure now keeps the subject's consent ledger entries and receipts under a new random id
 * (each receipt naming it, digested anew) and deletes their current state, so that the receipts the access
 * log's records name no longer tie the log to them. This does the same for the subjects erased before.
 * Written out here rather than shared with the ledger: a migration does what it did on its day.
 * Irreversible by design: nothing maps the new ids back, so `down` leaves the ledger as it is.
 */
export class ErasedSubjectsConsentPseudonymised1764580000000 implements MigrationInterface {
  name = 'ErasedSubjectsConsentPseudonymised1764580000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const at = (position: number) => (queryRunner.connection.options.type === 'postgres' ? `$${position}` : '?');
    const erased: Array<{ id: string }> = await queryRunner.query(`SELECT c.id FROM customer c WHERE c.erased_at IS NOT NULL AND (
      EXISTS (SELECT 1 FROM consent_event e WHERE e.subject_id = c.id) OR EXISTS (SELECT 1 FROM consent_receipt r WHERE r.subject_id = c.id)
      OR EXISTS (SELECT 1 FROM consent_state s WHERE s.subject_id = c.id))`);
    for (const { id } of erased) {
      const erasedId = `erased_${randomBytes(12).toString('hex')}`;
      await queryRunner.query(`UPDATE consent_event SET subject_id = ${at(1)} WHERE subject_id = ${at(2)}`, [erasedId, id]);
      const receipts: Array<{ id: string; document: string }> = await queryRunner.query(`SELECT id, document FROM consent_receipt WHERE subject_id = ${at(1)}`, [id]);
      for (const receipt of receipts) {
        const document = JSON.stringify({ ...JSON.parse(receipt.document), piiPrincipalId: erasedId });
        const digest = createHash('sha256').update(document, 'utf8').digest('hex');
        await queryRunner.query(`UPDATE consent_receipt SET subject_id = ${at(1)}, document = ${at(2)}, digest = ${at(3)} WHERE id = ${at(4)}`, [erasedId, document, digest, receipt.id]);
      }
      await queryRunner.query(`DELETE FROM consent_state WHERE subject_id = ${at(1)}`, [id]);
    }
  }

  async down(): Promise<void> {
    // Nothing to undo: nothing maps the new ids back to the subjects, on purpose.
  }
}
