import type { Request } from 'express';
import type { AccessLog, AccessRecordInput } from '../audit/access-log';
import type { CandorMetrics } from './observability';
import { withDeadline } from './deadline';
import { RateLimiter } from './rate-limiter';

/**
 * An actor's refusals that take no token of its rate limit: RATE_LIMITED, and GOVERNANCE_UNAVAILABLE, which
 * a rate limit that cannot be read answers (the limit does not hold then, so the budget must).
 */
const ACTOR_BUDGETED = new Set(['RATE_LIMITED', 'GOVERNANCE_UNAVAILABLE']);

/** Client addresses whose budgets are kept at once (see RateLimiter's `maxKeys`). */
const TRACKED_CLIENTS = 10_000;

/**
 * The one way the HTTP server records a refusal in the access log. Most refusals cost their sender a
 * valid key and a place in its rate limit; two kinds cost nothing, and each record takes the chain lock:
 *
 * - one naming no actor (no key or a wrong one, a malformed request, the actor store down): a client
 *   address may have `anonymousPerMinute` of them recorded a minute;
 * - RATE_LIMITED, which an actor gets the more the faster it asks, and GOVERNANCE_UNAVAILABLE naming an actor
 *   (a store it needed, its rate limit's included, could not answer): an actor may have as many of them
 *   recorded a minute as its rate limit lets requests through (`actorPerMinute`).
 *
 * Past its budget, one record (reason REFUSALS_UNRECORDED) says that the client's or actor's further such
 * refusals go unrecorded until the budget refills; they are counted in the metrics
 * (`candor_unrecorded_refusals_total`). The answer to the request is the same either way.
 */
export class RefusalRecorder {
  private readonly anonymousBudget: RateLimiter;
  private readonly rateLimitedBudget: RateLimiter;
  /** Senders whose REFUSALS_UNRECORDED record is written, until their budget lets one through again. */
  private readonly unrecorded = new Set<string>();

  constructor(
    private readonly accessLog: AccessLog,
    private readonly metrics: CandorMetrics,
    budgets: { readonly anonymousPerMinute: number; readonly actorPerMinute: number },
    clock: () => Date,
    private readonly deadlineMs: number,
  ) {
    this.anonymousBudget = new RateLimiter(budgets.anonymousPerMinute, clock, TRACKED_CLIENTS);
    // Actors are a closed set: no bound needed.
    this.rateLimitedBudget = new RateLimiter(budgets.actorPerMinute, clock);
  }

  /**
   * Records the refusal, or counts it when its sender is over budget; resolves within `deadlineMs` (the
   * record may land later). Never rejects: a refusal stands either way.
   */
  async record(req: Request, refusal: AccessRecordInput): Promise<void> {
    let recorded = refusal;
    const sender = refusal.actor === null ? clientOf(req) : ACTOR_BUDGETED.has(refusal.reason) ? refusal.actor.id : undefined;
    if (sender !== undefined) {
      const budget = refusal.actor === null ? this.anonymousBudget : this.rateLimitedBudget;
      const allowed = budget.take(sender);
      // Marked by the budget drawn on: senders sharing the overflow budget share one REFUSALS_UNRECORDED.
      const drawnOn = `${refusal.actor === null ? 'client' : 'actor'} ${budget.budgetOf(sender)}`;
      if (allowed) {
        this.unrecorded.delete(drawnOn);
      } else if (this.unrecorded.has(drawnOn)) {
        this.metrics.unrecordedRefusals.inc();
        return;
      } else {
        // Bounded like the budgets: forgetting a sender costs one more REFUSALS_UNRECORDED record, no more.
        if (this.unrecorded.size >= TRACKED_CLIENTS) this.unrecorded.clear();
        this.unrecorded.add(drawnOn);
        recorded = { ...refusal, reason: 'REFUSALS_UNRECORDED' };
      }
    }
    try {
      // The answer waits for its record, but no longer than for a store: a refusal releases nothing, and when
      // the database is down (the actor store with it) the log would hold it until its connect timeout.
      await withDeadline(this.accessLog.append([recorded]), this.deadlineMs, 'recording a refusal');
    } catch {
      // The refusal stands even when it cannot be recorded (or not yet): nothing is released either way.
    }
  }
}

/**
 * The client a request comes from: its address (`req.ip`: the socket's, or past a trusted proxy the one its
 * X-Forwarded-For names — CANDOR_TRUSTED_PROXIES), and for IPv6 the /64 it lies in (one client commonly holds
 * a whole /64). Behind a balancer that is not trusted every client has the balancer's address.
 */
export function clientOf(req: Pick<Request, 'ip' | 'socket'>): string {
  const address = (req.ip ?? req.socket.remoteAddress ?? 'unknown').split('%')[0];
  if (!address.includes(':') || address.startsWith('::ffff:')) return address;
  const [head, tail] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
