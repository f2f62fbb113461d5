import { Arg, Ctx, Int, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from './context';
import { AccessLogConnectionType, AccessLogFilterInput, AuditIntegrityType } from './access-log.type';
import { Governed } from './governed.decorator';

const AUDITOR_READ = { category: 'system.operations', purposes: ['essential.legal_obligation'], roles: ['auditor'], recordAs: 'ACCESS_LOG_READ' } as const;

/** Auditors read the access log and check its integrity; each read is itself recorded. */
@Resolver()
export class AccessLogResolver {
  @Query(() => AccessLogConnectionType, { nullable: true, description: 'The access log, filtered, oldest first. `first`: 0 to 500 (0 answers `totalCount` and `hasNextPage` only).' })
  @Governed(AUDITOR_READ)
  accessLog(
    @Ctx() context: GraphQLContext,
    @Arg('filter', () => AccessLogFilterInput, { nullable: true }) filter: AccessLogFilterInput | null,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ) {
    return context.accessLog.page(filter ?? {}, first, after);
  }

  @Query(() => AuditIntegrityType, { nullable: true, description: 'Verifies every digest, batch hash and checkpoint of the log now.' })
  @Governed(AUDITOR_READ)
  auditIntegrity(@Ctx() context: GraphQLContext) {
    return context.accessLog.integrity();
  }
}
