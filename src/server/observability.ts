import type { NextFunction, Request, Response } from 'express';
import pino, { type DestinationStream, type Logger } from 'pino';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ApolloServerPlugin } from '@apollo/server';
import type { AppendEntry } from '../audit/audit-store';
import type { EntryItem } from '../audit/chain';
import type { CandorContext } from './context';
import { maskedCauseOf } from './format-error';

/** Prometheus metrics of one Candor process (exposed at /metrics). */
export interface CandorMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'status'>;
  readonly decisions: Counter<'decision' | 'reason'>;
  readonly auditFlushSeconds: Histogram;
  readonly auditBatchRecords: Histogram;
  readonly auditFailedBatches: Counter;
  readonly unrecordedRefusals: Counter;
}

export function createMetrics(): CandorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({ name: 'candor_http_requests_total', help: 'HTTP requests by status code', labelNames: ['status'], registers: [registry] }),
    decisions: new Counter({ name: 'candor_decisions_total', help: 'Access-log records by decision and reason', labelNames: ['decision', 'reason'], registers: [registry] }),
    auditFlushSeconds: new Histogram({ name: 'candor_audit_flush_seconds', help: 'Time to durably commit one access-log batch', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    auditBatchRecords: new Histogram({ name: 'candor_audit_batch_records', help: 'Records per committed access-log batch', buckets: [1, 10, 100, 1_000, 10_000, 50_000], registers: [registry] }),
    auditFailedBatches: new Counter({ name: 'candor_audit_failed_batches_total', help: 'Access-log batches that failed to commit (their requests were answered AUDIT_UNAVAILABLE)', registers: [registry] }),
    unrecordedRefusals: new Counter({ name: 'candor_unrecorded_refusals_total', help: 'Anonymous refusals not recorded: their client was over CANDOR_ANONYMOUS_REFUSALS_PER_MINUTE', registers: [registry] }),
  };
}

/**
 * Counts committed records by decision and reason — every record the process wrote (field decisions,
 * refusals, the privacy page's), and only once it is durable. A request's subjects decided alike share
 * item objects, so items are tallied first.
 */
export function countDecisions(metrics: CandorMetrics, entriesByRequest: ReadonlyArray<readonly AppendEntry[]>): void {
  const perItem = new Map<EntryItem, number>();
  for (const entries of entriesByRequest) for (const entry of entries) for (const item of entry.items) perItem.set(item, (perItem.get(item) ?? 0) + 1);
  const perLabel = new Map<string, { decision: string; reason: string; count: number }>();
  for (const [{ decision, reason }, count] of perItem) {
    const key = `${decision}\u0000${reason}`;
    const counted = perLabel.get(key);
    if (counted) counted.count += count;
    else perLabel.set(key, { decision, reason, count });
  }
  for (const { decision, reason, count } of perLabel.values()) metrics.decisions.inc({ decision, reason }, count);
}

/** Structured JSON logs (pino). Values and request bodies are never logged. */
/** The JSON logger, to stdout unless given a `destination` (tests read what it wrote). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'candor' } }, destination);
}

export const MASKED_ERROR_LOG_MESSAGE = 'an error was masked as INTERNAL_SERVER_ERROR';

/** One error log line per error masked in a response, with its request id and what `formatErrorKeepingCause` kept of it. */
export function maskedErrorLogging(logger: Logger): ApolloServerPlugin<CandorContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response }) {
          if (response.body.kind !== 'single') return;
          for (const error of response.body.singleResult.errors ?? []) {
            const cause = maskedCauseOf(error);
            if (cause) logger.error({ requestId: contextValue.requestId, ...cause }, MASKED_ERROR_LOG_MESSAGE);
          }
        },
      };
    },
  };
}

/** The status logged and counted for a request whose client went away before its response was sent (nginx's). */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * One log line and one metric per HTTP request, with the request id (never the query string: links carry
 * tokens) — also for one the client abandoned, whose records may still have been committed.
 */
export function requestLogging(logger: Logger, metrics: CandorMetrics, requestIdOf: (response: Response) => string) {
  return (request: Request, response: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    let logged = false;
    const log = (status: number) => {
      if (logged) return;
      logged = true;
      metrics.requests.inc({ status: String(status) });
      logger.info({ requestId: requestIdOf(response), method: request.method, path: (request.baseUrl + request.path).replace(/(.)\/$/, '$1'), status, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    };
    response.on('finish', () => log(response.statusCode));
    // 'close' follows 'finish' when the response was sent; alone, it means the client left first.
    response.on('close', () => log(CLIENT_CLOSED_REQUEST));
    next();
  };
}
