import { type ApolloServer, HeaderMap } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { REFUSALS } from '../policy/codes';
import { type CandorContext, type OperationRequest, REQUEST_ID_LOCAL } from './context';

type BuildContext = (req: Request, res: Response, operation: OperationRequest) => Promise<CandorContext>;

/**
 * Batched HTTP operations (a JSON array body), at most `limit` per request. Apollo Server would run a
 * batch with one context shared by every operation; Candor gives each operation its own context instead —
 * its own authentication, rate-limit token, purpose check, governance and access records (request id
 * `<id>/<position>`) — by running the operations one after the other through Apollo, in order. A batch
 * larger than the limit is refused whole (nothing executes) and the refusal is recorded.
 */
export function batchedOperations(apollo: ApolloServer<CandorContext>, buildContext: BuildContext, limit: number, recordRefusal: (req: Request, res: Response, code: string) => Promise<unknown>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || !Array.isArray(req.body)) return next();
    const operations: unknown[] = req.body;
    const refusal =
      limit === 1
        ? { code: 'BATCH_NOT_ALLOWED' as const, message: 'batched operations are not accepted: send one operation per request' }
        : operations.length > limit
          ? { code: 'BATCH_TOO_LARGE' as const, message: `a batch may hold at most ${limit} operations, this one has ${operations.length}` }
          : operations.length === 0
            ? { code: 'BAD_REQUEST' as const, message: 'the batch holds no operation' }
            : undefined;
    if (refusal) {
      await recordRefusal(req, res, refusal.code);
      res.status(refusal.code === 'BAD_REQUEST' ? 400 : REFUSALS[refusal.code]).json({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] });
      return;
    }

    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    const requestId = String(res.locals[REQUEST_ID_LOCAL]);
    const bodies: string[] = [];
    const statuses = new Set<number>();
    let retryAfter: string | undefined;
    for (const [position, body] of operations.entries()) {
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: 'POST', headers, search: '', body },
        context: () => buildContext(req, res, { body, requestId: `${requestId}/${position + 1}` }),
      });
      statuses.add(response.status ?? 200);
      retryAfter = response.headers.get('retry-after') ?? retryAfter;
      const refused = (message: string) => JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
      // Apollo refuses an element that is no operation (recorded, under its actor) in words about whole request
      // bodies ("Operation batching disabled." for a list): the answer says what is wrong with the element.
      if (response.status === 400 && !isOperationObject(body)) bodies.push(refused(`element ${position + 1} of the batch is ${kindOf(body)}, not an operation: each element is an object with "query" (and "variables", "operationName")`));
      // Incremental delivery (@defer) has no place in a batch: Candor's schema has no @defer, so bodies are complete.
      else bodies.push(response.body.kind === 'complete' ? response.body.string : refused('incremental delivery is not available in a batch'));
    }
    // One status for the whole batch: the operations' common status, else 200 with each operation's errors in its own result.
    const status = statuses.size === 1 ? [...statuses][0] : 200;
    // A batch refused whole for its actor's rate limit says when to retry, as a single operation's refusal does.
    if (status === 429 && retryAfter) res.setHeader('Retry-After', retryAfter);
    res.status(status).type('application/json').send(`[${bodies.join(',')}]`);
  };
}

const isOperationObject = (element: unknown) => element !== null && typeof element === 'object' && !Array.isArray(element);
const kindOf = (element: unknown) => (element === null ? 'null' : Array.isArray(element) ? 'a list' : `a ${typeof element}`);
