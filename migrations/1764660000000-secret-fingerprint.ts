import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Both dialects: where the fingerprint of the CANDOR_SECRET the database's actor keys and links are made
 * with is kept (one row), so that a process with another secret refuses to start. Empty until the first
 * process opens the database: an existing one adopts the secret of whichever upgraded process comes first.
 */
export class SecretFingerprint1764660000000 implements MigrationInterface {
  name = 'SecretFingerprint1764660000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE secret_fingerprint (id integer NOT NULL PRIMARY KEY CHECK (id = 1), salt varchar(64) NOT NULL,
      fingerprint varchar(64) NOT NULL, recorded_at varchar(30) NOT NULL)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE secret_fingerprint');
  }
}
