import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { In } from 'typeorm';
import { projectRoot } from '../../src/config';
import { ConsentEventEntity } from '../../src/consent/consent-event.entity';
import { ConsentReceiptEntity } from '../../src/consent/consent-receipt.entity';
import type { ConsentChange } from '../../src/consent/consent-ledger';
import { importConsents } from '../../src/consent/consent-import';
import { Inbox } from '../../src/consent/inbox';
import { replayLedger } from '../../src/consent/ledger-replay';
import { permittedSubjectsCondition } from '../../src/consent/permitted-subjects';
import type { RequestPurpose, SubjectState } from '../../src/policy/decide';
import { SubjectMessageEntity } from '../../src/consent/subject-message.entity';
import { eraseSubject } from '../../src/privacy/erasure';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';

/** When marketing.communications' notice changed materially, in this file's taxonomy. */
const NOTICE_CHANGED = '2026-11-29T12:00:00.000Z';

/**
 * The consent ledger's rules at their edges: the instant a grant expires or a notice changes, statements made
 * at the same instant, the clock of another instance, and what it refuses to record at all.
 */
describe.each(DRIVERS)('the consent ledger at its boundaries on %s', (driver) => {
  let candor: Harness;
  let directory: string;
  let now = new Date('2026-11-29T13:00:00.000Z').getTime();
  const compliance = { id: 'compliance-office', name: 'Compliance', team: 'Compliance' };

  const permitted = async (purpose: string, key: string = KEYS.marketing) =>
    ((await candor.query({ key, purpose, query: '{ customers(limit: 1000, onlyPermitted: true) { id } }' })).body.data!.customers as Array<{ id: string }>).map((customer) => customer.id);
  const consentOf = async (subjectId: string) =>
    (await candor.services.consent.states([subjectId]))[0].consents.map(({ purpose, granted }) => [purpose, granted]).sort(([a], [b]) => String(a).localeCompare(String(b)));

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'candor-ledger-'));
    const taxonomy = readFileSync(join(projectRoot(), 'schema', 'taxonomy.yaml'), 'utf8').replace('notice: { version: 1 }', `notice: { version: 2, since: ${NOTICE_CHANGED.replace('.000', '')}, material: true }`);
    // An extension adds a partner under third_party_sharing: sharing with it is a disclosure to a third party too.
    writeFileSync(join(directory, 'taxonomy.yaml'), `extensionFiles: [partners.yaml]\n${taxonomy}`);
    writeFileSync(join(directory, 'partners.yaml'), 'purposes:\n  third_party_sharing.cinema:\n    description: Sharing with our partner cinemas.\n    legalBasis: consent\n    benefit: Cinema offers.\n    extension: true\n');
    candor = await startCandor(driver, { seed: false, clock: () => new Date(now), env: { CANDOR_TAXONOMY: join(directory, 'taxonomy.yaml') } });
    await candor.services.actors.seedDemoActors();
  });
  afterAll(async () => {
    await candor?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('leaves a subject out of onlyPermitted from the very instant their grant expires, as decide() withholds it', async () => {
    const E = 'cus_0000_ledger_expiring';
    await addCustomer(candor, E);
    now = new Date('2026-11-29T13:00:00.000Z').getTime();
    await candor.services.consent.append({ subjectId: E, kind: 'grant', purpose: 'marketing.communications', source: 'test', expiresAt: new Date('2026-11-29T14:00:00.000Z') });
    now = new Date('2026-11-29T13:59:59.999Z').getTime();
    expect(await permitted('marketing.communications')).toContain(E);
    now = new Date('2026-11-29T14:00:00.000Z').getTime();
    expect(await permitted('marketing.communications')).not.toContain(E);
  });

  it('takes a grant made at the very instant of a material notice change as given under the new notice: its version, and counted without renewal', async () => {
    const N = 'cus_0000_ledger_notice';
    await addCustomer(candor, N);
    now = new Date('2026-11-29T15:00:00.000Z').getTime();
    const atTheChange = await candor.services.consent.append({ subjectId: N, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date(NOTICE_CHANGED) });
    expect(atTheChange.noticeVersion).toBe(2);
    expect(await permitted('marketing.communications')).toContain(N);
    // A millisecond before it, the grant predates the notice: unknown version, and it needs renewing.
    const B = 'cus_0000_ledger_notice_before';
    await addCustomer(candor, B);
    const before = await candor.services.consent.append({ subjectId: B, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date(new Date(NOTICE_CHANGED).getTime() - 1) });
    expect(before.noticeVersion).toBeNull();
    expect(await permitted('marketing.communications')).not.toContain(B);
  });

  it("lets a withdrawal made now take effect after the subject's latest statement, not only after their first, when this instance's clock runs behind", async () => {
    const K = 'cus_0000_ledger_skew';
    await addCustomer(candor, K);
    const consent = candor.services.consent;
    now = new Date('2026-11-29T16:00:00.000Z').getTime();
    const behind = now;
    // Another instance, its clock ahead, recorded two grants; this one withdraws a moment later by its own clock.
    now = behind + 2_000;
    await consent.append({ subjectId: K, kind: 'grant', purpose: 'marketing.communications', source: 'instance-ahead' });
    now = behind + 4_000;
    const latest = await consent.append({ subjectId: K, kind: 'grant', purpose: 'marketing.communications', source: 'instance-ahead' });
    now = behind + 500;
    const withdrawal = await consent.append({ subjectId: K, kind: 'withdraw', purpose: 'marketing.communications', source: 'support-call' });
    expect(withdrawal.recordedAt).toBe(latest.recordedAt);
    expect(await consentOf(K)).toEqual([['marketing.communications', false]]);
    expect(replayLedger(await consent.history(K)).get(K)!.consents.map(({ purpose, granted }) => [purpose, granted])).toEqual([['marketing.communications', false]]);
  });

  it("records a statement moved behind another instance's later one, past a material notice change, as given under the new notice: ledger, receipt and decide() agree", async () => {
    const V = 'cus_0000_ledger_notice_moved';
    await addCustomer(candor, V);
    const consent = candor.services.consent;
    // Another instance, its clock ahead, recorded a withdrawal just after the notice changed; this one, its
    // clock still before the change, records a grant, which takes effect after that withdrawal.
    now = new Date(NOTICE_CHANGED).getTime() + 2_000;
    const withdrawal = await consent.append({ subjectId: V, kind: 'withdraw', purpose: 'marketing.communications', source: 'instance-ahead' });
    now = new Date(NOTICE_CHANGED).getTime() - 1_000;
    const change = { subjectId: V, kind: 'grant' as const, purpose: 'marketing.communications', source: 'support-call' };
    expect(await consent.check([change])).toEqual(new Map());
    const grant = await consent.append(change);
    expect([grant.recordedAt, grant.noticeVersion]).toEqual([withdrawal.recordedAt, 2]);
    expect((await consent.history(V)).map((event) => [event.kind, event.noticeVersion])).toEqual([
      ['withdraw', 2],
      ['grant', 2],
    ]);
    const receipt = await candor.services.dataSource.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: grant.receiptId! });
    expect(JSON.parse(receipt.document).services[0].purposes[0].noticeVersion).toBe(2);
    // decide() reads the grant by its recordedAt, after the change: it counts without renewal.
    now = new Date(NOTICE_CHANGED).getTime() + 3_000;
    expect(await permitted('marketing.communications')).toContain(V);
  });

  it("refuses, when checking and when writing, a grant that would expire at the very instant it takes effect (after another instance's later statement)", async () => {
    const X = 'cus_0000_ledger_expires_as_it_starts';
    await addCustomer(candor, X);
    const consent = candor.services.consent;
    now = new Date('2026-11-29T17:00:00.000Z').getTime();
    now += 60_000; // another instance, its clock a minute ahead, recorded a statement
    await consent.append({ subjectId: X, kind: 'withdraw', purpose: 'analytics', source: 'instance-ahead' });
    const takesEffect = new Date(now);
    now -= 60_000;
    const row = { subjectId: X, kind: 'grant' as const, purpose: 'analytics', source: 'crm', expiresAt: takesEffect };
    expect(await consent.check([row])).toEqual(new Map([[0, 'expiresAt must be a valid time after the statement takes effect']]));
    await expect(consent.appendMany([row])).rejects.toThrow('expiresAt must be a valid time after the statement takes effect');
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: X })).toBe(1);
  });

  it('lets a later withdrawal of a purpose replace an earlier grant of its sub-purpose: the narrower yes does not outlive it', async () => {
    const W = 'cus_0000_ledger_broader_later';
    await addCustomer(candor, W);
    const consent = candor.services.consent;
    await consent.append({ subjectId: W, kind: 'grant', purpose: 'personalize.content', source: 'crm-export', recordedAt: new Date('2026-05-01T00:00:00.000Z') });
    expect(await permitted('personalize.content', KEYS.analytics)).toContain(W);
    await consent.append({ subjectId: W, kind: 'withdraw', purpose: 'personalize', source: 'support-call', recordedAt: new Date('2026-06-01T00:00:00.000Z') });
    expect(await consentOf(W)).toEqual([['personalize', false]]);
    expect(await permitted('personalize.content', KEYS.analytics)).not.toContain(W);
  });

  it('lets a broader statement made at the same instant as a narrower one, and appended after it, replace it (the later append wins a tie)', async () => {
    const T = 'cus_0000_ledger_tie';
    await addCustomer(candor, T);
    const consent = candor.services.consent;
    const at = new Date('2026-06-01T00:00:00.000Z');
    await consent.append({ subjectId: T, kind: 'grant', purpose: 'personalize.content', source: 'crm-export', recordedAt: at });
    await consent.append({ subjectId: T, kind: 'withdraw', purpose: 'personalize', source: 'crm-export', recordedAt: at });
    expect(await consentOf(T)).toEqual([['personalize', false]]);
    expect(await permitted('personalize.content', KEYS.analytics)).not.toContain(T);
    const replayed = replayLedger(await consent.history(T)).get(T)!;
    expect(replayed.consents.map(({ purpose, granted }) => [purpose, granted])).toEqual([['personalize', false]]);
  });

  it('lists a subject again for a legitimate-interests purpose once they withdraw their objection; an objection does not stop a vital-interests one', async () => {
    const O = 'cus_0000_ledger_objection_withdrawn';
    await addCustomer(candor, O);
    const consent = candor.services.consent;
    await consent.append({ subjectId: O, kind: 'object', purpose: 'analytics', source: 'support-call', recordedAt: new Date('2026-05-01T00:00:00.000Z') });
    expect(await permitted('analytics.reporting', KEYS.analytics)).not.toContain(O);
    // The SQL filter for a purpose resting on vital interests (Art. 21 gives no objection to it), read directly.
    const kept = async (legalBasis: RequestPurpose['legalBasis']) => {
      const listed = await candor.services.domain.listCustomers({ limit: 1000, offset: 0, filter: { ...permittedSubjectsCondition({ key: 'analytics.reporting', legalBasis }, 'customer.id', new Date(now)), leftOut: () => undefined } });
      return listed.map((customer) => customer.id).includes(O);
    };
    expect([await kept('legitimate_interests'), await kept('vital_interests')]).toEqual([false, true]);
    await consent.append({ subjectId: O, kind: 'withdraw_objection', purpose: 'analytics', source: 'support-call', recordedAt: new Date('2026-06-01T00:00:00.000Z') });
    expect(await permitted('analytics.reporting', KEYS.analytics)).toContain(O);
    expect(await kept('legitimate_interests')).toBe(true);
  });

  it('writes a large batch a chunk at a time with the projection that appending its statements one by one gives, and the replay', async () => {
    const subjectsOf = (prefix: string) => Array.from({ length: 5 }, (_, index) => `cus_0000_ledger_${prefix}${index}`);
    const [batched, oneByOne] = [subjectsOf('batch'), subjectsOf('single')];
    for (const subjectId of [...batched, ...oneByOne]) await addCustomer(candor, subjectId);
    // Statements out of time order, many made at the same instant (ties go to the later append), across purposes
    // and their sub-purposes, grants explicit or not and with or without an expiry.
    const statementsOf = (count: number, seed: number) =>
      fc.sample(
        fc.record({
          subject: fc.nat(4),
          kind: fc.constantFrom<ConsentChange['kind']>('grant', 'grant', 'withdraw', 'object', 'withdraw_objection', 'restrict', 'lift_restriction'),
          purpose: fc.constantFrom('marketing', 'marketing.communications', 'marketing.advertising', 'personalize', 'personalize.content', 'analytics'),
          day: fc.integer({ min: 1, max: 20 }),
          explicit: fc.boolean(),
          expiresAfterDays: fc.constantFrom(null, 5, 400),
        }),
        { numRuns: count, seed },
      );
    const changesFor = (subjects: readonly string[], statements: ReturnType<typeof statementsOf>): ConsentChange[] =>
      statements.map(({ subject, kind, purpose, day, explicit, expiresAfterDays }) => ({
        subjectId: subjects[subject],
        kind,
        purpose: kind === 'restrict' || kind === 'lift_restriction' ? undefined : purpose,
        explicit: kind === 'grant' && explicit,
        expiresAt: kind === 'grant' && expiresAfterDays !== null ? new Date(Date.UTC(2026, 0, day + expiresAfterDays)) : null,
        source: 'crm-export',
        recordedAt: new Date(Date.UTC(2026, 0, day)),
      }));
    const consent = candor.services.consent;
    // What the subjects had said before the batch: it starts from a projection, not from nothing.
    const earlier = statementsOf(60, 20261129);
    for (const subjects of [batched, oneByOne]) await consent.appendMany(changesFor(subjects, earlier));
    // 1,100 statements, past two of the ledger's write chunks of 500.
    const statements = statementsOf(1_100, 20261203);
    const written = await consent.appendMany(changesFor(batched, statements));
    for (const change of changesFor(oneByOne, statements)) await consent.append(change);
    // The entries are numbered in the batch's order, each with its receipt.
    expect(written.every((event, index) => index === 0 || event.id > written[index - 1].id)).toBe(true);
    const receipts = await candor.services.dataSource.getRepository(ConsentReceiptEntity).findBy({ eventId: In(written.map((event) => event.id)) });
    expect(new Map(receipts.map((receipt) => [receipt.id, receipt.eventId]))).toEqual(new Map(written.map((event) => [event.receiptId, event.id])));
    const standing = (state: Omit<SubjectState, 'subjectId'>, withReceipts: boolean) => ({
      restricted: state.restricted,
      consents: state.consents
        .map(({ purpose, granted, explicit, expiresAt, recordedAt, receiptId }) => [purpose, granted, explicit, expiresAt?.toISOString(), recordedAt?.toISOString(), withReceipts ? receiptId : undefined])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
      objections: state.objections.map(({ purpose, objected }) => [purpose, objected]).sort(([a], [b]) => String(a).localeCompare(String(b))),
    });
    const projected = (subjects: readonly string[], withReceipts: boolean) => consent.states(subjects).then((states) => states.map((state) => standing(state, withReceipts)));
    const replayed = async (subjects: readonly string[]) => {
      const replay = replayLedger(await candor.services.dataSource.getRepository(ConsentEventEntity).findBy({ subjectId: In([...subjects]) }));
      return subjects.map((subjectId) => standing(replay.get(subjectId)!, true));
    };
    expect(await projected(batched, false)).toEqual(await projected(oneByOne, false));
    expect(await projected(batched, true)).toEqual(await replayed(batched));
    expect(await projected(oneByOne, true)).toEqual(await replayed(oneByOne));
    // Not a vacuous comparison: the statements left each subject with several current ones.
    expect((await projected(batched, false)).every((state) => state.consents.length + state.objections.length >= 2)).toBe(true);
  });

  it('refuses a statement dated in the future (it would outrank every later withdrawal until then), and an expiry on anything but a grant', async () => {
    const F = 'cus_0000_ledger_future';
    await addCustomer(candor, F);
    const consent = candor.services.consent;
    now = new Date('2026-11-29T18:00:00.000Z').getTime();
    await expect(consent.append({ subjectId: F, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date(now + 1) })).rejects.toMatchObject({
      message: 'recordedAt must be a valid time that is not in the future',
      extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'recordedAt' }),
    });
    expect((await consent.append({ subjectId: F, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: new Date(now) })).recordedAt).toBe(new Date(now).toISOString());
    await expect(consent.append({ subjectId: F, kind: 'withdraw', purpose: 'marketing.communications', source: 'crm-export', expiresAt: new Date(now + 86_400_000) })).rejects.toMatchObject({
      message: 'expiresAt applies to grants only',
      extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'expiresAt' }),
    });
    // A grant that would expire as it is made is refused by name.
    await expect(consent.append({ subjectId: F, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', expiresAt: new Date(now) })).rejects.toThrow('expiresAt must be a valid time in the future');
    const made = new Date(now - 60_000);
    await expect(consent.append({ subjectId: F, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export', recordedAt: made, expiresAt: made })).rejects.toThrow('expiresAt must be a valid time after recordedAt');
    expect((await consent.history(F)).map((event) => event.kind)).toEqual(['grant']);
  });

  it("refuses a file's placeholder and impossible times and its repeated statements, row by row, importing nothing", async () => {
    const T = 'cus_0000_ledger_import_times';
    await addCustomer(candor, T);
    now = new Date('2026-11-29T19:30:00.000Z').getTime();
    const file = join(directory, 'times.csv');
    const times = ['0000-01-01T00:00:00Z', '2025-03-14T24:00:00Z', '2026-01-01T00:00:00+23:59', '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z'];
    writeFileSync(file, `subjectId,action,purpose,source,recordedAt\n${times.map((time) => `${T},grant,personalize.content,crm-export,${time}`).join('\n')}\n`);
    expect(await importConsents(candor.services.consent, file, 'cli:test')).toEqual({
      rows: times.length,
      imported: 0,
      rejected: [
        { row: 2, problem: 'recordedAt must not be before 1970, got "0000-01-01T00:00:00Z": a placeholder, not when the statement was made' },
        { row: 3, problem: 'recordedAt must be a date and time with its offset (2026-11-29T12:30:00Z), got "2025-03-14T24:00:00Z"' },
        { row: 4, problem: 'recordedAt must be a date and time with its offset (2026-11-29T12:30:00Z), got "2026-01-01T00:00:00+23:59"' },
        { row: 6, problem: 'repeats row 5: the same statement, made at the same time, would be recorded twice' },
      ],
    });
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: T })).toBe(0);
    // The same statement described otherwise — another source, explicit, a purpose with spaces, the instant in
    // another offset — is a repeat too: the subject said one thing about the purpose then.
    const described = join(directory, 'described.json');
    writeFileSync(
      described,
      JSON.stringify([
        { subjectId: T, action: 'grant', purpose: 'personalize.content', source: 'crm-export', recordedAt: '2026-01-01T10:00:00Z' },
        { subjectId: T, action: 'grant', purpose: ' personalize.content', source: 'web-form', explicit: true, recordedAt: '2026-01-01T11:00:00+01:00' },
        { subjectId: T, action: 'withdraw', purpose: 'personalize.content', source: 'crm-export', recordedAt: '2026-01-01T10:00:00Z' },
      ]),
    );
    expect((await importConsents(candor.services.consent, described, 'cli:test')).rejected).toEqual([{ row: 2, problem: 'repeats row 1: the same statement, made at the same time, would be recorded twice' }]);
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: T })).toBe(0);
    await expect(importConsents(candor.services.consent, directory, 'cli:test')).rejects.toThrow(`cannot read ${directory} (EISDIR)`);
    // A subject erased is told apart from an id no one has.
    const E = 'cus_0000_ledger_import_erased';
    await addCustomer(candor, E);
    await eraseSubject(candor.services, E, { id: 'privacy-desk', name: 'Privacy desk', team: 'Privacy' }, 'import-erasure');
    const gone = join(directory, 'gone.csv');
    writeFileSync(gone, `subjectId,action,purpose,source,recordedAt\n${E},grant,personalize.content,crm-export,2026-01-01T10:00:00Z\ncus_0000_ledger_nobody,grant,personalize.content,crm-export,2026-01-01T10:00:00Z\n`);
    expect((await importConsents(candor.services.consent, gone, 'cli:test')).rejected).toEqual([
      { row: 2, problem: `subject "${E}" is erased: nothing is recorded about them any more` },
      { row: 3, problem: 'unknown subject "cus_0000_ledger_nobody"' },
    ]);
  });

  it('finds the statements it holds among many in one read per 500, whatever source and spacing another export gives them', async () => {
    const M = 'cus_0000_ledger_held_many';
    await addCustomer(candor, M);
    now = new Date('2026-11-29T19:45:00.000Z').getTime();
    const consent = candor.services.consent;
    const statements: ConsentChange[] = Array.from({ length: 1_200 }, (_, second) => ({
      subjectId: M,
      kind: second % 2 ? 'withdraw' : 'grant',
      purpose: 'personalize.content',
      source: 'crm-export',
      recordedAt: new Date(Date.UTC(2026, 0, 1) + second * 1_000),
    }));
    const recorded = (index: number) => index % 3 === 0;
    await consent.appendMany(statements.filter((_, index) => recorded(index)));
    const runner = candor.services.dataSource.createQueryRunner();
    const reads = jest.spyOn(runner, 'query');
    try {
      const held = await consent.entriesHolding(statements.map((statement) => ({ ...statement, purpose: ` ${statement.purpose} `, source: 'another-export' })), runner.manager);
      expect([...held.keys()]).toEqual(statements.flatMap((_, index) => (recorded(index) ? [index] : [])));
      expect([...held.values()].every((entry, position) => entry.recordedAt === statements[position * 3].recordedAt!.toISOString() && entry.source === 'crm-export')).toBe(true);
      expect(reads).toHaveBeenCalledTimes(3);
    } finally {
      await runner.release();
    }
  });

  it('imports explicit as the file says it: false, no and 0 are no explicit consent, and any other word is refused', async () => {
    const I = 'cus_0000_ledger_import_explicit';
    await addCustomer(candor, I);
    now = new Date('2026-11-29T19:00:00.000Z').getTime();
    const file = join(directory, 'explicit.csv');
    const values = ['true', 'false', 'yes', 'no', '1', '0', 'TRUE', ''];
    writeFileSync(file, `subjectId,action,purpose,explicit,source,recordedAt\n${values.map((value, index) => `${I},grant,personalize.content,${value},crm-export,2026-01-01T00:00:0${index}Z`).join('\n')}\n`);
    expect(await importConsents(candor.services.consent, file, 'cli:test')).toEqual({ rows: values.length, imported: values.length, rejected: [] });
    expect((await candor.services.consent.history(I)).map((event) => event.explicit)).toEqual([true, false, true, false, true, false, true, false]);
    const unclear = join(directory, 'explicit-unclear.csv');
    writeFileSync(unclear, `subjectId,action,purpose,explicit,source,recordedAt\n${I},grant,personalize.content,ja,crm-export,2026-01-02T00:00:00Z\n${I},grant,personalize.content,y,crm-export,2026-01-02T00:00:00Z\n`);
    expect(await importConsents(candor.services.consent, unclear, 'cli:test')).toEqual({
      rows: 2,
      imported: 0,
      rejected: [
        { row: 2, problem: 'explicit must be true or false' },
        { row: 3, problem: 'explicit must be true or false' },
      ],
    });
    expect(await candor.services.dataSource.getRepository(ConsentEventEntity).countBy({ subjectId: I })).toBe(values.length);
    // JSON: a boolean, or 1 and 0 as CSV's "1" and "0"; another number is refused as an unclear word is.
    const json = join(directory, 'explicit.json');
    const jsonValues: unknown[] = [true, false, 1, 0, '1', 2];
    writeFileSync(json, JSON.stringify(jsonValues.map((explicit, index) => ({ subjectId: I, action: 'grant', purpose: 'personalize.content', explicit, source: 'crm-export', recordedAt: `2026-01-03T00:00:0${index}Z` }))));
    expect(await importConsents(candor.services.consent, json, 'cli:test')).toEqual({ rows: jsonValues.length, imported: 0, rejected: [{ row: 6, problem: 'explicit must be true or false' }] });
    writeFileSync(json, JSON.stringify(jsonValues.slice(0, -1).map((explicit, index) => ({ subjectId: I, action: 'grant', purpose: 'personalize.content', explicit, source: 'crm-export', recordedAt: `2026-01-03T00:00:0${index}Z` }))));
    expect(await importConsents(candor.services.consent, json, 'cli:test')).toEqual({ rows: jsonValues.length - 1, imported: jsonValues.length - 1, rejected: [] });
    expect((await candor.services.consent.history(I)).slice(0, jsonValues.length - 1).map((event) => event.explicit)).toEqual([true, false, true, false, true].reverse());
    // A file of a header alone holds nothing to import, and is not recorded as imported.
    const empty = join(directory, 'header-only.csv');
    writeFileSync(empty, 'subjectId,action,purpose,source\n');
    await expect(importConsents(candor.services.consent, empty, 'cli:test')).rejects.toThrow(`${empty} holds no rows`);
    expect(await candor.services.consent.importOf(createHash('sha256').update('subjectId,action,purpose,source\n').digest('hex'))).toBeNull();
  });

  it("issues receipts that say what the grant covers: special-category data, a disclosure to a third party under any of its sub-purposes, and when it ends", async () => {
    const R = 'cus_0000_ledger_receipts';
    await addCustomer(candor, R);
    now = new Date('2026-11-29T20:00:00.000Z').getTime();
    const consent = candor.services.consent;
    const receiptOf = async (event: ConsentEventEntity) => JSON.parse((await candor.services.dataSource.getRepository(ConsentReceiptEntity).findOneByOrFail({ id: event.receiptId! })).document);
    const special = await receiptOf(await consent.append({ subjectId: R, kind: 'grant', purpose: 'personalize.content', explicit: true, source: 'crm-export' }));
    expect([special.sensitive, special.spiCat, special.services[0].purposes[0].consentType]).toEqual([true, ['user.health_and_medical'], 'EXPLICIT']);
    const plain = await receiptOf(await consent.append({ subjectId: R, kind: 'grant', purpose: 'marketing.communications', source: 'crm-export' }));
    expect([plain.sensitive, plain.spiCat, plain.services[0].purposes[0].termination]).toEqual([false, [], 'on withdrawal']);
    const expiresAt = new Date(now + 30 * 86_400_000);
    const expiring = await receiptOf(await consent.append({ subjectId: R, kind: 'grant', purpose: 'marketing.advertising', source: 'crm-export', expiresAt }));
    expect(expiring.services[0].purposes[0].termination).toBe(expiresAt.toISOString());
    for (const purpose of ['third_party_sharing', 'third_party_sharing.cinema']) {
      const shared = (await receiptOf(await consent.append({ subjectId: R, kind: 'grant', purpose, source: 'crm-export' }))).services[0].purposes[0];
      expect([purpose, shared.thirdPartyDisclosure, shared.thirdPartyName]).toEqual([purpose, true, 'Partners and sponsors']);
    }
  });

  it('answers a message once when two consent managers answer it at once: the other is told, and the first answer stands', async () => {
    const M = 'cus_0000_ledger_inbox';
    await addCustomer(candor, M);
    const message = await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId: M, context: null, body: 'Why do you e-mail me?', createdAt: new Date(now).toISOString() });
    const inbox = new Inbox(candor.services.dataSource, () => new Date(now));
    const answers = await Promise.allSettled([inbox.answer(message.id, 'First answer.', 'compliance-office'), inbox.answer(message.id, 'Second answer.', 'another-manager')]);
    expect(answers.map((answer) => answer.status).sort()).toEqual(['fulfilled', 'rejected']);
    const [kept] = answers.filter((answer): answer is PromiseFulfilledResult<SubjectMessageEntity> => answer.status === 'fulfilled');
    const [refused] = answers.filter((answer): answer is PromiseRejectedResult => answer.status === 'rejected');
    expect(refused.reason.message).toBe(`message ${message.id} was already answered`);
    const stored = await candor.services.dataSource.getRepository(SubjectMessageEntity).findOneByOrFail({ id: message.id });
    expect([stored.answer, stored.answeredBy]).toEqual([kept.value.answer, kept.value.answeredBy]);
    // An answer of exactly the longest length is taken.
    const another = await candor.services.dataSource.getRepository(SubjectMessageEntity).save({ subjectId: M, context: null, body: 'And another question', createdAt: new Date(now).toISOString() });
    expect((await inbox.answer(another.id, 'x'.repeat(4_000), 'compliance-office')).answer).toHaveLength(4_000);
  });

  it("deletes the subject's messages at their erasure, and says how many", async () => {
    const D = 'cus_0000_ledger_erased_messages';
    await addCustomer(candor, D);
    const messages = candor.services.dataSource.getRepository(SubjectMessageEntity);
    await messages.insert([1, 2].map((index) => ({ subjectId: D, context: null, body: `question ${index}`, createdAt: new Date(now).toISOString() })));
    const erased = await eraseSubject(candor.services, D, compliance, 'ledger-erase-messages');
    expect(erased.messagesErased).toBe(2);
    expect(await messages.countBy({ subjectId: D })).toBe(0);
  });
});
