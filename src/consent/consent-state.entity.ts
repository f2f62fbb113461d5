import { Column, Entity, PrimaryColumn } from 'typeorm';

export type StatementKind = 'consent' | 'objection' | 'restriction';

/**
 * The current statement per (subject, kind, purpose), a projection of the ledger maintained in the same
 * transaction as each append. It exists so that subject states load with one indexed read per batch and
 * `onlyPermitted` can filter in SQL; the ledger stays the record of truth.
 */
@Entity('consent_state')
export class ConsentStateEntity {
  @PrimaryColumn({ name: 'subject_id', type: 'varchar', length: 40 }) subjectId!: string;
  @PrimaryColumn({ type: 'varchar', length: 16 }) kind!: StatementKind;
  /** Purpose key; '' for the restriction statement. */
  @PrimaryColumn({ type: 'varchar' }) purpose!: string;
  /** Granted (consent), objected (objection) or restricted (restriction). */
  @Column({ type: 'boolean' }) active!: boolean;
  @Column({ type: 'boolean', default: false }) explicit!: boolean;
  @Column({ name: 'expires_at', type: 'varchar', length: 30, nullable: true }) expiresAt!: string | null;
  @Column({ name: 'event_id', type: 'integer' }) eventId!: number;
  @Column({ name: 'recorded_at', type: 'varchar', length: 30, nullable: true }) recordedAt!: string | null;
  @Column({ name: 'receipt_id', type: 'varchar', length: 64, nullable: true }) receiptId!: string | null;
}
