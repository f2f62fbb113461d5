import type { MigrationInterface, QueryRunner } from 'typeorm';

// The record view as the tamper-evident log defined it, plus the seventh item element MASKED records carry.
const RECORD_VIEW_HEADER = `e.batch_id AS batch_id, e.seq AS entry_seq, e.at AS at, e.request_id AS request_id, e.actor_id AS actor_id,
  e.actor_name AS actor_name, e.actor_team AS actor_team, e.purpose AS purpose, e.operation_name AS operation_name,
  e.subject_pseudonym AS subject_pseudonym`;
const postgresView = (withMask: boolean) => `CREATE VIEW audit_record AS SELECT e.seq + item.ordinality - 1 AS seq, ${RECORD_VIEW_HEADER},
  item.value->>0 AS coordinate, item.value->>1 AS category, item.value->>2 AS decision, item.value->>3 AS reason,
  item.value->>4 AS legal_basis, item.value->>5 AS consent_receipt_id,${withMask ? ' item.value->>6 AS mask_strategy,' : ''} (e.digests::jsonb)->>((item.ordinality - 1)::int) AS digest
  FROM audit_entry e CROSS JOIN LATERAL jsonb_array_elements(e.items::jsonb) WITH ORDINALITY AS item(value, ordinality)`;
const sqliteView = (withMask: boolean) => `CREATE VIEW audit_record AS SELECT e.seq + item.key AS seq, ${RECORD_VIEW_HEADER},
  json_extract(item.value, '$[0]') AS coordinate, json_extract(item.value, '$[1]') AS category, json_extract(item.value, '$[2]') AS decision,
  json_extract(item.value, '$[3]') AS reason, json_extract(item.value, '$[4]') AS legal_basis, json_extract(item.value, '$[5]') AS consent_receipt_id,${withMask ? " json_extract(item.value, '$[6]') AS mask_strategy," : ''}
  json_extract(e.digests, '$[' || item.key || ']') AS digest
  FROM audit_entry e, json_each(e.items) AS item`;

/** Exposes the masking strategy of MASKED records (issue 8) in the auditor's record view. */
export class MaskedRecords1764440000000 implements MigrationInterface {
  name = 'MaskedRecords1764440000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP VIEW audit_record');
    await queryRunner.query(queryRunner.connection.options.type === 'postgres' ? postgresView(true) : sqliteView(true));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP VIEW audit_record');
    await queryRunner.query(queryRunner.connection.options.type === 'postgres' ? postgresView(false) : sqliteView(false));
  }
}
