import { Column, Entity, PrimaryColumn } from 'typeorm';
import { jsonText } from '../storage/column-transformers';

/** The longest customer id (a data subject id) the store holds. */
export const CUSTOMER_ID_LENGTH = 40;

/** A customer of the streaming platform, and the data subject of their own record. */
@Entity('customer')
export class CustomerEntity {
  /** Opaque surrogate id, also the customer's data-subject id. */
  @PrimaryColumn({ type: 'varchar', length: CUSTOMER_ID_LENGTH }) id!: string;
  @Column({ name: 'full_name', type: 'varchar', nullable: true }) fullName!: string | null;
  @Column({ name: 'display_name', type: 'varchar', nullable: true }) displayName!: string | null;
  @Column({ type: 'varchar', nullable: true }) email!: string | null;
  @Column({ type: 'varchar', nullable: true }) phone!: string | null;
  /** ISO date (YYYY-MM-DD). */
  @Column({ name: 'birth_date', type: 'varchar', length: 10, nullable: true }) birthDate!: string | null;
  @Column({ type: 'varchar', nullable: true }) country!: string | null;
  @Column({ name: 'postal_address', type: 'varchar', nullable: true }) postalAddress!: string | null;
  @Column({ name: 'favorite_genres', type: 'text', nullable: true, transformer: jsonText }) favoriteGenres!: string[] | null;
  @Column({ name: 'accessibility_needs', type: 'varchar', nullable: true }) accessibilityNeeds!: string | null;
  /** ISO-8601 UTC timestamp. */
  @Column({ name: 'created_at', type: 'varchar', length: 30 }) createdAt!: string;
  /** Set when the customer's personal data was erased (GDPR Art. 17). */
  @Column({ name: 'erased_at', type: 'varchar', length: 30, nullable: true }) erasedAt!: string | null;
}
