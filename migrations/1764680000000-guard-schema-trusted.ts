import type { MigrationInterface, QueryRunner } from 'typeorm';
import { refuseUntrustedGuardSchema } from './1764640000000-drop-guard-outside-the-schema';

/**
 * PostgreSQL only. The shared drop guard's migration (1764640000000) first shipped without checking who owns a
 * `candor_guard` schema it found: a database migrated by that version may hold one a role without superuser
 * rights made first, and owns — the list of guarded schemas, or the function every superuser's DROP runs. This
 * checks it once on such databases, as that migration now does on new ones; nothing is changed. Run by any role:
 * the catalogs are readable by all, and a guard that cannot be trusted is a finding whoever migrates.
 */
export class GuardSchemaTrusted1764680000000 implements MigrationInterface {
  name = 'GuardSchemaTrusted1764680000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type === 'postgres') await refuseUntrustedGuardSchema(queryRunner);
  }

  /** Nothing to undo: the check changes nothing. */
  async down(): Promise<void> {}
}
