import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import type { AccessDecision } from './chain';

/** bigint columns come back from PostgreSQL as strings; sequence numbers stay far below 2^53. */
const bigintAsNumber = { to: (value: number) => value, from: (value: string | number | null) => (value === null ? null : Number(value)) };

/** One sealed access-log record (see docs/audit-format.md). Written only by the chain appenders. */
@Entity('audit_record')
@Index('audit_record_subject_idx', ['subjectPseudonym', 'seq'])
export class AuditRecordEntity {
  @PrimaryColumn({ type: 'bigint', transformer: bigintAsNumber }) seq!: number;
  @Column({ name: 'batch_id', type: 'bigint', transformer: bigintAsNumber }) batchId!: number;
  @Column({ type: 'varchar', length: 30 }) at!: string;
  @Column({ name: 'request_id', type: 'varchar', length: 64 }) requestId!: string;
  @Column({ name: 'actor_id', type: 'varchar', length: 64, nullable: true }) actorId!: string | null;
  @Column({ name: 'actor_name', type: 'varchar', nullable: true }) actorName!: string | null;
  @Column({ name: 'actor_team', type: 'varchar', nullable: true }) actorTeam!: string | null;
  @Column({ type: 'varchar', nullable: true }) purpose!: string | null;
  @Column({ name: 'operation_name', type: 'varchar', nullable: true }) operationName!: string | null;
  @Column({ name: 'subject_pseudonym', type: 'varchar', length: 40, nullable: true }) subjectPseudonym!: string | null;
  @Column({ type: 'varchar', nullable: true }) coordinate!: string | null;
  @Column({ type: 'varchar', nullable: true }) category!: string | null;
  @Column({ type: 'varchar', length: 16 }) decision!: AccessDecision;
  @Column({ type: 'varchar', length: 40 }) reason!: string;
  @Column({ name: 'legal_basis', type: 'varchar', length: 32, nullable: true }) legalBasis!: string | null;
  @Column({ name: 'consent_receipt_id', type: 'varchar', length: 64, nullable: true }) consentReceiptId!: string | null;
  @Column({ type: 'varchar', length: 64 }) digest!: string;
}

/** One committed batch: its records' sequence range and the chain hash. */
@Entity('audit_batch')
export class AuditBatchEntity {
  @PrimaryColumn({ type: 'bigint', transformer: bigintAsNumber }) id!: number;
  @Column({ name: 'first_seq', type: 'bigint', transformer: bigintAsNumber }) firstSeq!: number;
  @Column({ name: 'last_seq', type: 'bigint', transformer: bigintAsNumber }) lastSeq!: number;
  @Column({ name: 'prev_hash', type: 'varchar', length: 64 }) prevHash!: string;
  @Column({ type: 'varchar', length: 64 }) hash!: string;
  @Column({ name: 'committed_at', type: 'varchar', length: 30 }) committedAt!: string;
}

/** A signed statement "the chain's head at `seq` was `headHash`", periodic or written by a prune. */
@Entity('audit_checkpoint')
export class AuditCheckpointEntity {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 16 }) kind!: 'periodic' | 'manual' | 'prune';
  @Column({ type: 'bigint', transformer: bigintAsNumber }) seq!: number;
  @Column({ name: 'head_hash', type: 'varchar', length: 64 }) headHash!: string;
  @Column({ type: 'varchar', length: 30 }) at!: string;
  @Column({ name: 'key_id', type: 'varchar', length: 64 }) keyId!: string;
  @Column({ type: 'varchar', length: 128 }) signature!: string;
  @Column({ name: 'pruned_through_seq', type: 'bigint', nullable: true, transformer: bigintAsNumber }) prunedThroughSeq!: number | null;
}

/** The only link between a data subject and their access records; erasure deletes the row. */
@Entity('subject_pseudonym')
export class SubjectPseudonymEntity {
  @PrimaryColumn({ name: 'subject_id', type: 'varchar', length: 40 }) subjectId!: string;
  @Column({ type: 'varchar', length: 40, unique: true }) pseudonym!: string;
  @Column({ name: 'created_at', type: 'varchar', length: 30 }) createdAt!: string;
}

export const AUDIT_ENTITIES = [AuditRecordEntity, AuditBatchEntity, AuditCheckpointEntity, SubjectPseudonymEntity];
