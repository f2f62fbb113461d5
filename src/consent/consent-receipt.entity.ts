import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A consent receipt (Kantara CR v1.1 / ISO/IEC TS 27560 fields) issued for one ledger entry. */
@Entity('consent_receipt')
export class ConsentReceiptEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id!: string;
  @Column({ name: 'subject_id', type: 'varchar', length: 40 }) subjectId!: string;
  @Column({ name: 'event_id', type: 'integer' }) eventId!: number;
  @Column({ name: 'issued_at', type: 'varchar', length: 30 }) issuedAt!: string;
  /** The receipt as issued, or reissued to an erased subject's new id (JSON text); `digest` is the SHA-256 of exactly this text. */
  @Column({ type: 'text' }) document!: string;
  @Column({ type: 'varchar', length: 64 }) digest!: string;
}
