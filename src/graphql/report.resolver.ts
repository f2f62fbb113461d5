import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';
import { ISO_TIME_ACCEPTED } from '../errors';
import type { ReportKind } from '../reports/report-document';
import type { GraphQLContext } from './context';
import { ReportKindEnum } from './enums';
import { Governed } from './governed.decorator';
import { ReportType } from './report.type';

/** Compliance reports for auditors, as typed queries (so analysts can run them in Sandbox). */
@Resolver()
export class ReportResolver {
  @Query(() => ReportType, {
    nullable: true,
    description:
      'Generates a report now; each run is recorded. ROPA, SUBJECT_ACCESS, PURPOSE_USAGE and DENIALS read the access log up to its head when the run starts, and only from a log that verifies (else AUDIT_LOG_BROKEN); CONSENT_COVERAGE reads no log: it counts the consent ledger and the customers.',
  })
  @Governed({ category: 'system.operations', purposes: ['essential.legal_obligation'], roles: ['auditor'] })
  report(
    @Ctx() context: GraphQLContext,
    @Arg('kind', () => ReportKindEnum) kind: ReportKind,
    @Arg('subjectId', () => ID, { nullable: true, description: 'The data subject: required for kind SUBJECT_ACCESS, refused with any other kind (BAD_USER_INPUT), as is an unknown or erased subject.' })
    subjectId: string | null,
    @Arg('from', () => String, {
      nullable: true,
      description: `Start of the period, inclusive: ${ISO_TIME_ACCEPTED}. Before \`to\`. None: the log's oldest record (CONSENT_COVERAGE: the earliest consent statement).`,
    })
    from: string | null,
    @Arg('to', () => String, { nullable: true, description: `End of the period, exclusive: ${ISO_TIME_ACCEPTED}. None: the log's head (CONSENT_COVERAGE: now).` }) to: string | null,
  ) {
    return context.reports.generate({ kind, subjectId, from, to });
  }
}
