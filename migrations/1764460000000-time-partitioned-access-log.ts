import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Months of partitions created ahead of the current one (the server and `audit partitions` keep this up). */
const MONTHS_AHEAD = 3;

// The record view as the masked-records migration left it (frozen here: a migration must not change later).
const RECORD_VIEW = `CREATE VIEW audit_record AS SELECT e.seq + item.ordinality - 1 AS seq, e.batch_id AS batch_id, e.seq AS entry_seq,
  e.at AS at, e.request_id AS request_id, e.actor_id AS actor_id, e.actor_name AS actor_name, e.actor_team AS actor_team,
  e.purpose AS purpose, e.operation_name AS operation_name, e.subject_pseudonym AS subject_pseudonym,
  item.value->>0 AS coordinate, item.value->>1 AS category, item.value->>2 AS decision, item.value->>3 AS reason,
  item.value->>4 AS legal_basis, item.value->>5 AS consent_receipt_id, item.value->>6 AS mask_strategy, (e.digests::jsonb)->>((item.ordinality - 1)::int) AS digest
  FROM audit_entry e CROSS JOIN LATERAL jsonb_array_elements(e.items::jsonb) WITH ORDINALITY AS item(value, ordinality)`;

const ENTRY_COLUMNS = `seq bigint NOT NULL, count integer NOT NULL, batch_id bigint NOT NULL, at varchar(30) NOT NULL, request_id varchar(64) NOT NULL,
  actor_id varchar(64), actor_name varchar, actor_team varchar, purpose varchar, operation_name varchar, subject_pseudonym varchar(40),
  items text NOT NULL, digests text NOT NULL`;
const BATCH_COLUMNS = 'id bigint NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL, prev_hash varchar(64) NOT NULL, hash varchar(64) NOT NULL';

/**
 * One month's partitions of both log tables, named `<table>_pYYYY_MM`, for every month from `first_month`
 * through `last_month`; existing ones are kept. Bounds are ISO-8601 UTC strings, compared bytewise
 * (the key's collation is "C"), so a batch committed at 2026-11-30T23:59:59.999Z lands in 2026_11.
 * Each partition gets the TRUNCATE guard: a parent's statement trigger does not fire for its partitions.
 */
const CREATE_PARTITIONS_FUNCTION = `
  CREATE FUNCTION candor_audit_create_partitions(first_month date, last_month date) RETURNS integer LANGUAGE plpgsql AS $$
  DECLARE
    month date := date_trunc('month', first_month);
    log_table text;
    partition_name text;
    created integer := 0;
  BEGIN
    WHILE month <= last_month LOOP
      FOREACH log_table IN ARRAY ARRAY['audit_entry', 'audit_batch'] LOOP
        partition_name := log_table || '_p' || to_char(month, 'YYYY_MM');
        IF to_regclass(partition_name) IS NULL THEN
          EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', partition_name, log_table,
            to_char(month, 'YYYY-MM-DD') || 'T00:00:00.000Z', to_char(month + interval '1 month', 'YYYY-MM-DD') || 'T00:00:00.000Z');
          EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION candor_audit_append_only()',
            partition_name || '_no_truncate', partition_name);
          created := created + 1;
        END IF;
      END LOOP;
      month := month + interval '1 month';
    END LOOP;
    RETURN created;
  END $$`;

/**
 * Dropping a log partition (or a log table) is refused unless the prune transaction set its local flag:
 * row triggers do not fire for DROP. Event triggers need a superuser; without one this guard is not
 * installed and `audit verify` still reports the records a dropped partition held as missing.
 */
export const DROP_GUARD = `
  CREATE FUNCTION candor_audit_refuse_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
  DECLARE
    dropped record;
  BEGIN
    IF coalesce(current_setting('candor.audit_prune', true), '') = 'on' THEN RETURN; END IF;
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' LOOP
      IF dropped.object_name ~ '^audit_(entry|batch)(_p[0-9]{4}_[0-9]{2})?$' OR dropped.object_name = 'audit_checkpoint' THEN
        RAISE EXCEPTION 'the access log is append-only: dropping % refused (only "candor audit prune" may drop its partitions)', dropped.object_identity;
      END IF;
    END LOOP;
  END $$`;

/** Whether the event trigger named candor_audit_refuse_drop runs this schema's guard function. */
export const LEGACY_GUARD_IS_OURS = `SELECT 1 FROM pg_event_trigger t JOIN pg_proc f ON f.oid = t.evtfoid
  WHERE t.evtname = 'candor_audit_refuse_drop' AND f.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;

/** The log tables' indexes (the batch's unique one on `batchKey`), append-only triggers, and the record view over them. */
async function indexAndGuard(queryRunner: QueryRunner, batchKey: string): Promise<void> {
  await queryRunner.query('CREATE INDEX audit_entry_subject_idx ON audit_entry (subject_pseudonym, seq)');
  await queryRunner.query('CREATE INDEX audit_entry_request_idx ON audit_entry (request_id)');
  await queryRunner.query('CREATE INDEX audit_entry_at_idx ON audit_entry (at)');
  await queryRunner.query(`CREATE UNIQUE INDEX audit_batch_last_seq_idx ON audit_batch (${batchKey})`);
  for (const table of ['audit_entry', 'audit_batch']) {
    await queryRunner.query(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION candor_audit_append_only()`);
    await queryRunner.query(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION candor_audit_append_only()`);
  }
  await queryRunner.query(RECORD_VIEW);
}

/**
 * PostgreSQL: the log's entries and batches become tables partitioned by month of their batch's commit
 * time, so that pruning old records drops whole partitions instead of deleting rows. Every entry carries
 * its batch's `committed_at` (both dialects; SQLite keeps one table), so a batch and its entries always
 * share a partition. Sequence numbers stay the chain's; the primary keys include the partition key, as
 * PostgreSQL requires, and the chain lock keeps them unique.
 */
export class TimePartitionedAccessLog1764460000000 implements MigrationInterface {
  name = 'TimePartitionedAccessLog1764460000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') {
      await queryRunner.query('ALTER TABLE audit_entry ADD COLUMN committed_at varchar(30)');
      // An entry without its batch (tampering) keeps its own time; `audit verify` reports it either way.
      await queryRunner.query('UPDATE audit_entry SET committed_at = coalesce((SELECT b.committed_at FROM audit_batch b WHERE b.id = audit_entry.batch_id), at)');
      return;
    }
    await queryRunner.query('DROP VIEW audit_record');
    await queryRunner.query('ALTER TABLE audit_entry RENAME TO audit_entry_unpartitioned');
    await queryRunner.query('ALTER TABLE audit_batch RENAME TO audit_batch_unpartitioned');
    for (const index of ['audit_entry_subject_idx', 'audit_entry_request_idx', 'audit_entry_at_idx', 'audit_batch_last_seq_idx']) {
      await queryRunner.query(`ALTER INDEX ${index} RENAME TO ${index}_unpartitioned`);
    }
    await queryRunner.query(`CREATE TABLE audit_entry (${ENTRY_COLUMNS}, committed_at varchar(30) COLLATE "C" NOT NULL,
      CONSTRAINT audit_entry_pkey PRIMARY KEY (seq, committed_at)) PARTITION BY RANGE (committed_at)`);
    await queryRunner.query(`CREATE TABLE audit_batch (${BATCH_COLUMNS}, committed_at varchar(30) COLLATE "C" NOT NULL,
      CONSTRAINT audit_batch_pkey PRIMARY KEY (id, committed_at)) PARTITION BY RANGE (committed_at)`);
    await queryRunner.query(CREATE_PARTITIONS_FUNCTION);
    // Partitions for every month the existing log spans (an orphan entry counts by its own time), and ahead.
    await queryRunner.query(`SELECT candor_audit_create_partitions(
      least((now() AT TIME ZONE 'UTC')::date, (SELECT min(committed_at) FROM audit_batch_unpartitioned)::date, (SELECT min(at) FROM audit_entry_unpartitioned)::date),
      ((now() AT TIME ZONE 'UTC') + interval '${MONTHS_AHEAD} months')::date)`);
    await queryRunner.query(`INSERT INTO audit_entry SELECT e.*, coalesce(b.committed_at, e.at) FROM audit_entry_unpartitioned e
      LEFT JOIN audit_batch_unpartitioned b ON b.id = e.batch_id`);
    await queryRunner.query('INSERT INTO audit_batch SELECT * FROM audit_batch_unpartitioned');
    await queryRunner.query('DROP TABLE audit_entry_unpartitioned, audit_batch_unpartitioned');
    // On the parents, indexes and row triggers are created on every partition, present and future (PostgreSQL 13+).
    await indexAndGuard(queryRunner, 'last_seq, committed_at');
    const [{ superuser }] = await queryRunner.query('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
    await queryRunner.query(DROP_GUARD);
    // Event trigger names are the database's, not the schema's: a Candor schema migrated beside another finds
    // the name taken (and 1764600000000 gives each schema a guard of its own).
    if (superuser && !(await queryRunner.query("SELECT 1 FROM pg_event_trigger WHERE evtname = 'candor_audit_refuse_drop'")).length) {
      await queryRunner.query('CREATE EVENT TRIGGER candor_audit_refuse_drop ON sql_drop EXECUTE FUNCTION candor_audit_refuse_drop()');
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') {
      await queryRunner.query('ALTER TABLE audit_entry DROP COLUMN committed_at');
      return;
    }
    // Only this schema's: the trigger of that name may run another Candor schema's function.
    if ((await queryRunner.query(LEGACY_GUARD_IS_OURS)).length) await queryRunner.query('DROP EVENT TRIGGER candor_audit_refuse_drop');
    await queryRunner.query('DROP FUNCTION candor_audit_refuse_drop()');
    await queryRunner.query('DROP VIEW audit_record');
    await queryRunner.query(`CREATE TABLE audit_entry_unpartitioned (${ENTRY_COLUMNS}, PRIMARY KEY (seq))`);
    await queryRunner.query(`CREATE TABLE audit_batch_unpartitioned (${BATCH_COLUMNS}, committed_at varchar(30) NOT NULL, PRIMARY KEY (id))`);
    await queryRunner.query(`INSERT INTO audit_entry_unpartitioned SELECT seq, count, batch_id, at, request_id, actor_id, actor_name, actor_team,
      purpose, operation_name, subject_pseudonym, items, digests FROM audit_entry`);
    await queryRunner.query('INSERT INTO audit_batch_unpartitioned SELECT * FROM audit_batch');
    await queryRunner.query('DROP TABLE audit_entry, audit_batch');
    await queryRunner.query('DROP FUNCTION candor_audit_create_partitions(date, date)');
    await queryRunner.query('ALTER TABLE audit_entry_unpartitioned RENAME TO audit_entry');
    await queryRunner.query('ALTER TABLE audit_batch_unpartitioned RENAME TO audit_batch');
    await indexAndGuard(queryRunner, 'last_seq');
  }
}
