import type { AccessLogPage, AccessLogFilter } from '../audit/access-log-reader';
import type { VerifyReport } from '../audit/verify';
import type { ConsentLedger } from '../consent/consent-ledger';
import type { CustomerFilter, DomainLoaders, DomainStore } from '../domain/domain-store';

export interface RequestActor {
  readonly id: string;
  readonly name: string;
  readonly team: string;
  readonly roles: readonly string[];
}

/**
 * What resolvers see. Governance is not in here on purpose: it is attached by the server under
 * `governance` and read only by the enforcement points, so no resolver can branch on consent.
 */
export interface GraphQLContext {
  readonly requestId: string;
  readonly actor: RequestActor;
  readonly domain: DomainStore;
  readonly loaders: DomainLoaders;
  readonly consent: ConsentLedger;
  /** The access log as auditors read it (the operation is restricted to auditors by its annotation). */
  readonly accessLog: {
    page(filter: AccessLogFilter, first: number, after: string | null): Promise<AccessLogPage>;
    integrity(): Promise<VerifyReport>;
  };
  /** Compliance reports (the operation is restricted to auditors by its annotation). */
  readonly reports: {
    generate(request: { kind: string; subjectId: string | null; from: string | null; to: string | null }): Promise<unknown>;
  };
  /** Consent managers' subject-rights work (restricted to them by the operations' annotations). */
  readonly subjectRights: {
    inbox(unansweredOnly: boolean, first: number, after: string | null): Promise<unknown[]>;
    answer(id: number, answer: string): Promise<unknown>;
    erase(subjectId: string): Promise<unknown>;
  };
  /** Keeps only the subjects the request's purpose is permitted for (`onlyPermitted`), as SQL. */
  readonly permittedSubjects: (subjectIdColumn: string) => CustomerFilter;
}
