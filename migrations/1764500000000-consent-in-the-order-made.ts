import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The statement kind a ledger entry speaks to (what the `consent_state` row's `kind` holds). */
const statementKind = (alias: string) =>
  `CASE ${alias}.kind WHEN 'grant' THEN 'consent' WHEN 'withdraw' THEN 'consent' WHEN 'object' THEN 'objection' WHEN 'withdraw_objection' THEN 'objection' ELSE 'restriction' END`;
const purposeOf = (alias: string) => `coalesce(${alias}.purpose, '')`;

/**
 * The current statements, from the whole ledger: an entry is current unless a later-made one (by
 * `recorded_at`, then by id) speaks to its purpose or a broader one. Substrings, not LIKE: purpose keys
 * hold `_`, which LIKE reads as a wildcard.
 */
const REBUILD = `INSERT INTO consent_state (subject_id, kind, purpose, active, explicit, expires_at, event_id, recorded_at, receipt_id)
  SELECT e.subject_id, ${statementKind('e')}, ${purposeOf('e')}, e.kind IN ('grant', 'object', 'restrict'), e.explicit, e.expires_at, e.id, e.recorded_at, e.receipt_id
  FROM consent_event e
  WHERE NOT EXISTS (
    SELECT 1 FROM consent_event later
    WHERE later.subject_id = e.subject_id AND ${statementKind('later')} = ${statementKind('e')}
      AND (${purposeOf('later')} = ${purposeOf('e')} OR substr(${purposeOf('e')}, 1, length(${purposeOf('later')}) + 1) = ${purposeOf('later')} || '.')
      AND (later.recorded_at > e.recorded_at OR (later.recorded_at = e.recorded_at AND later.id > e.id)))`;

/**
 * Consent statements take effect in the order they were made, no longer in the order they reached the
 * ledger (an import of old grants overrode later withdrawals): the `consent_state` projection is rebuilt
 * from the ledger under that rule, which the ledger applies from now on. Both dialects. The ledger itself
 * is unchanged, so `down` rebuilds nothing: the states stay those of the newer rule.
 */
export class ConsentInTheOrderMade1764500000000 implements MigrationInterface {
  name = 'ConsentInTheOrderMade1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Instances of the earlier version may still append during a rolling upgrade: a change between the
    // delete and the rebuild would be lost from the projection. (SQLite's migration holds its write lock.)
    if (queryRunner.connection.options.type === 'postgres') await queryRunner.query('LOCK TABLE consent_event, consent_state IN EXCLUSIVE MODE');
    await queryRunner.query('DELETE FROM consent_state');
    await queryRunner.query(REBUILD);
  }

  async down(): Promise<void> {
    // Nothing to undo: the projection is derived data, and the ledger did not change.
  }
}
