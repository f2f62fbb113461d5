import { escapeLiteral } from 'pg';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { DROP_GUARD, LEGACY_GUARD_IS_OURS } from './1764460000000-time-partitioned-access-log';

/** The guard of one schema's log: its tables only, whatever other schemas hold (1764460000000's looked at every schema). */
const schemaGuard = (schema: string) =>
  DROP_GUARD.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION').replace("WHERE object_type = 'table'", `WHERE object_type = 'table' AND schema_name = ${escapeLiteral(schema)}`);

/**
 * PostgreSQL only. The guard against dropping the log's tables (1764460000000) was one event trigger per
 * database, named alike for every schema, matching tables by name: a second Candor schema in the database
 * could not be migrated (the name was taken), and another application's table named `audit_entry` could
 * not be dropped. Each schema now has its own trigger (named by the schema's oid, unique in the database)
 * running its own function, which looks at its own schema's tables only.
 */
export class DropGuardPerSchema1764600000000 implements MigrationInterface {
  name = 'DropGuardPerSchema1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    const { schema, trigger } = await this.ownGuard(queryRunner);
    await queryRunner.query(schemaGuard(schema));
    const [{ superuser }] = await queryRunner.query('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
    if (!superuser) return; // no event trigger without one (as before): `audit verify` still reports what a drop removed
    if ((await queryRunner.query(LEGACY_GUARD_IS_OURS)).length) await queryRunner.query('DROP EVENT TRIGGER candor_audit_refuse_drop');
    await queryRunner.query(`CREATE EVENT TRIGGER ${trigger} ON sql_drop EXECUTE FUNCTION candor_audit_refuse_drop()`);
  }

  /**
   * Back to the trigger name 1764460000000 used, when no other schema holds it — with this schema's guard
   * still: the database-wide one would stop another schema's own rollback from dropping its tables.
   */
  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    const { trigger } = await this.ownGuard(queryRunner);
    await queryRunner.query(`DROP EVENT TRIGGER IF EXISTS ${trigger}`);
    const [{ superuser }] = await queryRunner.query('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
    if (superuser && !(await queryRunner.query("SELECT 1 FROM pg_event_trigger WHERE evtname = 'candor_audit_refuse_drop'")).length) {
      await queryRunner.query('CREATE EVENT TRIGGER candor_audit_refuse_drop ON sql_drop EXECUTE FUNCTION candor_audit_refuse_drop()');
    }
  }

  /** This schema's name and the name of its guard's event trigger. */
  private async ownGuard(queryRunner: QueryRunner): Promise<{ schema: string; trigger: string }> {
    const [{ schema, oid }] = await queryRunner.query('SELECT nspname AS schema, oid::text AS oid FROM pg_namespace WHERE nspname = current_schema()');
    return { schema, trigger: `candor_audit_refuse_drop_${oid}` };
  }
}
