import { HeaderMap } from '@apollo/server';
import { GraphQLError } from 'graphql';
import type { Request, Response } from 'express';
import type { ActorEntity } from '../actors/actor.entity';
import { JwtAuthenticator } from '../actors/jwt-authenticator';
import type { AccessActor } from '../audit/access-log';
import { RECORDED_TEXT_LIMITS } from '../audit/audit-store';
import { permittedSubjectsCondition } from '../consent/permitted-subjects';
import type { GraphQLContext } from '../graphql/context';
import { REFUSALS, type RefusalCode } from '../policy/codes';
import { requestPurposeOf } from '../policy/decide';
import { GOVERNANCE_CONTEXT_KEY, type GovernedSchema } from '../policy/enforcement';
import { type GovernanceMode, REJECT_MODE_ROLE, RequestGovernance } from '../policy/request-governance';
import { anyCovers } from '../taxonomy/keys';
import { Inbox } from '../consent/inbox';
import { eraseSubject } from '../privacy/erasure';
import { generateReport } from '../reports/generate-report';
import { reportForGraphQL } from '../reports/report-graphql';
import { isIntrospectionOnly } from './introspection';
import { exceedsTokenLimit } from './query-limits';
import { withDeadline } from './deadline';
import { secondsUntilNextToken } from './rate-limiter';
import type { RefusalRecorder } from './refusal-recorder';
import type { CandorServices } from './services';

/** The full per-request context: what resolvers see plus the governance the enforcement points read. */
export interface CandorContext extends GraphQLContext {
  readonly [GOVERNANCE_CONTEXT_KEY]: RequestGovernance | undefined;
  readonly accessActor: AccessActor;
  readonly now: Date;
  /**
   * `started` once the operation reached Apollo's request pipeline (the access-log plugin sets it). Still
   * false after the response means Apollo refused it in between (a malformed body: a nested batch element,
   * `variables` sent as a string): nothing ran, and the plugin recorded nothing.
   */
  readonly pipeline: { started: boolean };
}

export const REQUEST_ID_LOCAL = 'requestId';


/** One GraphQL operation of an HTTP request: the whole request, or one element of a batch. */
export interface OperationRequest {
  /** The operation's JSON body (or the query string of a GET). */
  readonly body: unknown;
  /** The id its access records carry: the request's, suffixed with the position in a batch. */
  readonly requestId: string;
}

/** The single operation an HTTP request carries (batches are split by `batchedOperations`). */
export function singleOperation(req: Request, res: Response): OperationRequest {
  return { body: req.method === 'GET' ? getOperation(req) : req.body, requestId: String(res.locals[REQUEST_ID_LOCAL]) };
}

/**
 * A GET request's operation as Apollo reads it: the URL's parameters through URLSearchParams, first value
 * of each. Not Express's `req.query`: its parser keeps only the first 1,000 pairs, so a document placed
 * after 1,000 others would run without passing Candor's checks of it (the token limit).
 */
function getOperation(req: Request): Record<string, string> {
  const parameters = new URL(req.originalUrl, 'http://candor.invalid').searchParams;
  const operation: Record<string, string> = {};
  for (const key of ['query', 'operationName', 'variables', 'extensions']) {
    const value = parameters.get(key);
    if (value !== null) operation[key] = value;
  }
  return operation;
}
/** A GraphQL Name (spec § 2.1.9). */
const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** The operation name a client gave, as recorded: only a GraphQL name the log takes (else none). */
export function recordedOperationName(name: unknown): string | null {
  return typeof name === 'string' && name.length <= RECORDED_TEXT_LIMITS.operationName && GRAPHQL_NAME.test(name) ? name : null;
}

/** A purpose a client declared, as a refusal records it: a value past the log's limit is cut, and says so. */
function recordedPurpose(declared: string | undefined): string | null {
  if (declared === undefined) return null;
  return declared.length <= RECORDED_TEXT_LIMITS.purpose ? declared : `${declared.slice(0, RECORDED_TEXT_LIMITS.purpose - 1)}…`;
}

/** Set once Candor's context factory ran: from then on, refusals are recorded there and by the plugin. */
export const CONTEXT_BUILT_LOCAL = 'candorContextBuilt';

/**
 * The contexts built for one HTTP request (one per operation of a batch), so that an operation Apollo
 * refuses after its context was built — before any plugin hook runs — can still be recorded.
 */
export const BUILT_CONTEXTS_LOCAL = 'candorBuiltContexts';

/**
 * Builds each request's context: authenticates the actor, checks the declared purpose and creates the
 * per-request loaders and governance. Any refusal is recorded in the access log (one naming no actor within
 * its client's budget: RefusalRecorder) and thrown as a coded
 * GraphQLError with its HTTP status, before anything executes.
 */
export function createContextFactory(services: CandorServices, governed: GovernedSchema, refusals: RefusalRecorder) {
  const { taxonomy, actors, clock } = services;
  const inbox = new Inbox(services.dataSource, clock);
  const { rateLimitPerMinute } = services.config;
  const rateLimiter = services.actorBudget;
  const jwt = services.config.jwt ? new JwtAuthenticator(services.config.jwt) : undefined;

  return async (req: Request, res: Response, operation: OperationRequest): Promise<CandorContext> => {
    const { requestId } = operation;
    res.locals[CONTEXT_BUILT_LOCAL] = true;
    const now = clock();
    const body = operation.body as Record<string, unknown> | undefined;
    // Recorded as the client sent it only when it can name an operation at all (a GraphQL name).
    const operationName = recordedOperationName(body?.operationName);

    /** Records the refusal and throws it, with its HTTP status and any `headers` of its answer (Apollo sends both). */
    const refuse = async (code: RefusalCode, message: string, actor: AccessActor | null, purpose: string | null, headers: Record<string, string> = {}): Promise<never> => {
      await refusals.record(req, { at: now, requestId, actor, purpose, operationName, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: code, legalBasis: null });
      throw new GraphQLError(message, { extensions: { code, http: { status: REFUSALS[code], headers: new HeaderMap(Object.entries(headers)) } } });
    };

    // Node keeps the first of repeated Authorization headers, and a proxy in front may keep another: two
    // credentials are refused rather than resolved to one actor here and another there.
    if ((req.headersDistinct.authorization?.length ?? 0) > 1) return refuse('UNAUTHENTICATED', 'send one Authorization header: this request sent several', null, null);
    const authorization = req.headers.authorization ?? '';
    const key = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (!key) return refuse('UNAUTHENTICATED', 'an API key is required: Authorization: Bearer <key>', null, null);
    let actor: Pick<ActorEntity, 'id' | 'name' | 'team' | 'roles' | 'purposes'> | undefined;
    try {
      // The actor store is bounded like every store read of the request path (a stalled connection would hold
      // the request forever); the identity provider's keys have their own fetch timeout.
      actor = jwt && JwtAuthenticator.looksLikeJwt(key) ? await jwt.authenticate(key, now) : await withDeadline(actors.authenticate(key), services.config.storeDeadlineMs, 'the actor store');
    } catch {
      return refuse('GOVERNANCE_UNAVAILABLE', jwt && JwtAuthenticator.looksLikeJwt(key) ? "the identity provider's keys are unavailable" : 'the actor store is unavailable', null, null);
    }
    if (!actor) return refuse('UNAUTHENTICATED', 'unknown or revoked API key, or an invalid token', null, null);
    const accessActor: AccessActor = { id: actor.id, name: actor.name, team: actor.team };
    let withinBudget: boolean;
    try {
      // Only a budget kept in the database is waited for (and bounded): the in-memory one answers at once.
      const taken = rateLimiter.take(actor.id);
      withinBudget = typeof taken === 'boolean' ? taken : await withDeadline(taken, services.config.storeDeadlineMs, 'the rate limit');
    } catch {
      return refuse('GOVERNANCE_UNAVAILABLE', "the rate limit's store is unavailable", accessActor, recordedPurpose(headerValue(req.headers['x-purpose'])));
    }
    if (!withinBudget) {
      const retryAfter = secondsUntilNextToken(rateLimitPerMinute);
      return refuse('RATE_LIMITED', `actor ${actor.id} exceeded ${rateLimitPerMinute} requests a minute; retry in ${retryAfter} s`, accessActor, recordedPurpose(headerValue(req.headers['x-purpose'])), { 'retry-after': String(retryAfter) });
    }

    if (typeof body?.query === 'string' && exceedsTokenLimit(body.query, services.config.limits.tokens)) {
      return refuse('TOO_MANY_TOKENS', `the document has more than ${services.config.limits.tokens} tokens`, accessActor, recordedPurpose(headerValue(req.headers['x-purpose'])));
    }
    const declared = headerValue(req.headers['x-purpose']);
    let governance: RequestGovernance | undefined;
    if (declared === undefined) {
      if (!isIntrospectionOnly(body?.query, body?.operationName)) {
        return refuse('PURPOSE_REQUIRED', 'declare the purpose of this request in the X-Purpose header', accessActor, null);
      }
    } else {
      const purpose = taxonomy.purposes.get(declared);
      // Quoted as recorded: cut past the log's limit, so that a client cannot make the answer as long as it likes.
      if (!purpose) return refuse('PURPOSE_UNKNOWN', `"${recordedPurpose(declared)}" is not a purpose of the taxonomy`, accessActor, recordedPurpose(declared));
      if (!purpose.requestable || !purpose.legalBasis) {
        return refuse('PURPOSE_NOT_REQUESTABLE', `"${declared}" groups other purposes; declare one of its sub-purposes`, accessActor, declared);
      }
      if (!anyCovers(actor.purposes, declared)) {
        return refuse('PURPOSE_NOT_PERMITTED', `actor ${actor.id} is not entitled to the purpose "${declared}"`, accessActor, declared);
      }
      const requestPurpose = requestPurposeOf(purpose, now);
      const stateLoader = services.consent.createStateLoader();
      /** A governance header's value (undefined when absent); any other value is refused and recorded. */
      const governanceHeader = async <T extends string>(name: string, allowed: readonly T[]): Promise<T | undefined> => {
        const value = headerValue(req.headers[name.toLowerCase()]);
        if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
        return refuse('BAD_GOVERNANCE_HEADER', `${name} must be ${allowed.join(' or ')}`, accessActor, declared);
      };
      const reportingHeader = await governanceHeader('X-Governance-Withheld', ['errors', 'extensions'] as const);
      const explainHeader = await governanceHeader('X-Governance-Explain', ['true', 'false'] as const);
      const modeHeader = await governanceHeader('X-Governance-Mode', ['release', 'reject'] as const);
      // An actor holding the reject role always runs in reject mode: a request may tighten its mode, never loosen it.
      const mode: GovernanceMode = explainHeader === 'true' ? 'explain' : modeHeader === 'reject' || actor.roles.includes(REJECT_MODE_ROLE) ? 'reject' : 'release';
      governance = new RequestGovernance({
        mode,
        rejectModeSetBy: actor.roles.includes(REJECT_MODE_ROLE) ? `the actor's ${REJECT_MODE_ROLE} role` : 'X-Governance-Mode: reject',
        mask: services.masker,
        purpose: requestPurpose,
        actorRoles: actor.roles,
        now,
        // A consent store slower than the deadline counts as unavailable: the fields are withheld.
        loadSubjectStates: (subjectIds) => withDeadline(stateLoader.loadMany(subjectIds), services.config.storeDeadlineMs, 'reading consent state'),
        compiled: governed.compiled,
        withheldReporting: reportingHeader ?? services.config.withheldReporting,
      });
    }

    const context: CandorContext = {
      requestId,
      actor: { id: actor.id, name: actor.name, team: actor.team, roles: actor.roles },
      accessActor,
      now,
      domain: services.domain,
      loaders: services.domain.createLoaders(),
      consent: services.consent,
      accessLog: {
        page: (filter, first, after) => services.accessLogReader.page(filter, first, after),
        integrity: () => services.verifyAccessLog(),
      },
      subjectRights: {
        inbox: (unansweredOnly, first, after) => inbox.list(unansweredOnly, first, after),
        answer: (id, answer) => inbox.answer(id, answer, actor.id),
        erase: (subjectId) => eraseSubject(services, subjectId, accessActor, requestId),
      },
      reports: {
        generate: async (request) => {
          // `report` declares a purpose, so a request reaching it has its governance; its records go there, to be
          // judged with the response's (a rejected response told nothing) and written with them.
          if (!governance) throw new Error('a report without a purpose');
          return reportForGraphQL(await generateReport(services, request, { actor: accessActor, requestId, record: (records) => governance.noteRecords(records) }));
        },
      },
      permittedSubjects: (subjectIdColumn) => {
        // Only reachable through a root field, which requires a purpose (and so has the request's governance).
        if (!governance) throw new Error('a list filtered on the subjects\' choices without a purpose');
        return { ...permittedSubjectsCondition(governance.purpose, subjectIdColumn, now), leftOut: (subjectIds) => governance.noteLeftOutOnChoices(subjectIds) };
      },
      [GOVERNANCE_CONTEXT_KEY]: governance,
      pipeline: { started: false },
    };
    ((res.locals[BUILT_CONTEXTS_LOCAL] ??= []) as CandorContext[]).push(context);
    return context;
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const single = Array.isArray(value) ? value[0] : value;
  const trimmed = single?.trim();
  return trimmed ? trimmed : undefined;
}
