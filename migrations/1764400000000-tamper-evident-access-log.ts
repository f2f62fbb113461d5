import { type MigrationInterface, type QueryRunner, Table, TableIndex, type TableColumnOptions } from 'typeorm';
import { firstAccessLogTable } from './1764380000000-initial-schema';

const text = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => ({ name, type: 'varchar', ...options });
const optional = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => text(name, { isNullable: true, ...options });
const bigint = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => ({ name, type: 'bigint', ...options });

/** The log tables no code path may update or delete from, except `audit prune` (PostgreSQL enforces it). */
const GUARDED_TABLES = ['audit_entry', 'audit_batch', 'audit_checkpoint'];

const RECORD_VIEW_HEADER = `e.batch_id AS batch_id, e.seq AS entry_seq, e.at AS at, e.request_id AS request_id, e.actor_id AS actor_id,
  e.actor_name AS actor_name, e.actor_team AS actor_team, e.purpose AS purpose, e.operation_name AS operation_name,
  e.subject_pseudonym AS subject_pseudonym`;
const POSTGRES_RECORD_VIEW = `CREATE VIEW audit_record AS SELECT e.seq + item.ordinality - 1 AS seq, ${RECORD_VIEW_HEADER},
  item.value->>0 AS coordinate, item.value->>1 AS category, item.value->>2 AS decision, item.value->>3 AS reason,
  item.value->>4 AS legal_basis, item.value->>5 AS consent_receipt_id, (e.digests::jsonb)->>((item.ordinality - 1)::int) AS digest
  FROM audit_entry e CROSS JOIN LATERAL jsonb_array_elements(e.items::jsonb) WITH ORDINALITY AS item(value, ordinality)`;
const SQLITE_RECORD_VIEW = `CREATE VIEW audit_record AS SELECT e.seq + item.key AS seq, ${RECORD_VIEW_HEADER},
  json_extract(item.value, '$[0]') AS coordinate, json_extract(item.value, '$[1]') AS category, json_extract(item.value, '$[2]') AS decision,
  json_extract(item.value, '$[3]') AS reason, json_extract(item.value, '$[4]') AS legal_basis, json_extract(item.value, '$[5]') AS consent_receipt_id,
  json_extract(e.digests, '$[' || item.key || ']') AS digest
  FROM audit_entry e, json_each(e.items) AS item`;

/**
 * Replaces the first access-log table with the tamper-evident log: records with gap-free sequence numbers
 * and their own digests (stored packed, one entry per request and subject, expanded by the audit_record
 * view), hash-chained batches, signed checkpoints, and the pseudonym mapping that lets a
 * subject's erasure unlink the log without breaking it.
 */
export class TamperEvidentAccessLog1764400000000 implements MigrationInterface {
  name = 'TamperEvidentAccessLog1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('access_record');
    await queryRunner.createTable(
      new Table({
        name: 'audit_entry',
        columns: [
          bigint('seq', { isPrimary: true }),
          { name: 'count', type: 'integer' },
          bigint('batch_id'),
          text('at', { length: '30' }),
          text('request_id', { length: '64' }),
          optional('actor_id', { length: '64' }),
          optional('actor_name'),
          optional('actor_team'),
          optional('purpose'),
          optional('operation_name'),
          optional('subject_pseudonym', { length: '40' }),
          { name: 'items', type: 'text' },
          { name: 'digests', type: 'text' },
        ],
        indices: [
          new TableIndex({ name: 'audit_entry_subject_idx', columnNames: ['subject_pseudonym', 'seq'] }),
          new TableIndex({ name: 'audit_entry_request_idx', columnNames: ['request_id'] }),
          new TableIndex({ name: 'audit_entry_at_idx', columnNames: ['at'] }),
        ],
      }),
    );
    // One row per logical record, for queries and reports: the entries expanded (the only dialect-specific part).
    await queryRunner.query(queryRunner.connection.options.type === 'postgres' ? POSTGRES_RECORD_VIEW : SQLITE_RECORD_VIEW);
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
    await queryRunner.query('DROP VIEW IF EXISTS audit_record');
    for (const table of ['subject_pseudonym', 'audit_checkpoint', 'audit_batch', 'audit_entry']) await queryRunner.dropTable(table);
    // Back to the first log, empty: the records it held before were not carried over, and are not now.
    await queryRunner.createTable(firstAccessLogTable());
  }
}
