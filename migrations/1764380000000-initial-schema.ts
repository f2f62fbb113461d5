import { type MigrationInterface, type QueryRunner, Table, TableIndex, type TableColumnOptions } from 'typeorm';

// Driver-neutral on purpose: the same Table API calls create the schema on SQLite and PostgreSQL.
// Timestamps are ISO-8601 UTC text (sortable, identical on both drivers).
const text = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => ({ name, type: 'varchar', ...options });
const optional = (name: string, options: Partial<TableColumnOptions> = {}): TableColumnOptions => text(name, { isNullable: true, ...options });
const timestamp = (name: string, isNullable = false): TableColumnOptions => text(name, { length: '30', isNullable });
const id = (name = 'id', length = '40'): TableColumnOptions => text(name, { length, isPrimary: true });
const serial = (name: string): TableColumnOptions => ({ name, type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' });

export class InitialSchema1764380000000 implements MigrationInterface {
  name = 'InitialSchema1764380000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'customer',
        columns: [
          id(),
          optional('full_name'),
          optional('display_name'),
          optional('email'),
          optional('phone'),
          optional('birth_date', { length: '10' }),
          optional('country'),
          optional('postal_address'),
          optional('favorite_genres', { type: 'text' }),
          optional('accessibility_needs'),
          timestamp('created_at'),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'payment',
        columns: [
          id(),
          text('customer_id', { length: '40' }),
          { name: 'amount', type: 'double precision' },
          text('currency', { length: '3' }),
          timestamp('paid_at'),
          text('card_last4', { length: '4' }),
        ],
        indices: [new TableIndex({ name: 'payment_customer_idx', columnNames: ['customer_id', 'paid_at'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'watch_event',
        columns: [id(), text('customer_id', { length: '40' }), text('title'), timestamp('watched_at'), { name: 'seconds', type: 'integer' }],
        indices: [new TableIndex({ name: 'watch_event_customer_idx', columnNames: ['customer_id', 'watched_at'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'actor',
        columns: [
          id('id', '64'),
          text('name'),
          text('team'),
          { name: 'roles', type: 'text' },
          { name: 'purposes', type: 'text' },
          text('key_hash', { length: '64', isUnique: true }),
          timestamp('created_at'),
          timestamp('revoked_at', true),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'consent_event',
        columns: [
          serial('id'),
          text('subject_id', { length: '40' }),
          text('kind', { length: '24' }),
          optional('purpose'),
          { name: 'explicit', type: 'boolean', default: false },
          text('source'),
          timestamp('expires_at', true),
          timestamp('recorded_at'),
          optional('actor_id', { length: '64' }),
        ],
        indices: [new TableIndex({ name: 'consent_event_subject_idx', columnNames: ['subject_id', 'id'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'consent_state',
        columns: [
          id('subject_id'),
          text('kind', { length: '16', isPrimary: true }),
          text('purpose', { isPrimary: true }),
          { name: 'active', type: 'boolean' },
          { name: 'explicit', type: 'boolean', default: false },
          timestamp('expires_at', true),
          { name: 'event_id', type: 'integer' },
        ],
      }),
    );
    await queryRunner.createTable(firstAccessLogTable());
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('access_record');
    for (const table of ['consent_state', 'consent_event', 'actor', 'watch_event', 'payment', 'customer']) await queryRunner.dropTable(table);
  }
}

/** The first access log's table: created here, replaced by the tamper-evident log, and created again by its down. */
export function firstAccessLogTable(): Table {
  return new Table({
    name: 'access_record',
    columns: [
      serial('seq'),
      timestamp('at'),
      text('request_id', { length: '64' }),
      optional('actor_id', { length: '64' }),
      optional('actor_name'),
      optional('actor_team'),
      optional('purpose'),
      optional('operation_name'),
      optional('subject_id', { length: '40' }),
      optional('coordinate'),
      optional('category'),
      text('decision', { length: '16' }),
      text('reason', { length: '40' }),
      optional('legal_basis', { length: '32' }),
    ],
    indices: [
      new TableIndex({ name: 'access_record_subject_idx', columnNames: ['subject_id', 'seq'] }),
      new TableIndex({ name: 'access_record_request_idx', columnNames: ['request_id'] }),
    ],
  });
}
