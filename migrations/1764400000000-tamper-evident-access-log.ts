import { type MigrationInterface, type QueryRunner, Table, TableIndex, type TableColumnOptions } from 'typeorm';

const text = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => ({ name, type: 'varchar', ...options });
const optional = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => text(name, { isNullable: true, ...options });
const bigint = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => ({ name, type: 'bigint', ...options });

/** The log tables no code path may update or delete from, except `audit prune` (PostgreSQL enforces it). */
const GUARDED_TABLES = ['audit_record', 'audit_batch', 'audit_checkpoint'];

/**
 * Replaces the first access-log table with the tamper-evident log: records with gap-free sequence numbers
 * and their own digests, hash-chained batches, signed checkpoints, and the pseudonym mapping that lets a
 * subject's erasure unlink the log without breaking it.
 */
export class TamperEvidentAccessLog1764400000000 implements MigrationInterface {
  name = 'TamperEvidentAccessLog1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('access_record');
    await queryRunner.createTable(
      new Table({
        name: 'audit_record',
        columns: [
          bigint('seq', { isPrimary: true }),
          bigint('batch_id'),
          text('at', { length: '30' }),
          text('request_id', { length: '64' }),
          optional('actor_id', { length: '64' }),
          optional('actor_name'),
          optional('actor_team'),
          optional('purpose'),
          optional('operation_name'),
          optional('subject_pseudonym', { length: '40' }),
          optional('coordinate'),
          optional('category'),
          text('decision', { length: '16' }),
          text('reason', { length: '40' }),
          optional('legal_basis', { length: '32' }),
          optional('consent_receipt_id', { length: '64' }),
          text('digest', { length: '64' }),
        ],
        indices: [
          new TableIndex({ name: 'audit_record_subject_idx', columnNames: ['subject_pseudonym', 'seq'] }),
          new TableIndex({ name: 'audit_record_request_idx', columnNames: ['request_id'] }),
          new TableIndex({ name: 'audit_record_at_idx', columnNames: ['at'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_batch',
        columns: [bigint('id', { isPrimary: true }), bigint('first_seq'), bigint('last_seq'), text('prev_hash', { length: '64' }), text('hash', { length: '64' }), text('committed_at', { length: '30' })],
        indices: [new TableIndex({ name: 'audit_batch_last_seq_idx', columnNames: ['last_seq'], isUnique: true })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_checkpoint',
        columns: [
          { name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
          text('kind', { length: '16' }),
          bigint('seq'),
          text('head_hash', { length: '64' }),
          text('at', { length: '30' }),
          text('key_id', { length: '64' }),
          text('signature', { length: '128' }),
          bigint('pruned_through_seq', { isNullable: true }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'subject_pseudonym',
        columns: [text('subject_id', { length: '40', isPrimary: true }), text('pseudonym', { length: '40', isUnique: true }), text('created_at', { length: '30' })],
      }),
    );
    if (queryRunner.connection.options.type === 'postgres') {
      // PostgreSQL only: a trigger refuses UPDATE/DELETE unless the prune transaction set its local flag.
      // (SQLite has no equivalent guard here; `audit verify` detects tampering there.)
      await queryRunner.query(`
        CREATE FUNCTION candor_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF coalesce(current_setting('candor.audit_prune', true), '') <> 'on' THEN
            RAISE EXCEPTION 'the access log is append-only: % on % refused (only "candor audit prune" may delete)', TG_OP, TG_TABLE_NAME;
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$`);
      for (const table of GUARDED_TABLES) {
        await queryRunner.query(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION candor_audit_append_only()`);
        await queryRunner.query(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION candor_audit_append_only()`);
      }
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type === 'postgres') {
      for (const table of GUARDED_TABLES) {
        await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_append_only ON ${table}`);
        await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_no_truncate ON ${table}`);
      }
      await queryRunner.query('DROP FUNCTION IF EXISTS candor_audit_append_only()');
    }
    for (const table of ['subject_pseudonym', 'audit_checkpoint', 'audit_batch', 'audit_record']) await queryRunner.dropTable(table);
  }
}
