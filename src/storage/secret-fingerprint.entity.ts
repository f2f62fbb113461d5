import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The fingerprint of the CANDOR_SECRET this database's actor keys and links are made with: one row (id 1). */
@Entity('secret_fingerprint')
export class SecretFingerprintEntity {
  @PrimaryColumn({ type: 'integer' }) id!: number;
  /** Random, per database (base64). */
  @Column({ type: 'varchar', length: 64 }) salt!: string;
  /** scrypt of the secret under the salt (base64): never the secret, and slow to guess it from. */
  @Column({ type: 'varchar', length: 64 }) fingerprint!: string;
  /** When it was recorded: by the first process that opened the database, or by the last `secret rotate`. */
  @Column({ name: 'recorded_at', type: 'varchar', length: 30 }) recordedAt!: string;
}
