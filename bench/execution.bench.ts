/**
 * Execution-only benchmark: the cost of governance relative to ungoverned graphql-js, in one run.
 * No HTTP, no database: rows are in memory and access records are buffered but not written.
 *
 *   npm run bench            (N = 10, 100, 1000)
 *
 * Scenarios for `customers(limit: N)` with 10 fields (9 personal), purpose essential.service:
 *   (a) the same type-graphql schema, ungoverned, on plain graphql-js execute
 *   (b) Candor governed, every field released
 *   (c) Candor governed, 10% of subjects have one withheld field (special category without explicit consent)
 *   (d) as (c) but every field of those subjects withheld (restricted processing), reported in extensions
 *   (a-jit) as (a), on graphql-jit (the document compiled once, as the server does)
 *   (b-jit) as (b), on graphql-jit, the server's default executor — governed Candor as it runs out of the box
 * (a)–(f) run on graphql-js execute: the reference executor (CANDOR_EXECUTOR=graphql-js) and the fallback.
 * Rounds alternate the order of scenarios; we report the median and p99 per execution and ratios to (a):
 * each round's ratio of medians (the scenario's block to its baseline's, seconds apart), and the
 * median of those, so a slow spell of the machine weighs on both sides of a ratio instead of on one.
 *
 * graphql-js reads NODE_ENV once, when loaded: unless it is `production`, its `instanceOf` checks every
 * failed `instanceof` for a second copy of graphql, a cost (a) and (b) share that dilutes the ratios.
 * `npm run bench` runs this file twice, as development and as production (`execution-production.json`).
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { execute, type ExecutionResult, type GraphQLSchema, parse } from 'graphql';
import { loadConfig, projectRoot } from '../src/config';
import type { CustomerEntity } from '../src/domain/customer.entity';
import { readGovernance } from '../src/graphql/governance-catalog';
import { buildCandorSchema } from '../src/graphql/schema';
import type { SubjectState } from '../src/policy/decide';
import { enforceGovernance, GOVERNANCE_CONTEXT_KEY } from '../src/policy/enforcement';
import { JitExecutor } from '../src/server/jit-executor';
import { createMasker } from '../src/policy/masking';
import { RequestGovernance } from '../src/policy/request-governance';
import { loadConfiguredTaxonomy } from '../src/server/services';

const SIZES = [10, 100, 1000];
const ROUNDS = 12;
const QUERY = parse('query Bench($n: Int!) { customers(limit: $n) { id fullName displayName email phone birthDate country postalAddress accessibilityNeeds createdAt } }');
/** The fields analytics may read: e-mail and phone only masked (partial_email, keyed_hash), the rest in full. */
const ANALYTICS_QUERY = parse('query Bench($n: Int!) { customers(limit: $n) { id displayName email phone birthDate country createdAt } }');
const BASELINE = 'a ungoverned';
const JIT_BASELINE = 'a-jit ungoverned, graphql-jit';
const JIT_GOVERNED = 'b-jit governed, all released, graphql-jit';
const ANALYTICS_BASELINE = 'a2 ungoverned, analytics fields';
/** How graphql-js runs in this process (see above): the results are written per mode. */
const GRAPHQL_MODE = process.env.NODE_ENV === 'production' ? 'production' : 'development';

function makeRows(count: number): CustomerEntity[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `cus_${String(index).padStart(6, '0')}`,
    fullName: `Person ${index}`,
    displayName: `person${index}`,
    email: `person${index}@example.com`,
    phone: '+49 30 5550000',
    birthDate: '1990-01-01',
    country: 'DE',
    postalAddress: `${index} Main Street, Berlin`,
    favoriteGenres: ['drama', 'comedy'],
    accessibilityNeeds: 'subtitles',
    createdAt: '2025-01-01T00:00:00.000Z',
    erasedAt: null,
  }));
}

function statesFor(rows: CustomerEntity[], withheldShare: number, restrict = false): Map<string, SubjectState> {
  const withheldEvery = withheldShare > 0 ? Math.round(1 / withheldShare) : Infinity;
  return new Map(
    rows.map((row, index) => [
      row.id,
      {
        subjectId: row.id,
        restricted: restrict && withheldShare > 0 && index % withheldEvery === 0,
        objections: [],
        // Explicit consent releases the special-category field; without it exactly one field is withheld.
        consents: withheldShare > 0 && index % withheldEvery === 0 ? [] : [{ purpose: 'essential.service', granted: true, explicit: true, expiresAt: null }],
      },
    ]),
  );
}

function baseContext(rows: CustomerEntity[]) {
  return {
    requestId: 'bench',
    actor: { id: 'bench', name: 'Bench', team: 'Bench', roles: [] },
    domain: { listCustomers: async ({ limit }: { limit: number }) => rows.slice(0, limit) },
    permittedSubjects: () => ({ sql: '1 = 1', parameters: {} }),
  };
}

async function timeOne(run: () => Promise<ExecutionResult>, expectedErrors: number): Promise<number> {
  const start = process.hrtime.bigint();
  const result = await run();
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  // A benchmark that silently measures the wrong thing is worse than none.
  if (!result.data || (result.errors?.length ?? 0) !== expectedErrors) {
    throw new Error(`expected ${expectedErrors} errors, got ${result.errors?.length ?? 0}: ${JSON.stringify(result.errors?.slice(0, 1))}`);
  }
  return elapsed;
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

async function main(): Promise<void> {
  const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));
  const plain: GraphQLSchema = await buildCandorSchema(taxonomy);
  const governedBase = await buildCandorSchema(taxonomy);
  const governed = enforceGovernance(governedBase, readGovernance(governedBase), taxonomy);
  const purpose = { key: 'essential.service', legalBasis: 'contract' as const };
  const analytics = { key: 'analytics.reporting', legalBasis: 'legitimate_interests' as const };
  const masker = createMasker(Buffer.alloc(32, 7));
  // One executor per schema for the whole run: each compiles the document once, like the server's cache.
  const plainJit = new JitExecutor(plain);
  const governedJit = new JitExecutor(governed.schema);

  const results: Array<Record<string, unknown>> = [];
  /** Each round's median per scenario, per N: the blocks a round's ratios compare. */
  const roundMediansBySize = new Map<number, Record<string, number[]>>();
  const roundRatiosOf = (n: number, scenario: string, baseline: string) => {
    const medians = roundMediansBySize.get(n)!;
    return medians[scenario].map((median, round) => median / medians[baseline][round]);
  };
  const medianRatio = (ratios: number[]) => +quantile(ratios, 0.5).toFixed(3);
  const pairedRatio = (n: number, scenario: string, baseline: string) => medianRatio(roundRatiosOf(n, scenario, baseline));
  for (const n of SIZES) {
    const rows = makeRows(n);
    const scenarios: Record<string, { run: () => Promise<ExecutionResult>; errors: number; baseline: string }> = {};
    const governance = (options: { purpose: typeof purpose | typeof analytics; states: Map<string, SubjectState>; withheldReporting?: 'errors' | 'extensions'; mode?: 'release' | 'explain' }) =>
      new RequestGovernance({
        purpose: options.purpose,
        actorRoles: [],
        now: new Date(),
        compiled: governed.compiled,
        withheldReporting: options.withheldReporting ?? 'errors',
        mode: options.mode,
        mask: masker,
        loadSubjectStates: async (ids) => ids.map((id) => options.states.get(id)!),
      });
    const governedRun = (document: typeof QUERY, make: () => RequestGovernance, explain = false) => async () => {
      const requestGovernance = make();
      const result = (await execute({ schema: governed.schema, document, variableValues: { n }, contextValue: { ...baseContext(rows), [GOVERNANCE_CONTEXT_KEY]: requestGovernance } })) as ExecutionResult;
      // Explain's cost includes building the explanation the response carries.
      if (explain) return { ...result, extensions: { explain: requestGovernance.explanation } };
      return result;
    };
    const ungoverned = (document: typeof QUERY) => () => execute({ schema: plain, document, variableValues: { n }, contextValue: baseContext(rows) }) as Promise<ExecutionResult>;
    const onJit = (executor: JitExecutor, contextValue: () => object) => () => executor.execute({ document: QUERY, documentKey: 'bench', variables: { n }, contextValue: contextValue() });
    const allReleased = statesFor(rows, 0);
    scenarios[BASELINE] = { run: ungoverned(QUERY), errors: 0, baseline: BASELINE };
    scenarios['b governed, all released'] = { run: governedRun(QUERY, () => governance({ purpose, states: allReleased })), errors: 0, baseline: BASELINE };
    scenarios[JIT_BASELINE] = { run: onJit(plainJit, () => baseContext(rows)), errors: 0, baseline: BASELINE };
    scenarios[JIT_GOVERNED] = { run: onJit(governedJit, () => ({ ...baseContext(rows), [GOVERNANCE_CONTEXT_KEY]: governance({ purpose, states: allReleased }) })), errors: 0, baseline: BASELINE };
    const oneWithheld = statesFor(rows, 0.1);
    scenarios['c governed, 10% one withheld'] = { run: governedRun(QUERY, () => governance({ purpose, states: oneWithheld })), errors: Math.ceil(n / 10), baseline: BASELINE };
    const restricted = statesFor(rows, 0.1, true);
    scenarios['d 10% all withheld, extensions'] = { run: governedRun(QUERY, () => governance({ purpose, states: restricted, withheldReporting: 'extensions' })), errors: 0, baseline: BASELINE };
    scenarios['e explain (dry run), all decided'] = { run: governedRun(QUERY, () => governance({ purpose, states: allReleased, mode: 'explain' }), true), errors: 0, baseline: BASELINE };
    scenarios[ANALYTICS_BASELINE] = { run: ungoverned(ANALYTICS_QUERY), errors: 0, baseline: ANALYTICS_BASELINE };
    scenarios['f analytics, 2 of 6 fields masked'] = { run: governedRun(ANALYTICS_QUERY, () => governance({ purpose: analytics, states: allReleased })), errors: 0, baseline: ANALYTICS_BASELINE };
    const iterations = Math.max(5, Math.round(20_000 / n));
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]));
    const roundMedians: Record<string, number[]> = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]));
    roundMediansBySize.set(n, roundMedians);
    for (const { run } of Object.values(scenarios)) for (let i = 0; i < iterations; i++) await run(); // warm-up (checked below)
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? Object.keys(scenarios) : Object.keys(scenarios).reverse();
      for (const name of order) {
        const block: number[] = [];
        for (let i = 0; i < iterations; i++) block.push(await timeOne(scenarios[name].run, scenarios[name].errors));
        samples[name].push(...block);
        roundMedians[name].push(quantile(block, 0.5));
      }
    }
    for (const [name, values] of Object.entries(samples)) {
      const baseline = scenarios[name].baseline;
      const roundRatios = roundRatiosOf(n, name, baseline);
      results.push({
        n,
        scenario: name,
        medianMs: +quantile(values, 0.5).toFixed(4),
        p99Ms: +quantile(values, 0.99).toFixed(4),
        ratio: medianRatio(roundRatios),
        roundRatios: { min: +Math.min(...roundRatios).toFixed(3), max: +Math.max(...roundRatios).toFixed(3) },
        baseline,
        samples: values.length,
      });
    }
  }

  // Measuring graphql-js under a jit label would be worse than no figure.
  if (plainJit.executions.graphqlJs + governedJit.executions.graphqlJs > 0) throw new Error('a jit scenario ran on graphql-js (the document did not compile)');

  console.log(`\nExecution only (graphql-js 16 in ${GRAPHQL_MODE} mode, NODE_ENV=${process.env.NODE_ENV ?? ''}, and graphql-jit; in-memory rows, records buffered)\n`);
  console.log('N     scenario                                     median ms    p99 ms   ratio   rounds    (ratio to a on graphql-js, f to a2: median of the rounds\' ratios, their range)');
  for (const row of results) {
    const { min, max } = row.roundRatios as { min: number; max: number };
    console.log(`${String(row.n).padEnd(6)}${String(row.scenario).padEnd(45)}${String(row.medianMs).padStart(9)}${String(row.p99Ms).padStart(10)}${String(row.ratio).padStart(8)}   ${min}–${max}`);
  }
  // The executor option's figures: governed on jit against ungoverned on graphql-js (the goal is ≤ 0.5), and
  // governance's own cost on jit.
  const jit = SIZES.map((n) => ({
    n,
    governedJitToUngovernedGraphqlJs: pairedRatio(n, JIT_GOVERNED, BASELINE),
    governedJitToUngovernedJit: pairedRatio(n, JIT_GOVERNED, JIT_BASELINE),
    governedJitToGovernedGraphqlJs: pairedRatio(n, JIT_GOVERNED, 'b governed, all released'),
  }));
  console.log('\nN     (b on jit)/(a on graphql-js)   (b on jit)/(a on jit)   (b on jit)/(b on graphql-js)');
  for (const row of jit) {
    console.log(`${String(row.n).padEnd(6)}${String(row.governedJitToUngovernedGraphqlJs).padStart(28)}${String(row.governedJitToUngovernedJit).padStart(24)}${String(row.governedJitToGovernedGraphqlJs).padStart(29)}`);
  }
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const directory = join(projectRoot(), 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = join(directory, GRAPHQL_MODE === 'production' ? 'execution-production.json' : 'execution.json');
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), machine, graphqlMode: GRAPHQL_MODE, rounds: ROUNDS, results, jit }, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
