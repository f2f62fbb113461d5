import { Field, ID, InputType, Int } from 'type-graphql';
import { Governed, GovernedType } from './governed.decorator';
import { CONSENT_RECORD_PURPOSES } from './purposes';

const OPERATIONAL = { category: 'system.operations' } as const;
const SUBJECTS_OWN = { category: 'user.content.private', purposes: CONSENT_RECORD_PURPOSES } as const;

@GovernedType('SubjectMessage', { subjectKey: 'subjectId', description: 'A question or objection a data subject wrote on their privacy page, and its answer.' })
export class SubjectMessageType {
  @Field(() => ID) @Governed(OPERATIONAL) id!: number;
  @Field(() => ID) @Governed(OPERATIONAL) subjectId!: string;
  // The context says which processing the subject asked about, and the answer may quote their data: both
  // are theirs, as the question is (erasure deletes the message).
  @Field(() => String, { nullable: true, description: 'What it is about: purpose:<key> or usage:<month>:<team>:<purpose>.' })
  @Governed(SUBJECTS_OWN)
  context!: string | null;
  @Field(() => String, { nullable: true, description: "The subject's own words." })
  @Governed(SUBJECTS_OWN)
  body!: string;
  @Field(() => String) @Governed(OPERATIONAL) createdAt!: string;
  @Field(() => String, { nullable: true, description: 'The answer given to the subject.' })
  @Governed(SUBJECTS_OWN)
  answer!: string | null;
  @Field(() => String, { nullable: true }) @Governed(OPERATIONAL) answeredAt!: string | null;
  @Field(() => String, { nullable: true }) @Governed(OPERATIONAL) answeredBy!: string | null;
}

@GovernedType('ErasureResult', { description: 'What an erasure (GDPR Art. 17) removed.' })
export class ErasureResultType {
  @Field(() => ID) @Governed(OPERATIONAL) subjectId!: string;
  @Field(() => String) @Governed(OPERATIONAL) erasedAt!: string;
  @Field(() => Int) @Governed(OPERATIONAL) watchEventsDeleted!: number;
  @Field(() => Int, { description: 'Payments kept for bookkeeping, without card digits.' }) @Governed(OPERATIONAL) paymentsKept!: number;
  @Field(() => Int) @Governed(OPERATIONAL) messagesErased!: number;
}

@InputType()
export class AnswerQuestionInput {
  @Field(() => ID) id!: string;
  @Field(() => String) answer!: string;
}
