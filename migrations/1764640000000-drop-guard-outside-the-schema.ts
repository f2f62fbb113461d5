import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Where the guard lives: outside every installation's schema, so that dropping one cannot take its guard along. */
const GUARD_SCHEMA = 'candor_guard';
export const GUARD_TRIGGER = 'candor_guard_refuse_log_drop';

/**
 * The guard of every Candor installation of the database: dropping a log table of a listed schema is refused
 * unless the session set the prune flag — a partition, a table, or the schema with everything in it (`DROP
 * SCHEMA … CASCADE` lists its tables among the dropped objects). A drop the flag allows takes a dropped schema
 * off the list, so a later schema of that name is not guarded for it. Security definer: the list is writable
 * by the guard's owner only, and whoever drops (the installation's owner, say) need not read it.
 */
const SHARED_GUARD = `
  CREATE OR REPLACE FUNCTION ${GUARD_SCHEMA}.refuse_log_drop() RETURNS event_trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  DECLARE
    dropped record;
  BEGIN
    IF coalesce(current_setting('candor.audit_prune', true), '') = 'on' THEN
      DELETE FROM ${GUARD_SCHEMA}.installation WHERE schema_name IN (SELECT object_name FROM pg_event_trigger_dropped_objects() WHERE object_type = 'schema');
      RETURN;
    END IF;
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects()
        WHERE object_type = 'table' AND schema_name IN (SELECT schema_name FROM ${GUARD_SCHEMA}.installation) LOOP
      IF dropped.object_name ~ '^audit_(entry|batch)(_p[0-9]{4}_[0-9]{2})?$' OR dropped.object_name = 'audit_checkpoint' THEN
        RAISE EXCEPTION 'the access log is append-only: dropping % refused (only "candor audit prune" may drop its partitions; to remove the installation, SET candor.audit_prune = ''on'' first)', dropped.object_identity;
      END IF;
    END LOOP;
  END $$`;

/**
 * PostgreSQL only. Each schema's guard (1764600000000) ran a function of that schema: `DROP SCHEMA … CASCADE`
 * dropped the function, its event trigger with it, and then the log unguarded. The guard now runs a function
 * of its own schema, `candor_guard` (created by the first installation that needs it), shared by the
 * installations of the database and listing each one's schema (by name: a restored dump keeps it guarded).
 * The schema's own guard function stays, unused, for the rollbacks below this migration. Without a superuser
 * nothing changes (no event trigger can be created or dropped; `audit verify` still reports what a drop removed).
 */
export class DropGuardOutsideTheSchema1764640000000 implements MigrationInterface {
  name = 'DropGuardOutsideTheSchema1764640000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres' || !(await isSuperuser(queryRunner))) return;
    const { schema, schemaTrigger } = await ownSchema(queryRunner);
    await queryRunner.query(`CREATE SCHEMA IF NOT EXISTS ${GUARD_SCHEMA}`);
    await queryRunner.query(`CREATE TABLE IF NOT EXISTS ${GUARD_SCHEMA}.installation (schema_name text PRIMARY KEY)`);
    await queryRunner.query(SHARED_GUARD);
    // After creating, not before: a schema another role committed in between would be kept by IF NOT EXISTS.
    // Checked in this transaction, a refusal rolls the three back, and no event trigger runs the function.
    await refuseUntrustedGuardSchema(queryRunner);
    if (!(await queryRunner.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [GUARD_TRIGGER])).length) {
      await queryRunner.query(`CREATE EVENT TRIGGER ${GUARD_TRIGGER} ON sql_drop EXECUTE FUNCTION ${GUARD_SCHEMA}.refuse_log_drop()`);
    }
    await queryRunner.query(`INSERT INTO ${GUARD_SCHEMA}.installation (schema_name) VALUES ($1) ON CONFLICT DO NOTHING`, [schema]);
    await queryRunner.query(`DROP EVENT TRIGGER IF EXISTS ${schemaTrigger}`);
  }

  /** Back to the schema's own guard; the shared one goes with the last installation it lists. */
  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres' || !(await isSuperuser(queryRunner))) return;
    const { schema, schemaTrigger } = await ownSchema(queryRunner);
    if ((await queryRunner.query(`SELECT to_regclass('${GUARD_SCHEMA}.installation') IS NOT NULL AS present`))[0].present) {
      await queryRunner.query(`DELETE FROM ${GUARD_SCHEMA}.installation WHERE schema_name = $1`, [schema]);
      if (!(await queryRunner.query(`SELECT 1 FROM ${GUARD_SCHEMA}.installation LIMIT 1`)).length) {
        await queryRunner.query(`DROP EVENT TRIGGER IF EXISTS ${GUARD_TRIGGER}`);
        await queryRunner.query(`DROP FUNCTION ${GUARD_SCHEMA}.refuse_log_drop()`);
        await queryRunner.query(`DROP TABLE ${GUARD_SCHEMA}.installation`);
        await queryRunner.query(`DROP SCHEMA ${GUARD_SCHEMA}`);
      }
    }
    if (!(await queryRunner.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [schemaTrigger])).length) {
      await queryRunner.query(`CREATE EVENT TRIGGER ${schemaTrigger} ON sql_drop EXECUTE FUNCTION candor_audit_refuse_drop()`);
    }
  }
}

/**
 * A `candor_guard` schema made before this migration by a role without superuser rights would be trusted with
 * everything: its owner could empty the list of guarded schemas, and would own the event trigger's function
 * (CREATE OR REPLACE keeps a function's owner) — code every superuser's DROP then runs. So the schema, and
 * whatever it holds, must belong to superusers; otherwise nothing is done and the migration fails, saying so.
 */
export async function refuseUntrustedGuardSchema(queryRunner: QueryRunner): Promise<void> {
  const owners: Array<{ owner: string }> = await queryRunner.query(
    `SELECT DISTINCT role.rolname AS owner
       FROM pg_namespace guard
       JOIN LATERAL (SELECT guard.nspowner AS owner
                     UNION ALL SELECT relowner FROM pg_class WHERE relnamespace = guard.oid
                     UNION ALL SELECT proowner FROM pg_proc WHERE pronamespace = guard.oid
                     UNION ALL SELECT typowner FROM pg_type WHERE typnamespace = guard.oid) owned ON true
       JOIN pg_roles role ON role.oid = owned.owner
      WHERE guard.nspname = $1 AND NOT role.rolsuper
      ORDER BY 1`,
    [GUARD_SCHEMA],
  );
  if (owners.length > 0) {
    throw new Error(
      `schema ${GUARD_SCHEMA} already exists, and ${owners.length > 1 ? 'roles' : 'role'} ${owners.map(({ owner }) => owner).join(', ')} (not a superuser) own${owners.length > 1 ? '' : 's'} it or something in it: it cannot be trusted to guard the access log. ` +
        `Inspect it, drop it as a superuser (DROP SCHEMA ${GUARD_SCHEMA} CASCADE) and migrate again`,
    );
  }
}

async function isSuperuser(queryRunner: QueryRunner): Promise<boolean> {
  const [{ superuser }] = await queryRunner.query('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
  return superuser;
}

/** This schema's name and the name 1764600000000 gave its own guard's event trigger. */
async function ownSchema(queryRunner: QueryRunner): Promise<{ schema: string; schemaTrigger: string }> {
  const [{ schema, oid }] = await queryRunner.query('SELECT nspname AS schema, oid::text AS oid FROM pg_namespace WHERE nspname = current_schema()');
  return { schema, schemaTrigger: `candor_audit_refuse_drop_${oid}` };
}
