import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Both dialects: `erased_subject` remembers which subjects were erased from the access log, so that a record
 * about one that reaches the log afterwards (a request or a privacy-page action that read the subject just
 * before the erasure) gets a pseudonym of its own that maps to no one, instead of a new mapping that would
 * link the subject to it. Subjects erased before this migration are remembered from the domain's erasure
 * time, once the log's part of their erasure was done (their mapping is gone).
 */
export class ErasureIsFinal1764520000000 implements MigrationInterface {
  name = 'ErasureIsFinal1764520000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE TABLE erased_subject (subject_id varchar(40) NOT NULL PRIMARY KEY, erased_at varchar(30) NOT NULL)');
    await queryRunner.query(`INSERT INTO erased_subject (subject_id, erased_at)
      SELECT c.id, c.erased_at FROM customer c
      WHERE c.erased_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM subject_pseudonym p WHERE p.subject_id = c.id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE erased_subject');
  }
}
