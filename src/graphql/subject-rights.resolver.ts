import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { MAX_INBOX_PAGE, parseMessageId } from '../consent/inbox';
import { badInput } from '../errors';
import type { GraphQLContext } from './context';
import { Governed } from './governed.decorator';
import { CONSENT_RECORD_PURPOSES } from './purposes';
import { AnswerQuestionInput, ErasureResultType, SubjectMessageType } from './subject-rights.type';

const CONSENT_MANAGER = { category: 'system.operations', purposes: CONSENT_RECORD_PURPOSES, roles: ['consent-manager'] } as const;

/** The consent managers' side of subject rights: the privacy page's inbox and erasure. */
@Resolver()
export class SubjectRightsResolver {
  // Recorded as the CLI's `inbox list` is: the list names who wrote in, whatever personal field is selected.
  @Query(() => [SubjectMessageType], {
    nullable: true,
    description: 'Questions data subjects asked on their privacy page, oldest first, a page at a time: pass the `id` of the last message read as `after` for the next page (an empty page: none are left).',
  })
  @Governed({ ...CONSENT_MANAGER, recordAs: 'SUBJECT_MESSAGES_READ' })
  inbox(
    @Ctx() context: GraphQLContext,
    @Arg('unansweredOnly', () => Boolean, { defaultValue: true }) unansweredOnly: boolean,
    @Arg('first', () => Int, { defaultValue: 50, description: `At most ${MAX_INBOX_PAGE}.` }) first: number,
    @Arg('after', () => ID, {
      nullable: true,
      description: 'The id of the last message read: the page holds the messages after it, in the same order, whether or not it was answered since. An id no message has is refused (BAD_USER_INPUT).',
    })
    after: string | null,
  ) {
    return context.subjectRights.inbox(unansweredOnly, first, after);
  }

  @Mutation(() => SubjectMessageType, { nullable: true, description: "Answers a subject's question; the answer appears on their privacy page." })
  @Governed({ ...CONSENT_MANAGER, recordAs: 'SUBJECT_MESSAGE_ANSWERED' })
  answerQuestion(@Ctx() context: GraphQLContext, @Arg('input', () => AnswerQuestionInput) input: AnswerQuestionInput) {
    const id = parseMessageId(input.id);
    if (id === undefined) throw badInput(`id must be a message's id as inbox returns it, got "${input.id}"`, { field: 'id' });
    return context.subjectRights.answer(id, input.answer);
  }

  @Mutation(() => ErasureResultType, { nullable: true, description: "Erases a subject's personal data (GDPR Art. 17). The access log stays verifiable and no longer links to them." })
  @Governed(CONSENT_MANAGER)
  eraseSubject(@Ctx() context: GraphQLContext, @Arg('subjectId', () => ID) subjectId: string) {
    return context.subjectRights.erase(subjectId);
  }
}
