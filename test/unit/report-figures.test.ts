import { requestPurposeOf } from '../../src/policy/decide';
import { coverageOf } from '../../src/reports/governance.reports';
import type { Purpose } from '../../src/taxonomy/taxonomy';
import { findSpikes, percent } from '../../src/reports/usage.reports';

describe('report figures', () => {
  it('flags a day as a spike when it exceeds the other days by three standard deviations (and at least 10)', () => {
    const daily = ['01', '02', '03', '04', '05'].map((day, index) => ({ date: `2026-11-${day}`, withheld: [4, 5, 6, 5, 40][index] }));
    expect(findSpikes(daily)).toEqual([{ date: '2026-11-05', withheld: 40, baseline: 5 }]);
    expect(findSpikes(daily.slice(0, 4))).toEqual([]);
    expect(findSpikes([{ date: 'a', withheld: 0 }, { date: 'b', withheld: 0 }, { date: 'c', withheld: 9 }])).toEqual([]); // below 10
    expect(findSpikes(daily.slice(0, 2))).toEqual([]); // too little history
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
    expect(coverageOf(state([grant({ recordedAt: new Date('2026-04-01') })]), changed, now)).toBe('granted');
    // The change counts from its date on: a period starting before it counts the earlier grant as granted.
    const notice = { version: 2, since: new Date('2026-03-01'), material: true };
    const taxonomyPurpose = { key: 'marketing.communications', legalBasis: 'consent', notice } as unknown as Purpose;
    expect(requestPurposeOf(taxonomyPurpose, new Date('2026-02-01')).renewConsentsBefore).toBeUndefined();
    expect(requestPurposeOf(taxonomyPurpose, now).renewConsentsBefore).toEqual(new Date('2026-03-01'));
  });

  it('formats shares', () => {
    expect([percent(1, 3), percent(0, 0), percent(5, 5)]).toEqual(['33.3%', '0%', '100.0%']);
  });
});
