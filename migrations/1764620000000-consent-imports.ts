import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Both dialects: the import files the consent ledger holds, by the SHA-256 of their text (`consent import` refuses one again). */
export class ConsentImports1764620000000 implements MigrationInterface {
  name = 'ConsentImports1764620000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE consent_import (digest varchar(64) NOT NULL PRIMARY KEY, file_name varchar NOT NULL,
      imported_at varchar(30) NOT NULL, statements integer NOT NULL, actor_id varchar(64) NOT NULL)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE consent_import');
  }
}
