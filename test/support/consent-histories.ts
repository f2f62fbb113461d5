import fc from 'fast-check';
import type { ConsentChange } from '../../src/consent/consent-ledger';
import { KEYS } from './candor-harness';

/** Actors and the purposes they may declare, for property-based tests: every legal basis and mask occurs. */
export const ACTORS: Array<[string, string]> = [
  [KEYS.support, 'essential.service'],
  [KEYS.marketing, 'marketing.communications'],
  [KEYS.marketing, 'marketing.advertising'],
  [KEYS.analytics, 'analytics.reporting'],
  [KEYS.analytics, 'personalize.content'],
  [KEYS.analytics, 'functional.service.improve'],
  [KEYS.partners, 'third_party_sharing'],
  [KEYS.compliance, 'essential.legal_obligation'],
];

/** Purposes a consent statement names: grouping purposes and their children. */
const STATEMENT_PURPOSES = ['marketing', 'marketing.communications', 'marketing.advertising', 'analytics', 'analytics.reporting', 'personalize.content', 'essential', 'essential.service', 'third_party_sharing'];
const DAY = 86_400_000;

/** A random consent statement about one of `subjects`. */
export const consentChange = (subjects: readonly string[]) =>
  fc.record({
    subject: fc.constantFrom(...subjects),
    // Grants three times as often as each other kind: else consent-based releases (rule 6) are rare in a run.
    kind: fc.constantFrom('grant', 'grant', 'grant', 'withdraw', 'object', 'withdraw_objection', 'restrict', 'lift_restriction'),
    purpose: fc.constantFrom(...STATEMENT_PURPOSES),
    explicit: fc.boolean(),
    // 'expired': a grant made two days ago that expired yesterday (an imported history): rule 6's expiry.
    expires: fc.constantFrom(null, 'soon', 'later', 'expired'),
    // 'before': made two days ago (an imported history): before a notice change a day ago, where a test has one.
    made: fc.constantFrom('now', 'before'),
  });

/** Random statements as the ledger takes them: a restriction is of all processing, explicit belongs to a grant. */
export function ledgerOf(
  changes: ReadonlyArray<{ subject: string; kind: string; purpose: string; explicit: boolean; expires: null | 'soon' | 'later' | 'expired'; made: 'now' | 'before' }>,
  now: number,
): ConsentChange[] {
  return changes.map((item) => {
    const expired = item.kind === 'grant' && item.expires === 'expired';
    return {
      subjectId: item.subject,
      kind: item.kind as ConsentChange['kind'],
      purpose: item.kind === 'restrict' || item.kind === 'lift_restriction' ? undefined : item.purpose,
      explicit: item.kind === 'grant' && item.explicit,
      source: 'property-test',
      expiresAt: item.kind === 'grant' && item.expires ? new Date(expired ? now - DAY : now + (item.expires === 'soon' ? DAY : 30 * DAY)) : null,
      ...(expired || item.made === 'before' ? { recordedAt: new Date(now - 2 * DAY) } : {}),
    };
  });
}
