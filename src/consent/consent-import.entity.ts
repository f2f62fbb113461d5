import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An import file whose statements the ledger holds: known by its content, so that running it again is noticed. */
@Entity('consent_import')
export class ConsentImportEntity {
  /** SHA-256 (hex) of the file's text. */
  @PrimaryColumn({ type: 'varchar', length: 64 }) digest!: string;
  /** The file's name as given to the command (what an operator recognises). */
  @Column({ name: 'file_name', type: 'varchar' }) fileName!: string;
  @Column({ name: 'imported_at', type: 'varchar', length: 30 }) importedAt!: string;
  @Column({ type: 'integer' }) statements!: number;
  @Column({ name: 'actor_id', type: 'varchar', length: 64 }) actorId!: string;
}
