import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A subscription payment; its data subject is the paying customer. */
@Entity('payment')
@Index('payment_customer_idx', ['customerId', 'paidAt'])
export class PaymentEntity {
  @PrimaryColumn({ type: 'varchar', length: 40 }) id!: string;
  @Column({ name: 'customer_id', type: 'varchar', length: 40 }) customerId!: string;
  @Column({ type: 'double precision' }) amount!: number;
  @Column({ type: 'varchar', length: 3 }) currency!: string;
  /** ISO-8601 UTC timestamp. */
  @Column({ name: 'paid_at', type: 'varchar', length: 30 }) paidAt!: string;
  @Column({ name: 'card_last4', type: 'varchar', length: 4 }) cardLast4!: string;
}
