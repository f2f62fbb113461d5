import { requestPurposeOf } from '../../src/policy/decide';
import { coverageOf } from '../../src/reports/governance.reports';
import type { Purpose } from '../../src/taxonomy/taxonomy';
import type { LogRecord } from '../../src/reports/access-log-source';
import { validateReportRequest } from '../../src/reports/generate-report';
import { denialsReport, findSpikes, percent, purposeUsageReport, withEveryDay } from '../../src/reports/usage.reports';

const frame = { parameters: {}, generatedAt: '2026-11-29T12:00:00.000Z', logHead: { seq: 1, hash: 'a'.repeat(64) }, logSince: '2026-11-01T00:00:00.000Z' };
let seq = 0;
const record = (overrides: Partial<LogRecord>): LogRecord => ({
  seq: ++seq,
  at: '2026-11-01T10:00:00.000Z',
  requestId: `r${seq}`,
  actorId: 'growth',
  actorName: 'Growth',
  actorTeam: 'Marketing',
  purpose: 'marketing.communications',
  operationName: null,
  subjectPseudonym: 'psn_a',
  subjectId: 'cus_a',
  coordinate: 'Customer.email',
  category: 'user.contact.email',
  decision: 'RELEASED',
  reason: 'CONSENT_GIVEN',
  legalBasis: 'consent',
  ...overrides,
});

describe('report figures', () => {
  it('flags a day as a spike when it exceeds the other days by three standard deviations (and at least 10)', () => {
    const daily = ['01', '02', '03', '04', '05'].map((day, index) => ({ date: `2026-11-${day}`, withheld: [4, 5, 6, 5, 40][index] }));
    expect(findSpikes(daily)).toEqual([{ date: '2026-11-05', withheld: 40, baseline: 5 }]);
    expect(findSpikes(daily.slice(0, 4))).toEqual([]);
    expect(findSpikes([{ date: 'a', withheld: 0 }, { date: 'b', withheld: 0 }, { date: 'c', withheld: 9 }])).toEqual([]); // below 10
    expect(findSpikes(daily.slice(0, 2))).toEqual([]); // too little history
  });

  it("spans a period's days only while the log existed: none before its oldest batch (or a prune's), none after the report", () => {
    const span = { parameters: { from: '0001-01-01T00:00:00.000Z', to: '2100-01-01T00:00:00.000Z' }, generatedAt: '2026-11-30T12:00:00.000Z', logSince: '2026-11-28T09:00:00.000Z' };
    expect(withEveryDay([{ date: '2026-11-29', withheld: 3 }], span).map((row) => row.date)).toEqual(['2026-11-28', '2026-11-29', '2026-11-30']);
    expect(withEveryDay([], { ...span, logSince: null })).toEqual([]);
  });

  it('finds a spike among years of days (each day against the sums of the others)', () => {
    const daily = Array.from({ length: 3_000 }, (_, index) => ({ date: String(index), withheld: index === 1_234 ? 500 : (index * 7) % 13 }));
    expect(findSpikes(daily)).toEqual([{ date: '1234', withheld: 500, baseline: expect.closeTo(6, 0) }]);
  });

  it('measures a spike against every day of the period, quiet ones included', () => {
    expect(withEveryDay([{ date: '2026-11-29', withheld: 3 }, { date: '2026-12-02', withheld: 1 }])).toEqual([
      { date: '2026-11-29', withheld: 3 },
      { date: '2026-11-30', withheld: 0 },
      { date: '2026-12-01', withheld: 0 },
      { date: '2026-12-02', withheld: 1 },
    ]);
    const denials = denialsReport();
    // Three days with withholdings, and 27 with decisions but nothing withheld: 30 and 50 stand out.
    for (let day = 1; day <= 30; day++) {
      const at = `2026-11-${String(day).padStart(2, '0')}T10:00:00.000Z`;
      const withheld = day === 1 ? 10 : day === 2 ? 30 : day === 3 ? 50 : 0;
      denials.add(record({ at }));
      for (let index = 0; index < withheld; index++) denials.add(record({ at, decision: 'WITHHELD', reason: 'CONSENT_REQUIRED' }));
    }
    const { spikes } = denials.finish(frame).data as { spikes: Array<{ date: string }> };
    expect(spikes.map((spike) => spike.date)).toEqual(['2026-11-02', '2026-11-03']);
  });

  it('counts uses, not dry runs nor the choices onlyPermitted filtered on (kept or left out); erased subjects still by pseudonym; masked releases in the daily trend', () => {
    const usage = purposeUsageReport();
    const denials = denialsReport();
    for (const recorded of [
      record({}),
      record({ subjectId: null, subjectPseudonym: 'psn_erased' }),
      record({ decision: 'MASKED', reason: 'LEGAL_BASIS' }),
      record({ decision: 'WITHHELD', reason: 'EXPLAIN_ONLY' }),
      record({ coordinate: 'Query.customers', category: 'user.privacy_preferences', reason: 'FILTERED_ON_CHOICES' }),
      record({ coordinate: 'Query.customers', category: 'user.privacy_preferences', decision: 'WITHHELD', reason: 'FILTERED_OUT_ON_CHOICES' }),
    ]) {
      usage.add(recorded);
      denials.add(recorded);
    }
    const figures = usage.finish(frame).data as { groups: Array<{ accesses: number; distinctSubjects: number; withheld: number }>; trend: Array<Record<string, unknown>> };
    expect(figures.groups).toEqual([expect.objectContaining({ accesses: 3, withheld: 0, distinctSubjects: 2 })]);
    expect(figures.trend).toEqual([{ date: '2026-11-01', released: 2, withheld: 0, masked: 1 }]);
    expect((denials.finish(frame).data as { actors: unknown[] }).actors).toEqual([expect.objectContaining({ decisions: 3, withheld: 0 })]);
  });

  it('classifies a subject per purpose by the most specific statement, as decide() does; an objection wins', () => {
    const now = new Date('2026-06-01');
    const purpose = { key: 'marketing.communications', legalBasis: 'consent' as const };
    const changed = { ...purpose, renewConsentsBefore: new Date('2026-03-01') };
    const state = (consents: any[], objections: any[] = []) => ({ subjectId: 's', restricted: false, consents, objections });
    const grant = (extra: Record<string, unknown> = {}) => ({ purpose: 'marketing', granted: true, explicit: false, expiresAt: null, ...extra });
    expect(coverageOf(undefined, purpose, now)).toBe('never asked');
    expect(coverageOf(state([]), purpose, now)).toBe('never asked');
    expect(coverageOf(state([grant()]), purpose, now)).toBe('granted');
    expect(coverageOf(state([grant({ expiresAt: new Date('2026-01-01') })]), purpose, now)).toBe('withdrawn');
    expect(coverageOf(state([{ ...grant(), purpose: 'marketing.communications', granted: false }]), purpose, now)).toBe('withdrawn');
    expect(coverageOf(state([grant()], [{ purpose: 'marketing', objected: true }]), purpose, now)).toBe('objected');
    // A material notice change: a grant given before it needs renewing (decide() says CONSENT_RENEWAL_REQUIRED).
    expect(coverageOf(state([grant({ recordedAt: new Date('2026-02-01') })]), changed, now)).toBe('renewal needed');
    expect(coverageOf(state([grant({ purpose: 'marketing.communications', recordedAt: new Date('2026-04-01') })]), changed, now)).toBe('granted');
    // A grant of the broader purpose after it does not renew it: it was given under marketing's notice.
    expect(coverageOf(state([grant({ recordedAt: new Date('2026-04-01') })]), changed, now)).toBe('renewal needed');
    // The change counts from its date on: a period starting before it counts the earlier grant as granted.
    const notice = { version: 2, since: new Date('2026-03-01'), material: true };
    const taxonomyPurpose = { key: 'marketing.communications', legalBasis: 'consent', notice } as unknown as Purpose;
    expect(requestPurposeOf(taxonomyPurpose, new Date('2026-02-01')).renewConsentsBefore).toBeUndefined();
    expect(requestPurposeOf(taxonomyPurpose, now).renewConsentsBefore).toEqual(new Date('2026-03-01'));
    // A later version that fixes a typo (not material) keeps the earlier material change's renewal.
    const typoFixed = { ...taxonomyPurpose, notice: { version: 3, since: new Date('2026-03-15'), material: false, materialSince: new Date('2026-03-01') } } as Purpose;
    expect(requestPurposeOf(typoFixed, now).renewConsentsBefore).toEqual(new Date('2026-03-01'));
    // A material change announced for later: the earlier one stands until it applies, then the later one.
    const announced = { ...taxonomyPurpose, notice: { version: 4, since: new Date('2026-05-01'), material: true, materialSince: new Date('2026-03-01') } } as Purpose;
    expect(requestPurposeOf(announced, new Date('2026-04-01')).renewConsentsBefore).toEqual(new Date('2026-03-01'));
    expect(requestPurposeOf(announced, now).renewConsentsBefore).toEqual(new Date('2026-05-01'));
  });

  it('formats shares', () => {
    expect([percent(1, 3), percent(0, 0), percent(5, 5)]).toEqual(['33.3%', '0%', '100.0%']);
  });
  it('flags a spike of exactly 10 withheld fields, and none with only two days of history however far one stands out', () => {
    const daily = ['01', '02', '03', '04', '05'].map((day, index) => ({ date: `2026-11-${day}`, withheld: [0, 0, 0, 0, 10][index] }));
    expect(findSpikes(daily)).toEqual([{ date: '2026-11-05', withheld: 10, baseline: 0 }]);
    expect(findSpikes([{ date: '2026-11-01', withheld: 0 }, { date: '2026-11-02', withheld: 40 }])).toEqual([]);
  });

  it('refuses a report period that starts where it ends: from must be before to', () => {
    const at = '2026-11-01T00:00:00.000Z';
    expect(() => validateReportRequest({ kind: 'denials', from: at, to: at })).toThrow('from must be before to');
    expect(validateReportRequest({ kind: 'denials', from: at, to: '2026-11-01T00:00:00.001Z' }).parameters).toEqual({ from: at, to: '2026-11-01T00:00:00.001Z' });
  });
});
