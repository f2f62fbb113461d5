import type { DataSource } from 'typeorm';
import { DropGuardOutsideTheSchema1764640000000, GUARD_TRIGGER } from '../../migrations/1764640000000-drop-guard-outside-the-schema';
import { inSetupTurn } from './data-source';

/**
 * PostgreSQL: whether the access log's DROP guard covers this installation, installing it first when it does
 * not and this role can. The guard is an event trigger, which only a superuser may create: migrations run by
 * another role succeed without it, and would leave the log unguarded for good — so `migrate` and `serve`
 * run by a superuser install it then (the guard's migration is idempotent). Undefined on SQLite, which has none.
 */
export async function ensureDropGuard(dataSource: DataSource): Promise<boolean | undefined> {
  if (dataSource.options.type !== 'postgres') return undefined;
  if (await guarded(dataSource)) return true;
  const [{ superuser }] = await dataSource.query('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
  if (!superuser) return false;
  // In the setup turn: instances starting together would each create the trigger, and all but one fail.
  return inSetupTurn(dataSource, async () => {
    if (await guarded(dataSource)) return true;
    await dataSource.transaction((manager) => new DropGuardOutsideTheSchema1764640000000().up(manager.queryRunner!));
    return guarded(dataSource);
  });
}

/** The guard's event trigger is enabled and lists this schema (a role that may not read the list is told by the trigger alone). */
async function guarded(dataSource: DataSource): Promise<boolean> {
  const [state] = await dataSource.query(
    `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D') AS triggered,
            to_regclass('candor_guard.installation') IS NOT NULL AND has_table_privilege('candor_guard.installation', 'SELECT') AS readable`,
    [GUARD_TRIGGER],
  );
  if (!state.triggered || !state.readable) return state.triggered;
  return (await dataSource.query('SELECT 1 FROM candor_guard.installation WHERE schema_name = current_schema()')).length > 0;
}

/** What `migrate` and `serve` say when the log stays unguarded. */
export const UNGUARDED_WARNING =
  "the access log is not guarded against DROP on this database (an event trigger only a superuser can create, and this role is not one): nothing refuses dropping its tables, though `audit verify` reports the records a drop removed — run `npx candor migrate` once as a superuser to install it";
