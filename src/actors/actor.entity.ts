import { Column, Entity, PrimaryColumn } from 'typeorm';
import { jsonText } from '../storage/column-transformers';

/** A team or service allowed to query Candor. Its API key is stored only as an HMAC under the server secret. */
@Entity('actor')
export class ActorEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id!: string;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'varchar' }) team!: string;
  @Column({ type: 'text', transformer: jsonText }) roles!: string[];
  /** Purpose keys the actor may declare (each covers its sub-purposes). */
  @Column({ type: 'text', transformer: jsonText }) purposes!: string[];
  /** Hex HMAC-SHA-256 of the API key under CANDOR_SECRET. */
  @Column({ name: 'key_hash', type: 'varchar', length: 64, unique: true }) keyHash!: string;
  @Column({ name: 'created_at', type: 'varchar', length: 30 }) createdAt!: string;
  @Column({ name: 'revoked_at', type: 'varchar', length: 30, nullable: true }) revokedAt!: string | null;
}
