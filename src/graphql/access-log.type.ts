import { SafeIntResolver } from 'graphql-scalars';
import { Field, ID, InputType } from 'type-graphql';
import type { AccessDecision } from '../audit/chain';
import { AccessDecisionEnum } from './enums';
import { Governed, GovernedType } from './governed.decorator';

// The access log describes processing, not people: its fields are operational metadata. Reading it is
// restricted to auditors at the operation level and every read is itself recorded.
const LOG = { category: 'system.operations' } as const;

@GovernedType('AccessRecordActor', { description: 'Who made the access.' })
export class AccessRecordActorType {
  @Field(() => ID, { nullable: true }) @Governed(LOG) id!: string | null;
  @Field(() => String, { nullable: true }) @Governed(LOG) name!: string | null;
  @Field(() => String, { nullable: true }) @Governed(LOG) team!: string | null;
}

@GovernedType('AccessRecord', { description: 'One access-log record: a decision on one field of one data subject, or a refused operation.' })
export class AccessRecordType {
  @Field(() => SafeIntResolver, { description: 'Gap-free sequence number.' }) @Governed(LOG) seq!: number;
  @Field(() => String, { description: 'ISO-8601 time of the request.' }) @Governed(LOG) at!: string;
  @Field(() => ID) @Governed(LOG) requestId!: string;
  @Field(() => AccessRecordActorType) @Governed(LOG) actor!: AccessRecordActorType;
  @Field(() => String, { nullable: true }) @Governed(LOG) purpose!: string | null;
  @Field(() => String, { nullable: true }) @Governed(LOG) operationName!: string | null;
  @Field(() => ID, { nullable: true, description: 'The data subject; null for operations without one, or once the subject has been erased.' })
  @Governed(LOG)
  subjectId!: string | null;
  @Field(() => String, { nullable: true, description: 'Schema coordinate, e.g. Customer.email.' }) @Governed(LOG) coordinate!: string | null;
  @Field(() => String, { nullable: true }) @Governed(LOG) category!: string | null;
  @Field(() => AccessDecisionEnum) @Governed(LOG) decision!: AccessDecision;
  @Field(() => String, { description: 'The decision reason or refusal code.' }) @Governed(LOG) reason!: string;
  @Field(() => String, { nullable: true }) @Governed(LOG) legalBasis!: string | null;
  @Field(() => String, { nullable: true }) @Governed(LOG) consentReceiptId!: string | null;
  @Field(() => String, { nullable: true, description: 'MASKED records: the masking strategy the value was reduced by.' }) @Governed(LOG) maskStrategy!: string | null;
}

@GovernedType('AccessLogEdge')
export class AccessLogEdgeType {
  @Field(() => String) @Governed(LOG) cursor!: string;
  @Field(() => AccessRecordType) @Governed(LOG) node!: AccessRecordType;
}

@GovernedType('PageInfo', { description: 'Relay connection page information. Pages are read forward only (`first`, `after`).' })
export class PageInfoType {
  @Field(() => Boolean, { description: 'Whether records matching the filter follow this page (as of the first page\'s head).' }) @Governed(LOG) hasNextPage!: boolean;
  @Field(() => Boolean, { description: 'Always false: pages are read forward only, which the Relay spec allows to answer false whatever precedes `after`.' })
  @Governed(LOG)
  hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true, description: 'The first edge\'s cursor; null when the page has no edges.' }) @Governed(LOG) startCursor!: string | null;
  @Field(() => String, { nullable: true, description: 'The last edge\'s cursor (pass it as `after` for the next page); null when the page has no edges.' }) @Governed(LOG) endCursor!: string | null;
}

@GovernedType('AccessLogConnection', { description: 'A page of the access log, as of the head when the first page was read.' })
export class AccessLogConnectionType {
  @Field(() => [AccessLogEdgeType]) @Governed(LOG) edges!: AccessLogEdgeType[];
  @Field(() => PageInfoType) @Governed(LOG) pageInfo!: PageInfoType;
  @Field(() => SafeIntResolver, { description: 'Records matching the filter, as of the same head.' }) @Governed(LOG) totalCount!: number;
}

@GovernedType('AuditIntegrity', { description: 'The result of verifying the whole hash chain now.' })
export class AuditIntegrityType {
  @Field(() => Boolean) @Governed(LOG) verified!: boolean;
  @Field(() => SafeIntResolver, { description: 'Records verified.' }) @Governed(LOG) records!: number;
  @Field(() => SafeIntResolver) @Governed(LOG) headSeq!: number;
  @Field(() => String) @Governed(LOG) headHash!: string;
  @Field(() => SafeIntResolver, { nullable: true }) @Governed(LOG) firstBrokenSeq!: number | null;
  @Field(() => String, { nullable: true, description: 'What is wrong at firstBrokenSeq, with expected and found values.' }) @Governed(LOG) problem!: string | null;
}

@InputType('AccessLogFilter', { description: 'Every given condition must hold. Times are ISO-8601 with an offset; `to` is exclusive and must follow `from`. Other values match exactly.' })
export class AccessLogFilterInput {
  @Field(() => ID, { nullable: true, description: 'A customer: an unknown or erased subject is refused (UNKNOWN_SUBJECT), not answered with no records.' }) subjectId?: string | null;
  @Field(() => ID, { nullable: true }) actorId?: string | null;
  @Field(() => String, { nullable: true }) team?: string | null;
  @Field(() => String, { nullable: true, description: 'A purpose key: records of it and of the purposes under it (`marketing` finds `marketing.communications`). One that is no key of the taxonomy and that no record carries is refused (UNKNOWN_KEY), not answered with no records.' }) purpose?: string | null;
  @Field(() => String, { nullable: true }) coordinate?: string | null;
  @Field(() => String, { nullable: true, description: 'A data category key: records of it and of the categories under it (`user.contact` finds `user.contact.email`). One that is no key of the taxonomy and that no record carries is refused (UNKNOWN_KEY), not answered with no records.' }) category?: string | null;
  @Field(() => AccessDecisionEnum, { nullable: true }) decision?: AccessDecision | null;
  @Field(() => String, { nullable: true }) reason?: string | null;
  @Field(() => ID, { nullable: true }) requestId?: string | null;
  @Field(() => String, { nullable: true }) from?: string | null;
  @Field(() => String, { nullable: true }) to?: string | null;
  @Field(() => SafeIntResolver, {
    nullable: true,
    description:
      'Records with a sequence number greater than this only (≥ 0). The way to export the log incrementally: remember the greatest `seq` read, and ask for `afterSeq:` it next time. Sequence numbers follow commit order; `from` does not serve this, as record times (`at`, the request\'s start) do not follow it.',
  })
  afterSeq?: number | null;
}
