import { Field, Float, ID } from 'type-graphql';
import { Governed, GovernedType } from './governed.decorator';
import { PAYMENT_PURPOSES } from './purposes';

@GovernedType('Payment', { subjectKey: 'customerId', description: 'A subscription payment. Its data subject is the paying customer.' })
export class PaymentType {
  @Field(() => ID)
  @Governed({ category: 'system.operations' })
  id!: string;

  @Field(() => Float, { nullable: true, description: 'Amount charged.' })
  @Governed({ category: 'user.financial', purposes: PAYMENT_PURPOSES })
  amount!: number;

  @Field(() => String, { description: 'ISO 4217 currency code.' })
  @Governed({ category: 'system.operations' })
  currency!: string;

  @Field(() => String, { nullable: true, description: 'When the payment was made (ISO-8601, UTC).' })
  @Governed({ category: 'user.financial', purposes: PAYMENT_PURPOSES })
  paidAt!: string;

  @Field(() => String, { nullable: true, description: 'Last four digits of the card charged.' })
  @Governed({ category: 'user.financial', purposes: ['essential.service.payment_processing', 'essential.fraud_detection'] })
  cardLast4!: string;
}
