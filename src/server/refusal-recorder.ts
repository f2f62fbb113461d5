import type { Request } from 'express';
import type { AccessLog, AccessRecordInput } from '../audit/access-log';
import type { CandorMetrics } from './observability';
import { RateLimiter, withDeadline } from './rate-limiter';

/** Client addresses whose budgets are kept at once (see RateLimiter's `maxKeys`). */
const TRACKED_CLIENTS = 10_000;

/**
 * The one way the HTTP server records a refusal in the access log. A refusal naming an actor is always
 * recorded: the actor's own rate limit bounds those. One that names no actor — no key or a wrong one, a
 * malformed request, the actor store down — costs its sender nothing, and each takes the chain lock, so
 * a client address may have `perMinute` of them recorded a minute. Past that, one record (reason
 * REFUSALS_UNRECORDED) says that this client's further anonymous refusals go unrecorded until its budget
 * refills; they are counted in the metrics (`candor_unrecorded_refusals_total`). The client's answer is
 * the same either way.
 */
export class RefusalRecorder {
  private readonly budget: RateLimiter;
  /** Clients whose REFUSALS_UNRECORDED record is written, until their budget lets one through again. */
  private readonly unrecorded = new Set<string>();

  constructor(
    private readonly accessLog: AccessLog,
    private readonly metrics: CandorMetrics,
    perMinute: number,
    clock: () => Date,
    private readonly deadlineMs: number,
  ) {
    this.budget = new RateLimiter(perMinute, clock, TRACKED_CLIENTS);
  }

  /**
   * Records the refusal, or counts it when its client is over budget; resolves within `deadlineMs` (the
   * record may land later). Never rejects: a refusal stands either way.
   */
  async record(req: Request, refusal: AccessRecordInput): Promise<void> {
    let recorded = refusal;
    if (refusal.actor === null) {
      const client = clientOf(req);
      if (this.budget.take(client)) {
        this.unrecorded.delete(client);
      } else if (this.unrecorded.has(client)) {
        this.metrics.unrecordedRefusals.inc();
        return;
      } else {
        // Bounded like the budgets: forgetting a client costs one more REFUSALS_UNRECORDED record, no more.
        if (this.unrecorded.size >= TRACKED_CLIENTS) this.unrecorded.clear();
        this.unrecorded.add(client);
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
 * The client a request comes from: its socket's address, and for IPv6 the /64 it lies in (one client
 * commonly holds a whole /64). Behind a balancer every client has the balancer's address.
 */
export function clientOf(req: Pick<Request, 'socket'>): string {
  const address = (req.socket.remoteAddress ?? 'unknown').split('%')[0];
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
