import { type MigrationInterface, type QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';

/**
 * The "communicate" tier: consent receipts (referenced by ledger entries and the access records that
 * relied on them), the notice version a grant was given under, subjects' questions and their answers,
 * and the erasure mark on customers.
 */
export class ConsentLifecycle1764420000000 implements MigrationInterface {
  name = 'ConsentLifecycle1764420000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumns('consent_event', [
      new TableColumn({ name: 'notice_version', type: 'integer', isNullable: true }),
      new TableColumn({ name: 'receipt_id', type: 'varchar', length: '64', isNullable: true }),
    ]);
    await queryRunner.addColumns('consent_state', [
      new TableColumn({ name: 'recorded_at', type: 'varchar', length: '30', isNullable: true }),
      new TableColumn({ name: 'receipt_id', type: 'varchar', length: '64', isNullable: true }),
    ]);
    await queryRunner.addColumn('customer', new TableColumn({ name: 'erased_at', type: 'varchar', length: '30', isNullable: true }));
    await queryRunner.createTable(
      new Table({
        name: 'consent_receipt',
        columns: [
          { name: 'id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'subject_id', type: 'varchar', length: '40' },
          { name: 'event_id', type: 'integer' },
          { name: 'issued_at', type: 'varchar', length: '30' },
          { name: 'document', type: 'text' },
          { name: 'digest', type: 'varchar', length: '64' },
        ],
        indices: [new TableIndex({ name: 'consent_receipt_subject_idx', columnNames: ['subject_id', 'issued_at'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'subject_message',
        columns: [
          { name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
          { name: 'subject_id', type: 'varchar', length: '40' },
          { name: 'context', type: 'varchar', isNullable: true },
          { name: 'body', type: 'text' },
          { name: 'created_at', type: 'varchar', length: '30' },
          { name: 'answer', type: 'text', isNullable: true },
          { name: 'answered_at', type: 'varchar', length: '30', isNullable: true },
          { name: 'answered_by', type: 'varchar', length: '64', isNullable: true },
        ],
        indices: [new TableIndex({ name: 'subject_message_subject_idx', columnNames: ['subject_id', 'id'] })],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('subject_message');
    await queryRunner.dropTable('consent_receipt');
    await queryRunner.dropColumn('customer', 'erased_at');
    await queryRunner.dropColumns('consent_state', ['recorded_at', 'receipt_id']);
    await queryRunner.dropColumns('consent_event', ['notice_version', 'receipt_id']);
  }
}
