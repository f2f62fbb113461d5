import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export const CONSENT_EVENT_KINDS = ['grant', 'withdraw', 'object', 'withdraw_objection', 'restrict', 'lift_restriction'] as const;
export type ConsentEventKind = (typeof CONSENT_EVENT_KINDS)[number];

/**
 * One entry of the append-only consent ledger. Never deleted, and updated only when its subject is erased:
 * it is then kept under a new id that maps back to no one (`ConsentLedger.pseudonymise`).
 */
@Entity('consent_event')
@Index('consent_event_subject_idx', ['subjectId', 'id'])
export class ConsentEventEntity {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ name: 'subject_id', type: 'varchar', length: 40 }) subjectId!: string;
  @Column({ type: 'varchar', length: 24 }) kind!: ConsentEventKind;
  /** The purpose key (null for restrict / lift_restriction). */
  @Column({ type: 'varchar', nullable: true }) purpose!: string | null;
  @Column({ type: 'boolean', default: false }) explicit!: boolean;
  /** Where the statement was collected (`signup-form`, `support-call`, `privacy-page`, …). */
  @Column({ type: 'varchar' }) source!: string;
  @Column({ name: 'expires_at', type: 'varchar', length: 30, nullable: true }) expiresAt!: string | null;
  @Column({ name: 'recorded_at', type: 'varchar', length: 30 }) recordedAt!: string;
  /** The actor that recorded it (null for seeded history). */
  @Column({ name: 'actor_id', type: 'varchar', length: 64, nullable: true }) actorId!: string | null;
  /** The notice version of the purpose the statement was made under. */
  @Column({ name: 'notice_version', type: 'integer', nullable: true }) noticeVersion!: number | null;
  /** The consent receipt issued for this entry. */
  @Column({ name: 'receipt_id', type: 'varchar', length: 64, nullable: true }) receiptId!: string | null;
}
