import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A question or objection a data subject wrote on the privacy page, and the consent manager's answer. */
@Entity('subject_message')
export class SubjectMessageEntity {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ name: 'subject_id', type: 'varchar', length: 40 }) subjectId!: string;
  /** What it is about: a purpose key, or `access:<seq>` for an entry of the usage history. */
  @Column({ type: 'varchar', nullable: true }) context!: string | null;
  @Column({ type: 'text' }) body!: string;
  @Column({ name: 'created_at', type: 'varchar', length: 30 }) createdAt!: string;
  @Column({ type: 'text', nullable: true }) answer!: string | null;
  @Column({ name: 'answered_at', type: 'varchar', length: 30, nullable: true }) answeredAt!: string | null;
  @Column({ name: 'answered_by', type: 'varchar', length: 64, nullable: true }) answeredBy!: string | null;
}
