import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from './context';
import { Governed } from './governed.decorator';
import { ReportType } from './report.type';

/** Compliance reports for auditors, as typed queries (so analysts can run them in Sandbox). */
@Resolver()
export class ReportResolver {
  @Query(() => ReportType, { description: 'Generates a report now, from the access log up to its current head. Each run is recorded.' })
  @Governed({ category: 'system.operations', purposes: ['essential.legal_obligation'], roles: ['auditor'] })
  report(
    @Ctx() context: GraphQLContext,
    @Arg('kind', () => String, { description: 'ropa, subject-access, purpose-usage, denials or consent-coverage' }) kind: string,
    @Arg('subjectId', () => ID, { nullable: true }) subjectId: string | null,
    @Arg('from', () => String, { nullable: true, description: 'ISO-8601, inclusive' }) from: string | null,
    @Arg('to', () => String, { nullable: true, description: 'ISO-8601, exclusive' }) to: string | null,
  ) {
    return context.reports.generate({ kind, subjectId, from, to });
  }
}
