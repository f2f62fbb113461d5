import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The SQLSTATE `candor_audit_expect_head` raises: class "CH" is not one PostgreSQL uses. */
export const CHAIN_HEAD_MOVED = 'CH001';

/**
 * PostgreSQL: a check an appender runs under the chain lock, in the same round trip as its batch row and
 * COMMIT, so that the lock is held for no round trip to the appender. It raises CHAIN_HEAD_MOVED unless
 * the chain's head is the batch the appender sealed after (an empty log is batch 0, sequence 0, the
 * genesis hash) and was committed no later than the new batch. The error aborts the transaction, and with
 * it the statements after the check: the COMMIT never runs, and the appender seals again.
 */
const EXPECT_HEAD_FUNCTION = `
  CREATE FUNCTION candor_audit_expect_head(expected_batch bigint, expected_last_seq bigint, expected_hash text, committing_at text)
  RETURNS void LANGUAGE plpgsql AS $$
  DECLARE
    head record;
  BEGIN
    SELECT id, last_seq, hash, committed_at INTO head FROM audit_batch ORDER BY id DESC LIMIT 1;
    IF FOUND THEN
      IF head.id = expected_batch AND head.last_seq = expected_last_seq AND head.hash = expected_hash AND head.committed_at <= committing_at THEN
        RETURN;
      END IF;
    ELSIF expected_batch = 0 AND expected_last_seq = 0 AND expected_hash = repeat('0', 64) THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'the access log''s chain head moved: expected batch % ending at sequence %', expected_batch, expected_last_seq
      USING ERRCODE = '${CHAIN_HEAD_MOVED}';
  END $$`;

/**
 * PostgreSQL only (SQLite's appender holds its write lock for the whole transaction, in one thread): what
 * lets an appender copy its rows before it takes the chain lock.
 *
 * - `candor_audit_expect_head`, above.
 * - The entries' primary key (seq, committed_at) becomes a plain index on `seq`. Rows copied ahead of the
 *   lock are uncommitted while their transaction waits for it; a unique index would make the lock's
 *   holder, copying a batch with the same keys (another appender predicted the same sequence numbers in
 *   the same millisecond), wait for that transaction, which waits for the lock: a deadlock on every such
 *   collision. Sequence numbers stay unique because only the chain lock's holder commits entries after
 *   checking the head, and `audit verify` reports any duplicate or gap.
 */
export class CopyAheadOfTheChainLock1764480000000 implements MigrationInterface {
  name = 'CopyAheadOfTheChainLock1764480000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query(EXPECT_HEAD_FUNCTION);
    await queryRunner.query('ALTER TABLE audit_entry DROP CONSTRAINT audit_entry_pkey');
    await queryRunner.query('CREATE INDEX audit_entry_seq_idx ON audit_entry (seq)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query('DROP INDEX audit_entry_seq_idx');
    await queryRunner.query('ALTER TABLE audit_entry ADD CONSTRAINT audit_entry_pkey PRIMARY KEY (seq, committed_at)');
    await queryRunner.query('DROP FUNCTION candor_audit_expect_head(bigint, bigint, text, text)');
  }
}
