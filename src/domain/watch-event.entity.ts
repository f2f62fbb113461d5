import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** One title a customer watched; its data subject is the viewer. */
@Entity('watch_event')
@Index('watch_event_customer_idx', ['customerId', 'watchedAt'])
export class WatchEventEntity {
  @PrimaryColumn({ type: 'varchar', length: 40 }) id!: string;
  @Column({ name: 'customer_id', type: 'varchar', length: 40 }) customerId!: string;
  @Column({ type: 'varchar' }) title!: string;
  /** ISO-8601 UTC timestamp. */
  @Column({ name: 'watched_at', type: 'varchar', length: 30 }) watchedAt!: string;
  @Column({ type: 'integer' }) seconds!: number;
}
