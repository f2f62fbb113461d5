import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export type AccessDecision = 'RELEASED' | 'WITHHELD' | 'MASKED' | 'REFUSED';

/** One access-log record: a decision on one personal field of one subject, or a refused operation. */
@Entity('access_record')
@Index('access_record_subject_idx', ['subjectId', 'seq'])
@Index('access_record_request_idx', ['requestId'])
export class AccessRecordEntity {
  @PrimaryGeneratedColumn({ type: 'integer' }) seq!: number;
  @Column({ type: 'varchar', length: 30 }) at!: string;
  @Column({ name: 'request_id', type: 'varchar', length: 64 }) requestId!: string;
  @Column({ name: 'actor_id', type: 'varchar', length: 64, nullable: true }) actorId!: string | null;
  @Column({ name: 'actor_name', type: 'varchar', nullable: true }) actorName!: string | null;
  @Column({ name: 'actor_team', type: 'varchar', nullable: true }) actorTeam!: string | null;
  @Column({ type: 'varchar', nullable: true }) purpose!: string | null;
  @Column({ name: 'operation_name', type: 'varchar', nullable: true }) operationName!: string | null;
  @Column({ name: 'subject_id', type: 'varchar', length: 40, nullable: true }) subjectId!: string | null;
  @Column({ type: 'varchar', nullable: true }) coordinate!: string | null;
  @Column({ type: 'varchar', nullable: true }) category!: string | null;
  @Column({ type: 'varchar', length: 16 }) decision!: AccessDecision;
  @Column({ type: 'varchar', length: 40 }) reason!: string;
  @Column({ name: 'legal_basis', type: 'varchar', length: 32, nullable: true }) legalBasis!: string | null;
}
