import { Field, ID } from 'type-graphql';
import { Governed, GovernedType } from './governed.decorator';
import { PaymentType } from './payment.type';
import { PAYMENT_PURPOSES, WATCH_HISTORY_PURPOSES } from './purposes';
import { WatchEventType } from './watch-event.type';

@GovernedType('Customer', { subjectKey: 'id', description: 'A customer of the streaming platform, and the data subject of their record.' })
export class CustomerType {
  @Field(() => ID, { description: "Opaque surrogate id; also the customer's data-subject id." })
  @Governed({ category: 'system.operations' })
  id!: string;

  @Field(() => String, { nullable: true })
  @Governed({ category: 'user.name', purposes: ['essential.service', 'marketing.communications', 'personalize.content'] })
  fullName!: string | null;

  @Field(() => String, { nullable: true, description: 'The name shown on the profile.' })
  @Governed({ category: 'user.account.username', purposes: ['essential.service', 'personalize.content', 'analytics.reporting'] })
  displayName!: string | null;

  @Field(() => String, { nullable: true })
  @Governed({ category: 'user.contact.email', purposes: ['essential.service', 'marketing.communications'] })
  email!: string | null;

  @Field(() => String, { nullable: true })
  @Governed({ category: 'user.contact.phone_number', purposes: ['essential.service', 'essential.fraud_detection'] })
  phone!: string | null;

  @Field(() => String, { nullable: true, description: 'Date of birth (ISO date).' })
  @Governed({ category: 'user.demographic.date_of_birth', purposes: ['essential.service', 'analytics.reporting'] })
  birthDate!: string | null;

  @Field(() => String, { nullable: true, description: 'Country of residence (ISO 3166-1 alpha-2).' })
  @Governed({ category: 'user.location.imprecise', purposes: ['essential.service', 'analytics.reporting', 'marketing.advertising', 'third_party_sharing'] })
  country!: string | null;

  @Field(() => String, { nullable: true })
  @Governed({ category: 'user.contact.address', purposes: ['essential.service', 'essential.service.payment_processing'] })
  postalAddress!: string | null;

  @Field(() => [String], { nullable: true })
  @Governed({ category: 'user.behavior', purposes: ['personalize.content', 'analytics.reporting', 'marketing.advertising'] })
  favoriteGenres!: string[] | null;

  @Field(() => String, { nullable: true, description: 'Accessibility needs such as subtitles or audio description (health data).' })
  @Governed({ category: 'user.health_and_medical', purposes: ['essential.service', 'personalize.content'] })
  accessibilityNeeds!: string | null;

  @Field(() => String, { nullable: true, description: 'When the account was opened (ISO-8601, UTC).' })
  @Governed({ category: 'user.account', purposes: ['essential.service', 'analytics.reporting'] })
  createdAt!: string | null;

  @Field(() => [WatchEventType], { nullable: true, description: 'What the customer watched, most recent first, a page at a time.' })
  @Governed({ category: 'user.behavior', purposes: WATCH_HISTORY_PURPOSES })
  watchHistory!: WatchEventType[] | null;

  @Field(() => [PaymentType], { nullable: true, description: 'Subscription payments, most recent first, a page at a time.' })
  @Governed({ category: 'user.financial', purposes: PAYMENT_PURPOSES })
  payments!: PaymentType[] | null;
}
