import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type NextFunction, type Request, type Response } from 'express';
import { GOVERNANCE_CONTEXT_KEY, type GovernedSchema } from '../policy/enforcement';
import { privacyRouter } from '../privacy/privacy-page';
import { PrivacyService } from '../privacy/privacy-service';
import { accessLogPlugin } from './audit.plugin';
import { batchedOperations } from './batching';
import { withDeadline } from './deadline';
import { RefusalRecorder } from './refusal-recorder';
import { BUILT_CONTEXTS_LOCAL, type CandorContext, CONTEXT_BUILT_LOCAL, createContextFactory, recordedOperationName, REQUEST_ID_LOCAL, singleOperation } from './context';
import { formatErrorKeepingCause, maskedCause } from './format-error';
import { type JitExecutor, jitGateway } from './jit-executor';
import { purposeScopedIntrospectionPlugin } from './purpose-scoped-introspection';
import { bodyRefusalCode, type MiddlewareError } from './body-refusal';
import { MASKED_ERROR_LOG_MESSAGE, maskedErrorLogging, requestLogging } from './observability';
import { KnownOperationTypes } from './operation-types';
import { queryLimits } from './query-limits';
import { migrationState } from '../storage/data-source';
import { allowedHostCheck } from './allowed-host';
import { type CandorServices, newerBuildProblem } from './services';

const REFUSAL_RECORDED_LOCAL = 'candorRefusalRecorded';

/** The request body limit (Apollo and Express default to far more). */
export const MAX_BODY_BYTES = 1_000_000;
/**
 * How long after a failed commit of the access log (with none succeeding since) /readyz answers not ready:
 * a balancer takes the instance out for that long, then lets traffic try again — an instance that gets no
 * traffic would never learn that its log writes work again.
 */
export const LOG_FAILURE_NOT_READY_MS = 10_000;

/** What Apollo Sandbox opens with outside production: the analytics demo actor and a first query. */
export const SANDBOX_DEFAULT_HEADERS = { Authorization: 'Bearer demo-analytics-key', 'X-Purpose': 'analytics.reporting' };
const SANDBOX_DEFAULT_DOCUMENT = `# Switch the purpose in the shared headers (Connection settings, the gear): X-Purpose. Watch fields be released or withheld.
query Customers {
  customers(limit: 5) {
    id
    displayName
    birthDate
    country
    favoriteGenres
    email
  }
}
`;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly httpServer: Server;
  /** The graphql-jit executor, when `CANDOR_EXECUTOR=graphql-jit` (tests read its cache). */
  readonly jit?: JitExecutor;
  /**
   * Starts the shutdown's drain: `/readyz` answers 503 (shutting down) and every response closes its
   * connection, so a balancer stops routing here and clients open no new request on a socket that is about
   * to close (a request sent on one as it closes ran, and its answer was lost).
   */
  beginDraining(): void;
  stop(): Promise<void>;
}

/**
 * GraphQL answers are one actor's view of personal data under one purpose, decided against the subjects'
 * choices of the moment: no shared cache (a proxy, a CDN, a browser's disk cache for GET) may keep or replay
 * one. Apollo sets no Cache-Control of its own (its cache-control plugin is off).
 */
function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** Whether a request target is a URL (a path, or an absolute URL whose host Express's router can parse too). */
function isParsableTarget(target: string | undefined): boolean {
  return URL.canParse(target ?? '/', 'http://candor.invalid');
}

/** Answers a request whose target cannot be parsed: 400 BAD_REQUEST in GraphQL's error shape, with its id, logged and counted. */
function refuseUnparsableTarget(req: IncomingMessage, res: ServerResponse, services: CandorServices): void {
  const requestId = randomUUID();
  res.on('finish', () => {
    services.metrics.requests.inc({ status: String(res.statusCode) });
    services.logger.info({ requestId, method: req.method, path: null, status: res.statusCode }, 'request');
  });
  const body = JSON.stringify({ errors: [{ message: 'the request target is not a URL Candor can read', extensions: { code: 'BAD_REQUEST' } }] });
  res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId });
  res.end(body);
}

/** Answers a method `path` does not take: 405, the methods it takes in `Allow` and in a coded error. */
function refuseMethod(req: Request, res: Response, allowed: readonly string[]): void {
  // Under a mount (`/graphql`) the path is the mount's, not `/`.
  const path = `${req.baseUrl}${req.path}`.replace(/(.)\/$/, '$1');
  res.setHeader('Allow', allowed.join(', '));
  res.status(405).json({ errors: [{ message: `${req.method} is not allowed on ${path}: use ${allowed.join(' or ')}`, extensions: { code: 'METHOD_NOT_ALLOWED' } }] });
}

/** The charset a request's Content-Type declares, lower-cased; undefined when it declares none. */
function declaredCharset(req: Request): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.headers['content-type'] ?? '')?.[1].toLowerCase();
}

/**
 * Refuses a JSON body declared in a charset other than UTF-8, as body-parser refuses Latin-1: it would decode
 * UTF-16 and UTF-32 too, but GraphQL over HTTP is UTF-8, and so is every answer Candor gives.
 */
function utf8BodiesOnly(req: Request, _res: Response, next: NextFunction): void {
  const charset = req.is('application/json') ? declaredCharset(req) : undefined;
  next(charset === undefined || charset === 'utf-8' ? undefined : { status: 415, type: 'charset.unsupported', charset });
}

/** The coded answer to a middleware's error: a body the parser refused says why, and what to send instead. */
function middlewareRefusal(error: MiddlewareError): { status: number; code: string; message: string } {
  const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
  if (status === 500) return { status, code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' };
  const code = bodyRefusalCode(error);
  if (code === 'PAYLOAD_TOO_LARGE') return { status, code, message: `request body larger than ${MAX_BODY_BYTES} bytes` };
  if (error.type === 'encoding.unsupported') return { status, code, message: `unsupported Content-Encoding "${error.encoding}": send the body uncompressed, or gzip, deflate or br` };
  if (error.type === 'charset.unsupported') return { status, code, message: `unsupported charset "${error.charset}": send UTF-8` };
  return { status, code, message: 'malformed request body' };
}

/**
 * Starts the HTTP server: `/graphql` (Apollo Server 5 on Express 5), `/healthz`, and a server-generated
 * `X-Request-Id` on every response, errors and refusals included.
 */
export async function startHttpServer(services: CandorServices, governed: GovernedSchema, listen: { port: number; host: string }): Promise<RunningServer> {
  const { config } = services;
  const app = express();
  const httpServer = createServer((req, res) => {
    // Express cannot route a request target it cannot parse (`GET http://[bad/graphql`): it would answer with
    // its own HTML 404, without a request id, a log line or a metric. Refused here, coded, as a bad request.
    if (!isParsableTarget(req.url)) return refuseUnparsableTarget(req, res, services);
    app(req, res);
  });
  app.disable('x-powered-by');
  // Express hashes every response body (SHA-1) for a weak ETag; a GraphQL POST is never revalidated, so that
  // is ~1.5% of a 100-row request spent on nothing.
  app.set('etag', false);
  // The client of a request relayed by a trusted balancer is the one its X-Forwarded-For names (req.ip).
  if (config.trustedProxies.length > 0) app.set('trust proxy', config.trustedProxies);
  let draining = false;
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (draining) res.setHeader('Connection', 'close');
    const requestId = randomUUID();
    res.locals[REQUEST_ID_LOCAL] = requestId;
    res.setHeader('X-Request-Id', requestId);
    const clientRequestId = req.headers['x-request-id'];
    if (typeof clientRequestId === 'string' && clientRequestId.length <= 200) res.locals.clientRequestId = clientRequestId;
    next();
  });
  app.use(requestLogging(services.logger, services.metrics, (response) => String(response.locals[REQUEST_ID_LOCAL])));
  const { allowedHosts } = config;
  if (allowedHosts) {
    const isAllowedHost = allowedHostCheck(allowedHosts, config.publicUrl);
    app.use((req: Request, res: Response, next: NextFunction) => {
      if (isAllowedHost(req.headers.host)) return next();
      res.setHeader('Cache-Control', 'no-store');
      res.status(403).json({
        errors: [{ message: 'this development server answers only to localhost, IP addresses, PUBLIC_URL and CANDOR_ALLOWED_HOSTS: add the name this request came by to CANDOR_ALLOWED_HOSTS', extensions: { code: 'HOST_NOT_ALLOWED' } }],
      });
    });
  }

  const refusals = new RefusalRecorder(
    services.accessLog,
    services.metrics,
    { anonymousPerMinute: config.anonymousRefusalsPerMinute, actorPerMinute: config.rateLimitPerMinute },
    services.clock,
    config.storeDeadlineMs,
  );
  /**
   * Records a request refused before Candor's context ran (or a privacy page's refusal, which names its page
   * operation), once: the early-refusal hook skips it afterwards.
   */
  const recordRefusal = (req: Request, res: Response, code: string, operationName: string | null = null) => {
    res.locals[REFUSAL_RECORDED_LOCAL] = true;
    return refusals.record(req, { at: services.clock(), requestId: String(res.locals[REQUEST_ID_LOCAL]), actor: null, purpose: null, operationName, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: code, legalBasis: null });
  };
  // Apollo refuses some requests before Candor's context runs (missing CSRF preflight header, batched or
  // unreadable operations), and some after it but before its pipeline (a malformed body): they are recorded
  // here once the refusal has been sent, the latter under the actor their context authenticated.
  const recordEarlyRefusals = (req: Request, res: Response, next: NextFunction) => {
    res.on('finish', () => {
      for (const context of (res.locals[BUILT_CONTEXTS_LOCAL] ?? []) as CandorContext[]) {
        if (context.pipeline.started) continue;
        const { now: at, requestId, accessActor: actor } = context;
        const purpose = context[GOVERNANCE_CONTEXT_KEY]?.purpose.key ?? null;
        void refusals.record(req, { at, requestId, actor, purpose, operationName: null, subjectId: null, coordinate: null, category: null, decision: 'REFUSED', reason: 'BAD_REQUEST', legalBasis: null });
      }
      if (res.statusCode >= 400 && res.statusCode < 500 && !res.locals[CONTEXT_BUILT_LOCAL] && !res.locals[REFUSAL_RECORDED_LOCAL]) void recordRefusal(req, res, 'BAD_REQUEST');
    });
    next();
  };

  const limits = queryLimits(config.limits);
  // The compile error is not logged: its message may quote the document, and logs never carry a query.
  const gateway =
    config.executor === 'graphql-jit'
      ? jitGateway(governed.schema, { onCompileFailure: (operationName) => services.logger.warn({ operationName: recordedOperationName(operationName) }, 'graphql-jit could not compile a document; it runs on graphql-js') })
      : undefined;
  const apollo = new ApolloServer<CandorContext>({
    // graphql-jit runs through Apollo's gateway interface, which takes the place of `schema` (both cannot be given).
    ...(gateway ? { gateway } : { schema: governed.schema }),
    validationRules: [KnownOperationTypes, ...limits.validationRules],
    // Batches are split by batchedOperations before Apollo sees them: its own batching shares one context.
    allowBatchedHttpRequests: false,
    // Candor's own shutdown stops Apollo, then signs the last checkpoint and closes the stores; Apollo's
    // handlers would re-raise the signal after its own stop and end the process before that.
    stopOnTerminationSignals: false,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: formatErrorKeepingCause,
    plugins: [
      // First: the access log's plugin leaves out the errors of objects null propagation discarded.
      maskedErrorLogging(services.logger),
      // The cache-control plugin hooks every field (willResolveField) and halves throughput; Candor sets no cache hints.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Sandbox gets the demo key and purpose as shared headers, not the tab's: it sends shared headers with its
      // schema (introspection) requests too, so the key authenticates them and X-Purpose scopes the Docs panel.
      config.production
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ embed: { runTelemetry: false, initialState: { sharedHeaders: SANDBOX_DEFAULT_HEADERS } }, document: SANDBOX_DEFAULT_DOCUMENT }),
      accessLogPlugin(services.accessLog),
      ...(config.purposeScopedIntrospection ? [purposeScopedIntrospectionPlugin(governed)] : []),
      ...limits.plugins,
    ],
  });
  await apollo.start();

  // Browsers ask for it on every page; an empty answer keeps their consoles clean.
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Ready when the stores answer, no migration is pending and the log's writes are not failing; a balancer
  // sends traffic only then.
  app.get('/readyz', async (_req, res) => {
    if (draining) return void res.status(503).json({ status: 'not ready', problems: ['shutting down'] });
    const problems: string[] = [];
    // Each check within the store deadline: a stalled connection answers "not ready", not never.
    const answered = <T>(check: Promise<T>) => withDeadline(check, config.storeDeadlineMs, 'a readiness check');
    await answered(services.dataSource.query('SELECT 1')).catch(() => problems.push('the database does not answer'));
    const migrations = problems.length === 0 ? await answered(migrationState(services.dataSource)).catch(() => undefined) : { pending: [], newer: [] };
    if (migrations === undefined) problems.push('the database does not answer');
    else if (migrations.pending.length) problems.push('migrations are pending');
    // A newer instance migrated the database under this one (a rolling upgrade): drain it, its code is older than the schema.
    else if (migrations.newer.length) problems.push(newerBuildProblem(migrations.newer));
    await answered(services.accessLog.ping()).catch(() => problems.push('the access log store does not answer'));
    if (services.accessLog.failedWithin(LOG_FAILURE_NOT_READY_MS)) problems.push('the access log’s latest commit failed in the last 10 s: governed requests got AUDIT_UNAVAILABLE');
    res.status(problems.length ? 503 : 200).json(problems.length ? { status: 'not ready', problems } : { status: 'ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  });
  // The probes and the metrics are read-only: another method on them is refused as such, not as a path Candor lacks.
  app.all(['/healthz', '/readyz', '/metrics'], (req: Request, res: Response) => refuseMethod(req, res, ['GET', 'HEAD']));
  // GraphQL takes GET and POST; any other method is refused as such (Apollo would call one sent without a
  // Content-Type a cross-site request forgery), and recorded.
  const graphqlMethodsOnly = async (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'POST') return next();
    await recordRefusal(req, res, 'METHOD_NOT_ALLOWED');
    refuseMethod(req, res, ['GET', 'POST']);
  };
  const contextOf = createContextFactory(services, governed, refusals);
  // A context that fails with an error its client gets masked is logged here, where its request id is known.
  const buildContext: typeof contextOf = async (req, res, operation) => {
    try {
      return await contextOf(req, res, operation);
    } catch (error) {
      const cause = maskedCause(error);
      if (cause) services.logger.error({ requestId: operation.requestId, ...cause }, MASKED_ERROR_LOG_MESSAGE);
      throw error;
    }
  };
  app.use(
    '/graphql',
    noStore,
    recordEarlyRefusals,
    graphqlMethodsOnly,
    utf8BodiesOnly,
    express.json({ limit: MAX_BODY_BYTES }),
    batchedOperations(apollo, buildContext, config.limits.batchOperations, recordRefusal),
    expressMiddleware(apollo, { context: ({ req, res }) => buildContext(req, res, singleOperation(req, res)) }),
  );
  app.use('/privacy', privacyRouter(services, new PrivacyService(services, services.fields), (response) => String(response.locals[REQUEST_ID_LOCAL]), recordRefusal));
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ errors: [{ message: 'not found: Candor serves /graphql, /privacy, /healthz, /readyz and /metrics', extensions: { code: 'NOT_FOUND' } }] });
  });
  // Body-parser and other middleware errors: a coded JSON answer, never Express's HTML stack page; refusals
  // of the request are recorded (nothing else is written, nothing executed).
  app.use(async (error: MiddlewareError, req: Request, res: Response, _next: NextFunction) => {
    const { status, code, message } = middlewareRefusal(error);
    if (status < 500) await recordRefusal(req, res, code);
    res.status(status).json({ errors: [{ message, extensions: { code } }] });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(listen.port, listen.host, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  return {
    url: `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}/graphql`,
    port,
    httpServer,
    jit: gateway?.executor,
    beginDraining: () => void (draining = true),
    stop: () => apollo.stop(),
  };
}
