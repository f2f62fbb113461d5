/**
 * Consent changes under load: how long after a grant or withdrawal made through one instance does every
 * instance answer with the new decision?
 *
 * Three Candor processes on one scratch PostgreSQL database (demo seed, durable access log), each under
 * closed-loop background load (marketing reads of 10 customers' e-mail). Then CHANGES times, alternating,
 * `grantConsent` / `withdrawConsent` of `marketing.communications` for one subject through instance
 * k mod 3; from the moment the mutation's answer arrives, each instance is polled back to back (no pause,
 * the three concurrently) with `{ customer(id) { email } }` under `marketing.communications` until it
 * answers with the new decision: the e-mail released, or withheld with `CONSENT_REQUIRED`. The change's
 * propagation time is when the last instance's first such answer arrived.
 *
 * Every poll is sent after the change committed, so with no cross-request cache the first poll already
 * shows the new decision and the time is one request's latency under load; `stalePolls` counts the polls
 * that still showed the old one (the actual evidence of a propagation delay).
 *
 *   npm run bench:propagation     (CANDOR_PROPAGATION_CHANGES default 100, CANDOR_PROPAGATION_LOOPS per
 *                                  instance default 2)
 */
import { loadavg } from 'node:os';
import { DEMO, describeLoad, post, runOnFleet, spread, writeResults } from './child-candor';

const INSTANCES = 3;
const CHANGES = Number(process.env.CANDOR_PROPAGATION_CHANGES ?? 100);
const LOOPS_PER_INSTANCE = Number(process.env.CANDOR_PROPAGATION_LOOPS ?? 2);
const WARM_UP_MS = 3_000;
/** A pause between changes, so each one starts from the background load alone. */
const GAP_MS = 100;
/** An instance not showing a change after this long is recorded as a timeout, not waited for. */
const GIVE_UP_MS = 30_000;

type Outcome = 'released' | 'withheld' | string;

/** What `url` answers for the subject's e-mail under marketing: released, withheld for lack of consent, or another code. */
async function observe(url: string, subjectId: string): Promise<Outcome> {
  const { status, body } = await post(url, { ...DEMO.marketing, query: `{ customer(id: "${subjectId}") { email } }` });
  if (typeof body.data?.customer?.email === 'string') return 'released';
  const code = body.errors?.[0]?.extensions?.code;
  return code === 'CONSENT_REQUIRED' ? 'withheld' : `${status} ${code ?? 'no code'}`;
}

interface InstanceObservation {
  /** From the mutation's answer to the first answer with the new decision (null: gave up). */
  readonly ms: number | null;
  /** Answers that still showed the old decision. */
  readonly stale: number;
  /** Answers that were neither (e.g. a store deadline), by outcome. */
  readonly other: Record<string, number>;
}

interface Change {
  readonly change: 'grantConsent' | 'withdrawConsent';
  /** The instance the mutation was sent to. */
  readonly through: number;
  readonly mutationMs: number;
  /** From the mutation's answer until the last instance showed the change (null: one gave up). */
  readonly propagationMs: number | null;
  readonly instances: InstanceObservation[];
}

async function pollUntil(url: string, subjectId: string, expected: Outcome, since: number): Promise<InstanceObservation> {
  let stale = 0;
  const other: Record<string, number> = {};
  while (performance.now() - since < GIVE_UP_MS) {
    const outcome = await observe(url, subjectId);
    if (outcome === expected) return { ms: performance.now() - since, stale, other };
    if (outcome === 'released' || outcome === 'withheld') stale++;
    else other[outcome] = (other[outcome] ?? 0) + 1;
  }
  return { ms: null, stale, other };
}

runOnFleet(INSTANCES, async ({ urls, machine, startLoad }) => {
  const first = await post(urls[0], { ...DEMO.support, query: '{ customers(limit: 1) { id } }' });
  const subjectId: string = first.body.data!.customers[0].id;
  let granted = (await observe(urls[0], subjectId)) === 'released';

  const load = startLoad(urls, INSTANCES * LOOPS_PER_INSTANCE, (worker, i) => ({ ...DEMO.marketing, query: `{ customers(limit: 10, offset: ${(worker * 17 + i * 10) % 190}) { id email } }` }));
  await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
  load.take();

  const changes: Change[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const mutation = granted ? 'withdrawConsent' : 'grantConsent';
    const through = k % INSTANCES;
    const sent = performance.now();
    const answer = await post(urls[through], { ...DEMO.compliance, query: `mutation { ${mutation}(input: { subjectId: "${subjectId}", purpose: "marketing.communications", source: "propagation-bench-${k}" }) { id } }` });
    const answered = performance.now();
    if (answer.body.errors || !answer.body.data?.[mutation]) throw new Error(`${mutation} through instance ${through} failed: ${JSON.stringify(answer.body)}`);
    granted = !granted;
    const instances = await Promise.all(urls.map((url) => pollUntil(url, subjectId, granted ? 'released' : 'withheld', answered)));
    const times = instances.map((instance) => instance.ms);
    changes.push({ change: mutation, through, mutationMs: +(answered - sent).toFixed(1), propagationMs: times.includes(null) ? null : +Math.max(...(times as number[])).toFixed(1), instances: instances.map((instance) => ({ ...instance, ms: instance.ms === null ? null : +instance.ms.toFixed(1) })) });
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
  }
  const background = describeLoad(await load.stop());

  const propagated = changes.flatMap((change) => (change.propagationMs === null ? [] : [change.propagationMs]));
  const observedBy = (same: boolean) => changes.flatMap((change) => change.instances.flatMap((instance, index) => ((index === change.through) === same && instance.ms !== null ? [instance.ms] : [])));
  const stalePolls = changes.reduce((sum, change) => sum + change.instances.reduce((count, instance) => count + instance.stale, 0), 0);
  const otherOutcomes: Record<string, number> = {};
  for (const change of changes) for (const instance of change.instances) for (const [outcome, count] of Object.entries(instance.other)) otherOutcomes[outcome] = (otherOutcomes[outcome] ?? 0) + count;
  const summary = {
    changes: changes.length,
    timedOut: changes.length - propagated.length,
    propagation: spread(propagated),
    observedThroughSameInstance: spread(observedBy(true)),
    observedThroughOtherInstances: spread(observedBy(false)),
    mutation: spread(changes.map((change) => change.mutationMs)),
    stalePolls,
    otherOutcomes,
  };

  console.log(`\nConsent propagation across ${INSTANCES} instances on one PostgreSQL (${changes.length} changes, background load ${INSTANCES * LOOPS_PER_INSTANCE} loops)\n`);
  console.log('                                              p50 ms   p99 ms   max ms');
  const line = (label: string, value: { p50Ms: number; p99Ms: number; maxMs: number }) => console.log(`${label.padEnd(44)}${String(value.p50Ms).padStart(8)}${String(value.p99Ms).padStart(9)}${String(value.maxMs).padStart(9)}`);
  line('every instance shows the change', summary.propagation);
  line('  the instance that made it', summary.observedThroughSameInstance);
  line('  the other two', summary.observedThroughOtherInstances);
  line('the mutation itself', summary.mutation);
  line(`background request (${background.requestsPerSecond} req/s)`, background.latency);
  console.log(`\nstale polls after a committed change: ${stalePolls}; timeouts: ${summary.timedOut}; other outcomes: ${JSON.stringify(otherOutcomes)}; background failures: ${background.failures}`);

  const file = writeResults('propagation', {
    machine,
    loadAverage1mAtEnd: +loadavg()[0].toFixed(2),
    note: '2-core machine shared with other benchmarks and builds; compare with the background request latency of the same run',
    setup: { instances: INSTANCES, database: 'postgres (scratch database, demo seed, durable access log)', backgroundLoops: INSTANCES * LOOPS_PER_INSTANCE, backgroundQuery: 'customers(limit: 10) { id email } under marketing.communications', warmUpMs: WARM_UP_MS, gapMs: GAP_MS },
    summary,
    background,
    changes,
  });
  console.log(`wrote ${file}`);
});
