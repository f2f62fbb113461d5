import { Field, ID, InputType, Int } from 'type-graphql';
import { MAX_ANSWER_LENGTH } from '../consent/inbox';
import type { OldCopies } from '../storage/old-copies';
import { OldCopiesEnum } from './enums';
import { Governed, GovernedType } from './governed.decorator';
import { CONSENT_RECORD_PURPOSES } from './purposes';
import { WRITTEN_TIME } from './time-format';

const OPERATIONAL = { category: 'system.operations' } as const;
const SUBJECTS_OWN = { category: 'user.content.private', purposes: CONSENT_RECORD_PURPOSES } as const;

@GovernedType('SubjectMessage', { subjectKey: 'subjectId', description: 'A question or objection a data subject wrote on their privacy page, and its answer.' })
export class SubjectMessageType {
  @Field(() => ID, { description: 'Pass it to `inbox` as `after` for the page after this message, or as `AnswerQuestionInput.id` to answer it.' }) @Governed(OPERATIONAL) id!: number;
  @Field(() => ID) @Governed(OPERATIONAL) subjectId!: string;
  // The context says which processing the subject asked about, and the answer may quote their data: both
  // are theirs, as the question is (erasure deletes the message).
  @Field(() => String, { nullable: true, description: 'What it is about: purpose:<key> or usage:<month>:<team>:<purpose>.' })
  @Governed(SUBJECTS_OWN)
  context!: string | null;
  @Field(() => String, { nullable: true, description: "The subject's own words." })
  @Governed(SUBJECTS_OWN)
  body!: string;
  @Field(() => String, { description: `When the subject wrote it (${WRITTEN_TIME}).` }) @Governed(OPERATIONAL) createdAt!: string;
  @Field(() => String, { nullable: true, description: 'The answer given to the subject.' })
  @Governed(SUBJECTS_OWN)
  answer!: string | null;
  @Field(() => String, { nullable: true, description: `When it was answered (${WRITTEN_TIME}); null until it is.` }) @Governed(OPERATIONAL) answeredAt!: string | null;
  @Field(() => String, { nullable: true, description: 'The id of the actor who answered it.' }) @Governed(OPERATIONAL) answeredBy!: string | null;
}

@GovernedType('ErasureResult', { description: 'What an erasure (GDPR Art. 17) removed.' })
export class ErasureResultType {
  @Field(() => ID) @Governed(OPERATIONAL) subjectId!: string;
  @Field(() => String, { description: `When the subject was erased (${WRITTEN_TIME}).` }) @Governed(OPERATIONAL) erasedAt!: string;
  @Field(() => Int) @Governed(OPERATIONAL) watchEventsDeleted!: number;
  @Field(() => Int, { description: 'Payments kept for bookkeeping, without card digits.' }) @Governed(OPERATIONAL) paymentsKept!: number;
  @Field(() => Int) @Governed(OPERATIONAL) messagesErased!: number;
  @Field(() => OldCopiesEnum) @Governed(OPERATIONAL) oldCopies!: OldCopies;
}

@InputType({ description: "An answer to a data subject's question; it appears on their privacy page." })
export class AnswerQuestionInput {
  @Field(() => ID, { description: 'The message answered: its `id` as `inbox` returns it. A message is answered once.' }) id!: string;
  @Field(() => String, {
    description: `Plain text: line breaks (LF, CR LF or CR) and tabs are kept; any other control character, a bidirectional override or a lone surrogate is refused. Trimmed of surrounding white space, it must not be empty and may hold at most ${MAX_ANSWER_LENGTH.toLocaleString('en')} characters (UTF-16 code units: an emoji counts as two).`,
  })
  answer!: string;
}
