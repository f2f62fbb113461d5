import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { IsNull } from 'typeorm';
import { basename, dirname, join } from 'node:path';
import { exportSPKI, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { checkReportArguments, reportCommand } from '../../src/cli/report.command';
import { parseDatabaseUrl } from '../../src/config';
import { replayLedger } from '../../src/consent/ledger-replay';
import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { SubjectMessageEntity } from '../../src/consent/subject-message.entity';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { decide, type FieldPolicy, mostSpecific, type SubjectState } from '../../src/policy/decide';
import { eraseSubject } from '../../src/privacy/erasure';
import { createSubjectToken } from '../../src/privacy/subject-link';
import { generateReport } from '../../src/reports/generate-report';
import { consentCoverageReport } from '../../src/reports/governance.reports';
import { REPORT_KINDS } from '../../src/reports/report-document';
import { renderReport } from '../../src/reports/renderers';
import type { ReportFrame } from '../../src/reports/usage.reports';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { CLI, runCli, runShell } from '../support/child-server';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';
import { PrivacyService } from '../../src/privacy/privacy-service';

const TRAFFIC = [
  { key: KEYS.support, purpose: 'essential.service', limit: 50, fields: ['email', 'fullName'] },
  { key: KEYS.marketing, purpose: 'marketing.communications', limit: 50, fields: ['email', 'country'] },
  { key: KEYS.partners, purpose: 'third_party_sharing', limit: 30, fields: ['country'] },
];
const JWT_ISSUER = 'https://id.example.test/';
const CATEGORY: Record<string, string> = { email: 'user.contact.email', fullName: 'user.name', country: 'user.location.imprecise' };

/**
 * A subject's standing on a purpose, computed here from the statements (the demo taxonomy has no material
 * notice change, so no grant needs renewing): an objection first, then the most specific consent statement
 * — a grant that ran out is expired, not withdrawn.
 */
function standingOf(state: SubjectState, purpose: string, now: Date): 'granted' | 'renewal needed' | 'withdrawn' | 'expired' | 'objected' | 'never asked' {
  if (mostSpecific(state.objections, purpose)?.objected) return 'objected';
  const consent = mostSpecific(state.consents, purpose);
  if (!consent) return 'never asked';
  if (!consent.granted) return 'withdrawn';
  return consent.expiresAt === null || consent.expiresAt > now ? 'granted' : 'expired';
}

describe.each(DRIVERS)('compliance reports on %s', (driver) => {
  let candor: Harness;
  let customers: CustomerEntity[];
  /** What the traffic must have produced, computed here with decide() from the consent state. */
  const expected: Array<{ subjectId: string; purpose: string; field: string; team: string; actor: string; allowed: boolean; reason: string }> = [];
  const actor = { id: 'test-auditor', name: 'Test', team: 'Compliance' };
  /** The purposes a request may declare: consent coverage has one row each, in the taxonomy's order. */
  const requestablePurposes = () => [...candor.services.taxonomy.purposes.values()].filter((purpose) => purpose.requestable).map((purpose) => purpose.key);

  /** Signs the tokens of an identity provider whose actors the directory does not hold. */
  let vendorKey: KeyLike;

  beforeAll(async () => {
    const idp = await generateKeyPair('ES256');
    vendorKey = idp.privateKey;
    candor = await startCandor(driver, { env: { CANDOR_JWT_ISSUER: JWT_ISSUER, CANDOR_JWT_AUDIENCE: 'candor', CANDOR_JWT_PUBLIC_KEY: await exportSPKI(idp.publicKey) } });
    customers = await candor.services.dataSource.getRepository(CustomerEntity).find({ order: { id: 'ASC' }, take: 50 });
    const states = new Map((await candor.services.consent.states(customers.map((customer) => customer.id))).map((state) => [state.subjectId, state]));
    const fieldPolicies = Object.fromEntries([...candor.governed.fields.values()].map((field) => [field.coordinate, field.policy])) as Record<string, FieldPolicy>;
    const teams: Record<string, [string, string]> = { [KEYS.support]: ['Customer Support', 'support-desk'], [KEYS.marketing]: ['Marketing', 'campaign-manager'], [KEYS.partners]: ['Partnerships', 'sponsor-sync'] };
    const now = new Date();
    for (const traffic of TRAFFIC) {
      const response = await candor.query({ key: traffic.key, purpose: traffic.purpose, query: `{ customers(limit: ${traffic.limit}) { id ${traffic.fields.join(' ')} } }` });
      expect(response.status).toBe(200);
      const purpose = candor.services.taxonomy.purposes.get(traffic.purpose)!;
      for (const customer of customers.slice(0, traffic.limit)) {
        for (const field of traffic.fields) {
          const decision = decide({ field: fieldPolicies[`Customer.${field}`], purpose: { key: purpose.key, legalBasis: purpose.legalBasis! }, subjectState: states.get(customer.id)!, now });
          expected.push({ subjectId: customer.id, purpose: traffic.purpose, field, team: teams[traffic.key][0], actor: teams[traffic.key][1], allowed: decision.effect === 'allow', reason: decision.reason });
        }
      }
    }
    for (let attempt = 0; attempt < 2; attempt++) await candor.query({ key: KEYS.support, purpose: 'marketing.communications', query: '{ customers { id } }' });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  /** The withheld field accesses a subject-access summary counts. */
  const withheldIn = (summary: string) => /field accesses in the period \((\d+) withheld\)/.exec(summary)?.[1];
  const report = (kind: string, parameters: Record<string, string> = {}) => generateReport(candor.services, { kind, ...parameters }, { actor, requestId: `test-${kind}-${Date.now()}` });

  it('purpose usage: accesses per purpose × category × team, released and withheld, reasons', async () => {
    const data = (await report('purpose-usage')).data as { groups: any[]; withheldByReason: Array<{ reason: string; count: number }> };
    for (const traffic of TRAFFIC) {
      for (const field of traffic.fields) {
        const rows = expected.filter((row) => row.purpose === traffic.purpose && row.field === field);
        expect(data.groups.find((group) => group.purpose === traffic.purpose && group.category === CATEGORY[field])).toEqual(
          expect.objectContaining({ team: rows[0].team, accesses: rows.length, released: rows.filter((row) => row.allowed).length, withheld: rows.filter((row) => !row.allowed).length, distinctSubjects: rows.length }),
        );
      }
    }
    const reasons = new Map<string, number>();
    for (const row of expected.filter((candidate) => !candidate.allowed)) reasons.set(row.reason, (reasons.get(row.reason) ?? 0) + 1);
    expect(data.withheldByReason).toEqual([...reasons.entries()].sort().map(([reason, count]) => ({ reason, count })));
  });

  it('denials: withheld rate per actor, refusals by code, unpermitted purpose attempts', async () => {
    const data = (await report('denials')).data as { actors: any[]; refusals: any[]; purposeNotPermitted: any[] };
    for (const actorId of ['support-desk', 'campaign-manager', 'sponsor-sync']) {
      const rows = expected.filter((row) => row.actor === actorId);
      const withheld = rows.filter((row) => !row.allowed).length;
      expect(data.actors.find((row) => row.actorId === actorId)).toEqual(expect.objectContaining({ decisions: rows.length, withheld, withheldRate: +(withheld / rows.length).toFixed(4) }));
    }
    expect(data.refusals).toEqual([{ code: 'PURPOSE_NOT_PERMITTED', count: 2 }]);
    expect(data.purposeNotPermitted).toEqual([{ actorId: 'support-desk', purpose: 'marketing.communications', count: 2 }]);
  });

  it('RoPA: declared processing, recipients, observed releases, unused declarations and no access outside them', async () => {
    const document = await report('ropa');
    const data = document.data as { activities: any[]; outsideDeclaration: unknown[] };
    expect(data.outsideDeclaration).toEqual([]);
    expect(document.summary[0]).toBe('No personal data was released outside the purposes declared on the fields.');
    const marketing = data.activities.find((activity) => activity.purpose === 'marketing.communications');
    expect(marketing).toEqual(
      expect.objectContaining({ legalBasis: 'consent', categories: ['user.contact.email', 'user.name'], coordinates: ['Customer.email', 'Customer.fullName'], recipients: [{ actorId: 'campaign-manager', name: 'Campaign Manager', team: 'Marketing' }] }),
    );
    expect(marketing.accessed).toEqual({ 'Customer.email': expected.filter((row) => row.purpose === 'marketing.communications' && row.field === 'email' && row.allowed).length });
    expect(marketing.declaredButUnused).toEqual(['Customer.fullName']);
    const service = data.activities.find((activity) => activity.purpose === 'essential.service');
    expect(service.specialCategories).toEqual(['user.health_and_medical']);
  });

  it('consent coverage counts, at each instant, the subjects who were customers then, and refuses a backwards period', async () => {
    const coverage = async (parameters: Record<string, string> = {}) => (await report('consent-coverage', parameters)).data as { subjects: number; subjectsAtStart: number };
    const before = await coverage();
    await addCustomer(candor, 'cus_zzzz_coverage_late', { createdAt: '2026-11-20T00:00:00.000Z' });
    await addCustomer(candor, 'cus_zzzz_coverage_erased');
    await candor.services.consent.append({ subjectId: 'cus_zzzz_coverage_erased', kind: 'grant', purpose: 'marketing.communications', source: 'test' });
    await eraseSubject(candor.services, 'cus_zzzz_coverage_erased', actor, 'test-coverage-erase');
    // Now: the late customer counts, the erased one no longer does.
    expect((await coverage()).subjects).toBe(before.subjects + 1);
    // On 2026-11-10 neither was a customer yet (the erased one was created 2025-01-01: it counts then).
    const earlier = await coverage({ from: '2026-01-01', to: '2026-11-10' });
    // Then the erased one was a customer: counted, though the ledger no longer says which statements were theirs.
    const erasedThen = (await report('consent-coverage', { from: '2026-01-01', to: '2026-11-10' })).data as { purposes: Array<{ purpose: string; end: Record<string, number> }> };
    // One row per purpose a request may declare (an empty list would make the loop below vacuous).
    expect(erasedThen.purposes.map((row) => row.purpose)).toEqual(requestablePurposes());
    expect(erasedThen.purposes.length).toBeGreaterThan(0);
    for (const purpose of erasedThen.purposes) expect(purpose.end['erased since']).toBe(1);
    const late = await coverage({ from: '2026-01-01', to: '2026-11-21' });
    expect(late.subjects).toBe(earlier.subjects + 1);
    // Ending before the earliest statement, where it starts by default.
    await expect(report('consent-coverage', { to: '2000-01-01' })).rejects.toThrow('the period is backwards');
  });

  it('reports refuse a period starting after now (neither the ledger nor the log tells anything of the future); consent coverage and ends one that ends later now, saying so; in GraphQL and the CLI alike', async () => {
    const year = new Date().getUTCFullYear();
    const [later, evenLater] = [`${year + 4}-01-01`, `${year + 5}-01-01`];
    const generated = async () => (await candor.services.accessLogReader.page({ reason: 'REPORT_GENERATED' }, 500)).totalCount;
    const generatedBefore = await generated();
    const refusal = new RegExp(`^the consent-coverage period cannot start after now \\(${year}-[^)]+\\): it would start at ${later}T00:00:00\\.000Z, and the consent ledger tells nothing of the future$`);
    await expect(report('consent-coverage', { from: later, to: evenLater })).rejects.toThrow(refusal);
    // A report from the access log alike: an empty report for a mistyped year would read as "nothing happened".
    for (const kind of ['purpose-usage', 'denials', 'ropa'] as const) {
      await expect(report(kind, { from: later })).rejects.toThrow(new RegExp(`^the ${kind} period cannot start after now \\(${year}-[^)]+\\): it would start at ${later}T00:00:00\\.000Z, and the access log tells nothing of the future$`));
    }
    const graphqlRefused = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ report(kind: CONSENT_COVERAGE, from: "${later}", to: "${evenLater}") { summary } }` });
    expect(graphqlRefused.body.errors?.map((error) => [error.extensions?.code, refusal.test(error.message)])).toEqual([['BAD_USER_INPUT', true]]);
    const cliRefused = await runCli(['report', 'consent-coverage', '--from', later, '--to', evenLater, '--format', 'json'], { DATABASE_URL: candor.database.url });
    expect([cliRefused.code, cliRefused.stdout, refusal.test(cliRefused.stderr.replace(/^candor: |\n$/g, ''))]).toEqual([1, '', true]);
    expect(await generated()).toBe(generatedBefore);
    // An end after now is now: the same counts as without --to, and the summary says the period was cut.
    type Coverage = { periodEnd: string; purposes: unknown[] };
    const cut = await report('consent-coverage', { from: '2026-01-01', to: later });
    const untilNow = await report('consent-coverage', { from: '2026-01-01' });
    expect((cut.data as Coverage).purposes).toEqual((untilNow.data as Coverage).purposes);
    expect((cut.data as Coverage).periodEnd).toBe(cut.generatedAt);
    const notice = `The period asked for ends at ${later}T00:00:00.000Z, after now: it ends now (${cut.generatedAt}), as the ledger tells nothing later.`;
    expect(cut.summary).toEqual([...untilNow.summary.map((line) => line.replace(untilNow.generatedAt, cut.generatedAt)), notice]);
    const graphqlCut = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ report(kind: CONSENT_COVERAGE, from: "2026-01-01", to: "${later}") { generatedAt summary } }` });
    const { generatedAt, summary } = graphqlCut.body.data!.report as { generatedAt: string; summary: string[] };
    expect(summary.at(-1)).toBe(`The period asked for ends at ${later}T00:00:00.000Z, after now: it ends now (${generatedAt}), as the ledger tells nothing later.`);
  });

  it('subject access: what the subject wrote on their page and their consent entries are data held too', async () => {
    const subjectId = 'cus_zzzz_art15_held';
    await addCustomer(candor, subjectId);
    const held = async () => ((await report('subject-access', { subjectId })).data as { categoriesHeld: string[] }).categoriesHeld;
    expect(await held()).not.toContain('user.content.private');
    await candor.services.consent.append({ subjectId, kind: 'grant', purpose: 'marketing.communications', source: 'test' });
    await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId, context: null, body: 'Please call me back.', createdAt: new Date().toISOString() });
    expect(await held()).toEqual(expect.arrayContaining(['user.content.private', 'user.privacy_preferences']));
  });

  it('RoPA: a masked release is a release of a field declared for the purpose in masked form, not drift', async () => {
    // A subject of its own: the other reports' expectations hold the traffic above only.
    await addCustomer(candor, 'cus_zzzz_ropa_masked');
    const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: '{ customer(id: "cus_zzzz_ropa_masked") { email } }' });
    expect(response.body.data).toEqual({ customer: { email: 'c***@secret.example' } });
    const data = (await report('ropa')).data as { activities: any[]; outsideDeclaration: unknown[] };
    expect(data.outsideDeclaration).toEqual([]);
    const analytics = data.activities.find((activity) => activity.purpose === 'analytics.reporting');
    expect(analytics.coordinates).toContain('Customer.email');
    expect(analytics.maskedCoordinates).toContain('Customer.email');
    expect(analytics.accessed['Customer.email']).toBe(1);
  });

  it('RoPA: an actor authenticated by JWT, in no directory, is a recipient of what it read', async () => {
    const subjectId = 'cus_zzzz_ropa_jwt';
    await addCustomer(candor, subjectId);
    const since = new Date().toISOString();
    const token = await new SignJWT({ name: 'Vendor Sync', team: 'Acme Vendor', purposes: ['analytics.reporting', 'marketing.communications'] })
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('vendor-sync')
      .setIssuer(JWT_ISSUER)
      .setAudience('candor')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(vendorKey);
    const response = await candor.query({ key: token, purpose: 'analytics.reporting', query: `{ customer(id: "${subjectId}") { email } }` });
    expect(response.body).toEqual({ data: { customer: { email: expect.stringMatching(/^.\*+@/) } } });
    const document = await report('ropa', { from: since });
    const activities = (document.data as { activities: Array<{ purpose: string; recipients: unknown[]; accessed: Record<string, number> }> }).activities;
    const analytics = activities.find((activity) => activity.purpose === 'analytics.reporting')!;
    // The directory's entitled actors as before, then the one the log shows received the purpose's data.
    expect(analytics.recipients).toEqual([{ actorId: 'analytics-warehouse', name: 'Analytics Warehouse', team: 'Analytics' }, { actorId: 'jwt:vendor-sync', name: 'Vendor Sync', team: 'Acme Vendor' }]);
    expect(analytics.accessed).toEqual({ 'Customer.email': 1 });
    // Entitled by its token to marketing too, but it read nothing for it: no recipient of that purpose.
    expect(activities.find((activity) => activity.purpose === 'marketing.communications')!.recipients).toEqual([{ actorId: 'campaign-manager', name: 'Campaign Manager', team: 'Marketing' }]);
    expect((await renderReport(document, 'md')).toString()).toContain('| Analytics Warehouse \\(Analytics\\), Vendor Sync \\(Acme Vendor\\) |');
  });

  it('consent coverage: shares of granted, withdrawn, expired, objected and never asked per purpose, from the ledger', async () => {
    const data = (await report('consent-coverage')).data as { subjects: number; purposes: any[] };
    const all = await candor.services.dataSource.getRepository(CustomerEntity).find({ select: { id: true }, where: { erasedAt: IsNull() } });
    const states = await candor.services.consent.states(all.map((customer) => customer.id)); // the SQL projection, not the report's replay
    expect(data.subjects).toBe(all.length);
    for (const purpose of ['marketing.communications', 'analytics.reporting', 'third_party_sharing']) {
      const tally = { granted: 0, 'renewal needed': 0, withdrawn: 0, expired: 0, objected: 0, 'never asked': 0, 'erased since': 0 };
      for (const state of states) tally[standingOf(state, purpose, new Date())]++;
      expect(data.purposes.find((row) => row.purpose === purpose).end).toEqual(tally);
    }
  });

  it('a grant that ran out is expired, not withdrawn: in the coverage counts and in the subject-access standing', async () => {
    const subjectId = 'cus_zzzz_expired_grant';
    await addCustomer(candor, subjectId);
    const period = { from: '2026-01-01', to: '2026-07-01' };
    const marketing = async () => ((await report('consent-coverage', period)).data as { purposes: any[] }).purposes.find((row) => row.purpose === 'marketing.communications').end;
    const before = await marketing();
    // One yes, never taken back, that ran out inside the period.
    await candor.services.consent.append({ subjectId, kind: 'grant', purpose: 'marketing.communications', source: 'test', recordedAt: new Date('2026-03-01T00:00:00Z'), expiresAt: new Date('2026-06-30T00:00:00Z') });
    expect(await marketing()).toEqual({ ...before, expired: before.expired + 1, 'never asked': before['never asked'] - 1 });
    const standing = ((await report('subject-access', { subjectId })).data as { standing: Array<{ purpose: string; standing: string }> }).standing;
    expect(standing.find((row) => row.purpose === 'marketing.communications')?.standing).toBe('expired');
  });

  it('replaying the ledger gives the same states as the SQL projection', async () => {
    const events = await candor.services.dataSource.getRepository(ConsentEventEntity).find({ order: { id: 'ASC' } });
    const replayed = replayLedger(events);
    // An erased subject's entries stay under an id of their own, with no state: no one is left to decide about.
    const [erased, subjects] = [[...replayed.keys()].filter((id) => id.startsWith('erased_')), [...replayed.keys()].filter((id) => !id.startsWith('erased_'))];
    expect(erased.length).toBeGreaterThan(0);
    expect((await candor.services.consent.states(erased)).every((state) => state.consents.length + state.objections.length === 0 && !state.restricted)).toBe(true);
    const projected = await candor.services.consent.states(subjects);
    const normalise = (state: any) => ({ ...state, consents: [...state.consents].sort((a: any, b: any) => a.purpose.localeCompare(b.purpose)), objections: [...state.objections].sort((a: any, b: any) => a.purpose.localeCompare(b.purpose)) });
    for (const state of projected) expect(normalise(replayed.get(state.subjectId))).toEqual(normalise(state));
  });

  it('subject access: categories held, choices, history and every access to the subject', async () => {
    const subjectId = customers[3].id;
    const document = await report('subject-access', { subjectId });
    const data = document.data as { categoriesHeld: string[]; accesses: any[]; history: unknown[] };
    expect(data.categoriesHeld).toEqual(expect.arrayContaining(['user.contact.email', 'user.name', 'user.location.imprecise']));
    const mine = expected.filter((row) => row.subjectId === subjectId);
    expect(data.accesses).toHaveLength(mine.length);
    expect(data.accesses.filter((access) => access.decision === 'WITHHELD')).toHaveLength(mine.filter((row) => !row.allowed).length);
    expect(data.history).toHaveLength((await candor.services.consent.history(subjectId)).length);
    // What counts now, per purpose the subject could be asked about, as the privacy page shows it.
    const [state] = await candor.services.consent.states([subjectId]);
    const requestable = [...candor.services.taxonomy.purposes.values()].filter((purpose) => purpose.requestable);
    expect((data as unknown as { standing: Array<{ purpose: string; standing: string }> }).standing.map(({ purpose, standing }) => [purpose, standing])).toEqual(
      requestable.map((purpose) => [purpose.key, standingOf(state, purpose.key, new Date())]),
    );
  });

  it('reports its progress, reading the log to the end, also when a filter skips most of it, then verifying it', async () => {
    for (const parameters of [{}, { from: new Date(Date.now() - 1_000).toISOString() }]) {
      const head = await candor.services.accessLogReader.headSeq(); // each run records itself, after its read
      const seen: Array<[string, number, number]> = [];
      await generateReport(candor.services, { kind: 'purpose-usage', ...parameters }, { actor, requestId: `test-progress-${Date.now()}`, onProgress: (stage, done, total) => seen.push([stage, done, total]) });
      const stages = seen.map(([stage]) => stage);
      expect(stages).toContain('verifying');
      expect(stages.indexOf('verifying')).toBeGreaterThan(stages.lastIndexOf('reading'));
      const reading = seen.filter(([stage]) => stage === 'reading');
      expect(reading.at(-1)).toEqual(['reading', head, head]);
      expect(reading.every(([, seq], index) => index === 0 || seq >= reading[index - 1][1])).toBe(true);
    }
  });

  it('renders every format from the same content, self-contained, and records each generation', async () => {
    const document = await report('purpose-usage');
    const html = (await renderReport(document, 'html')).toString();
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/(src|href)=["']https?:/);
    expect(html).toContain(document.logHead.hash);
    const csv = (await renderReport(document, 'csv')).toString().split('\n');
    expect(csv[0]).toBe('purpose,category,team,accesses,released,withheld,masked,distinct subjects');
    expect(csv.filter(Boolean)).toHaveLength((document.data as { groups: unknown[] }).groups.length + 1);
    expect((await renderReport(document, 'pdf')).subarray(0, 5).toString()).toBe('%PDF-');
    expect((await renderReport(document, 'md')).toString()).toContain('# Purpose usage');
    expect(JSON.parse((await renderReport(document, 'json')).toString())).toEqual(expect.objectContaining({ report: 'purpose-usage', accessLogHead: document.logHead }));
    const recorded = await candor.services.accessLogReader.page({ reason: 'REPORT_GENERATED' }, 100);
    expect(recorded.edges.some((edge) => edge.node.operationName === 'report purpose-usage' && edge.node.actor.id === 'test-auditor')).toBe(true);
    // A report over a window records the window: what was looked at, not only that something was.
    const from = '2026-01-01T00:00:00.000Z';
    await generateReport(candor.services, { kind: 'denials', from }, { actor, requestId: 'test-window' });
    const windowed = await candor.services.accessLogReader.page({ requestId: 'test-window' }, 10);
    expect(windowed.edges.map((edge) => edge.node.operationName)).toEqual([`report denials from ${from} to now`]);
  });

  it('serves reports as typed GraphQL queries to auditors only', async () => {
    const query = '{ report(kind: DENIALS) { kind title logHead { seq hash } summary sections { title tables { title columns rows } } json } }';
    const response = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query });
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data!.report.kind).toBe('DENIALS');
    // The refusals made so far: the purpose refused twice (above), and any report refused for its arguments by an earlier test.
    const refusedInput = (await candor.services.accessLogReader.page({ decision: 'REFUSED', reason: 'BAD_USER_INPUT' }, 0)).totalCount;
    expect(JSON.parse(response.body.data!.report.json).refusals).toEqual([...(refusedInput ? [{ code: 'BAD_USER_INPUT', count: refusedInput }] : []), { code: 'PURPOSE_NOT_PERMITTED', count: 2 }]);
    const refused = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query });
    expect(refused.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    // Bad arguments are named as the query names them, not as the CLI's options.
    const problem = async (arguments_: string) =>
      (await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ report(${arguments_}) { kind } }` })).body.errors?.map((error) => [error.extensions?.code, error.message]);
    expect(await problem('kind: SUBJECT_ACCESS')).toEqual([['BAD_USER_INPUT', 'the SUBJECT_ACCESS report needs subjectId']]);
    expect(await problem('kind: DENIALS, from: "2026-02-01", to: "2026-01-01"')).toEqual([['BAD_USER_INPUT', 'from must be before to']]);
    expect(await problem('kind: DENIALS, subjectId: "x"')).toEqual([['BAD_USER_INPUT', 'subjectId applies to the SUBJECT_ACCESS report only, not to "DENIALS"']]);
    // An empty argument is one given: refused, never read as left out.
    expect(await problem('kind: ROPA, subjectId: ""')).toEqual([['BAD_USER_INPUT', 'subjectId applies to the SUBJECT_ACCESS report only, not to "ROPA"']]);
    expect(await problem('kind: SUBJECT_ACCESS, subjectId: ""')).toEqual([['BAD_USER_INPUT', 'unknown subject ""']]);
    expect(await problem('kind: DENIALS, from: ""')).toEqual([['BAD_USER_INPUT', expect.stringContaining('from')]]);
    // A kind is an enum: a misspelt one is refused by validation, in the document or in a variable.
    expect(await problem('kind: ROPPA')).toEqual([['GRAPHQL_VALIDATION_FAILED', expect.stringContaining('Value "ROPPA" does not exist in "ReportKind" enum')]]);
    const asVariable = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: 'query Report($kind: ReportKind!) { report(kind: $kind) { kind } }', variables: { kind: 'ropa' } });
    expect([asVariable.status, asVariable.body.errors?.map((error) => error.extensions?.code)]).toEqual([400, ['BAD_USER_INPUT']]);
    // Each problem names what it is about, as the README says: the argument, or the subject.
    const named = async (arguments_: string) =>
      (await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ report(${arguments_}) { kind } }` })).body.errors?.map(({ extensions }) => ({ ...extensions }));
    expect(await named('kind: DENIALS, from: "2026-11-01T00:00:00"')).toEqual([{ code: 'BAD_USER_INPUT', argument: 'from' }]);
    expect(await named('kind: DENIALS, from: "2026-02-01", to: "2026-01-01"')).toEqual([{ code: 'BAD_USER_INPUT', argument: 'from' }]);
    expect(await named('kind: SUBJECT_ACCESS')).toEqual([{ code: 'BAD_USER_INPUT', argument: 'subjectId' }]);
    expect(await named('kind: SUBJECT_ACCESS, subjectId: "cus_nobody_reported"')).toEqual([{ code: 'BAD_USER_INPUT', argument: 'subjectId', reason: 'UNKNOWN_SUBJECT' }]);
  });

  it('RoPA: releases outside the declaration are drift — to an undeclared purpose, or in full where the purpose is declared masked', async () => {
    // Records as a release under an older declaration left them, on a day of their own (the period isolates them).
    const subjectId = 'cus_zzzz_ropa_drift';
    await addCustomer(candor, subjectId);
    const release = { at: new Date('2026-02-10T12:00:00.000Z'), requestId: 'test-ropa-drift', actor: { id: 'campaign-manager', name: 'Campaign Manager', team: 'Marketing' }, operationName: null, subjectId };
    await candor.services.accessLog.append([
      { ...release, purpose: 'marketing.communications', coordinate: 'Customer.phone', category: 'user.contact.phone_number', decision: 'RELEASED', reason: 'CONSENT_GIVEN', legalBasis: 'consent' },
      { ...release, purpose: 'analytics.reporting', coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests' },
      { ...release, purpose: 'analytics.reporting', coordinate: 'Customer.email', category: 'user.contact.email', decision: 'MASKED', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', maskStrategy: 'partial_email' },
      { ...release, purpose: 'marketing.communications', coordinate: 'Customer.email', category: 'user.contact.email', decision: 'WITHHELD', reason: 'CONSENT_REQUIRED', legalBasis: 'consent' },
    ]);
    const document = await report('ropa', { from: '2026-02-10', to: '2026-02-11' });
    const data = document.data as { outsideDeclaration: unknown[]; outsideDeclarationCount: number };
    expect(data.outsideDeclaration).toEqual([
      { seq: expect.any(Number), purpose: 'marketing.communications', coordinate: 'Customer.phone', actorId: 'campaign-manager' },
      { seq: expect.any(Number), purpose: 'analytics.reporting', coordinate: 'Customer.email', actorId: 'campaign-manager' },
    ]);
    expect(data.outsideDeclarationCount).toBe(2);
    expect(document.summary[0]).toBe('2 release(s) outside the declared purposes — investigate.');
  });

  it('per-day figures span the whole period, quiet days at either end included: a lone busy day is a spike against them', async () => {
    // Withholdings on one day in the middle of March, nothing else in March (the other tests' records are elsewhere).
    const subjectId = 'cus_zzzz_quiet_month';
    await addCustomer(candor, subjectId);
    const withheld = { at: new Date('2026-03-20T09:00:00.000Z'), requestId: 'test-quiet-month', actor: { id: 'quiet-month-analyst', name: 'Analyst', team: 'Insights' }, operationName: null, subjectId };
    await candor.services.accessLog.append(
      Array.from({ length: 12 }, () => ({ ...withheld, purpose: 'analytics.reporting', coordinate: 'Customer.email', category: 'user.contact.email', decision: 'WITHHELD' as const, reason: 'PROCESSING_RESTRICTED', legalBasis: 'legitimate_interests' })),
    );
    const march = { from: '2026-03-01', to: '2026-04-01' };
    const marchDays = Array.from({ length: 31 }, (_, index) => `2026-03-${String(index + 1).padStart(2, '0')}`);
    const denials = await report('denials', march);
    const { withheldPerDay, spikes } = denials.data as { withheldPerDay: Array<{ date: string; withheld: number }>; spikes: Array<{ date: string }> };
    expect(withheldPerDay).toEqual(marchDays.map((date) => ({ date, withheld: date === '2026-03-20' ? 12 : 0 })));
    expect(spikes.map((spike) => spike.date)).toEqual(['2026-03-20']);
    expect(denials.summary).toContain('1 day(s) with a spike of withheld fields.');
    const { trend } = (await report('purpose-usage', march)).data as { trend: Array<{ date: string; withheld: number }> };
    expect(trend).toEqual(marchDays.map((date) => ({ date, released: 0, withheld: date === '2026-03-20' ? 12 : 0, masked: 0 })));
  });

  it("a subject reading their own page is their right of access, not a purpose's use: no drift, no usage, no actor in the denials", async () => {
    const subjectId = customers[5].id;
    const page = await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, subjectId, new Date(Date.now() + 3_600_000))}`);
    expect(page.status).toBe(200);
    const own = await candor.services.accessLogReader.page({ subjectId, reason: 'SUBJECT_REQUEST' }, 100);
    expect(own.edges.some((edge) => edge.node.coordinate === 'Customer.email')).toBe(true);
    // Today only: the drift planted above, in February, is the other test's.
    const today = { from: new Date().toISOString().slice(0, 10) };
    const ropa = await report('ropa', today);
    expect([(ropa.data as { outsideDeclaration: unknown[] }).outsideDeclaration, ropa.summary[0]]).toEqual([[], 'No personal data was released outside the purposes declared on the fields.']);
    expect(((await report('purpose-usage', today)).data as { groups: Array<{ team: string }> }).groups.map((group) => group.team)).not.toContain('privacy-page');
    expect(((await report('denials', today)).data as { actors: Array<{ actorId: string }> }).actors.map((row) => row.actorId)).not.toContain('data-subject');
    // The subject-access report still lists every look, theirs included: as told to them, not as accesses.
    const data = (await report('subject-access', { subjectId })).data as { accesses: Array<{ reason: string }>; toldToThem: Array<{ reason: string }> };
    expect(data.toldToThem.length).toBe(own.edges.filter((edge) => edge.node.coordinate !== null).length);
    expect(data.accesses.filter((access) => access.reason === 'SUBJECT_REQUEST')).toEqual([]);
  });

  it('subject access counts what was told to the subject (their page, the answers to their requests) on a line of its own, not as accesses: each run gives the same access figures', async () => {
    const subjectId = customers[9].id;
    type SubjectAccess = { accesses: unknown[]; toldToThem: Array<{ operation: string }> };
    const first = await report('subject-access', { subjectId });
    const second = await report('subject-access', { subjectId });
    const held = (first.data as { held: unknown[] }).held.length;
    expect(held).toBeGreaterThan(0);
    // What the first run told is on the second's own line; the accesses, their chart and their table are as they were.
    const beforeOperations = (line: string) => line.replace(/; \d+ operations? about them .*$/, '');
    expect(first.summary).toEqual([expect.stringMatching(/^\d+ categories of personal data held; \d+ field accesses in the period \(\d+ withheld\)\.$/)]);
    expect(beforeOperations(second.summary[0])).toBe(beforeOperations(first.summary[0]).replace(/\.$/, ''));
    expect(second.summary[1]).toBe(`${held} fields told to them (on their own privacy page, or in answers to their requests such as this report): their right of access, not a use of their data.`);
    const section = (document: typeof first, title: string) => document.sections.find((candidate) => candidate.title === title)!;
    expect(section(second, 'How the data was used')).toEqual(section(first, 'How the data was used'));
    expect((second.data as SubjectAccess).accesses).toEqual((first.data as SubjectAccess).accesses);
    expect(section(second, 'Told to them').tables[0].rows).toHaveLength(held);
    // Their page counts too; the CSV carries the accesses only.
    await new PrivacyService(candor.services, candor.services.fields).view(subjectId, `test-told-page-${Date.now()}`);
    const third = await report('subject-access', { subjectId });
    expect((third.data as SubjectAccess).accesses).toEqual((first.data as SubjectAccess).accesses);
    const toldThird = (third.data as SubjectAccess).toldToThem.map((told) => told.operation);
    expect(toldThird.slice(0, held * 2)).toEqual(Array(held * 2).fill('report subject-access'));
    expect(toldThird.slice(held * 2)).toEqual(expect.arrayContaining(['privacy-page view']));
    expect(new Set(toldThird.slice(held * 2))).toEqual(new Set(['privacy-page view']));
    expect((await renderReport(third, 'csv')).toString()).toBe((await renderReport(first, 'csv')).toString());
  });

  it('consent coverage reads the start of the period as it stood then, and the end as it stood at the end', async () => {
    const subjectId = 'cus_zzzz_coverage_start';
    await addCustomer(candor, subjectId, { createdAt: '2025-01-01T00:00:00.000Z' });
    const period = { from: '2026-05-01', to: '2026-07-01' };
    const marketing = async () => ((await report('consent-coverage', period)).data as { purposes: any[] }).purposes.find((row) => row.purpose === 'marketing.communications');
    const before = await marketing();
    // A grant made inside the period: not there at its start, there at its end.
    await candor.services.consent.append({ subjectId, kind: 'grant', purpose: 'marketing.communications', source: 'test', recordedAt: new Date('2026-06-01T00:00:00Z') });
    const after = await marketing();
    expect(after.start).toEqual(before.start);
    expect(after.end).toEqual({ ...before.end, granted: before.end.granted + 1, 'never asked': before.end['never asked'] - 1 });
  });

  it('consent coverage reads the customers a chunk at a time: the same document as from all of them and the whole ledger at once', async () => {
    const start = '2026-03-01T00:00:00.000Z';
    // Among the seeded customers (cus_8… < cus_8z… < cus_9…), so that chunk boundaries fall around them.
    const [spanning, late, atStart, erased] = ['cus_8zzz_chunk_spanning', 'cus_8zzz_chunk_late', 'cus_8zzz_chunk_at_start', 'cus_8zzz_chunk_erased'];
    await addCustomer(candor, spanning, { createdAt: '2025-01-01T00:00:00.000Z' });
    await addCustomer(candor, late, { createdAt: '2026-04-01T00:00:00.000Z' });
    await addCustomer(candor, atStart, { createdAt: start });
    await addCustomer(candor, erased, { createdAt: '2025-01-01T00:00:00.000Z' });
    const statement = (subjectId: string, kind: ConsentEventEntity['kind'], purpose: string, recordedAt: string) => candor.services.consent.append({ subjectId, kind, purpose, source: 'test', recordedAt: new Date(recordedAt) });
    // Statements on both sides of the start, one at it (an instant is exclusive: it belongs after).
    await statement(spanning, 'grant', 'marketing.communications', '2026-02-01T00:00:00.000Z');
    await statement(spanning, 'object', 'analytics', start);
    await statement(spanning, 'withdraw', 'marketing.communications', '2026-06-01T00:00:00.000Z');
    await statement(late, 'grant', 'marketing.communications', '2026-05-01T00:00:00.000Z');
    await statement(atStart, 'grant', 'personalize.content', '2026-04-01T00:00:00.000Z');
    await statement(erased, 'grant', 'marketing.communications', '2026-02-01T00:00:00.000Z');
    await statement(erased, 'withdraw', 'marketing.communications', '2026-05-01T00:00:00.000Z');
    await eraseSubject(candor.services, erased, actor, 'test-chunk-erase');
    const { dataSource, taxonomy } = candor.services;
    const subjects = await dataSource.getRepository(CustomerEntity).find({ select: { id: true, createdAt: true, erasedAt: true } });
    const events = await dataSource.getRepository(ConsentEventEntity).find();
    expect(subjects.length).toBeGreaterThan(200);
    const earliest = events.map((event) => event.recordedAt).sort()[0];
    for (const [parameters, customersPerChunk] of [[{}, 7], [{ from: start, to: '2026-09-01T00:00:00.000Z' }, 7], [{ from: start, to: '2026-09-01T00:00:00.000Z' }, 1], [{ from: start }, 64], [{ to: '2026-09-01T00:00:00.000Z' }, 7]] as const) {
      const seen: Array<[string, number, number]> = [];
      const chunked = await generateReport(candor.services, { kind: 'consent-coverage', ...parameters }, { actor, requestId: `test-coverage-chunks-${Date.now()}`, customersPerChunk, onProgress: (stage, done, total) => seen.push([stage, done, total]) });
      const { periodStart, periodEnd } = chunked.data as { periodStart: string; periodEnd: string };
      // By default the period starts at the earliest statement, as when the report read the whole ledger.
      expect(periodStart).toBe(new Date('from' in parameters ? parameters.from : earliest).toISOString());
      // Every customer and the whole ledger in one go: what the report computed before it read in chunks.
      const whole = consentCoverageReport(taxonomy, new Date(periodStart), new Date(periodEnd));
      whole.add(subjects, events);
      const { parameters: asked, generatedAt, logHead, logSince } = chunked as typeof chunked & ReportFrame;
      const expected = whole.finish({ parameters: asked, generatedAt, logHead, logSince });
      expect(chunked).toEqual(expected);
      expect(JSON.stringify(chunked)).toBe(JSON.stringify(expected)); // byte for byte: the same keys in the same order
      expect(seen).toEqual(Array.from({ length: Math.ceil(subjects.length / customersPerChunk) }, (_, index) => ['counting', Math.min((index + 1) * customersPerChunk, subjects.length), subjects.length]));
    }
    // The data holds what the comparison is about: an erased subject, and subjects who became customers in the period (one at its start).
    const period = (await report('consent-coverage', { from: start, to: '2026-09-01T00:00:00.000Z' })).data as { subjects: number; subjectsAtStart: number; purposes: any[] };
    const marketing = period.purposes.find((row) => row.purpose === 'marketing.communications');
    expect(marketing.start['erased since']).toBeGreaterThanOrEqual(1);
    expect(period.subjects - period.subjectsAtStart).toBeGreaterThanOrEqual(2);
  });

  it("subject access lists a dry run of the subject's fields (the actor learned each decision), counted apart from accesses: not a use, nothing withheld", async () => {
    const subjectId = customers[6].id;
    const before = (await report('subject-access', { subjectId })).summary[0];
    const explained = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', headers: { 'x-governance-explain': 'true' }, query: `{ customer(id: "${subjectId}") { email } }` });
    expect(explained.status).toBe(200);
    const document = await report('subject-access', { subjectId });
    const accesses = (document.data as { accesses: Array<{ coordinate: string; decision: string; reason: string }> }).accesses;
    expect(accesses.filter((access) => access.reason === 'EXPLAIN_ONLY')).toEqual([expect.objectContaining({ coordinate: 'Customer.email', decision: 'WITHHELD' })]);
    // The run before is itself recorded (what it told of the subject, and that it ran): the dry run is the rest.
    expect(document.summary[0]).toContain('; 1 field decision in a dry run (explained only, not released); 1 operation about them');
    expect(withheldIn(document.summary[0])).toBe(withheldIn(before));
  });

  it('subject access counts a list filtered on the choices apart from field accesses: it read them to respect them', async () => {
    const subjectId = customers[8].id;
    const summary = async () => (await report('subject-access', { subjectId })).summary[0];
    const before = await summary();
    const listed = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' });
    const kept = (listed.body.data!.customers as Array<{ id: string }>).some((customer) => customer.id === subjectId);
    const after = await summary();
    expect(after).toContain(`; 1 list filtered on their choices (kept in ${kept ? 1 : 0}, left out of ${kept ? 0 : 1}); 1 operation about them`);
    expect(withheldIn(after)).toBe(withheldIn(before));
  });

  it("records what a subject-access report tells of its subject, field by field (health data among it), for the subject's own report and page; the purposes' uses leave it out", async () => {
    const subjectId = 'cus_zzzz_told_by_report';
    await addCustomer(candor, subjectId);
    const requestId = `test-told-${Date.now()}`;
    await generateReport(candor.services, { kind: 'subject-access', subjectId }, { actor, requestId });
    const told = (await candor.services.accessLogReader.page({ requestId }, 100)).edges.map(({ node }) => [node.subjectId, node.coordinate, node.category, node.decision, node.reason, node.legalBasis]);
    expect(told).toEqual(
      expect.arrayContaining([
        [subjectId, null, null, 'RELEASED', 'REPORT_GENERATED', 'legal_obligation'],
        [subjectId, 'Customer.accessibilityNeeds', 'user.health_and_medical', 'RELEASED', 'SUBJECT_REQUEST', 'legal_obligation'],
        [subjectId, 'Payment.cardLast4', 'user.financial', 'RELEASED', 'SUBJECT_REQUEST', 'legal_obligation'],
      ]),
    );
    // Nothing without a value is told: the subject holds no watch history.
    expect(told.map(([, coordinate]) => coordinate)).not.toContain('WatchEvent.title');
    // Staff reading the subject's ledger decides no field: the next report lists it with the run before, as operations about them.
    await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ consentHistory(subjectId: "${subjectId}") { id } }` });
    const again = await report('subject-access', { subjectId });
    const data = again.data as { toldToThem: Array<{ coordinate: string; reason: string }>; operations: Array<{ reason: string }> };
    expect(data.operations.map((operation) => operation.reason)).toEqual(['REPORT_GENERATED', 'CHOICES_READ']);
    expect(data.toldToThem).toEqual(expect.arrayContaining([expect.objectContaining({ coordinate: 'Customer.accessibilityNeeds', reason: 'SUBJECT_REQUEST' })]));
    expect(again.summary[0]).toContain('; 2 operations about them (their consent history read or changed, reports).');
    // The subject's page shows Compliance using their health data and their privacy preferences, for the legal obligation.
    const usage = (await new PrivacyService(candor.services, candor.services.fields).view(subjectId, `${requestId}-page`)).usage;
    expect(usage.filter((line) => line.team === 'Compliance').map(({ category, purpose, used }) => [category, purpose, used])).toEqual(
      expect.arrayContaining([
        ['user.health_and_medical', 'essential.legal_obligation', 2],
        ['user.privacy_preferences', 'essential.legal_obligation', 1],
      ]),
    );
    // A purpose's uses do not count the answers to subjects' requests.
    const ropa = (await report('ropa')).data as { outsideDeclaration: Array<{ coordinate: string }> };
    expect(ropa.outsideDeclaration.map((row) => row.coordinate)).not.toContain('Customer.accessibilityNeeds');
  });

  it('records a report of a rejected GraphQL operation as withheld: the response told nothing', async () => {
    const subjectId = customers[5].id;
    const response = await candor.query({
      key: KEYS.compliance,
      purpose: 'essential.legal_obligation',
      headers: { 'x-governance-mode': 'reject' },
      query: `{ report(kind: SUBJECT_ACCESS, subjectId: "${subjectId}") { title } customers(limit: 1) { email } }`,
    });
    expect([response.status, response.body.data, response.body.errors?.map((error) => error.extensions?.code)]).toEqual([403, undefined, ['GOVERNANCE_REJECTED']]);
    const records = (await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')!, subjectId }, 100)).edges.map(({ node }) => node);
    expect(records.length).toBeGreaterThan(1);
    expect(new Set(records.map((record) => [record.decision, record.reason].join(' ')))).toEqual(new Set(['WITHHELD GOVERNANCE_REJECTED']));
    // Accepted, the same run is recorded released.
    const run = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ report(kind: SUBJECT_ACCESS, subjectId: "${subjectId}") { title } }` });
    expect(run.body.errors).toBeUndefined();
    const released = (await candor.services.accessLogReader.page({ requestId: run.headers.get('x-request-id')!, subjectId }, 100)).edges.map(({ node }) => node.reason);
    expect(new Set(released)).toEqual(new Set(['REPORT_GENERATED', 'SUBJECT_REQUEST']));
  });

  it('refuses a subject-access report about an erased subject: nothing is held about them, and its record would name them in the log again', async () => {
    const subjectId = 'cus_zzzz_art15_erased';
    await addCustomer(candor, subjectId);
    await eraseSubject(candor.services, subjectId, actor, 'test-art15-erase');
    const { erasedAt } = await candor.services.dataSource.getRepository(CustomerEntity).findOneByOrFail({ id: subjectId });
    await expect(report('subject-access', { subjectId })).rejects.toThrow(`subject "${subjectId}" was erased on ${erasedAt}: nothing is held about them to report, and a report would tie the log to them again`);
    await expect(candor.services.accessLogReader.page({ subjectId }, 10)).rejects.toMatchObject({ extensions: { reason: 'UNKNOWN_SUBJECT' } }); // erased: its records are attributed to no one
  });

  it('RoPA: a revoked actor is no longer a recipient its entitlements would make it (only what it received in the period would)', async () => {
    await candor.services.actors.create({ id: 'former-marketer', name: 'Former Marketer', team: 'Marketing', purposes: ['marketing.communications'], roles: [] });
    const recipientsOf = async () => ((await report('ropa')).data as { activities: any[] }).activities.find((activity) => activity.purpose === 'marketing.communications').recipients.map((recipient: { actorId: string }) => recipient.actorId);
    expect(await recipientsOf()).toContain('former-marketer');
    await candor.services.actors.revoke('former-marketer');
    expect(await recipientsOf()).not.toContain('former-marketer');
  });

  it('consent coverage counts a subject erased at the very instant of the period\'s end as a customer then (an instant is exclusive: the erasure belongs after it)', async () => {
    // Not a month's start: an erased customer's creation time is kept as the first instant of its month.
    const erasedAt = '2026-03-17T09:26:53.123Z';
    await addCustomer(candor, 'cus_zzzz_coverage_erased_at_end', { createdAt: '2025-01-01T00:00:00.000Z', erasedAt });
    const at = async (to: string) => (await report('consent-coverage', { from: '2026-01-01', to })).data as { subjects: number; purposes: Array<{ purpose: string; end: Record<string, number> }> };
    const [atTheErasure, justAfter] = [await at(erasedAt), await at('2026-03-17T09:26:53.124Z')];
    expect(atTheErasure.subjects).toBe(justAfter.subjects + 1);
    // The same rows, one per purpose a request may declare (an empty list would make the loop below vacuous).
    expect([atTheErasure.purposes.map((row) => row.purpose), justAfter.purposes.map((row) => row.purpose)]).toEqual([requestablePurposes(), requestablePurposes()]);
    expect(atTheErasure.purposes.length).toBeGreaterThan(0);
    for (const [index, purpose] of atTheErasure.purposes.entries()) expect(purpose.end['erased since']).toBe(justAfter.purposes[index].end['erased since'] + 1);
  });

  it('consent coverage leaves a statement made at the very instant the period starts out of its start (it belongs after it), and counts it at the end', async () => {
    const subjectId = 'cus_zzzz_coverage_at_start';
    await addCustomer(candor, subjectId, { createdAt: '2025-01-01T00:00:00.000Z' });
    const period = { from: '2026-08-01T00:00:00.000Z', to: '2026-09-01T00:00:00.000Z' };
    const marketing = async () => ((await report('consent-coverage', period)).data as { purposes: any[] }).purposes.find((row) => row.purpose === 'marketing.communications');
    const before = await marketing();
    await candor.services.consent.append({ subjectId, kind: 'grant', purpose: 'marketing.communications', source: 'test', recordedAt: new Date(period.from) });
    const after = await marketing();
    expect(after.start).toEqual(before.start);
    expect(after.end).toEqual({ ...before.end, granted: before.end.granted + 1, 'never asked': before.end['never asked'] - 1 });
  });

  describe('from the CLI', () => {
    let directory: string;
    beforeAll(() => (directory = mkdtempSync(join(tmpdir(), 'candor-report-'))));
    afterAll(() => rmSync(directory, { recursive: true, force: true }));
    const cli = (...args: string[]) => runCli(['report', ...args], { DATABASE_URL: candor.database.url });

    it.each(REPORT_KINDS.map((kind) => [kind]))('writes the %s report to a file, as the CLI actor', async (kind) => {
      const out = join(directory, `${kind}.html`);
      const result = await cli(kind, ...(kind === 'subject-access' ? ['--subject', customers[0].id] : []), '--format', 'html', '--out', out);
      expect([result.code, result.stderr]).toEqual([0, expect.stringContaining(`to ${out}`)]);
      expect(readFileSync(out, 'utf8')).toContain('<!DOCTYPE html>');
      expect(statSync(out).mode & 0o777).toBe(0o600);
    });

    it('replaces a report file that was there, whole and readable by its owner only, leaving nothing else behind', async () => {
      const out = join(directory, 'replaced.json');
      writeFileSync(out, 'an older report', { mode: 0o644 });
      chmodSync(out, 0o644);
      const result = await cli('subject-access', '--subject', customers[0].id, '--format', 'json', '--out', out);
      expect(result.code).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(out, 'utf8')).report).toBe('subject-access');
      expect(readdirSync(directory).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    });

    it('writes through an --out that is a symbolic link to where it points (as `>` does), the link kept', async () => {
      const elsewhere = join(directory, 'linked-elsewhere');
      mkdirSync(elsewhere);
      const target = join(elsewhere, 'target.json');
      writeFileSync(target, 'an older report');
      const link = join(directory, 'link-to-a-report.json');
      symlinkSync(target, link);
      const result = await cli('denials', '--format', 'json', '--out', link);
      expect([result.code, result.stderr]).toEqual([0, expect.stringContaining(`to ${link}`)]);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(JSON.parse(readFileSync(target, 'utf8')).report).toBe('denials');
      expect(statSync(target).mode & 0o777).toBe(0o600);
      // The new file was made beside the target (a rename cannot cross file systems), and none is left behind.
      expect([readdirSync(elsewhere), readdirSync(directory).filter((name) => name.endsWith('.tmp'))]).toEqual([['target.json'], []]);
    });

    it('refuses an --out that is a symbolic link to no file, before generating (and recording) the report', async () => {
      const generated = async () => (await candor.services.accessLogReader.page({ reason: 'REPORT_GENERATED' }, 500)).totalCount;
      const before = await generated();
      const missing = join(directory, 'no-such-directory', 'report.json');
      const link = join(directory, 'dangling-link.json');
      symlinkSync(missing, link);
      const result = await cli('denials', '--format', 'json', '--out', link);
      expect([result.code, result.stderr, result.stdout]).toEqual([1, `candor: cannot write the report to ${link}: it is a symbolic link to ${missing}, which does not exist\n`, '']);
      expect([lstatSync(link).isSymbolicLink(), existsSync(missing), await generated()]).toEqual([true, false, before]);
    });

    it('leaves a report file that was there untouched when the new one cannot be written whole (the disk fills up)', async () => {
      const out = join(directory, 'kept.json');
      writeFileSync(out, 'the older report');
      // The module object the CLI's code calls into (an `import * as` namespace cannot be spied on).
      const fsModule: typeof import('node:fs') = jest.requireActual('node:fs');
      const realWrite = fsModule.writeFileSync;
      // Ten bytes go in, then the disk is full.
      const full = jest.spyOn(fsModule, 'writeFileSync').mockImplementation((file, data) => {
        realWrite(file, (data as Buffer).subarray(0, 10));
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      });
      const output = { interactive: false, out: () => undefined, err: () => undefined, writeBinary: () => undefined };
      try {
        await expect(reportCommand(candor.services, { kind: 'denials', format: 'json', out }, output)).rejects.toThrow(`the report was generated (and recorded) but could not be written to ${out}: ENOSPC`);
      } finally {
        full.mockRestore();
      }
      expect(readFileSync(out, 'utf8')).toBe('the older report');
      expect(readdirSync(directory).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    });

    it.each([
      [['subject-access', '--subject', 'cus_nobody', '--format', 'json'], 'candor: unknown subject "cus_nobody"\n'],
      [['subject-access', '--format', 'json'], 'candor: the subject-access report needs --subject ID\n'],
      [['denials', '--subject', 'x'.repeat(60), '--format', 'json'], 'candor: --subject applies to the subject-access report only, not to "denials"\n'],
      [['purpose-usage', '--from', 'yesterday', '--format', 'json'], 'candor: --from must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "yesterday"\n'],
      [['purpose-usage', '--to', '2026-02-30', '--format', 'json'], 'candor: --to must be an ISO-8601 date, or a time with its offset (2026-11-01T12:00:00Z), got "2026-02-30"\n'],
      [['purpose-usage', '--from', '2026-02-01', '--to', '2026-01-01', '--format', 'json'], 'candor: --from must be before --to\n'],
      [['purpose-usage', '--format', 'docx'], 'candor: --format must be one of json, csv, html, pdf, md\n'],
      [['gossip', '--format', 'json'], 'candor: unknown report "gossip": use one of ropa, subject-access, purpose-usage, denials, consent-coverage\n', 2],
    ])('refuses %j with one line and exit 1 (2 for a report that does not exist: a usage error)', async (args, message, code = 1) => {
      const result = await cli(...args);
      expect([result.code, result.stderr, result.stdout]).toEqual([code, message, '']);
    });

    it('refuses an --out it cannot write before generating (and recording) the report', async () => {
      const generated = async () => (await candor.services.accessLogReader.page({ reason: 'REPORT_GENERATED' }, 500)).totalCount;
      const before = await generated();
      const missingDirectory = join(directory, 'missing', 'denials.json');
      for (const [out, why] of [
        [missingDirectory, 'its directory does not exist or is not writable'],
        [directory, 'it is not a file'],
      ]) {
        const result = await cli('denials', '--format', 'json', '--out', out);
        expect([result.code, result.stderr, result.stdout]).toEqual([1, `candor: cannot write the report to ${out}: ${why}\n`, '']);
      }
      expect(await generated()).toBe(before);
    });

    it('refuses a writable file in a directory that cannot take a new file (the report is written beside it, then moved over it), before generating', () => {
      const out = join(directory, 'locked-directory-denials.json');
      writeFileSync(out, 'the older report');
      // Root may write anywhere, and the tests run as root: the operating system's answer is the seam.
      const directoryTakesNoNewFile = (path: string) => path !== dirname(out);
      expect(() => checkReportArguments({ kind: 'denials', format: 'json', out }, directoryTakesNoNewFile)).toThrow(`cannot write the report to ${out}: its directory is not writable`);
      expect(() => checkReportArguments({ kind: 'denials', format: 'json', out }, (path) => path !== out)).toThrow(`cannot write the report to ${out}: it is not writable`);
      expect(() => checkReportArguments({ kind: 'denials', format: 'json', out })).not.toThrow();
      expect(readFileSync(out, 'utf8')).toBe('the older report');
    });

    it('writes all of a long report into a pipe read slowly: the command does not exit before its output is taken', async () => {
      const subjectId = customers[1].id;
      for (let request = 0; request < 100; request++) {
        const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${subjectId}") { id email phone fullName postalAddress birthDate } }` });
        expect(response.status).toBe(200);
      }
      const out = join(directory, 'piped.json');
      // The reader waits before reading: a pipe holds 64 KiB, the rest waits in the writing process.
      const piped = await runShell(`node "${CLI}" report subject-access --subject ${subjectId} --format json | (sleep 1; cat > "${out}")`, { DATABASE_URL: candor.database.url });
      expect([piped.code, piped.stderr]).toEqual([0, '']);
      const text = readFileSync(out, 'utf8');
      expect(text.length).toBeGreaterThan(100_000);
      expect(JSON.parse(text).report).toBe('subject-access');
    });

    it('prints JSON to stdout when piped, without progress output', async () => {
      const result = await cli('denials', '--format', 'json');
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout).report).toBe('denials');
    });
  });
});

describe.each(DRIVERS)('a report after a prune, on %s', (driver) => {
  let candor: Harness;
  beforeAll(async () => (candor = await startCandor(driver)));
  afterAll(async () => {
    await candor?.stop();
  });

  it('shows the verification of what the prune left, from the first record kept through the head', async () => {
    const traffic = () => candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 5) { id email } }' });
    for (let request = 0; request < 3; request++) await traffic();
    const pruned = await runCli(['audit', 'prune', '--before', new Date().toISOString()], { DATABASE_URL: candor.database.url });
    expect([pruned.code, pruned.stderr]).toEqual([0, '']);
    const prunedThrough = Number(/through seq (\d+)/.exec(pruned.stdout)![1]);
    await traffic();
    const head = await candor.services.accessLogReader.headSeq();
    const verifying: Array<[number, number]> = [];
    await generateReport(candor.services, { kind: 'denials' }, { actor: { id: 'test-auditor', name: 'Test', team: 'Compliance' }, requestId: 'test-after-prune', onProgress: (stage, done, total) => void (stage === 'verifying' && verifying.push([done, total])) });
    expect(verifying.at(-1)).toEqual([head - prunedThrough, head - prunedThrough]);
  });
});

describe('an --out that is the SQLite database, or a file SQLite keeps beside it', () => {
  let candor: Harness;
  let directory: string;
  beforeAll(async () => {
    candor = await startCandor('sqlite');
    directory = mkdtempSync(join(tmpdir(), 'candor-out-'));
    await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ customers(limit: 5) { id email } }' });
  });
  afterAll(async () => {
    await candor?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('is refused before anything is generated or written, by any name it goes under; the database still verifies', async () => {
    const env = { DATABASE_URL: candor.database.url };
    const database = (parseDatabaseUrl(candor.database.url) as { path: string }).path;
    const link = join(directory, 'link-to-the-wal');
    symlinkSync(`${database}-wal`, link);
    const hardLink = join(directory, 'hard-link-to-the-database');
    linkSync(database, hardLink);
    const generated = async () => (await candor.services.accessLogReader.page({ reason: 'REPORT_GENERATED' }, 500)).totalCount;
    const [headBefore, generatedBefore] = [await candor.services.accessLogReader.headSeq(), await generated()];
    const refusal = (out: string, what: string, code = '') => `candor: ${code}--out ${out} is ${what} (DATABASE_URL): writing there would destroy the database and its access log; choose another file\n`;
    for (const [out, what] of [
      [database, 'the SQLite database'],
      [hardLink, 'the SQLite database'],
      [join(dirname(database), '..', basename(dirname(database)), `${basename(database)}-wal`), "the SQLite database's write-ahead log"],
      [link, "the SQLite database's write-ahead log"],
      [`${database}-shm`, "the SQLite database's shared-memory index"],
      // Not there between runs: refused by where it would be.
      [`${database}-journal`, "the SQLite database's rollback journal"],
    ]) {
      const report = await runCli(['report', 'denials', '--format', 'json', '--out', out], env);
      expect([report.code, report.stderr, report.stdout]).toEqual([1, refusal(out, what), '']);
    }
    const diff = await runCli(['schema', 'diff', '--base', join(__dirname, '..', 'fixtures', 'schema-diff', 'governance.older.json'), '--out', hardLink], env);
    expect([diff.code, diff.stderr, diff.stdout]).toEqual([2, refusal(hardLink, 'the SQLite database', 'OUT_UNWRITABLE: '), '']);
    expect(existsSync(`${database}-journal`)).toBe(false);
    expect(readFileSync(database).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\u0000');
    expect([await candor.services.accessLogReader.headSeq(), await generated()]).toEqual([headBefore, generatedBefore]);
    const verified = await runCli(['audit', 'verify'], env);
    expect([verified.code, verified.stderr]).toEqual([0, '']);
  });
});
