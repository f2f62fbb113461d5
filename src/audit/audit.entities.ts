import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { type CheckpointKind, RECORD_VALUE_LIMITS } from './audit-store';

/** bigint columns come back from PostgreSQL as strings; sequence numbers stay far below 2^53. */
const bigintAsNumber = { to: (value: number) => value, from: (value: string | number | null) => (value === null ? null : Number(value)) };

/**
 * One sealed entry: a request's records for one subject (or one operation record), with consecutive
 * sequence numbers from `seq` and one digest per record (see docs/audit-format.md). Written only by the
 * chain appenders; read record by record through the `audit_record` view.
 */
@Entity('audit_entry')
export class AuditEntryEntity {
  @PrimaryColumn({ type: 'bigint', transformer: bigintAsNumber }) seq!: number;
  @Column({ type: 'integer' }) count!: number;
  @Column({ name: 'batch_id', type: 'bigint', transformer: bigintAsNumber }) batchId!: number;
  @Column({ type: 'varchar', length: RECORD_VALUE_LIMITS.at }) at!: string;
  @Column({ name: 'request_id', type: 'varchar', length: RECORD_VALUE_LIMITS.requestId }) requestId!: string;
  @Column({ name: 'actor_id', type: 'varchar', length: RECORD_VALUE_LIMITS.actorId, nullable: true }) actorId!: string | null;
  @Column({ name: 'actor_name', type: 'varchar', nullable: true }) actorName!: string | null;
  @Column({ name: 'actor_team', type: 'varchar', nullable: true }) actorTeam!: string | null;
  @Column({ type: 'varchar', nullable: true }) purpose!: string | null;
  @Column({ name: 'operation_name', type: 'varchar', nullable: true }) operationName!: string | null;
  @Column({ name: 'subject_pseudonym', type: 'varchar', length: 40, nullable: true }) subjectPseudonym!: string | null;
  /** JSON: one [coordinate, category, decision, reason, legalBasis, consentReceiptId] per record. */
  @Column({ type: 'text' }) items!: string;
  /** JSON: one hex SHA-256 per record. */
  @Column({ type: 'text' }) digests!: string;
  /** The batch's commit time (not part of any digest): on PostgreSQL, the partition the entry lives in. */
  @Column({ name: 'committed_at', type: 'varchar', length: 30 }) committedAt!: string;
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

/**
 * A signed statement "the chain's head at `seq` was `headHash`": periodic, made on demand, written by a prune,
 * or a rotation, which also hands the log's signing over from one key to the next (signed by both).
 */
@Entity('audit_checkpoint')
export class AuditCheckpointEntity {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 16 }) kind!: CheckpointKind;
  @Column({ type: 'bigint', transformer: bigintAsNumber }) seq!: number;
  @Column({ name: 'head_hash', type: 'varchar', length: 64 }) headHash!: string;
  @Column({ type: 'varchar', length: 30 }) at!: string;
  @Column({ name: 'key_id', type: 'varchar', length: 64 }) keyId!: string;
  @Column({ type: 'varchar', length: 128 }) signature!: string;
  @Column({ name: 'pruned_through_seq', type: 'bigint', nullable: true, transformer: bigintAsNumber }) prunedThroughSeq!: number | null;
  /** A rotation's key before it (base64 SPKI DER), which made `signature`. */
  @Column({ name: 'predecessor_key', type: 'varchar', length: 128, nullable: true }) predecessorKey!: string | null;
  /** A rotation's key after it, which made `successorSignature` and signs every later checkpoint. */
  @Column({ name: 'successor_key', type: 'varchar', length: 128, nullable: true }) successorKey!: string | null;
  @Column({ name: 'successor_signature', type: 'varchar', length: 128, nullable: true }) successorSignature!: string | null;
}

/** The only link between a data subject and their access records; erasure deletes the row. */
@Entity('subject_pseudonym')
export class SubjectPseudonymEntity {
  @PrimaryColumn({ name: 'subject_id', type: 'varchar', length: RECORD_VALUE_LIMITS.subjectId }) subjectId!: string;
  @Column({ type: 'varchar', length: 40, unique: true }) pseudonym!: string;
  @Column({ name: 'created_at', type: 'varchar', length: 30 }) createdAt!: string;
  /** Hex HMAC of the pseudonym and the subject id under a key derived from CANDOR_SECRET (`pseudonym-binding.ts`): a row altered or swapped no longer matches. */
  @Column({ type: 'varchar', length: 64, nullable: true }) binding!: string | null;
}

/**
 * A subject erased from the log: a record about them that comes later gets a pseudonym of its batch that maps
 * to no one (the appenders' pseudonym lookups), never a mapping of its own.
 */
@Entity('erased_subject')
export class ErasedSubjectEntity {
  @PrimaryColumn({ name: 'subject_id', type: 'varchar', length: RECORD_VALUE_LIMITS.subjectId }) subjectId!: string;
  @Column({ name: 'erased_at', type: 'varchar', length: 30 }) erasedAt!: string;
}

/**
 * A pseudonym that records may name while no mapping does, because an erasure removed its mapping (or the
 * subject was erased before it was made): with its binding (`pseudonym-binding.ts`), so that a mapping deleted
 * behind Candor's back — which hides a subject's records from every report of them — is found by verify.
 */
@Entity('erased_pseudonym')
export class ErasedPseudonymEntity {
  @PrimaryColumn({ type: 'varchar', length: 40 }) pseudonym!: string;
  @Column({ type: 'varchar', length: 64 }) binding!: string;
}

export const AUDIT_ENTITIES = [AuditEntryEntity, AuditBatchEntity, AuditCheckpointEntity, SubjectPseudonymEntity, ErasedSubjectEntity, ErasedPseudonymEntity];
