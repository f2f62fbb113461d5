import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * PostgreSQL only: one token bucket per actor that every instance on the database draws on
 * (CANDOR_RATE_LIMIT_SCOPE=cluster). UNLOGGED: a bucket is worth nothing after a crash (a full one is what an
 * unknown actor gets), and writing it costs no WAL and no flush on each request.
 */
export class SharedRateLimit1764560000000 implements MigrationInterface {
  name = 'SharedRateLimit1764560000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query('CREATE UNLOGGED TABLE actor_rate_bucket (actor_id text PRIMARY KEY, tokens double precision NOT NULL, at_ms bigint NOT NULL)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query('DROP TABLE actor_rate_bucket');
  }
}
