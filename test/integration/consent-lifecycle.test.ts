import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { IsNull, type MigrationInterface } from 'typeorm';
import { ConsentInTheOrderMade1764500000000 } from '../../migrations/1764500000000-consent-in-the-order-made';
import { ErasedSubjectsConsentPseudonymised1764580000000 } from '../../migrations/1764580000000-erased-subjects-consent-pseudonymised';
import { consentImport } from '../../src/cli/consent.command';
import { importConsents } from '../../src/consent/consent-import';
import { ErasedSubjectEntity, SubjectPseudonymEntity } from '../../src/audit/audit.entities';
import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { ConsentImportEntity } from '../../src/consent/consent-import.entity';
import { ConsentReceiptEntity } from '../../src/consent/consent-receipt.entity';
import { ConsentStateEntity } from '../../src/consent/consent-state.entity';
import { Inbox } from '../../src/consent/inbox';
import { SubjectMessageEntity } from '../../src/consent/subject-message.entity';
import { replayLedger } from '../../src/consent/ledger-replay';
import { loadConfig, projectRoot } from '../../src/config';
import { SUBJECT_ACTOR_ID } from '../../src/actors/actor-directory';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { PaymentEntity } from '../../src/domain/payment.entity';
import { WatchEventEntity } from '../../src/domain/watch-event.entity';
import type { SubjectState } from '../../src/policy/decide';
import { eraseSubject } from '../../src/privacy/erasure';
import { inboxCommand } from '../../src/cli/consent.command';
import { openServices } from '../../src/server/services';
import { renderPrivacyPage } from '../../src/privacy/privacy-page';
import { MAX_UNANSWERED_QUESTIONS, MESSAGES_SHOWN, PrivacyService } from '../../src/privacy/privacy-service';
import { createSubjectToken } from '../../src/privacy/subject-link';
import { type GraphQLResponse, type Harness, KEYS, startCandor } from '../support/candor-harness';
import { runCli } from '../support/child-server';
import { DRIVERS } from '../support/databases';
import { inTransaction } from '../../src/storage/transactions';
import { eventually } from '../support/eventually';
import { addCustomer } from '../support/subjects';

const S = 'cus_0000_life';
const T = 'cus_0000_life_t';
/** When the statements of this file's import files were made (an import takes no row without its time). */
const MADE = '2026-03-01T09:00:00Z';
/** The lifecycle server's secret: one production accepts too, for the CLI runs in production below (the CLI needs the server's). */
const SECRET = 'a-production-secret-of-some-length';

describe.each(DRIVERS)('the consent lifecycle on %s', (driver) => {
  let candor: Harness;
  let now = new Date('2026-11-29T10:00:00.000Z').getTime();
  let directory: string;

  const manage = (query: string, variables?: Record<string, unknown>) => candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query, variables });
  const grant = (subjectId: string, purpose: string, extra: Record<string, unknown> = {}) =>
    manage('mutation G($input: GrantConsentInput!) { grantConsent(input: $input) { id } }', { input: { subjectId, purpose, source: 'test', ...extra } });
  const email = async (subjectId: string) => (await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${subjectId}") { email } }` })).body;

  /** The CLI's environment: the server's database, taxonomy and secret. */
  const cliEnv = () => ({ DATABASE_URL: candor.database.url, CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml'), CANDOR_SECRET: SECRET });

  /** Runs a migration's `up` on the harness's database as the migration runner runs it: in a transaction. */
  const upgradeWith = async (migration: MigrationInterface) => {
    const runner = candor.services.dataSource.createQueryRunner();
    try {
      await runner.startTransaction();
      await migration.up(runner);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
  };

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'candor-lifecycle-'));
    // marketing.communications got a materially changed notice on 2026-11-29T12:00Z in this taxonomy.
    const taxonomy = readFileSync(join(projectRoot(), 'schema', 'taxonomy.yaml'), 'utf8').replace('notice: { version: 1 }', 'notice: { version: 2, since: 2026-11-29T12:00:00Z, material: true }');
    writeFileSync(join(directory, 'taxonomy.yaml'), taxonomy);
    candor = await startCandor(driver, { clock: () => new Date(now), env: { CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml'), CANDOR_SECRET: SECRET } });
    await addCustomer(candor, S);
    await addCustomer(candor, T);
  });
  afterAll(async () => {
    await candor?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('issues a consent receipt for every ledger entry, with the Kantara fields and a digest, referenced by the access records that rely on it', async () => {
    now = new Date('2026-11-29T13:00:00.000Z').getTime();
    expect((await grant(S, 'marketing.communications')).body.errors).toBeUndefined();
    const [event] = await candor.services.dataSource.getRepository(ConsentEventEntity).find({ where: { subjectId: S }, order: { id: 'DESC' }, take: 1 });
    const receipt = await candor.services.dataSource.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: event.receiptId! });
    expect(receipt.digest).toBe(createHash('sha256').update(receipt.document).digest('hex'));
    const document = JSON.parse(receipt.document);
    expect(document).toEqual(
      expect.objectContaining({
        version: 'KI-CR-v1.1.0',
        jurisdiction: 'EU',
        consentTimestamp: Math.floor(now / 1000),
        collectionMethod: 'test',
        consentReceiptID: receipt.id,
        piiPrincipalId: S,
        piiControllers: [expect.objectContaining({ piiController: 'Candor Demo Streaming Ltd.' })],
        action: 'grant',
        sensitive: false,
      }),
    );
    expect(document.services[0].purposes[0]).toEqual(expect.objectContaining({ purposeCategory: ['marketing.communications'], consentType: 'EXPRESSED', legalBasis: 'consent', noticeVersion: 2, piiCategory: ['user.contact.email', 'user.name'], thirdPartyDisclosure: false }));
    const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${S}") { email } }` });
    expect(response.body.data).toEqual({ customer: { email: `${S}@secret.example` } });
    const [record] = (await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10)).edges;
    expect(record.node).toEqual(expect.objectContaining({ reason: 'CONSENT_GIVEN', consentReceiptId: receipt.id }));
  });

  it('never shows a restated objection or restriction as gone to a reader while it is restated', async () => {
    const O = 'cus_0000_life_restated';
    await addCustomer(candor, O);
    await candor.services.consent.append({ subjectId: O, kind: 'object', purpose: 'analytics', source: 'test' });
    await candor.services.consent.append({ subjectId: O, kind: 'restrict', purpose: null, source: 'test' });
    let lapses = 0;
    for (let round = 0; round < 100; round++) {
      const kind = round % 2 ? 'object' : 'restrict';
      // Readers in this process for as long as the statement is being restated (on SQLite they share the writer's connection).
      let restating = true;
      const readers = Array.from({ length: 4 }, async () => {
        while (restating) {
          const [state] = await candor.services.consent.states([O]);
          if (!state.restricted || !state.objections.some((objection) => objection.purpose === 'analytics' && objection.objected)) lapses++;
        }
      });
      await candor.services.consent.append({ subjectId: O, kind, purpose: kind === 'object' ? 'analytics' : null, source: 'restated' });
      restating = false;
      await Promise.all(readers);
    }
    expect(lapses).toBe(0);
  });

  it('shows a reader no consent that a transaction wrote and then rolled back (on SQLite the reader shares its connection)', async () => {
    const X = 'cus_0000_life_rolled_back';
    await addCustomer(candor, X);
    let read: Promise<SubjectState[]> | undefined;
    const writing = inTransaction(candor.services.dataSource, async (manager) => {
      await manager.getRepository(ConsentStateEntity).insert({ subjectId: X, kind: 'consent', purpose: 'marketing.communications', active: true, explicit: false, expiresAt: null, eventId: 0, recordedAt: new Date(now).toISOString(), receiptId: null });
      read = candor.services.consent.states([X]);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the read has had its chance to run
      throw new Error('rolled back');
    });
    await expect(writing).rejects.toThrow('rolled back');
    const [state] = await read!;
    expect(state.consents).toEqual([]);
  });

  it('stops counting a grant at the instant it expires (controllable clock)', async () => {
    now = new Date('2026-11-29T13:00:00.000Z').getTime();
    expect((await grant(T, 'marketing.communications', { expiresAt: '2026-11-29T14:00:00.000Z' })).body.errors).toBeUndefined();
    expect((await email(T)).data).toEqual({ customer: { email: `${T}@secret.example` } });
    now = new Date('2026-11-29T13:59:59.999Z').getTime();
    expect((await email(T)).data).toEqual({ customer: { email: `${T}@secret.example` } });
    now = new Date('2026-11-29T14:00:00.000Z').getTime();
    const expired = await email(T);
    expect(expired.data).toEqual({ customer: { email: null } });
    expect(expired.errors?.[0].extensions?.code).toBe('CONSENT_REQUIRED');
  });

  it("lets a statement made now take effect after its subject's earlier ones, even when this instance's clock runs behind the one that made them", async () => {
    const K = 'cus_0000_life_skew';
    await addCustomer(candor, K);
    const consent = candor.services.consent;
    // Another instance, its clock two seconds ahead, recorded a grant; this one withdraws a moment later by its own clock.
    now += 2_000;
    await consent.append({ subjectId: K, kind: 'grant', purpose: 'marketing.communications', source: 'instance-ahead' });
    const ahead = now;
    now -= 1_500;
    const withdrawal = await consent.append({ subjectId: K, kind: 'withdraw', purpose: 'marketing.communications', source: 'privacy-page', actorId: SUBJECT_ACTOR_ID });
    expect(withdrawal.recordedAt).toBe(new Date(ahead).toISOString());
    const [state] = await consent.states([K]);
    expect(state.consents.find((statement) => statement.purpose === 'marketing.communications')?.granted).toBe(false);
    expect(replayLedger(await consent.history(K)).get(K)!.consents.find((statement) => statement.purpose === 'marketing.communications')?.granted).toBe(false);
    now = ahead;
  });

  it('does not claim the current notice for a statement made before it: its receipt leaves the version unknown', async () => {
    const H = 'cus_0000_life_history';
    await addCustomer(candor, H);
    // marketing.communications' notice became version 2 on 2026-11-29T12:00Z in this taxonomy.
    const before = await candor.services.consent.append({ subjectId: H, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date('2026-03-01T00:00:00Z') });
    const after = await candor.services.consent.append({ subjectId: H, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date('2026-11-29T12:30:00Z') });
    expect([before.noticeVersion, after.noticeVersion]).toEqual([null, 2]);
    const receipt = await candor.services.dataSource.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: before.receiptId! });
    expect(JSON.parse(receipt.document).services[0].purposes[0].noticeVersion).toBeNull();
  });

  it('requires renewal of grants given before a material notice change, and counts the renewed one', async () => {
    now = new Date('2026-11-29T11:00:00.000Z').getTime();
    const U = 'cus_0000_life_u';
    await addCustomer(candor, U);
    expect((await grant(U, 'marketing', {})).body.errors).toBeUndefined(); // before the 12:00 notice change
    // Until the change takes effect, the grant counts.
    expect((await email(U)).data).toEqual({ customer: { email: `${U}@secret.example` } });
    now = new Date('2026-11-29T15:00:00.000Z').getTime();
    const stale = await email(U);
    expect(stale.data).toEqual({ customer: { email: null } });
    expect(stale.errors?.[0].extensions?.code).toBe('CONSENT_RENEWAL_REQUIRED');
    // The subject's page says so too, and offers to say yes again (or no).
    const page = new PrivacyService(candor.services, candor.services.fields);
    const choice = async () => (await page.view(U, 'renewal-view')).choices.find((candidate) => candidate.purpose.key === 'marketing.communications')!;
    expect(await choice()).toEqual(expect.objectContaining({ state: 'renewal needed', actions: ['grant', 'withdraw'] }));
    const filtered = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' });
    expect(filtered.body.data!.customers.map((customer: { id: string }) => customer.id)).not.toContain(U);
    // Saying yes to all marketing again does not renew it: that grant was given under marketing's notice, and
    // its receipt names that one, not the changed notice of marketing.communications.
    expect((await grant(U, 'marketing')).body.errors).toBeUndefined();
    expect((await email(U)).errors?.[0].extensions?.code).toBe('CONSENT_RENEWAL_REQUIRED');
    expect(await choice()).toEqual(expect.objectContaining({ state: 'renewal needed' }));
    const stillFiltered = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' });
    expect(stillFiltered.body.data!.customers.map((customer: { id: string }) => customer.id)).not.toContain(U);
    expect((await grant(U, 'marketing.communications')).body.errors).toBeUndefined();
    expect((await email(U)).data).toEqual({ customer: { email: `${U}@secret.example` } });
    expect(await choice()).toEqual(expect.objectContaining({ state: 'granted', actions: ['withdraw'] }));
    const renewed = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' });
    expect(renewed.body.data!.customers.map((customer: { id: string }) => customer.id)).toContain(U);
  });

  it('asks for explicit consent by name on the privacy page where a purpose may use special-category data', async () => {
    const view = await new PrivacyService(candor.services, candor.services.fields).view(S, 'explicit-view');
    const special = (key: string) => view.choices.find((choice) => choice.purpose.key === key)!.specialCategories;
    expect([special('personalize.content'), special('marketing.communications')]).toEqual([['user.health_and_medical'], []]);
    const page = await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, S, new Date(now + 3_600_000))}`);
    const html = await page.text();
    const yes = (key: string) => new RegExp(`id="purpose-${key.replace('.', '\\.')}".*?<button[^>]*>([^<]*)</button>`).exec(html)?.[1];
    expect(yes('personalize.content')).toBe('Say yes, including health and medical information, including accessibility needs');
    expect(html).toContain('saying yes here is your explicit consent to that use');
  });

  it('lets a subject give and take back the explicit consent special-category data needs under a purpose of another basis, and objections anywhere', async () => {
    const X = 'cus_0000_life_explicit';
    await addCustomer(candor, X);
    const page = new PrivacyService(candor.services, candor.services.fields);
    const choiceOf = async (key: string) => (await page.view(X, 'explicit-view')).choices.find((choice) => choice.purpose.key === key)!;
    const accessibilityNeeds = async () => {
      const response = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${X}") { accessibilityNeeds } }` });
      return response.body.errors?.[0]?.extensions?.code ?? 'RELEASED';
    };
    // essential.service rests on the contract, but accessibility needs are health data: rule 5 asks for explicit consent.
    expect(await choiceOf('essential.service')).toEqual(expect.objectContaining({ consent: 'never asked', actions: ['grant'], specialCategories: ['user.health_and_medical'] }));
    expect(await accessibilityNeeds()).toBe('EXPLICIT_CONSENT_REQUIRED');
    await page.choose(X, 'essential.service', 'grant', 'explicit-grant');
    expect(await choiceOf('essential.service')).toEqual(expect.objectContaining({ consent: 'granted', actions: ['withdraw'] }));
    expect((await choiceOf('essential.service')).answeredThrough).toBeUndefined();
    // Its sub-purpose stands on that same answer, and its card says whose answer it is.
    expect(await choiceOf('essential.service.payment_processing')).toEqual(expect.objectContaining({ consent: 'granted', answeredThrough: expect.objectContaining({ key: 'essential.service' }) }));
    // A broader yes that has expired is nobody's "no": the card names no answer for it.
    const Y = 'cus_0000_life_expired_parent';
    await addCustomer(candor, Y);
    await candor.services.consent.append({ subjectId: Y, kind: 'grant', purpose: 'marketing', source: 'test', recordedAt: new Date(now - 2 * 86_400_000), expiresAt: new Date(now - 86_400_000) });
    const expired = (await page.view(Y, 'expired-view')).choices.find((choice) => choice.purpose.key === 'marketing.communications')!;
    expect([expired.consent, expired.answeredThrough, expired.expiredAt]).toEqual(['withdrawn', undefined, new Date(now - 86_400_000)]);
    const expiredPage = await (await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, Y, new Date(now + 3_600_000))}`)).text();
    const card = /id="purpose-marketing\.communications".*?<p class="state">([^<]*)<\/p>/.exec(expiredPage)?.[1];
    expect(card).toBe(`Your yes ran out on ${new Date(now - 86_400_000).toLocaleDateString('en-GB', { dateStyle: 'long', timeZone: 'UTC' })}: say yes again if you still agree`);
    expect(await accessibilityNeeds()).toBe('RELEASED');
    await page.choose(X, 'essential.service', 'withdraw', 'explicit-withdraw');
    expect(await accessibilityNeeds()).toBe('EXPLICIT_CONSENT_REQUIRED');
    // A yes given elsewhere without naming the sensitive data is a yes, but not the explicit one it needs:
    // the card says so and asks again, rather than show "You said yes" over a withheld field.
    await candor.services.consent.append({ subjectId: X, kind: 'grant', purpose: 'essential.service', source: 'crm-import' });
    expect(await accessibilityNeeds()).toBe('EXPLICIT_CONSENT_REQUIRED');
    const implicit = await choiceOf('essential.service');
    expect(implicit).toEqual(expect.objectContaining({ consent: 'granted', notExplicit: true, actions: ['grant', 'withdraw'] }));
    const html = await (await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, X, new Date(now + 3_600_000))}`)).text();
    expect(html).toContain('Sensitive data: You said yes, but not explicitly to the sensitive data it uses: say yes here to include it');
    await page.choose(X, 'essential.service', 'grant', 'explicit-again');
    expect(await accessibilityNeeds()).toBe('RELEASED');
    expect(await choiceOf('essential.service')).toEqual(expect.objectContaining({ consent: 'granted', actions: ['withdraw'] }));
    expect((await choiceOf('essential.service')).notExplicit).toBeUndefined();
    await page.choose(X, 'essential.service', 'withdraw', 'explicit-withdraw-again');
    // A purpose of another basis that uses no special-category data offers no yes (nor an objection: a legal obligation).
    const contractual = (await page.view(X, 'explicit-view')).choices.find((choice) => choice.purpose.legalBasis === 'legal_obligation' && choice.specialCategories.length === 0)!;
    expect([contractual.consent, contractual.actions]).toEqual([undefined, []]);
    await expect(page.choose(X, contractual.purpose.key, 'grant', 'no-such-choice')).rejects.toThrow('this choice is not available for this purpose');
    // A yes that named no special category is not explicit consent to any.
    await page.choose(X, 'marketing.communications', 'grant', 'plain-grant');
    const [latest] = await candor.services.dataSource.getRepository(ConsentEventEntity).find({ where: { subjectId: X }, order: { id: 'DESC' }, take: 1 });
    expect([latest.kind, latest.explicit]).toEqual(['grant', false]);
    // An objection made elsewhere to a consent purpose can be withdrawn on the page.
    await candor.services.consent.append({ subjectId: X, kind: 'object', purpose: 'marketing.communications', source: 'support-call' });
    // Under it a yes or no would change nothing (the objection decides): only its withdrawal is offered, and a yes is refused.
    expect(await choiceOf('marketing.communications')).toEqual(expect.objectContaining({ state: 'objected', actions: ['withdraw_objection'] }));
    await expect(page.choose(X, 'marketing.communications', 'grant', 'grant-under-objection')).rejects.toThrow('you objected to this use: withdraw your objection first, then say yes');
    await page.choose(X, 'marketing.communications', 'withdraw_objection', 'objection-withdrawn');
    expect(await choiceOf('marketing.communications')).toEqual(expect.objectContaining({ state: 'granted', actions: ['withdraw'] }));
    // On legitimate interests the page offers an objection (Art. 21), which the next request honours, and its withdrawal.
    const birthDate = async () => {
      const response = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${X}") { birthDate } }` });
      return response.body.errors?.[0]?.extensions?.code ?? 'RELEASED';
    };
    expect(await choiceOf('analytics.reporting')).toEqual(expect.objectContaining({ actions: ['object'] }));
    await expect(page.choose(X, 'analytics.reporting', 'withdraw_objection', 'nothing-to-withdraw')).rejects.toThrow('you have not objected to this use: there is no objection to withdraw');
    expect(await birthDate()).toBe('RELEASED');
    await page.choose(X, 'analytics.reporting', 'object', 'page-objection');
    expect(await choiceOf('analytics.reporting')).toEqual(expect.objectContaining({ state: 'objected', actions: ['withdraw_objection'] }));
    expect(await birthDate()).toBe('OBJECTED');
    await page.choose(X, 'analytics.reporting', 'withdraw_objection', 'page-objection-withdrawn');
    expect(await birthDate()).toBe('RELEASED');
  });

  describe('import', () => {
    const cli = (...args: string[]) => runCli(args, cliEnv());

    it('imports a CSV file with a receipt per row', async () => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const file = join(directory, 'consents.csv');
      // As spreadsheets export it: a byte-order mark first, CRLF line ends, and a grant of the past that has expired since.
      writeFileSync(file, `\uFEFFsubjectId,action,purpose,explicit,source,expiresAt,recordedAt\r\n${S},grant,personalize.content,true,crm-export,,2026-01-02T03:04:05Z\r\n${T},object,analytics,,crm-export,,2026-02-03T04:05:06+01:00\r\n${T},grant,marketing.advertising,,crm-export,2025-06-01,2025-01-01T09:30:00+01:00\r\n`);
      const result = await cli('consent', 'import', file);
      expect([result.code, result.stdout]).toEqual([0, `imported 3 consent statements from ${file} (each with its receipt)\n`]);
      const events = await candor.services.dataSource.getRepository(ConsentEventEntity).find({ order: { id: 'ASC' }, skip: before });
      expect(events.map((event) => [event.subjectId, event.kind, event.purpose, event.explicit, event.recordedAt])).toEqual([
        [S, 'grant', 'personalize.content', true, '2026-01-02T03:04:05.000Z'],
        [T, 'object', 'analytics', false, '2026-02-03T03:05:06.000Z'],
        [T, 'grant', 'marketing.advertising', false, '2025-01-01T08:30:00.000Z'],
      ]);
      expect(events.every((event) => event.receiptId)).toBe(true);
    });

    it('gives statements effect in the order they were made: an imported older grant does not override a later withdrawal', async () => {
      const [U, V] = ['cus_0000_life_order_u', 'cus_0000_life_order_v'];
      await addCustomer(candor, U);
      await addCustomer(candor, V);
      const at = (iso: string) => new Date(iso);
      const consent = candor.services.consent;
      // U withdrew on the privacy page; then a CRM export brings an older grant of the broader purpose.
      await consent.append({ subjectId: U, kind: 'withdraw', purpose: 'personalize.content', source: 'privacy-page', actorId: SUBJECT_ACTOR_ID, recordedAt: at('2026-06-01T00:00:00Z') });
      await consent.appendMany([{ subjectId: U, kind: 'grant', purpose: 'personalize', source: 'crm-export', recordedAt: at('2025-01-01T00:00:00Z') }]);
      // V: one import whose rows are not in time order, and a later, narrower withdrawal in between.
      await consent.appendMany([
        { subjectId: V, kind: 'grant', purpose: 'personalize', source: 'crm-export', recordedAt: at('2025-06-01T00:00:00Z') },
        { subjectId: V, kind: 'withdraw', purpose: 'personalize', source: 'crm-export', recordedAt: at('2025-03-01T00:00:00Z') },
        { subjectId: V, kind: 'withdraw', purpose: 'personalize.content', source: 'crm-export', recordedAt: at('2025-04-01T00:00:00Z') },
      ]);
      const statements = async (subjectId: string) =>
        (await consent.states([subjectId]))[0].consents.map(({ purpose, granted }) => [purpose, granted]).sort(([a], [b]) => String(a).localeCompare(String(b)));
      // U: the grant covers the rest of `personalize`; the later, more specific withdrawal still holds.
      expect(await statements(U)).toEqual([
        ['personalize', true],
        ['personalize.content', false],
      ]);
      // V: the grant of 2025-06 was made after both withdrawals and replaces them.
      expect(await statements(V)).toEqual([['personalize', true]]);
      // The subject's history (their page, the subject-access report) lists the statements in the order made too.
      expect((await consent.history(U)).map((event) => [event.kind, event.recordedAt.slice(0, 10)])).toEqual([
        ['grant', '2025-01-01'],
        ['withdraw', '2026-06-01'],
      ]);
      const statementsOf = (state: SubjectState) => ({
        restricted: state.restricted,
        consents: [...state.consents].map(({ purpose, granted, explicit, recordedAt }) => [purpose, granted, explicit, recordedAt?.toISOString()]).sort(([a], [b]) => String(a).localeCompare(String(b))),
        objections: [...state.objections].map(({ purpose, objected }) => [purpose, objected]).sort(([a], [b]) => String(a).localeCompare(String(b))),
      });
      const expectProjectionToBeTheReplay = async () => {
        const replayed = replayLedger(await candor.services.dataSource.getRepository(ConsentEventEntity).find());
        for (const projected of await consent.states([...replayed.keys()])) expect([projected.subjectId, statementsOf(projected)]).toEqual([projected.subjectId, statementsOf(replayed.get(projected.subjectId)!)]);
      };
      await expectProjectionToBeTheReplay();
      // The upgrade's migration rebuilds a projection the older rule left wrong (here: U's withdrawal lost).
      await candor.services.dataSource.query("DELETE FROM consent_state WHERE subject_id = $1 AND purpose = 'personalize.content'".replace('$1', `'${U}'`));
      await upgradeWith(new ConsentInTheOrderMade1764500000000());
      expect(await statements(U)).toEqual([
        ['personalize', true],
        ['personalize.content', false],
      ]);
      await expectProjectionToBeTheReplay();
    });

    it("rejects a row without recordedAt: counted as made now, a legacy grant would undo the withdrawal the subject made since", async () => {
      const P = 'cus_0000_life_import_undated';
      await addCustomer(candor, P);
      now = Math.max(now, Date.parse('2026-11-29T13:00:00Z'));
      await candor.services.consent.append({ subjectId: P, kind: 'grant', purpose: 'marketing.communications', source: 'crm', recordedAt: new Date('2026-11-29T12:30:00Z') });
      expect((await email(P)).data).toEqual({ customer: { email: `${P}@secret.example` } });
      await new PrivacyService(candor.services, candor.services.fields).choose(P, 'marketing.communications', 'withdraw', 'page-withdrawal');
      now += 5 * 60_000; // a legacy CRM export is imported five minutes later
      const required =
        'recordedAt is required: when the statement was made (an import records existing statements; without a time it would count as made now, after everything the subject chose since)';
      const csv = join(directory, 'undated.csv');
      writeFileSync(csv, `subjectId,action,purpose,explicit,source,expiresAt,recordedAt\n${P},grant,marketing.communications,,legacy-crm,,\n`);
      const json = join(directory, 'undated.json');
      writeFileSync(json, JSON.stringify([{ subjectId: P, action: 'grant', purpose: 'marketing.communications', source: 'legacy-crm' }, { subjectId: P, action: 'grant', purpose: 'marketing.communications', source: 'legacy-crm', recordedAt: null }]));
      expect(await importConsents(candor.services.consent, csv, 'cli:test')).toEqual({ rows: 1, imported: 0, rejected: [{ row: 2, problem: required }] });
      expect(await importConsents(candor.services.consent, json, 'cli:test')).toEqual({ rows: 2, imported: 0, rejected: [{ row: 1, problem: required }, { row: 2, problem: required }] });
      const withheld = await email(P);
      expect([withheld.data, withheld.errors?.[0].extensions?.code]).toEqual([{ customer: { email: null } }, 'CONSENT_REQUIRED']);
    });

    it('rejects a recordedAt of a date alone: read as midnight UTC, a withdrawal that day would lose to a grant made at noon', async () => {
      const D = 'cus_0000_life_import_date_only';
      await addCustomer(candor, D);
      const header = 'subjectId,action,purpose,explicit,source,expiresAt,recordedAt';
      const file = join(directory, 'date-only.csv');
      writeFileSync(file, `${header}\n${D},grant,marketing.communications,,crm-export,,2026-11-28T12:30:00Z\n${D},withdraw,marketing.communications,,crm-export,,2026-11-28\n`);
      expect(await importConsents(candor.services.consent, file, 'cli:test')).toEqual({
        rows: 2,
        imported: 0,
        rejected: [{ row: 3, problem: 'recordedAt must be a date and time with its offset (2026-11-29T12:30:00Z): a date alone would be read as midnight UTC, before anything else said that day' }],
      });
      // Its time given (13:00 UTC), the withdrawal takes effect after the grant. An expiry may be a date alone (midnight UTC).
      const timed = join(directory, 'timed.csv');
      writeFileSync(timed, `${header}\n${D},grant,marketing.communications,,crm-export,2027-01-01,2026-11-28T12:30:00Z\n${D},withdraw,marketing.communications,,crm-export,,2026-11-28T14:00:00+01:00\n`);
      expect(await importConsents(candor.services.consent, timed, 'cli:test')).toEqual({ rows: 2, imported: 2, rejected: [] });
      expect((await candor.services.consent.history(D)).map((event) => [event.kind, event.recordedAt, event.expiresAt])).toEqual([
        ['grant', '2026-11-28T12:30:00.000Z', '2027-01-01T00:00:00.000Z'],
        ['withdraw', '2026-11-28T13:00:00.000Z', null],
      ]);
      expect((await candor.services.consent.states([D]))[0].consents.map(({ purpose, granted }) => [purpose, granted])).toEqual([['marketing.communications', false]]);
    });

    it('rejects a JSON row that names a key twice, as a CSV header naming a column twice is refused: JSON.parse would keep the last', async () => {
      const R = 'cus_0000_life_import_repeated_key';
      await addCustomer(candor, R);
      const file = join(directory, 'repeated-key.json');
      // A withdrawal that JSON.parse reads as a grant, between two rows read as written.
      const withdrawal = `{"subjectId":"${R}","action":"withdraw","purpose":"marketing.communications","source":"crm","recordedAt":"${MADE}"`;
      writeFileSync(file, `[\n  ${withdrawal}},\n  ${withdrawal},"action":"grant"},\n  ${withdrawal},"\\u0073ource":"crm"}\n]\n`);
      expect(await importConsents(candor.services.consent, file, 'cli:test')).toEqual({
        rows: 3,
        imported: 0,
        rejected: [
          { row: 2, problem: 'the key "action" appears twice' },
          { row: 3, problem: 'the key "source" appears twice' },
        ],
      });
      expect(await candor.services.consent.history(R)).toEqual([]);
    });

    it('shows how far it is on a terminal: rows checked, then statements written, every hundredth and the last', async () => {
      const file = join(directory, 'many.csv');
      const rows = Array.from({ length: 250 }, (_, index) => `${S},${index % 2 ? 'withdraw' : 'grant'},analytics,,crm-export,,${new Date(Date.UTC(2026, 0, 1) + index * 1_000).toISOString()}`);
      writeFileSync(file, `subjectId,action,purpose,explicit,source,expiresAt,recordedAt\n${rows.join('\n')}\n`);
      const err: string[] = [];
      const out: string[] = [];
      const code = await consentImport(candor.services, file, {}, { interactive: true, out: (text) => void out.push(text), err: (text) => void err.push(text) });
      expect([code, out]).toEqual([0, [`imported 250 consent statements from ${file} (each with its receipt)\n`]]);
      expect(err).toEqual([...['100', '200', '250'].map((done) => `\rchecking… ${done} of 250 rows`), ...['100', '200', '250'].map((done) => `\rimporting… ${done} of 250 rows`), '\r\x1b[K']);
    });

    it('refuses a file the ledger already holds, also when two runs of it race, unless --again', async () => {
      const file = join(directory, 'once.csv');
      writeFileSync(file, `subjectId,action,purpose,source,recordedAt\n${S},grant,analytics,crm-export,${MADE}\n${T},withdraw,analytics,crm-export,${MADE}\n`);
      const events = () => candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const before = await events();
      const runs = await Promise.all([cli('consent', 'import', file), cli('consent', 'import', file)]);
      expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
      const refused = runs.find((run) => run.code === 1)!;
      expect(refused.stderr.startsWith(`candor: ${file} was imported on `)).toBe(true);
      expect(refused.stderr).toMatch(/ by cli:\S+ \(2 statements, as .+\): nothing was imported — to record its statements once more, run it again with --again\n$/);
      expect(await events()).toBe(before + 2);
      expect((await cli('consent', 'import', file)).code).toBe(1);
      // Saved again by a spreadsheet or an editor (CRLF line ends, blank lines at the end), it is the same file.
      const resaved = join(directory, 'once-resaved.csv');
      writeFileSync(resaved, `${readFileSync(file, 'utf8').replace(/\n/g, '\r\n')}\r\n\r\n`);
      const resavedRun = await cli('consent', 'import', resaved);
      expect([resavedRun.code, resavedRun.stderr]).toEqual([1, expect.stringContaining(`(2 statements, as ${file}): nothing was imported`)]);
      expect(await events()).toBe(before + 2);
      const again = await cli('consent', 'import', file, '--again');
      expect([again.code, again.stdout]).toEqual([0, `imported 2 consent statements from ${file} (each with its receipt)\n`]);
      expect(await events()).toBe(before + 4);
    });

    it('knows a file imported before line ends were set aside by the digest of its text as it was', async () => {
      const legacy = join(directory, 'legacy-crlf.csv');
      const text = `subjectId,action,purpose,source,recordedAt\r\n${S},grant,analytics,crm-legacy,${MADE}\r\n`;
      writeFileSync(legacy, text);
      await candor.services.dataSource.getRepository(ConsentImportEntity).insert({ digest: createHash('sha256').update(text).digest('hex'), fileName: legacy, importedAt: '2026-01-01T00:00:00.000Z', statements: 1, actorId: 'cli:before' });
      const refused = await cli('consent', 'import', legacy);
      expect([refused.code, refused.stderr]).toEqual([1, `candor: ${legacy} was imported on 2026-01-01T00:00:00.000Z by cli:before (1 statement, as ${legacy}): nothing was imported — to record its statements once more, run it again with --again\n`]);
    });

    it('refuses each row whose statement the ledger holds, from a file of any shape, naming its entry: the file is refused whole; --check says the same, --again records them once more', async () => {
      const H = 'cus_0000_life_import_held';
      await addCustomer(candor, H);
      const events = () => candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const imported = join(directory, 'held-first.csv');
      writeFileSync(imported, `subjectId,action,purpose,source,recordedAt\n${H},grant,marketing.advertising,crm-export,2026-03-02T09:00:00Z\n${H},restrict,,crm-export,2026-03-02T10:00:00Z\n${H},lift_restriction,,crm-export,2026-03-02T11:00:00Z\n`);
      expect((await cli('consent', 'import', imported)).code).toBe(0);
      const onPage = await new PrivacyService(candor.services, candor.services.fields).choose(H, 'analytics.reporting', 'object', 'held-page-objection');
      const [grant, restriction] = await candor.services.consent.history(H);
      const before = await events();
      const held = (row: number, entry: ConsentEventEntity, by: string) =>
        `  row ${row}: the ledger holds this statement already (entry ${entry.id}, recorded ${entry.recordedAt} by ${by}): it would be recorded twice, each with a receipt (--again records it once more)`;
      const importer = `cli:${userInfo().username}`;
      // Keys in another order, the time with an offset, a purpose with spaces, another source: the same statements.
      // Row 2 is new (a second later); row 4 is the objection the subject made on their page, as another system exported it.
      const reshaped = join(directory, 'held-reshaped.json');
      writeFileSync(
        reshaped,
        JSON.stringify([
          { recordedAt: '2026-03-02T10:00:00+01:00', purpose: ' marketing.advertising ', source: 'crm-export-corrected', action: 'grant', subjectId: H },
          { subjectId: H, action: 'grant', purpose: 'marketing.advertising', source: 'crm-export', recordedAt: '2026-03-02T09:00:01Z' },
          { action: 'restrict', subjectId: H, source: 'crm-export', recordedAt: '2026-03-02T10:00:00.000Z' },
          { subjectId: H, action: 'object', purpose: 'analytics.reporting', source: 'web-export', recordedAt: onPage.recordedAt },
        ]),
      );
      const lines = [held(1, grant, importer), held(3, restriction, importer), held(4, onPage, 'the subject on their privacy page'), ''];
      const refused = await cli('consent', 'import', reshaped);
      expect([refused.code, refused.stderr]).toEqual([1, ['rejected 3 of 4 rows; nothing was imported:', ...lines].join('\n')]);
      const checked = await cli('consent', 'import', reshaped, '--check');
      expect([checked.code, checked.stdout, checked.stderr]).toEqual([1, '', ['rejected 3 of 4 rows; nothing was written:', ...lines].join('\n')]);
      // CSV, columns reordered, spaces around the values.
      const reordered = join(directory, 'held-reordered.csv');
      writeFileSync(reordered, `recordedAt,source,purpose,action,subjectId\n 2026-03-02T09:00:00Z , crm , marketing.advertising , grant , ${H} \n`);
      expect((await cli('consent', 'import', reordered)).stderr).toBe(['rejected 1 of 1 row; nothing was imported:', held(2, grant, importer), ''].join('\n'));
      expect(await events()).toBe(before);
      const again = await cli('consent', 'import', reshaped, '--again');
      expect([again.code, again.stdout]).toEqual([0, `imported 4 consent statements from ${reshaped} (each with its receipt)\n`]);
      expect(await events()).toBe(before + 4);
    });

    it('refuses the statements two files share when they are imported at once: the second to commit imports nothing', async () => {
      const R = 'cus_0000_life_import_held_race';
      await addCustomer(candor, R);
      const files = ['a', 'b'].map((name) => {
        const file = join(directory, `held-race-${name}.csv`);
        writeFileSync(file, `subjectId,action,purpose,source,recordedAt\n${R},grant,analytics,crm-${name},${MADE}\n${R},withdraw,marketing,crm-${name},${MADE}\n`);
        return file;
      });
      const runs = await Promise.all(files.map((file) => cli('consent', 'import', file)));
      expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
      const [grant, withdrawal] = await candor.services.consent.history(R);
      const held = (row: number, entry: ConsentEventEntity) => `  row ${row}: the ledger holds this statement already (entry ${entry.id}, recorded ${entry.recordedAt} by cli:${userInfo().username}): it would be recorded twice, each with a receipt (--again records it once more)`;
      expect(runs.find((run) => run.code === 1)!.stderr).toBe(['rejected 2 of 2 rows; nothing was imported:', held(2, grant), held(3, withdrawal), ''].join('\n'));
      expect((await candor.services.consent.history(R)).length).toBe(2);
    });

    it('looks for the statements again in the transaction that writes: one a racing run recorded after the check is refused there, and nothing is written', async () => {
      const L = 'cus_0000_life_import_held_late';
      await addCustomer(candor, L);
      const consent = candor.services.consent;
      const file = join(directory, 'held-late.csv');
      writeFileSync(file, `subjectId,action,purpose,source,recordedAt\n${L},grant,analytics,crm-export,${MADE}\n${L},withdraw,marketing,crm-export,${MADE}\n`);
      // Another run records the file's second statement just after this one looked for it.
      const look = consent.entriesHolding.bind(consent);
      const looking = jest.spyOn(consent, 'entriesHolding').mockImplementationOnce(async (changes, manager) => {
        const found = await look(changes, manager);
        await consent.append({ subjectId: L, kind: 'withdraw', purpose: 'marketing', source: 'other-run', actorId: 'cli:other', recordedAt: new Date(MADE) });
        return found;
      });
      try {
        const report = await importConsents(consent, file, 'cli:test');
        const [late] = await consent.history(L);
        expect(report).toEqual({
          rows: 2,
          imported: 0,
          rejected: [{ row: 3, problem: `the ledger holds this statement already (entry ${late.id}, recorded 2026-03-01T09:00:00.000Z by cli:other): it would be recorded twice, each with a receipt (--again records it once more)` }],
        });
        expect(looking).toHaveBeenCalledTimes(2);
      } finally {
        looking.mockRestore();
      }
      expect((await consent.history(L)).map((entry) => entry.source)).toEqual(['other-run']);
      // The file's record went with the statements: it can be imported once the row is left out.
      expect(await consent.importOf(createHash('sha256').update(readFileSync(file, 'utf8').trimEnd()).digest('hex'))).toBeNull();
    });

    // On PostgreSQL the writing transaction looks only once it holds its subjects' locks: a change of theirs
    // that commits while it waits for them is seen (looked for before the locks, it would be missed).
    if (driver === 'postgres')
      it('looks for the statements in the writing transaction only once it holds the subjects\' locks', async () => {
        const W = 'cus_0000_life_import_waits';
        await addCustomer(candor, W);
        const file = join(directory, 'held-waiting.csv');
        writeFileSync(file, `subjectId,action,purpose,source,recordedAt\n${W},grant,analytics,crm-export,${MADE}\n${W},withdraw,marketing,crm-export,${MADE}\n`);
        const racing = candor.services.dataSource.createQueryRunner();
        await racing.connect();
        await racing.startTransaction();
        try {
          // Another change of the subject holds its lock (as the ledger takes it: a few subjects are locked by id).
          await racing.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [0x636f6e, W]);
          const importing = importConsents(candor.services.consent, file, 'cli:test');
          await eventually(async () => (await candor.services.dataSource.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))[0].n > 0, 'the import waiting for the lock');
          await racing.manager.insert(ConsentEventEntity, { subjectId: W, kind: 'withdraw', purpose: 'marketing', explicit: false, source: 'other-run', expiresAt: null, recordedAt: new Date(MADE).toISOString(), actorId: 'cli:other', noticeVersion: null, receiptId: null });
          await racing.commitTransaction();
          const [late] = await candor.services.consent.history(W);
          expect(await importing).toEqual({
            rows: 2,
            imported: 0,
            rejected: [{ row: 3, problem: `the ledger holds this statement already (entry ${late.id}, recorded 2026-03-01T09:00:00.000Z by cli:other): it would be recorded twice, each with a receipt (--again records it once more)` }],
          });
        } finally {
          if (racing.isTransactionActive) await racing.rollbackTransaction();
          await racing.release();
        }
        expect((await candor.services.consent.history(W)).map((entry) => entry.source)).toEqual(['other-run']);
      });

    it('refuses as a whole a file that is not UTF-8, naming its first line that is not, and a header naming a column it does not know', async () => {
      const events = () => candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const before = await events();
      // Latin-1, as an older export writes "café": read as UTF-8 it would be stored, for good, as "caf\uFFFD".
      const latin1 = join(directory, 'latin1.csv');
      writeFileSync(latin1, Buffer.concat([Buffer.from(`subjectId,action,purpose,source,recordedAt\n${S},grant,analytics,`), Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from(`,${MADE}\n`)]));
      const notUtf8 = await cli('consent', 'import', latin1);
      expect([notUtf8.code, notUtf8.stderr]).toEqual([1, `candor: ${latin1} is not UTF-8 text (line 2 is not): save it as UTF-8 ("CSV UTF-8" in a spreadsheet) and import it again\n`]);
      const utf16 = join(directory, 'utf16.csv');
      writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`subjectId,action,purpose,source,recordedAt\n${S},grant,analytics,crm,${MADE}\n`, 'utf16le')]));
      expect((await cli('consent', 'import', utf16, '--check')).stderr).toBe(`candor: ${utf16} is not UTF-8 text (line 1 is not): save it as UTF-8 ("CSV UTF-8" in a spreadsheet) and import it again\n`);
      // A misspelt column is the file's mistake, told once, not once per row.
      const misspelt = join(directory, 'misspelt.csv');
      writeFileSync(misspelt, `subjectId,action,purpose,source,recorded_at\n${Array.from({ length: 50 }, () => `${S},grant,analytics,crm,${MADE}`).join('\n')}\n`);
      const header = await cli('consent', 'import', misspelt);
      expect([header.code, header.stderr]).toEqual([1, `candor: ${misspelt}: the header names 1 unknown column ("recorded_at"): the columns are subjectId, action, purpose, explicit, source, expiresAt, recordedAt\n`]);
      expect(await events()).toBe(before);
    });

    it('checks a file without writing it (--check): what would be imported or each rejected row, the run recorded', async () => {
      const events = () => candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const before = await events();
      const good = join(directory, 'checked.csv');
      writeFileSync(good, `subjectId,action,purpose,source,recordedAt\n${S},grant,marketing.advertising,crm-check,${MADE}\n${T},withdraw,marketing.advertising,crm-check,${MADE}\n`);
      const checked = await cli('consent', 'import', good, '--check');
      expect([checked.code, checked.stdout, checked.stderr]).toEqual([0, `checked ${good}: its 2 consent statements would be imported; nothing was written (run it without --check to import)\n`, '']);
      expect(await events()).toBe(before);
      const [run] = (await candor.services.accessLogReader.page({ reason: 'CONSENT_IMPORT_CHECKED' }, 10)).edges.map((edge) => edge.node);
      expect([run?.operationName, run?.actor.id?.startsWith('cli:'), run?.subjectId]).toEqual(['consent import --check', true, null]);
      const one = join(directory, 'checked-one.csv');
      writeFileSync(one, `subjectId,action,purpose,source,recordedAt\n${S},grant,marketing.advertising,crm-check-one,${MADE}\n`);
      expect((await cli('consent', 'import', one, '--check')).stdout).toBe(`checked ${one}: its 1 consent statement would be imported; nothing was written (run it without --check to import)\n`);
      const bad = join(directory, 'checked-bad.csv');
      writeFileSync(bad, `subjectId,action,purpose,source,recordedAt\n${S},grant,personalize.content,crm-export,${MADE}\ncus_0000_nobody,grant,analytics,crm-export,${MADE}\n`);
      const refused = await cli('consent', 'import', bad, '--check');
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([1, '', 'rejected 1 of 2 rows; nothing was written:\n  row 3: unknown subject "cus_0000_nobody"\n']);
      // A check records no file: the import that follows is not refused as a repeat, and a second check is.
      expect((await cli('consent', 'import', good)).code).toBe(0);
      expect(await events()).toBe(before + 2);
      const again = await cli('consent', 'import', good, '--check');
      expect([again.code, again.stderr.endsWith(': to check it for importing once more, add --again\n')]).toEqual([1, true]);
      const onceMore = await cli('consent', 'import', good, '--check', '--again');
      expect([onceMore.code, onceMore.stdout]).toEqual([0, expect.stringMatching(new RegExp(`^checked ${good}: its 2 consent statements would be imported once more \\(it was imported on \\S+ by cli:\\S+\\); nothing was written`))]);
      expect(await events()).toBe(before + 2);
    });

    it('imports nothing when any row is rejected, and reports each rejected row', async () => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const file = join(directory, 'bad.json');
      writeFileSync(
        file,
        JSON.stringify([
          { subjectId: S, action: 'grant', purpose: 'marketing.communications', source: 'crm', recordedAt: MADE },
          { subjectId: 'cus_nobody', action: 'grant', purpose: 'marketing', source: 'crm', recordedAt: MADE },
          { subjectId: S, action: 'like', purpose: 'marketing', source: 'crm', recordedAt: MADE },
          { subjectId: S, action: 'grant', purpose: 'marketing.spam', source: 'crm', recordedAt: MADE },
          { subjectId: S, action: 'grant', purpose: 'marketing', source: 'crm', shoeSize: 42, recordedAt: MADE },
          // Values of other JSON types are not read as their string forms ("cus_…", "[object Object]", "yes").
          { subjectId: [S], action: 'grant', purpose: 'marketing', source: 'crm', recordedAt: MADE },
          { subjectId: S, action: 'grant', purpose: 'marketing', source: { system: 'crm' }, recordedAt: MADE },
          { subjectId: S, action: 'grant', purpose: 'marketing', source: 'crm', explicit: ['yes'], recordedAt: MADE },
          { subjectId: S, action: 'grant', purpose: 'marketing', source: 'crm', explicit: true, expiresAt: 1_900_000_000_000, recordedAt: MADE },
          [S, 'grant', 'marketing'],
          { subjectId: S, action: 'withdraw', purpose: '', source: 'crm', recordedAt: MADE },
        ]),
      );
      const result = await cli('consent', 'import', file);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        [
          'rejected 10 of 11 rows; nothing was imported:',
          '  row 2: unknown subject "cus_nobody"',
          '  row 3: action must be one of grant, withdraw, object, withdraw_objection, restrict, lift_restriction',
          '  row 4: unknown purpose "marketing.spam"',
          '  row 5: unknown column "shoeSize"',
          '  row 6: subjectId must be a string',
          '  row 7: source must be a string',
          '  row 8: explicit must be true or false',
          '  row 9: expiresAt must be a string',
          '  row 10: not an object',
          '  row 11: withdraw needs the purpose it is about',
          '',
        ].join('\n'),
      );
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
    });

    it("rejects, when checking, a row whose expiry would fall behind its subject's later statement, as writing it would", async () => {
      const subject = 'cus_0000_life_expiry_behind';
      await addCustomer(candor, subject);
      const consent = candor.services.consent;
      now += 60_000; // another instance, its clock a minute ahead, recorded a statement
      await consent.append({ subjectId: subject, kind: 'withdraw', purpose: 'analytics', source: 'instance-ahead' });
      now -= 60_000;
      const row = { subjectId: subject, kind: 'grant' as const, purpose: 'analytics', source: 'crm', expiresAt: new Date(now + 30_000) };
      expect(await consent.check([row])).toEqual(new Map([[0, 'expiresAt must be a valid time after the statement takes effect']]));
      await expect(consent.appendMany([row])).rejects.toThrow('expiresAt must be a valid time after the statement takes effect');
    });

    it('prints the values a rejected row quotes inert: a terminal escape in a purpose or a column name does not reach the terminal', async () => {
      const file = join(directory, 'escapes.json');
      // ESC ] 0 ; … BEL would retitle the terminal; ESC [ 2 J would clear it.
      writeFileSync(file, JSON.stringify([{ subjectId: S, action: 'grant', purpose: 'x\u001b]0;pwned\u0007', source: 'crm', recordedAt: MADE }, { subjectId: S, action: 'grant', purpose: 'marketing', source: 'crm', '\u001b[2J': 1 }]));
      const result = await cli('consent', 'import', file);
      expect([result.code, result.stderr]).toEqual([1, ['rejected 2 of 2 rows; nothing was imported:', '  row 1: unknown purpose "x\uFFFD]0;pwned\uFFFD"', '  row 2: unknown column "\uFFFD[2J"', ''].join('\n')]);
      const header = join(directory, 'escaped-header.csv');
      writeFileSync(header, `subjectId,action,purpose,purpose\u001b[2J,purpose\u001b[2J\n${S},grant,marketing,a,b\n`);
      expect((await cli('consent', 'import', header)).stderr).toBe(`candor: ${header}: the column "purpose\uFFFD[2J" appears twice in the header\n`);
    });

    it('numbers rejected CSV rows by the line they start on, rejects a row of the wrong width alone, and statements the ledger would misread', async () => {
      const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
      const file = join(directory, 'lines.csv');
      // Line 2 is blank, the row of line 3 spans two lines (a quoted line break), line 5 has a field too many.
      writeFileSync(
        file,
        `subjectId,action,purpose,explicit,source,recordedAt\r\n\r\n${S},grant,marketing.advertising,,"crm\r\nexport",${MADE}\r\n${S},restrict,marketing,,crm,${MADE}\r\n${S},grant,marketing,,crm,${MADE},surplus\r\n${S},withdraw,marketing,yes,crm,${MADE}\r\n`,
      );
      const result = await cli('consent', 'import', file);
      expect([result.code, result.stderr]).toEqual([
        1,
        [
          'rejected 4 of 4 rows; nothing was imported:',
          // A source is shown in a line: a quoted line break in it is refused too.
          '  row 3: source must be plain text in a line (it holds control or invisible characters)',
          '  row 5: restrict applies to all processing: it takes no purpose (got "marketing")',
          '  row 6: has 7 fields where the header has 6',
          '  row 7: explicit applies to a grant only',
          '',
        ].join('\n'),
      ]);
      const short = join(directory, 'short.csv');
      writeFileSync(short, `subjectId,action,purpose,source,recordedAt\n${S}\n`);
      expect((await cli('consent', 'import', short)).stderr).toBe('rejected 1 of 1 row; nothing was imported:\n  row 2: has 1 field where the header has 5\n');
      const twice = join(directory, 'twice.csv');
      writeFileSync(twice, `subjectId,action,purpose,purpose,source\n${S},grant,marketing,analytics,crm\n`);
      expect((await cli('consent', 'import', twice)).stderr).toBe(`candor: ${twice}: the column "purpose" appears twice in the header\n`);
      const stray = join(directory, 'stray.csv');
      writeFileSync(stray, `subjectId,action,purpose,source,\n${S},grant,marketing,crm,\n`);
      expect((await cli('consent', 'import', stray)).stderr).toBe(`candor: ${stray}: column 5 of the header has no name (a stray cell or trailing comma?)\n`);
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
    });
  });

  // SQLite runs one write transaction at a time; on PostgreSQL a consent change and an erasure overlap.
  if (driver === 'postgres')
    it('records no consent after an erasure that committed while the consent change was being made', async () => {
      const E = 'cus_0000_life_race';
      await addCustomer(candor, E);
      // The erasure's update of the customer row is made, not yet committed, when the grant starts.
      const erasing = candor.services.dataSource.createQueryRunner();
      await erasing.connect();
      await erasing.startTransaction();
      try {
        await erasing.query('UPDATE customer SET erased_at = $1, email = NULL WHERE id = $2', [new Date(now).toISOString(), E]);
        const granting = candor.services.consent.append({ subjectId: E, kind: 'grant', purpose: 'marketing.communications', source: 'race' }).then(
          () => 'granted',
          (error: Error) => error.message,
        );
        // The grant waits on the row, where it is seen waiting; then the erasure commits.
        await eventually(async () => (await candor.services.dataSource.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))[0].n > 0, 'the grant waiting for the erasure');
        await erasing.commitTransaction();
        expect(await granting).toBe(`unknown subject "${E}"`);
      } finally {
        if (erasing.isTransactionActive) await erasing.rollbackTransaction();
        await erasing.release();
      }
      expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: E })).toBe(0);
    });

  it('erases a subject: personal data gone, log unlinked but verifying, answered by the API and the CLI', async () => {
    const V = 'cus_0000_life_v';
    await addCustomer(candor, V, { createdAt: '2025-03-17T09:26:53.000Z' });
    await candor.services.dataSource.getRepository(WatchEventEntity).insert({ id: `${V}_w`, customerId: V, title: 'Orbit', watchedAt: '2026-11-01T00:00:00.000Z', seconds: 60 });
    await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${V}") { email phone } }` });
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: V })).toBe(1);
    // A grant the ledger keeps after the erasure: before it, it lists the subject among those marketing may address.
    expect((await grant(V, 'marketing.communications')).body.errors).toBeUndefined();
    const permittedList = `{ customers(limit: 1000, onlyPermitted: true) { id } }`;
    const listedBefore = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: permittedList });
    expect((listedBefore.body.data!.customers as Array<{ id: string }>).map((listed) => listed.id)).toContain(V);
    const [payment] = await candor.services.dataSource.getRepository(PaymentEntity).findBy({ customerId: V });
    const [{ receiptId }] = await candor.services.dataSource.getRepository(ConsentEventEntity).findBy({ subjectId: V });
    // Marketing reads the e-mail on that consent: its record names the receipt.
    expect(await email(V)).toEqual({ data: { customer: { email: expect.any(String) } } });
    const namingReceipt = async () => (await candor.services.accessLogReader.page({ reason: 'CONSENT_GIVEN' }, 500)).edges.filter(({ node }) => node.consentReceiptId === receiptId).length;
    expect(await namingReceipt()).toBe(1);
    const response = await manage(`mutation { eraseSubject(subjectId: "${V}") { subjectId watchEventsDeleted paymentsKept messagesErased } }`);
    expect(response.body).toEqual({ data: { eraseSubject: { subjectId: V, watchEventsDeleted: 1, paymentsKept: 1, messagesErased: 0 } } });
    const customer = await candor.services.dataSource.getRepository(CustomerEntity).findOneByOrFail({ id: V });
    expect([customer.fullName, customer.email, customer.phone, customer.birthDate, customer.postalAddress, customer.accessibilityNeeds]).toEqual([null, null, null, null, null, null]);
    expect(customer.erasedAt).toBeTruthy();
    // When the account was created is personal too: only its month stays (the coverage report counts by it).
    expect(customer.createdAt).toBe('2025-03-01T00:00:00.000Z');
    // The viewing history is deleted; the payment keeps what bookkeeping needs, without the card digits.
    expect(await candor.services.dataSource.getRepository(WatchEventEntity).countBy({ customerId: V })).toBe(0);
    expect(await candor.services.dataSource.getRepository(PaymentEntity).findOneByOrFail({ id: payment.id })).toEqual({ ...payment, cardLast4: '****' });
    expect(payment.cardLast4).toMatch(/^\d{4}$/);
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: V })).toBe(0);
    await expect(candor.services.accessLogReader.page({ subjectId: V }, 10)).rejects.toMatchObject({ extensions: { reason: 'UNKNOWN_SUBJECT' } }); // erased: its records are attributed to no one
    expect((await candor.services.verifyAccessLog()).verified).toBe(true);
    // The ledger keeps the proof of consent under an id that maps back to no one, and so does the receipt the
    // log's record names: the log is not tied to the subject through it. Their current state is gone.
    const ledger = candor.services.dataSource;
    expect([await ledger.getRepository(ConsentEventEntity).countBy({ subjectId: V }), await ledger.getRepository(ConsentReceiptEntity).countBy({ subjectId: V }), await ledger.getRepository(ConsentStateEntity).countBy({ subjectId: V })]).toEqual([0, 0, 0]);
    const kept = await ledger.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: receiptId! });
    expect(kept.subjectId).toMatch(/^erased_[0-9a-f]{24}$/);
    expect(kept.document).not.toContain(V);
    expect(JSON.parse(kept.document)).toEqual(expect.objectContaining({ piiPrincipalId: kept.subjectId, consentReceiptID: receiptId, action: 'grant' }));
    expect(kept.digest).toBe(createHash('sha256').update(kept.document, 'utf8').digest('hex'));
    expect(await ledger.getRepository(ConsentEventEntity).findOneByOrFail({ receiptId: receiptId! })).toEqual(expect.objectContaining({ subjectId: kept.subjectId, kind: 'grant', purpose: 'marketing.communications' }));
    expect(await namingReceipt()).toBe(1);
    // Erased is gone: not served, not listed (its old consents would still filter it in), no consent taken,
    // and no new record links a pseudonym to its id again.
    const served = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `{ customer(id: "${V}") { id email } ${permittedList.slice(1, -1)} }` });
    expect(served.body.data!.customer).toBeNull();
    expect((served.body.data!.customers as Array<{ id: string }>).map((listed) => listed.id)).not.toContain(V);
    expect((await grant(V, 'marketing.communications')).body.errors?.[0]?.message).toBe(`unknown subject "${V}"`);
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: V })).toBe(0);
    // A record that reaches the log after the erasure (a request that read the subject just before it) is kept,
    // under a pseudonym that maps to no one.
    const late = `late-after-erasure-${V}`;
    await candor.services.accessLog.append([
      { at: new Date(), requestId: late, actor: null, purpose: 'essential.service', operationName: 'Late', subjectId: V, coordinate: 'Customer.email', category: 'user.contact.email', decision: 'RELEASED', reason: 'LEGAL_BASIS', legalBasis: 'contract' },
    ]);
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: V })).toBe(0);
    await expect(candor.services.accessLogReader.page({ subjectId: V }, 10)).rejects.toMatchObject({ extensions: { reason: 'UNKNOWN_SUBJECT' } }); // erased: its records are attributed to no one
    const lateRecords = await candor.services.accessLogReader.page({ requestId: late }, 10);
    expect(lateRecords.edges.map(({ node }) => node.subjectId)).toEqual([null]);
    const again = await manage(`mutation { eraseSubject(subjectId: "${V}") { subjectId } }`);
    expect(again.body.errors?.[0]).toEqual(expect.objectContaining({ message: expect.stringContaining('already erased'), extensions: { code: 'BAD_USER_INPUT', argument: 'subjectId', reason: 'UNKNOWN_SUBJECT' } }));
    const cliErase = await runCli(['subject', 'erase', '--subject', T], cliEnv());
    expect(cliErase.code).toBe(0);
    expect(cliErase.stdout).toContain(`erased ${T}`);
    // An erased subject is known as such: there is no page to link to.
    const erasedLink = await runCli(['subject', 'link', '--subject', T], cliEnv());
    expect([erasedLink.code, erasedLink.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^candor: subject "${T}" was erased on \\S+: there is no page to link to\n$`))]);
    const verify = await runCli(['audit', 'verify'], cliEnv());
    expect(verify.code).toBe(0);
  });

  it('says a change was made when the access log fails after it committed: AUDIT_UNAVAILABLE, changeMade', async () => {
    const W = 'cus_0000_life_withdrawn_unlogged';
    await addCustomer(candor, W);
    const outage = jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValueOnce(new Error('log down'));
    try {
      const withdrawn = await manage('mutation W($input: PurposeStatementInput!) { withdrawConsent(input: $input) { id kind purpose } }', { input: { subjectId: W, purpose: 'marketing.communications', source: 'test' } });
      expect([withdrawn.status, withdrawn.body.data, withdrawn.body.errors]).toEqual([
        503,
        undefined,
        [{ message: 'the change was made, but the access log is unavailable: its record is not written, and no governed data is released — check before repeating it', extensions: { code: 'AUDIT_UNAVAILABLE', changeMade: true } }],
      ]);
    } finally {
      outage.mockRestore();
    }
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).findBy({ subjectId: W })).toEqual([expect.objectContaining({ kind: 'withdraw', purpose: 'marketing.communications' })]);
    const logDown = () => jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValueOnce(new Error('log down'));
    // Nothing changed: an answer to no message (a root __typename is no change either).
    const noAnswer = logDown();
    try {
      const unanswered = await manage('mutation { __typename answerQuestion(input: { id: "999999", answer: "x" }) { id } }');
      expect(unanswered.body.errors?.map((error) => error.extensions)).toEqual([{ code: 'AUDIT_UNAVAILABLE' }]);
    } finally {
      noAnswer.mockRestore();
    }
    // In reject mode too: the change is made before the response is judged.
    const rejectMode = logDown();
    try {
      const granted = await candor.query({
        key: KEYS.compliance,
        purpose: 'essential.legal_obligation',
        headers: { 'X-Governance-Mode': 'reject' },
        query: 'mutation G($input: GrantConsentInput!) { grantConsent(input: $input) { id kind } }',
        variables: { input: { subjectId: W, purpose: 'marketing.communications', source: 'test' } },
      });
      expect(granted.body.errors?.map((error) => error.extensions)).toEqual([{ code: 'AUDIT_UNAVAILABLE', changeMade: true }]);
    } finally {
      rejectMode.mockRestore();
    }
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: W, kind: 'grant' })).toBe(1);
  });

  it('records each change of a subject\'s choices made through GraphQL with that subject (CHOICE_RECORDED), and says when it cannot', async () => {
    const C = 'cus_0000_life_choices_recorded';
    await addCustomer(candor, C);
    const recorded = async (requestId: string | null) =>
      (await candor.services.accessLogReader.page({ requestId: requestId! }, 50)).edges.map((edge) => [edge.node.coordinate, edge.node.subjectId, edge.node.decision, edge.node.reason, edge.node.actor.id]);
    // Two changes in one operation (aliases), nothing personal selected: each is recorded with its subject.
    const changed = await manage(`mutation {
      granted: grantConsent(input: { subjectId: "${C}", purpose: "marketing.communications", source: "call" }) { __typename }
      restricted: restrictProcessing(input: { subjectId: "${C}", restricted: true, source: "call" }) { __typename }
    }`);
    expect(changed.body.errors).toBeUndefined();
    expect(await recorded(changed.headers.get('x-request-id'))).toEqual(
      expect.arrayContaining([
        ['Mutation.grantConsent', C, 'RELEASED', 'CHOICE_RECORDED', 'compliance-office'],
        ['Mutation.restrictProcessing', C, 'RELEASED', 'CHOICE_RECORDED', 'compliance-office'],
      ]),
    );
    // A call that failed changed nothing: no record names a subject for it.
    const unknown = await manage('mutation { withdrawConsent(input: { subjectId: "cus_0000_life_nobody", purpose: "marketing.communications", source: "call" }) { __typename } }');
    expect(unknown.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await recorded(unknown.headers.get('x-request-id'))).filter(([, subjectId]) => subjectId !== null)).toEqual([]);
    // With the log down, the change stands and the answer says so, whatever the selection.
    const outage = jest.spyOn(candor.services.accessLog, 'appendEntries').mockRejectedValueOnce(new Error('log down'));
    try {
      const lifted = await manage(`mutation { restrictProcessing(input: { subjectId: "${C}", restricted: false, source: "call" }) { __typename } }`);
      expect([lifted.status, lifted.body.data, lifted.body.errors?.map((error) => error.extensions)]).toEqual([503, undefined, [{ code: 'AUDIT_UNAVAILABLE', changeMade: true }]]);
    } finally {
      outage.mockRestore();
    }
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: C, kind: 'lift_restriction' })).toBe(1);
  });

  it("reads a subject's ledger for a consent manager: newest first, bounded, each read recorded with the subject (CHOICES_READ) and its fields decided", async () => {
    const H = 'cus_0000_life_history_read';
    await addCustomer(candor, H);
    await grant(H, 'marketing.communications');
    await manage(`mutation { objectToProcessing(input: { subjectId: "${H}", purpose: "analytics", source: "call" }) { id } }`);
    const history = await manage(`query History { consentHistory(subjectId: "${H}") { kind purpose source } }`);
    expect(history.body).toEqual({ data: { consentHistory: [{ kind: 'OBJECT', purpose: 'analytics', source: 'call' }, { kind: 'GRANT', purpose: 'marketing.communications', source: 'test' }] } });
    const records = (await candor.services.accessLogReader.page({ requestId: history.headers.get('x-request-id')! }, 50)).edges.map(({ node }) => [node.coordinate, node.subjectId, node.decision, node.reason]);
    expect(records).toEqual(expect.arrayContaining([['Query.consentHistory', H, 'RELEASED', 'CHOICES_READ'], ['ConsentEntry.kind', H, 'RELEASED', 'LEGAL_BASIS']]));
    // Even with nothing personal selected, the read names the subject: the list tells that they stated something.
    const bare = await manage(`{ consentHistory(subjectId: "${H}", first: 1) { id } }`);
    expect((bare.body.data?.consentHistory as unknown[]).length).toBe(1);
    expect((await candor.services.accessLogReader.page({ requestId: bare.headers.get('x-request-id')!, reason: 'CHOICES_READ' }, 10)).edges.map(({ node }) => node.subjectId)).toEqual([H]);
    // Bad input is refused, with nothing recorded against a subject.
    for (const [query, argument] of [
      ['{ consentHistory(subjectId: "cus_0000_life_nobody") { id } }', { argument: 'subjectId', reason: 'UNKNOWN_SUBJECT' }],
      [`{ consentHistory(subjectId: "${H}", first: 501) { id } }`, { argument: 'first' }],
    ] as const) {
      const refused = await manage(query);
      expect([refused.body.data, refused.body.errors?.[0].extensions]).toEqual([{ consentHistory: null }, expect.objectContaining({ code: 'BAD_USER_INPUT', ...argument })]);
      // Recorded as a refused call of the field, naming no subject (an id it does not know is nobody's).
      const records = (await candor.services.accessLogReader.page({ requestId: refused.headers.get('x-request-id')! }, 10)).edges.map(({ node }) => [node.coordinate, node.subjectId, node.decision, node.reason]);
      expect(records).toEqual([['Query.consentHistory', null, 'REFUSED', 'BAD_USER_INPUT']]);
    }
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: 'cus_0000_life_nobody' })).toBe(0);
    const support = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ consentHistory(subjectId: "${H}") { kind } }` });
    expect([support.body.data, support.body.errors?.[0].extensions?.code]).toEqual([{ consentHistory: null }, 'FORBIDDEN']);
  });

  it('erases a subject once when several erasures arrive at once: one succeeds, the others say it was erased', async () => {
    const R = 'cus_0000_life_erased_at_once';
    await addCustomer(candor, R);
    const answers = await Promise.all(Array.from({ length: 4 }, () => manage(`mutation { eraseSubject(subjectId: "${R}") { subjectId erasedAt } }`)));
    const succeeded = answers.filter((answer) => answer.body.data?.eraseSubject);
    expect(succeeded).toHaveLength(1);
    const { erasedAt } = succeeded[0].body.data!.eraseSubject as { erasedAt: string };
    for (const answer of answers.filter((other) => other !== succeeded[0])) {
      expect(answer.body.errors?.[0]).toEqual(expect.objectContaining({ message: `subject "${R}" was already erased on ${erasedAt}`, extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }));
    }
    expect((await candor.services.dataSource.getRepository(CustomerEntity).findOneByOrFail({ id: R })).erasedAt).toBe(erasedAt);
    // One erasure recorded: the refused ones erased nothing.
    const recorded = await Promise.all(answers.map(async (answer) => (await candor.services.accessLogReader.page({ requestId: answer.headers.get('x-request-id')!, reason: 'SUBJECT_ERASED' }, 10)).totalCount));
    expect(recorded.sort()).toEqual([0, 0, 0, 1]);
  });

  it("erases a customer's domain data once, even between two transactions that overlap", async () => {
    const D = 'cus_0000_life_erased_domain_once';
    await addCustomer(candor, D);
    const at = new Date().toISOString();
    const erased = await Promise.all([1, 2].map(() => inTransaction(candor.services.dataSource, (manager) => candor.services.domain.eraseCustomer(D, at, manager))));
    expect(erased.filter((result) => result === undefined)).toHaveLength(1);
  });

  it('lets an erasure that waited for one whose log part failed finish it', async () => {
    const F = 'cus_0000_life_erased_after_failure';
    await addCustomer(candor, F);
    const outage = jest.spyOn(candor.services.accessLog, 'append').mockRejectedValueOnce(new Error('log down'));
    try {
      // Whichever runs first meets the failing log; the other waits for it, then finishes its erasure.
      const answers = await Promise.all([1, 2].map(() => manage(`mutation { eraseSubject(subjectId: "${F}") { subjectId watchEventsDeleted } }`)));
      expect(answers.map((answer) => answer.body.errors?.[0]?.extensions?.code ?? answer.body.data).sort()).toEqual(['AUDIT_UNAVAILABLE', { eraseSubject: { subjectId: F, watchEventsDeleted: 0 } }].sort());
    } finally {
      outage.mockRestore();
    }
    expect(await candor.services.dataSource.getRepository(ErasedSubjectEntity).existsBy({ subjectId: F })).toBe(true);
  });

  it('pseudonymises on upgrade the consent ledger of subjects erased before erasures did (migration 1764580000000)', async () => {
    const O = 'cus_0000_life_erased_before';
    await addCustomer(candor, O);
    const granted = await candor.services.consent.append({ subjectId: O, kind: 'grant', purpose: 'marketing.communications', source: 'test' });
    // Erased as the version before erased: the domain data only, the ledger left under the subject's id.
    await candor.services.dataSource.getRepository(CustomerEntity).update({ id: O }, { erasedAt: new Date(now).toISOString() });
    const ledger = candor.services.dataSource;
    const underSubject = async () => [await ledger.getRepository(ConsentEventEntity).countBy({ subjectId: O }), await ledger.getRepository(ConsentReceiptEntity).countBy({ subjectId: O }), await ledger.getRepository(ConsentStateEntity).countBy({ subjectId: O })];
    expect(await underSubject()).toEqual([1, 1, 1]);
    await upgradeWith(new ErasedSubjectsConsentPseudonymised1764580000000());
    expect(await underSubject()).toEqual([0, 0, 0]);
    const kept = await ledger.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: granted.receiptId! });
    expect([kept.subjectId, JSON.parse(kept.document).piiPrincipalId, kept.digest]).toEqual([expect.stringMatching(/^erased_[0-9a-f]{24}$/), kept.subjectId, createHash('sha256').update(kept.document, 'utf8').digest('hex')]);
    expect((await ledger.getRepository(ConsentEventEntity).findOneByOrFail({ id: granted.id })).subjectId).toBe(kept.subjectId);
  });

  it.each([
    ['a subject the log has records of', true],
    ['a subject nobody ever read (no mapping yet)', false],
  ])('an erasure the log failed to finish is finished by erasing again: %s', async (_case, read) => {
    const E = `cus_0000_life_e${read ? 'r' : 'n'}`;
    await addCustomer(candor, E);
    if (read) await candor.query({ key: KEYS.support, purpose: 'essential.service', query: `{ customer(id: "${E}") { email } }` });
    const mappings = () => candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: E });
    const erasedInTheLog = () => candor.services.dataSource.getRepository(ErasedSubjectEntity).existsBy({ subjectId: E });
    expect(await mappings()).toBe(read ? 1 : 0);
    const erasureRecords = async () => (await candor.services.accessLogReader.page({ reason: 'SUBJECT_ERASED' }, 500)).totalCount;
    const erasuresBefore = await erasureRecords();
    // The log is down for the erasure's own record: the domain part has committed by then.
    const outage = jest.spyOn(candor.services.accessLog, 'append').mockRejectedValueOnce(new Error('log down'));
    try {
      const failed = await manage(`mutation { eraseSubject(subjectId: "${E}") { subjectId } }`);
      expect(failed.body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([
        ['AUDIT_UNAVAILABLE', `subject "${E}" was erased from the domain data, but the access log could not be updated (it still links their records): erase them again to finish`],
      ]);
    } finally {
      outage.mockRestore();
    }
    expect((await candor.services.dataSource.getRepository(CustomerEntity).findOneByOrFail({ id: E })).erasedAt).toBeTruthy();
    expect([await mappings(), await erasedInTheLog()]).toEqual([read ? 1 : 0, false]);
    const finished = await manage(`mutation { eraseSubject(subjectId: "${E}") { subjectId watchEventsDeleted } }`);
    expect(finished.body).toEqual({ data: { eraseSubject: { subjectId: E, watchEventsDeleted: 0 } } });
    expect([await mappings(), await erasedInTheLog()]).toEqual([0, true]);
    expect(await erasureRecords()).toBe(erasuresBefore + 1);
    await expect(candor.services.accessLogReader.page({ subjectId: E }, 10)).rejects.toMatchObject({ extensions: { reason: 'UNKNOWN_SUBJECT' } }); // erased: its records are attributed to no one
    const again = await manage(`mutation { eraseSubject(subjectId: "${E}") { subjectId } }`);
    expect(again.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await candor.services.verifyAccessLog()).verified).toBe(true);
  });

  it('refuses a question whose context no form of the page sends, before saving or recording anything', async () => {
    const page = new PrivacyService(candor.services, candor.services.fields);
    const messages = () => candor.services.dataSource.getRepository('SubjectMessageEntity').count();
    const before = await messages();
    // The longest a form sends: a usage line of a team of 200 characters, for a purpose of 128.
    const longestForm = `usage:2026-11:${'t'.repeat(200)}:${'p'.repeat(128)}`;
    for (const context of ['purpose:x\u0000y', `${longestForm}x`, 'zzz', 'usage:2026-13:team:analytics', 'usage:2026-11:team']) {
      await expect(page.ask(S, context, 'Why?', 'bad-context')).rejects.toThrow('this question does not come from a form of this page');
    }
    expect(await messages()).toBe(before);
    await page.ask(S, longestForm, 'Why does this team use my data?', 'longest-context');
    expect(await messages()).toBe(before + 1);
    expect((await candor.services.accessLogReader.page({ requestId: 'bad-context' }, 10)).totalCount).toBe(0);
  });

  it('refuses a question holding control characters (a terminal would run them), and prints older ones inert', async () => {
    const page = new PrivacyService(candor.services, candor.services.fields);
    for (const body of ['Clear \u001b[2J the screen', 'CSI \u009b2J', 'reversed \u202e text']) {
      await expect(page.ask(S, undefined, body, 'control-characters')).rejects.toThrow('please write your question as plain text');
    }
    expect((await page.ask(S, undefined, 'Two lines\nand a\ttab are fine', 'plain-question')).body).toBe('Two lines\nand a\ttab are fine');
    // A browser sends a textarea's line breaks as CRLF.
    expect((await page.ask(S, undefined, 'Typed in a browser,\r\non two lines', 'browser-question')).body).toBe('Typed in a browser,\non two lines');
    const older = await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId: S, context: null, body: 'saved before: \u001b]8;;http://evil.example\u0007link', createdAt: new Date(now).toISOString() });
    const listed = await runCli(['inbox', 'list'], cliEnv());
    expect(listed.stdout).toContain(`#${older.id}`);
    expect(listed.stdout).toContain('saved before: \uFFFD]8;;http://evil.example\uFFFDlink');
    expect(listed.stdout).not.toMatch(/[\u001b\u0007]/);
  });

  it('bounds what a link holder can pile onto their page: at most 20 questions waiting for an answer, the newest 20 messages shown, all in the download', async () => {
    const Q = 'cus_0000_life_many_questions';
    await addCustomer(candor, Q);
    const page = new PrivacyService(candor.services, candor.services.fields);
    const messages = () => candor.services.dataSource.getRepository(SubjectMessageEntity).countBy({ subjectId: Q });
    for (let index = 1; index <= MAX_UNANSWERED_QUESTIONS; index++) await page.ask(Q, undefined, `Question ${index}`, `many-questions-${index}`);
    await expect(page.ask(Q, undefined, 'One more', 'many-questions-refused')).rejects.toThrow(`you have ${MAX_UNANSWERED_QUESTIONS} questions waiting for our answer`);
    expect(await messages()).toBe(MAX_UNANSWERED_QUESTIONS);
    expect((await candor.services.accessLogReader.page({ requestId: 'many-questions-refused' }, 10)).totalCount).toBe(0);
    // An answer frees a place.
    const [oldest] = await candor.services.dataSource.getRepository(SubjectMessageEntity).find({ where: { subjectId: Q }, order: { id: 'ASC' }, take: 1 });
    await new Inbox(candor.services.dataSource, candor.services.clock).answer(oldest.id, 'Because you asked.', 'compliance-office');
    await page.ask(Q, undefined, 'One more', 'many-questions-after-answer');
    const view = await page.view(Q, 'many-questions-view');
    expect(view.messages.map((message) => message.body)).toEqual(['One more', ...Array.from({ length: MESSAGES_SHOWN - 1 }, (_, index) => `Question ${MAX_UNANSWERED_QUESTIONS - index}`)]);
    expect(view.earlierMessages).toBe(MAX_UNANSWERED_QUESTIONS + 1 - MESSAGES_SHOWN);
    expect(renderPrivacyPage(view, 'token', candor.services)).toContain(`${MAX_UNANSWERED_QUESTIONS + 1 - MESSAGES_SHOWN} earlier message`);
    expect((await page.export(Q, 'many-questions-export')).messages).toHaveLength(MAX_UNANSWERED_QUESTIONS + 1);
  });

  it('serves the page so that its link does not leak, accepts a long message in any script, and bounds how often a link is used', async () => {
    const R = 'cus_0000_life_http';
    await addCustomer(candor, R);
    const base = candor.server.url.replace('/graphql', '');
    const token = createSubjectToken(candor.services.config.secret, R, new Date(now + 3_600_000));
    const view = await fetch(`${base}/privacy?t=${token}&done=${encodeURIComponent('Your account is suspended: call +1 555 0100')}`);
    expect(view.status).toBe(200);
    expect(Object.fromEntries(['referrer-policy', 'cache-control', 'x-frame-options', 'x-content-type-options'].map((name) => [name, view.headers.get(name)]))).toEqual({
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
    });
    expect(view.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // A link made to live longer than the cap (by hand, or before it existed) opens nothing.
    const outlived = createSubjectToken(candor.services.config.secret, R, new Date(now + 31 * 86_400_000));
    expect((await fetch(`${base}/privacy?t=${outlived}`)).status).toBe(400);
    // Only the page's own notices: a link cannot make the page say something else.
    expect(await view.text()).not.toContain('suspended');
    const question = await fetch(`${base}/privacy/question`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, body: 'Ж'.repeat(3_000) }) });
    expect([question.status, question.headers.get('location')]).toEqual([303, expect.stringContaining('done=question')]);
    const tooLong = await fetch(`${base}/privacy/question`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, body: '语'.repeat(9_000) }) });
    expect([tooLong.status, tooLong.headers.get('content-type'), (await tooLong.text()).includes('Your message is too long')]).toEqual([413, expect.stringContaining('text/html'), true]);
    // A link is not a way to load the log without bound: past a minute's worth of requests, a page says so. Sent
    // at once: one after another, each recording a view, they may not outrun the refill (one a second) on a slow machine.
    const statuses = (await Promise.all(Array.from({ length: 70 }, () => fetch(`${base}/privacy/receipt?t=${token}&id=none`)))).map((response) => response.status);
    expect(new Set(statuses)).toEqual(new Set([404, 429]));
    expect((await fetch(`${base}/privacy/receipt?t=${token}&id=none`)).status).toBe(429);
  });

  it("withholds the fields of a subject erased between the read of their record and the read of their choices: an objection does not lapse with the erasure", async () => {
    const O = 'cus_0000_life_erased_mid_request';
    await addCustomer(candor, O);
    await candor.services.consent.append({ subjectId: O, kind: 'object', purpose: 'analytics', source: 'test' });
    const read = () => candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: `{ customer(id: "${O}") { displayName } }` });
    const objected = await read();
    expect([objected.body.data, objected.body.errors?.map((error) => error.extensions?.code)]).toEqual([{ customer: { displayName: null } }, ['OBJECTED']]);
    // The request holds the record as it was; the erasure (the objection's state with it) commits before the choices are read.
    const findCustomer = candor.services.domain.findCustomer.bind(candor.services.domain);
    const racing = jest.spyOn(candor.services.domain, 'findCustomer').mockImplementationOnce(async (id) => {
      const record = await findCustomer(id);
      await eraseSubject(candor.services, O, { id: 'compliance-office', name: 'Compliance', team: 'Compliance' }, 'mid-request-erasure');
      return record;
    });
    try {
      const answer = await read();
      expect([answer.body.data, answer.body.errors?.map((error) => error.extensions?.code)]).toEqual([{ customer: { displayName: null } }, ['PROCESSING_RESTRICTED']]);
    } finally {
      racing.mockRestore();
    }
  });

  it('answers a choice made while the subject is being erased with the erased page (410), not as a bad request', async () => {
    const R = 'cus_0000_life_erased_while_choosing';
    await addCustomer(candor, R);
    const token = createSubjectToken(candor.services.config.secret, R, new Date(now + 3_600_000));
    // The page has read the subject; the erasure commits before the ledger's own check under its lock.
    const ledgerAppend = candor.services.consent.append.bind(candor.services.consent);
    const racing = jest.spyOn(candor.services.consent, 'append').mockImplementationOnce(async (change) => {
      await eraseSubject(candor.services, R, { id: 'compliance-office', name: 'Compliance', team: 'Compliance' }, 'race-erasure');
      return ledgerAppend(change);
    });
    try {
      const base = candor.server.url.replace('/graphql', '');
      const response = await fetch(`${base}/privacy/choice`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, purpose: 'marketing.communications', action: 'grant' }) });
      expect([response.status, (await response.text()).includes('There is no data about you any more')]).toEqual([410, true]);
    } finally {
      racing.mockRestore();
    }
  });

  it("shows as uses of the data what teams used or the subject's choices stopped — by the actor, not a team's name; a dry run used nothing", async () => {
    const U = 'cus_0000_life_usage';
    await addCustomer(candor, U);
    const key = await candor.services.actors.create({ id: 'page-lookalike', name: 'Look-alike', team: 'privacy-page', purposes: ['essential.service'], roles: [] });
    expect((await candor.query({ key, purpose: 'essential.service', query: `{ customer(id: "${U}") { email } }` })).status).toBe(200);
    const dryRun = await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', headers: { 'x-governance-explain': 'true' }, query: `{ customer(id: "${U}") { displayName } }` });
    expect(dryRun.status).toBe(200);
    const view = await new PrivacyService(candor.services, candor.services.fields).view(U, 'usage-view');
    expect(view.usage.map(({ team, category, used, withheldByChoice }) => [team, category, used, withheldByChoice])).toEqual([['privacy-page', 'user.contact.email', 1, 0]]);
    // One read of their ledger is one use of their privacy preferences, whatever number of its entries and fields it read.
    for (const purpose of ['marketing.communications', 'analytics.reporting']) await candor.services.consent.append({ subjectId: U, kind: 'grant', purpose, source: 'test' });
    const read = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `{ consentHistory(subjectId: "${U}") { kind purpose source } }` });
    expect(read.body.errors).toBeUndefined();
    const again = await new PrivacyService(candor.services, candor.services.fields).view(U, 'usage-view-again');
    expect(again.usage.filter((line) => line.team === 'Compliance').map(({ category, used }) => [category, used])).toEqual([['user.privacy_preferences', 1]]);
  });

  it('tells a use of a reduced form (a masked release) from a use of the value, and says what the form showed', async () => {
    const U = 'cus_0000_life_reduced';
    await addCustomer(candor, U);
    // Analytics has the e-mail address masked (partial_email); support has it whole.
    for (const key of [KEYS.analytics, KEYS.analytics, KEYS.support]) {
      const purpose = key === KEYS.support ? 'essential.service' : 'analytics.reporting';
      const answer = await candor.query({ key, purpose, query: `{ customer(id: "${U}") { email } }` });
      expect([answer.status, answer.body.errors]).toEqual([200, undefined]);
    }
    const view = await new PrivacyService(candor.services, candor.services.fields).view(U, 'reduced-view');
    expect(view.usage.map(({ team, category, used, reduced }) => [team, category, used, reduced])).toEqual([
      ['Analytics', 'user.contact.email', 2, [{ strategy: 'partial_email', uses: 2 }]],
      ['Customer Support', 'user.contact.email', 1, []],
    ]);
    const html = await (await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, U, new Date(Date.now() + 3_600_000))}`)).text();
    expect(html).toContain('<td data-label="Used">2 times <span class="muted">(each time only its domain and at most its first letter, like j***@example.com)</span></td>');
    expect(html).toContain('<td data-label="Used">1 time</td>');
    expect(html).toContain('<td data-label="What">Your e-mail address.</td>');
    // Each use is described by the form its record says it had: a release under an earlier mask (keyed_hash)
    // as that one, a release of the value as a use of it.
    const analytics = { id: 'analytics-warehouse', name: 'Analytics Warehouse', team: 'Analytics' };
    const use = (requestId: string, decision: 'MASKED' | 'RELEASED', maskStrategy?: string) =>
      ({ at: candor.services.clock(), requestId, actor: analytics, purpose: 'analytics.reporting', operationName: null, subjectId: U, coordinate: 'Customer.email', category: 'user.contact.email', decision, reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', maskStrategy });
    await candor.services.accessLog.append([use('reduced-earlier-mask', 'MASKED', 'keyed_hash'), use('reduced-whole-value', 'RELEASED')]);
    const later = await new PrivacyService(candor.services, candor.services.fields).view(U, 'reduced-view-later');
    expect(later.usage.find((line) => line.team === 'Analytics')).toMatchObject({ used: 4, reduced: [{ strategy: 'partial_email', uses: 2 }, { strategy: 'keyed_hash', uses: 1 }] });
    const laterHtml = await (await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, U, new Date(Date.now() + 3_600_000))}`)).text();
    expect(laterHtml).toContain('<td data-label="Used">4 times <span class="muted">(2 of them only its domain and at most its first letter, like j***@example.com; 1 of them only a code that stands for it and cannot be turned back into it)</span></td>');
  });

  it('shows a list that left the subject out because of their choices as stopped by them, and one that kept them as a use', async () => {
    const [out, kept] = ['cus_0000_life_left_out', 'cus_0000_life_kept'];
    for (const id of [out, kept]) await addCustomer(candor, id);
    await candor.services.consent.append({ subjectId: kept, kind: 'grant', purpose: 'marketing.communications', source: 'test', explicit: true });
    const list = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' });
    const listed = (list.body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
    expect([listed.includes(out), listed.includes(kept)]).toEqual([false, true]);
    const lineOf = async (id: string) =>
      (await new PrivacyService(candor.services, candor.services.fields).view(id, 'usage-view')).usage
        .filter((line) => line.purpose === 'marketing.communications')
        .map(({ category, used, withheldByChoice }) => [category, used, withheldByChoice]);
    expect(await lineOf(out)).toEqual([['user.privacy_preferences', 0, 1]]);
    expect(await lineOf(kept)).toEqual([['user.privacy_preferences', 1, 0]]);
  });

  it('records every value the page shows the subject, their messages and consent entries included, and exports them', async () => {
    const M = 'cus_0000_life_messages';
    await addCustomer(candor, M);
    const page = new PrivacyService(candor.services, candor.services.fields);
    await page.choose(M, 'marketing.communications', 'grant', 'messages-grant');
    await page.ask(M, 'purpose:marketing.communications', 'What do you send me?', 'messages-ask');
    const view = await page.view(M, 'messages-view');
    expect(view.messages.map((message) => message.body)).toEqual(['What do you send me?']);
    const shown = (await candor.services.accessLogReader.page({ requestId: 'messages-view' }, 100)).edges.map((edge) => edge.node.coordinate);
    expect(shown).toEqual(expect.arrayContaining(['SubjectMessage.body', 'ConsentEntry.kind', 'ConsentEntry.purpose', 'Customer.email']));
    // Exactly what the page shows: a field holding no value (no answer yet, no expiry) is neither told nor recorded.
    expect(shown.filter((coordinate) => coordinate !== null).sort()).toEqual(view.held.map((field) => field.coordinate).sort());
    expect(shown).not.toContain('SubjectMessage.answer');
    expect(view.held.find((field) => field.coordinate === 'SubjectMessage.body')?.values).toEqual(['What do you send me?']);
    // Fields of one category are told apart on the page.
    const labels = view.held.map((field) => field.label);
    expect(new Set(labels).size).toBe(labels.length);
    const exported = await page.export(M, 'messages-export');
    expect(exported.messages).toEqual([expect.objectContaining({ context: 'purpose:marketing.communications', body: 'What do you send me?', answer: null })]);
    expect(exported.data['SubjectMessage.body']).toEqual({ category: 'user.content.private', values: ['What do you send me?'] });
    // What they stated, with its receipt; not who on the staff (here: no one) recorded it, nor the ledger's row id.
    expect(exported.consentHistory).toEqual([
      expect.objectContaining({ kind: 'grant', purpose: 'marketing.communications', explicit: false, source: 'privacy-page', expiresAt: null, recordedAt: expect.any(String), receiptId: expect.stringMatching(/^rcpt_/) }),
    ]);
    expect(Object.keys(exported.consentHistory[0]).sort()).toEqual(['expiresAt', 'explicit', 'kind', 'noticeVersion', 'purpose', 'receiptId', 'recordedAt', 'source']);
    // The question's context is what it is about, not a purpose; and the log, which outlives an erasure, keeps none of its text.
    const asked = (await candor.services.accessLogReader.page({ requestId: 'messages-ask' }, 10)).edges.map((edge) => [edge.node.operationName, edge.node.purpose]);
    expect(asked).toEqual([['privacy-page question', null]]);
    // Text that reads like a flag stays the text written; a flag (a consent's explicit) reads as yes or no.
    await page.ask(M, '', 'false', 'messages-ask-false');
    const html = await (await fetch(`${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, M, new Date(now + 3_600_000))}`)).text();
    expect([html.includes('<td data-label="Body">false</td>'), html.includes('<td data-label="Explicit">no</td>'), html.includes('<td data-label="Body">no</td>')]).toEqual([true, true, false]);
  });

  it('answers a receipt only while the subject exists, and records that it was shown', async () => {
    const Q = 'cus_0000_life_receipt';
    await addCustomer(candor, Q);
    const page = new PrivacyService(candor.services, candor.services.fields);
    const { receiptId } = await page.choose(Q, 'marketing.communications', 'grant', 'receipt-grant');
    const receipt = await page.receipt(Q, receiptId!, 'receipt-shown');
    expect(receipt?.id).toBe(receiptId);
    expect((await candor.services.accessLogReader.page({ requestId: 'receipt-shown' }, 10)).edges.map((edge) => [edge.node.operationName, edge.node.consentReceiptId])).toEqual([['privacy-page receipt', receiptId]]);
    await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId: Q, context: null, body: 'Why?', createdAt: new Date(now).toISOString(), answer: 'Because you asked us, Quentin.', answeredAt: new Date(now).toISOString(), answeredBy: 'dpo' });
    expect((await manage(`mutation { eraseSubject(subjectId: "${Q}") { subjectId } }`)).body.errors).toBeUndefined();
    await expect(page.receipt(Q, receiptId!, 'receipt-after-erasure')).rejects.toThrow('unknown subject');
    // The answer may quote the person: deleted with the question, so no inbox read names the subject again.
    expect(await candor.services.dataSource.getRepository(SubjectMessageEntity).findBy({ subjectId: Q })).toEqual([]);
    const inbox = await manage('{ inbox(unansweredOnly: false, first: 500) { subjectId body } }');
    expect((inbox.body.data!.inbox as Array<{ subjectId: string }>).map((message) => message.subjectId)).not.toContain(Q);
    const report = await manage(`{ report(kind: SUBJECT_ACCESS, subjectId: "${Q}") { json } }`);
    expect(report.body.errors?.[0]).toEqual(expect.objectContaining({ message: expect.stringContaining(`subject "${Q}" was erased on`), extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }));
    expect(await candor.services.dataSource.getRepository(SubjectPseudonymEntity).countBy({ subjectId: Q })).toBe(0);
  });

  it('refuses a consent statement whose source or subject holds control characters, with a coded error and nothing written', async () => {
    const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
    const nulSource = await grant(S, 'marketing.communications', { source: 'web\u0000form' });
    expect([nulSource.body.errors?.[0].extensions?.code, nulSource.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', 'source must be plain text in a line (it holds control or invisible characters)']);
    const longSource = await grant(S, 'marketing.communications', { source: 's'.repeat(201) });
    expect([longSource.body.errors?.[0].extensions?.code, longSource.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', 'source must be at most 200 characters']);
    const nulSubject = await grant(`${S}\u0000`, 'marketing.communications');
    expect([nulSubject.body.errors?.[0].extensions?.code, nulSubject.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', 'subjectId holds control characters']);
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
  });

  it("keeps the privacy page's source for what subjects state there: staff cannot record a statement as the subject's own", async () => {
    const before = await candor.services.dataSource.getRepository(ConsentEventEntity).count();
    const lookAlikes = [
      'privacy-page',
      ' Privacy-Page ',
      // Dashes, compatibility forms and accents the page shows as the name, or nearly.
      'privacy\u2011page',
      'PRIVACY\u2014PAGE',
      '\uff50\uff52\uff49\uff56\uff41\uff43\uff59\uff0d\uff50\uff41\uff47\uff45',
      'privacy-pag\u00e9',
      // Letters and signs of other scripts and blocks drawn as the name's: a Cyrillic р, a minus sign.
      '\u0440rivacy-page',
      'privacy\u2212page',
    ];
    for (const source of lookAlikes) {
      const claimed = await grant(S, 'marketing.communications', { source });
      expect([source, claimed.body.errors?.[0].extensions?.code, claimed.body.errors?.[0].message]).toEqual([source, 'BAD_USER_INPUT', 'source "privacy-page" is reserved for what subjects state on their privacy page']);
    }
    // Characters drawn as nothing (zero-width space, soft hyphen, byte-order mark, grapheme joiner, variation
    // selector, Hangul filler) or breaking the line: refused in any source, whatever it reads as.
    for (const source of ['privacy-page\u200b', 'privacy-page\u00ad', '\ufeffprivacy-page', 'privacy-page\u034f', 'privacy-page\ufe0f', 'privacy\u3164page', 'privacy\tpage', 'web\u200bform']) {
      const hidden = await grant(S, 'marketing.communications', { source });
      expect([source, hidden.body.errors?.[0].extensions?.code, hidden.body.errors?.[0].message]).toEqual([source, 'BAD_USER_INPUT', 'source must be plain text in a line (it holds control or invisible characters)']);
    }
    // An import goes through the same check.
    const file = join(directory, 'claims-the-page.json');
    writeFileSync(file, JSON.stringify(lookAlikes.map((source) => ({ subjectId: S, action: 'grant', purpose: 'marketing.communications', source, recordedAt: MADE })).concat([{ subjectId: S, action: 'grant', purpose: 'marketing.communications', source: 'privacy-page\u200b', recordedAt: MADE }])));
    const err: string[] = [];
    expect(await consentImport(candor.services, file, {}, { interactive: false, out: () => undefined, err: (text) => void err.push(text) })).toBe(1);
    expect(err.join('')).toBe(
      [
        `rejected ${lookAlikes.length + 1} of ${lookAlikes.length + 1} rows; nothing was imported:`,
        ...lookAlikes.map((_source, index) => `  row ${index + 1}: source "privacy-page" is reserved for what subjects state on their privacy page`),
        `  row ${lookAlikes.length + 1}: source must be plain text in a line (it holds control or invisible characters)`,
        '',
      ].join('\n'),
    );
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).count()).toBe(before);
    // A source in another script, as long as the name, is no look-alike of it; nor is one that only begins like it.
    const elsewhere = 'cus_0000_life_source_elsewhere';
    await addCustomer(candor, elsewhere);
    for (const source of ['\u30d7\u30e9\u30a4\u30d0\u30b7\u30fc\u30da\u30fc\u30b8\u7533\u8fbc\u66f8', 'privacy-portal']) {
      expect((await grant(elsewhere, 'marketing.communications', { source })).body.errors).toBeUndefined();
    }
    const onThePage = await new PrivacyService(candor.services, candor.services.fields).choose(S, 'marketing.communications', 'grant', 'reserved-source-page');
    expect([onThePage.source, onThePage.actorId]).toEqual(['privacy-page', SUBJECT_ACTOR_ID]);
  });

  it('answers a subject id no customer can have (a NUL, too long) as an unknown subject on either store, not an internal error', async () => {
    for (const subjectId of [`${S}\u0000x`, 'c'.repeat(41)]) {
      const read = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: 'query R($id: ID!) { customer(id: $id) { email } }', variables: { id: subjectId } });
      expect(read.body).toEqual({ data: { customer: null } });
      const erase = await manage('mutation E($id: ID!) { eraseSubject(subjectId: $id) { subjectId } }', { id: subjectId });
      expect([erase.body.errors?.[0].extensions?.code, erase.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', `unknown subject "${subjectId}"`]);
    }
  });

  it('keeps the inbox for consent managers only, and answers once', async () => {
    const message = await candor.services.dataSource.getRepository('SubjectMessageEntity').save({ subjectId: S, context: 'purpose:third_party_sharing', body: 'Why did Partnerships receive my country?', createdAt: new Date(now).toISOString() });
    const inbox = await manage('{ inbox { id subjectId context body answer } }');
    expect(inbox.body.data!.inbox).toEqual(expect.arrayContaining([{ id: String(message.id), subjectId: S, context: 'purpose:third_party_sharing', body: 'Why did Partnerships receive my country?', answer: null }]));
    // What the subject asked about, their words and the answer are theirs: each read is decided and recorded,
    // and so is the read of the inbox, which named them.
    const read = await candor.services.accessLogReader.page({ requestId: inbox.headers.get('x-request-id'), subjectId: S }, 50);
    expect(read.edges.map((edge) => edge.node.coordinate).sort()).toEqual(['Query.inbox', 'SubjectMessage.answer', 'SubjectMessage.body', 'SubjectMessage.context']);
    // The read itself is recorded, as the CLI's is, also when no personal field is selected: the list names
    // who wrote in, so once per subject it lists (their page and report show it); a page listing no one, once.
    const idsOnly = await manage('{ inbox(unansweredOnly: false) { id subjectId } }');
    const listed = idsOnly.body.data!.inbox as Array<{ id: string; subjectId: string }>;
    expect(listed.map((listedMessage) => listedMessage.subjectId)).toContain(S);
    const operation = async (requestId: string | null) => (await candor.services.accessLogReader.page({ requestId: requestId! }, 50)).edges.map((edge) => [edge.node.reason, edge.node.subjectId]);
    expect((await operation(idsOnly.headers.get('x-request-id'))).sort()).toEqual([...new Set(listed.map((listedMessage) => listedMessage.subjectId))].sort().map((subjectId) => ['SUBJECT_MESSAGES_READ', subjectId]));
    const pastTheEnd = await manage(`{ inbox(unansweredOnly: false, after: "${listed.at(-1)!.id}") { id } }`);
    expect(pastTheEnd.body.data!.inbox).toEqual([]);
    expect(await operation(pastTheEnd.headers.get('x-request-id'))).toEqual([['SUBJECT_MESSAGES_READ', null]]);
    const tooLong = await manage(`mutation { answerQuestion(input: { id: "${message.id}", answer: "${'x'.repeat(4_001)}" }) { answer } }`);
    expect([tooLong.body.errors?.[0].extensions?.code, tooLong.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', 'the answer may be at most 4,000 characters']);
    const answered = await manage(`mutation { answerQuestion(input: { id: "${message.id}", answer: "Only because you agreed on 2 January." }) { answer answeredBy } }`);
    expect(answered.body.data!.answerQuestion).toEqual({ answer: 'Only because you agreed on 2 January.', answeredBy: 'compliance-office' });
    expect(await operation(answered.headers.get('x-request-id'))).toContainEqual(['SUBJECT_MESSAGE_ANSWERED', S]);
    const twice = await manage(`mutation { answerQuestion(input: { id: "${message.id}", answer: "again" }) { answer } }`);
    expect(twice.body.errors?.[0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'id' });
    // Coded refusals, on PostgreSQL too: an id past its integer column, text it cannot store (NUL).
    const answerQuestion = (id: string, answer: string) => manage('mutation A($input: AnswerQuestionInput!) { answerQuestion(input: $input) { answer } }', { input: { id, answer } });
    // An id is written as `inbox` returns it: other spellings of a number would answer another message.
    for (const spelling of ['0x10', '1e1', ' 7 ', '7.0', '-1', '007']) {
      const refused = await answerQuestion(spelling, 'hello');
      expect([refused.body.errors?.[0].extensions, refused.body.errors?.[0].message]).toEqual([{ code: 'BAD_USER_INPUT', field: 'id' }, `id must be a message's id as inbox returns it, got "${spelling}"`]);
    }
    const outOfRange = await answerQuestion('3000000000', 'hello');
    expect([outOfRange.body.errors?.[0].extensions?.code, outOfRange.body.errors?.[0].message]).toEqual(['BAD_USER_INPUT', 'no message 3000000000']);
    const fresh = await candor.services.dataSource.getRepository('SubjectMessageEntity').save({ subjectId: S, context: null, body: 'Another question', createdAt: new Date(now).toISOString() });
    const withNul = await answerQuestion(String(fresh.id), 'yes\u0000no');
    expect([withNul.body.errors?.[0].extensions, withNul.body.errors?.[0].message]).toEqual([{ code: 'BAD_USER_INPUT', field: 'answer' }, 'the answer must be plain text (it holds control characters)']);
    // Line breaks as a browser's text area sends them (CR LF) are line breaks.
    const multiLine = await answerQuestion(String(fresh.id), 'Hello,\r\nwe deleted it.\r\n');
    expect([multiLine.body.errors, multiLine.body.data?.answerQuestion]).toEqual([undefined, { answer: 'Hello,\nwe deleted it.' }]);
    const forbidden = await candor.query({ key: KEYS.support, purpose: 'essential.service', query: '{ inbox { id } }' });
    expect(forbidden.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('answers from the CLI inbox', async () => {
    const env = cliEnv();
    const message = await candor.services.dataSource.getRepository('SubjectMessageEntity').save({ subjectId: S, context: null, body: 'Please delete my old address.', createdAt: new Date(now).toISOString() });
    const listed = await runCli(['inbox', 'list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`#${message.id}`);
    expect(listed.stdout).toContain('Please delete my old address.');
    // As GraphQL's `inbox` does, the run records each subject's words it printed: their page and access report show the read.
    const printedOfS = (await candor.services.accessLogReader.page({ subjectId: S }, 500)).edges.filter((edge) => edge.node.operationName === 'inbox list');
    expect(printedOfS.map((edge) => [edge.node.coordinate, edge.node.decision, edge.node.reason, edge.node.legalBasis, edge.node.actor?.team])).toContainEqual(['SubjectMessage.body', 'RELEASED', 'LEGAL_BASIS', 'legal_obligation', 'cli']);
    // And that the listing named them, whatever it printed of their words.
    expect(printedOfS.map((edge) => [edge.node.coordinate, edge.node.reason])).toContainEqual([null, 'SUBJECT_MESSAGES_READ']);
    // What it prints is what the decisions release: with the subjects' states unreadable, nothing of their words (fail closed).
    const printed: string[] = [];
    const unreadable = jest.spyOn(candor.services.consent, 'states').mockRejectedValue(new Error('consent store down'));
    try {
      expect(await inboxCommand(candor.services, 'list', {}, { interactive: false, out: (text) => void printed.push(text), err: () => undefined })).toBe(0);
    } finally {
      unreadable.mockRestore();
    }
    expect(printed.join('')).toContain(`#${message.id}`);
    expect(printed.join('')).not.toContain('Please delete my old address.');
    expect(printed.join('')).toContain('(withheld: GOVERNANCE_UNAVAILABLE)');
    // The id as `inbox list` prints it; a missing one is a usage error, a wrong one a bad value.
    expect(await runCli(['inbox', 'answer', '--text', 'Done.'], env)).toEqual(expect.objectContaining({ code: 2, stderr: 'candor: usage: npx candor inbox <list [--all] [--after ID] | answer ID --text "…">\n' }));
    expect(await runCli(['inbox', 'answer', 'first', '--text', 'Done.'], env)).toEqual(expect.objectContaining({ code: 1, stderr: 'candor: the message id is a number, as `inbox list` prints it (12, or \'#12\' in quotes: a shell reads an unquoted # as a comment), got "first"\n' }));
    const answered = await runCli(['inbox', 'answer', `#${message.id}`, '--text', 'Done — it is gone.'], env);
    expect([answered.code, answered.stdout]).toEqual([0, `answered message #${message.id}; the answer appears on the subject's privacy page\n`]);
    const answeredRecords = (await candor.services.accessLogReader.page({ reason: 'SUBJECT_MESSAGE_ANSWERED', subjectId: S }, 50)).edges.filter((edge) => edge.node.operationName === 'inbox answer');
    expect(answeredRecords).toHaveLength(1);
    expect((await runCli(['inbox', 'list'], env)).stdout).not.toContain(`#${message.id} `);
  });

  // Eleven CLI processes were one test: on a loaded machine its 60 s ran out.
  it('prints privacy-page links from the CLI', async () => {
    const env = cliEnv();
    const link = await runCli(['subject', 'link', '--subject', S, '--ttl', '2h'], { ...env, PUBLIC_URL: 'https://privacy.example' });
    expect(link.stdout).toMatch(/^https:\/\/privacy\.example\/privacy\?t=2\.[\w-]+\.[\w-]+\n$/);
    expect((await runCli(['subject', 'link', '--subject', 'cus_nobody'], env)).stderr).toBe('candor: unknown subject "cus_nobody"\n');
    expect((await runCli(['subject', 'link', '--subject', S, '--ttl', 'forever'], env)).stderr).toBe('candor: --ttl must look like 7d, 12h or 30m, got "forever"\n');
    expect((await runCli(['subject', 'link', '--subject', S, '--ttl', '7'], env)).stderr).toBe('candor: --ttl must look like 7d, 12h or 30m, got "7"\n');
    expect((await runCli(['subject', 'link', '--subject', S, '--ttl', '365d'], env)).stderr).toBe('candor: --ttl must be at most 30d, got "365d"\n');
    // In production a link to this machine would reach no subject: it names the page's public https address or is refused.
    const production = { ...env, NODE_ENV: 'production', CANDOR_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
    expect(await runCli(['subject', 'link', '--subject', S], production)).toEqual({ code: 1, stdout: '', stderr: 'candor: PUBLIC_URL is required when NODE_ENV=production: the https address the privacy page is served at\n' });
    expect((await runCli(['subject', 'link', '--subject', S], { ...production, PUBLIC_URL: 'https://privacy.example' })).stdout).toMatch(/^https:\/\/privacy\.example\/privacy\?t=/);
  });

  it("pages the inbox with `after` past a page's 500, without gaps or repeats, recording each page's subjects; an unknown or malformed `after` is refused", async () => {
    const P = 'cus_0000_life_paged';
    await addCustomer(candor, P);
    const messages = candor.services.dataSource.getRepository(SubjectMessageEntity);
    const at = new Date(now).toISOString();
    // More than a page whatever the tests before left; answered, so that reads of the unanswered ones stay as they were.
    await messages.insert(Array.from({ length: 500 }, (_, index) => ({ subjectId: S, context: null, body: `question ${index}`, createdAt: at, answer: 'Done.', answeredAt: at, answeredBy: 'compliance-office' })));
    // The newest, so that only a later page holds P's.
    await messages.insert(Array.from({ length: 3 }, (_, index) => ({ subjectId: P, context: null, body: `later question ${index}`, createdAt: at })));
    const inbox = (variables: { unansweredOnly: boolean; first: number; after: string | null }) =>
      manage('query I($unansweredOnly: Boolean!, $first: Int!, $after: ID) { inbox(unansweredOnly: $unansweredOnly, first: $first, after: $after) { id subjectId body } }', variables);
    const read = (page: GraphQLResponse) => page.body.data!.inbox as Array<{ id: string; subjectId: string; body: string }>;
    /** The pages from `after` on, each read after the last message of the one before, through the first empty one. */
    const pagesAfter = async (after: string | null, unansweredOnly: boolean, first: number) => {
      const pages: GraphQLResponse[] = [];
      for (;;) {
        const page = await inbox({ unansweredOnly, first, after });
        expect(page.body.errors).toBeUndefined();
        // Nothing at or before `after` (a page read again from the start would loop here until the rate limit).
        expect(read(page).filter((message) => after !== null && Number(message.id) <= Number(after))).toEqual([]);
        pages.push(page);
        if (read(page).length === 0) return pages;
        after = read(page).at(-1)!.id;
      }
    };
    const idsOf = (pages: GraphQLResponse[]) => pages.flatMap((page) => read(page).map((message) => message.id));

    const all = await pagesAfter(null, false, 500);
    expect(all.length).toBeGreaterThanOrEqual(3); // two pages of messages at least, then the empty one
    expect(idsOf(all)).toEqual((await messages.find({ order: { id: 'ASC' } })).map((message) => String(message.id)));
    // Each page's read of the subjects' own words is decided and recorded per subject, a later page's as the first's.
    for (const page of all) {
      const recorded = await candor.services.accessLogReader.page({ requestId: page.headers.get('x-request-id')!, coordinate: 'SubjectMessage.body' }, 500);
      expect(recorded.edges.map((edge) => edge.node.subjectId).sort()).toEqual([...new Set(read(page).map((message) => message.subjectId))].sort());
    }
    expect(read(all.at(-2)!).map((message) => message.subjectId)).toContain(P);

    // A few unanswered ones at a time: the last message read may be answered before the next page is asked for.
    const unanswered = (await messages.find({ where: { answeredAt: IsNull() }, order: { id: 'ASC' } })).map((message) => String(message.id));
    const firstTwo = idsOf([await inbox({ unansweredOnly: true, first: 2, after: null })]);
    expect(firstTwo).toEqual(unanswered.slice(0, 2));
    expect((await manage('mutation A($input: AnswerQuestionInput!) { answerQuestion(input: $input) { id } }', { input: { id: firstTwo[1], answer: 'Answered.' } })).body.errors).toBeUndefined();
    expect([...firstTwo, ...idsOf(await pagesAfter(firstTwo[1], true, 2))]).toEqual(unanswered);

    const error = async (variables: { unansweredOnly: boolean; first: number; after: string | null }) => {
      const [refused] = (await inbox(variables)).body.errors ?? [];
      return [refused?.extensions?.code, refused?.extensions?.argument, refused?.message];
    };
    const newest = Number(unanswered.at(-1));
    expect(await error({ unansweredOnly: false, first: 10, after: String(newest + 1) })).toEqual(['BAD_USER_INPUT', 'after', `after: no message ${newest + 1} (erased since, if it was read): page on after an earlier one`]);
    for (const after of ['abc', '', '0', '-1', '1.5', `0${newest}`, `#${newest}`, '3000000000', '99999999999']) {
      expect(await error({ unansweredOnly: false, first: 10, after })).toEqual(['BAD_USER_INPUT', 'after', `after must be the id of the last message read, got "${after}"`]);
    }
    // The page's bounds stay as they were.
    expect(await error({ unansweredOnly: false, first: 501, after: null })).toEqual(['BAD_USER_INPUT', 'first', 'first must be between 1 and 500']);

    // The CLI pages the same way: a full listing names where the next one starts, and `--after` (as printed, #N) reads on.
    const listed = await runCli(['inbox', 'list', '--all'], cliEnv());
    const printedIds = (stdout: string) => [...stdout.matchAll(/^#(\d+) /gm)].map((match) => match[1]);
    const firstListing = printedIds(listed.stdout);
    expect([listed.code, firstListing.length, listed.stderr]).toEqual([0, 500, `showing 500 messages: the next ones with --after ${firstListing.at(-1)}\n`]);
    const next = await runCli(['inbox', 'list', '--all', '--after', `#${firstListing.at(-1)}`], cliEnv());
    expect([firstListing, next.code, printedIds(next.stdout)]).toEqual([idsOf(all).slice(0, 500), 0, idsOf(all).slice(500, 1000)]);
    expect(await runCli(['inbox', 'list', '--after', 'latest'], cliEnv())).toEqual({ code: 1, stdout: '', stderr: 'candor: after must be the id of the last message read, got "latest"\n' });
  });
});

// Several instances share a store on PostgreSQL; SQLite's file serves one instance, with the CLI beside it (a process of its own).
describe.each(DRIVERS)('erasures from several instances (or an instance and the CLI) on %s', (driver) => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor(driver, { seed: false });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('erases a subject once when two instances (or an instance and the CLI) erase it at once', async () => {
    const I = 'cus_0000_life_erased_by_two';
    await addCustomer(candor, I);
    const other = await openServices(loadConfig({ DATABASE_URL: candor.database.url, NODE_ENV: 'test' }, {}), { migrate: 'require' });
    try {
      const actor = { id: 'compliance-office', name: 'Compliance', team: 'Legal' };
      // The other instance's erasure arrives while this one's log part runs, its domain part committed.
      const log = candor.services.accessLog;
      const append = log.append.bind(log);
      let startedSecond: (second: Promise<unknown>) => void = () => undefined;
      const second = new Promise<Promise<unknown>>((resolve) => (startedSecond = resolve));
      const during = jest.spyOn(log, 'append').mockImplementationOnce(async (records) => {
        startedSecond(eraseSubject(other, I, actor, 'two-instances-1'));
        await new Promise((resolve) => setTimeout(resolve, 300));
        return append(records);
      });
      try {
        // The second outcome is the other instance's erasure, however long the first takes to get there.
        const outcomes = await Promise.allSettled([eraseSubject(candor.services, I, actor, 'two-instances-0'), second.then((erasure) => erasure)]);
        expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected']);
        expect((outcomes[1] as PromiseRejectedResult).reason.message).toMatch(new RegExp(`^subject "${I}" was already erased on `));
      } finally {
        during.mockRestore();
      }
    } finally {
      await other.close();
    }
    expect((await candor.services.accessLogReader.page({ reason: 'SUBJECT_ERASED', requestId: 'two-instances-0' }, 10)).totalCount + (await candor.services.accessLogReader.page({ reason: 'SUBJECT_ERASED', requestId: 'two-instances-1' }, 10)).totalCount).toBe(1);
  });
});
