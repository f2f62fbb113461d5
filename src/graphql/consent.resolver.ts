import { Arg, Ctx, Field, ID, InputType, Int, Mutation, Query, Resolver } from 'type-graphql';
import { type ConsentChange, MAX_HISTORY_PAGE, MAX_SOURCE_LENGTH, PRIVACY_PAGE_SOURCE } from '../consent/consent-ledger';
import type { ConsentEventEntity, ConsentEventKind } from '../consent/consent-event.entity';
import { ISO_TIME_ACCEPTED, isoTime } from '../errors';
import { CHOICE_RECORDED, CHOICES_READ } from '../policy/codes';
import { ConsentEntryType } from './consent-entry.type';
import type { GraphQLContext } from './context';
import { Governed } from './governed.decorator';
import { CONSENT_RECORD_PURPOSES } from './purposes';

const SUBJECT_ID = "The data subject the statement is about: a customer's id (an unknown or erased one is refused).";

/** As the ledger checks it (`ConsentLedger.validate`): staff recording a statement cannot claim the privacy page's source. */
const SOURCE =
  `Where the statement was collected (e.g. support-call, signup-form): plain text in one line (no control or invisible characters), at most ${MAX_SOURCE_LENGTH} characters. ` +
  `\`${PRIVACY_PAGE_SOURCE}\` is reserved for what subjects state on their own privacy page and refused here, as is a source that reads as it (another dash, a fullwidth or accented letter, a look-alike from another script).`;

@InputType({ description: 'A statement about one purpose.' })
class PurposeStatementInput {
  @Field(() => ID, { description: SUBJECT_ID }) subjectId!: string;
  @Field(() => String, { description: 'A purpose key from the taxonomy; a parent key covers its sub-purposes.' }) purpose!: string;
  @Field(() => String, { description: SOURCE }) source!: string;
}

@InputType({ description: "A subject's consent to one purpose, as `grantConsent` records it." })
class GrantConsentInput extends PurposeStatementInput {
  @Field(() => Boolean, { defaultValue: false, description: 'Explicit consent (GDPR Art. 9), needed for special-category data.' }) explicit!: boolean;
  @Field(() => String, { nullable: true, description: `When the grant stops counting, in the future: ${ISO_TIME_ACCEPTED}. None: until withdrawn.` }) expiresAt?: string | null;
}

@InputType({ description: "A restriction of all processing of a subject's data (GDPR Art. 18), or its lifting." })
class RestrictProcessingInput {
  @Field(() => ID, { description: SUBJECT_ID }) subjectId!: string;
  @Field(() => Boolean, { description: 'true restricts processing (GDPR Art. 18); false lifts the restriction.' }) restricted!: boolean;
  @Field(() => String, { description: SOURCE }) source!: string;
}

/**
 * Each change is recorded with the subject whose choices it changed (CHOICE_RECORDED): the ledger says what
 * was stated, the access log proves who stated it for whom, and a change whose record cannot be written is
 * answered AUDIT_UNAVAILABLE with `changeMade`, as every other change.
 */
const CONSENT_MANAGEMENT = { category: 'system.operations', purposes: CONSENT_RECORD_PURPOSES, roles: ['consent-manager'], recordAs: CHOICE_RECORDED, subjectArgument: 'input.subjectId' } as const;

/** The consent ledger for consent managers: a subject's entries, and the mutations that each append one and return it. */
@Resolver()
export class ConsentResolver {
  // Recorded with the subject whose choices it shows (CHOICES_READ), whatever fields are selected: the list alone
  // tells that the subject stated something, and when.
  @Query(() => [ConsentEntryType], {
    nullable: true,
    description: "A data subject's consent ledger, newest first: each grant, withdrawal, objection and restriction recorded for them, where it came from and when. An unknown or erased subject is refused (BAD_USER_INPUT).",
  })
  @Governed({ ...CONSENT_MANAGEMENT, recordAs: CHOICES_READ, subjectArgument: 'subjectId' })
  consentHistory(
    @Ctx() context: GraphQLContext,
    @Arg('subjectId', () => ID, { description: "The data subject: a customer's id (an unknown or erased one is refused)." }) subjectId: string,
    @Arg('first', () => Int, { defaultValue: 100, description: `How many of the newest entries: 1 to ${MAX_HISTORY_PAGE}.` }) first: number,
  ): Promise<ConsentEventEntity[]> {
    return context.consent.latestOf(subjectId, first);
  }

  @Mutation(() => ConsentEntryType, { nullable: true, description: "Records a subject's consent to a purpose (GDPR Art. 7), with its receipt; it counts from the next request." })
  @Governed(CONSENT_MANAGEMENT)
  grantConsent(@Ctx() context: GraphQLContext, @Arg('input', () => GrantConsentInput) input: GrantConsentInput): Promise<ConsentEventEntity> {
    return append(context, 'grant', input, { explicit: input.explicit, expiresAt: parseTime(input.expiresAt) });
  }

  @Mutation(() => ConsentEntryType, { nullable: true, description: "Records that a subject withdraws their consent to a purpose (GDPR Art. 7(3)), with its receipt; it counts from the next request." })
  @Governed(CONSENT_MANAGEMENT)
  withdrawConsent(@Ctx() context: GraphQLContext, @Arg('input', () => PurposeStatementInput) input: PurposeStatementInput): Promise<ConsentEventEntity> {
    return append(context, 'withdraw', input);
  }

  @Mutation(() => ConsentEntryType, { nullable: true, description: 'Records an objection to processing for a purpose (GDPR Art. 21).' })
  @Governed(CONSENT_MANAGEMENT)
  objectToProcessing(@Ctx() context: GraphQLContext, @Arg('input', () => PurposeStatementInput) input: PurposeStatementInput): Promise<ConsentEventEntity> {
    return append(context, 'object', input);
  }

  @Mutation(() => ConsentEntryType, { nullable: true, description: "Records that a subject withdraws their objection to processing for a purpose (GDPR Art. 21)." })
  @Governed(CONSENT_MANAGEMENT)
  withdrawObjection(@Ctx() context: GraphQLContext, @Arg('input', () => PurposeStatementInput) input: PurposeStatementInput): Promise<ConsentEventEntity> {
    return append(context, 'withdraw_objection', input);
  }

  @Mutation(() => ConsentEntryType, { nullable: true, description: 'Restricts processing (GDPR Art. 18) or lifts the restriction.' })
  @Governed(CONSENT_MANAGEMENT)
  restrictProcessing(@Ctx() context: GraphQLContext, @Arg('input', () => RestrictProcessingInput) input: RestrictProcessingInput): Promise<ConsentEventEntity> {
    return append(context, input.restricted ? 'restrict' : 'lift_restriction', input);
  }
}

function append(
  context: GraphQLContext,
  kind: ConsentEventKind,
  input: { subjectId: string; source: string; purpose?: string },
  extra: Pick<ConsentChange, 'explicit' | 'expiresAt'> = {},
): Promise<ConsentEventEntity> {
  return context.consent.append({ kind, subjectId: input.subjectId, purpose: input.purpose, source: input.source, actorId: context.actor.id, ...extra });
}

function parseTime(value: string | null | undefined): Date | null {
  if (value === null || value === undefined) return null;
  return isoTime(value, 'expiresAt', { field: 'expiresAt' });
}
