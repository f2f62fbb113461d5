import { coverageOf } from '../../src/reports/governance.reports';
import { findSpikes, percent } from '../../src/reports/usage.reports';

describe('report figures', () => {
  it('flags a day as a spike when it exceeds the other days by three standard deviations (and at least 10)', () => {
    const daily = ['01', '02', '03', '04', '05'].map((day, index) => ({ date: `2026-11-${day}`, withheld: [4, 5, 6, 5, 40][index] }));
    expect(findSpikes(daily)).toEqual([{ date: '2026-11-05', withheld: 40, baseline: 5 }]);
    expect(findSpikes(daily.slice(0, 4))).toEqual([]);
    expect(findSpikes([{ date: 'a', withheld: 0 }, { date: 'b', withheld: 0 }, { date: 'c', withheld: 9 }])).toEqual([]); // below 10
    expect(findSpikes(daily.slice(0, 2))).toEqual([]); // too little history
  });

  it('classifies a subject per purpose by the most specific statement; an objection wins', () => {
    const now = new Date('2026-06-01');
    const state = (consents: any[], objections: any[] = []) => ({ subjectId: 's', restricted: false, consents, objections });
    expect(coverageOf(undefined, 'marketing.communications', now)).toBe('never asked');
    expect(coverageOf(state([{ purpose: 'marketing', granted: true, explicit: false, expiresAt: null }]), 'marketing.communications', now)).toBe('granted');
    expect(coverageOf(state([{ purpose: 'marketing', granted: true, explicit: false, expiresAt: new Date('2026-01-01') }]), 'marketing.communications', now)).toBe('withdrawn');
    expect(coverageOf(state([{ purpose: 'marketing.communications', granted: false, explicit: false, expiresAt: null }]), 'marketing.communications', now)).toBe('withdrawn');
    expect(coverageOf(state([{ purpose: 'marketing', granted: true, explicit: false, expiresAt: null }], [{ purpose: 'marketing', objected: true }]), 'marketing.communications', now)).toBe('objected');
  });

  it('formats shares', () => {
    expect([percent(1, 3), percent(0, 0), percent(5, 5)]).toEqual(['33.3%', '0%', '100.0%']);
  });
});
