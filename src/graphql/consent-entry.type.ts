import { Field, ID } from 'type-graphql';
import type { ConsentEventKind } from '../consent/consent-event.entity';
import { ConsentEntryKindEnum } from './enums';
import { Governed, GovernedType } from './governed.decorator';
import { CONSENT_RECORD_PURPOSES } from './purposes';
import { WRITTEN_TIME } from './time-format';

@GovernedType('ConsentEntry', { subjectKey: 'subjectId', description: 'One entry of the append-only consent ledger.' })
export class ConsentEntryType {
  @Field(() => ID)
  @Governed({ category: 'system.operations' })
  id!: string;

  @Field(() => ID, { description: 'The data subject the statement is about.' })
  @Governed({ category: 'system.operations' })
  subjectId!: string;

  @Field(() => ConsentEntryKindEnum, { nullable: true })
  @Governed({ category: 'user.privacy_preferences', purposes: CONSENT_RECORD_PURPOSES })
  kind!: ConsentEventKind;

  @Field(() => String, { nullable: true, description: 'The purpose key (none for restrictions).' })
  @Governed({ category: 'user.privacy_preferences', purposes: CONSENT_RECORD_PURPOSES })
  purpose!: string | null;

  @Field(() => Boolean, { nullable: true, description: 'Explicit consent (GDPR Art. 9), for special-category data.' })
  @Governed({ category: 'user.privacy_preferences', purposes: CONSENT_RECORD_PURPOSES })
  explicit!: boolean;

  @Field(() => String, { nullable: true, description: 'Where the statement was collected.' })
  @Governed({ category: 'user.privacy_preferences', purposes: CONSENT_RECORD_PURPOSES })
  source!: string;

  @Field(() => String, { nullable: true, description: `When a grant stops counting (${WRITTEN_TIME}).` })
  @Governed({ category: 'user.privacy_preferences', purposes: CONSENT_RECORD_PURPOSES })
  expiresAt!: string | null;

  @Field(() => String, { description: `When the entry was recorded (${WRITTEN_TIME}).` })
  @Governed({ category: 'system.operations' })
  recordedAt!: string;
}
