import { type ConsentStatement, consentStanding, decide, type FieldPolicy, mostSpecific, type ObjectionStatement, type RequestPurpose, type SubjectState } from '../../src/policy/decide';
import type { LegalBasis } from '../../src/taxonomy/taxonomy';

const NOW = new Date('2026-06-01T12:00:00Z');
const field = (overrides: Partial<FieldPolicy> = {}): FieldPolicy => ({
  category: 'user.contact.email',
  personal: true,
  special: false,
  purposes: ['essential.service', 'marketing.communications'],
  ...overrides,
});
const purpose = (key: string, legalBasis: LegalBasis): RequestPurpose => ({ key, legalBasis });
const state = (overrides: Partial<SubjectState> = {}): SubjectState => ({ subjectId: 's1', restricted: false, consents: [], objections: [], ...overrides });
const grant = (purposeKey: string, extra: Partial<ConsentStatement> = {}): ConsentStatement => ({ purpose: purposeKey, granted: true, explicit: false, expiresAt: null, ...extra });
const withdrawn = (purposeKey: string): ConsentStatement => ({ purpose: purposeKey, granted: false, explicit: false, expiresAt: null });
const objection = (purposeKey: string, objected = true): ObjectionStatement => ({ purpose: purposeKey, objected });

const MARKETING = purpose('marketing.communications', 'consent');
const SERVICE = purpose('essential.service', 'contract');
const LEGAL = purpose('essential.legal_obligation', 'legal_obligation');
const FRAUD = purpose('essential.fraud_detection', 'legitimate_interests');
const VITAL = purpose('essential.vital', 'vital_interests');
const PUBLIC_TASK = purpose('essential.public_task', 'public_task');
const HEALTH = field({ category: 'user.health_and_medical', special: true, purposes: ['essential.service', 'personalize.content', 'essential.legal_obligation', 'essential.vital'] });
const ALL_PURPOSES = field({ purposes: ['essential', 'marketing', 'analytics'] });

const RENEWED = { ...MARKETING, renewConsentsBefore: new Date('2026-03-01T00:00:00Z') };
const SERVICE_RENEWED = { ...SERVICE, renewConsentsBefore: new Date('2026-03-01T00:00:00Z') };
const before = new Date('2026-02-01T00:00:00Z');
const after = new Date('2026-04-01T00:00:00Z');

describe('decide()', () => {
  it.each([
    ['0', 'the subject looking at their own record, whatever purpose and choices', field(), MARKETING, state({ restricted: true }), 'allow', 'SUBJECT_REQUEST', 'legal_obligation', 's1'],
    ['0', 'self-access to special-category data', HEALTH, MARKETING, state(), 'allow', 'SUBJECT_REQUEST', 'legal_obligation', 's1'],
    ['0', 'someone else’s record is not self-access', field(), MARKETING, state(), 'deny', 'CONSENT_REQUIRED', 'consent', 'another-subject'],
    ['0', 'self-access needs the state to confirm the subject', field(), SERVICE, null, 'deny', 'GOVERNANCE_UNAVAILABLE', 'contract', 's1'],
  ] as const)('rule %s: %s', (_rule, _description, fieldPolicy, requestPurpose, subjectState, effect, reason, legalBasis, selfAccessBy) => {
    expect(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW, selfAccessBy })).toEqual({ effect, reason, legalBasis });
  });

  it.each([
    ['5', 'explicit consent given before a material notice change', HEALTH, SERVICE_RENEWED, state({ consents: [grant('essential.service', { explicit: true, recordedAt: before })] }), 'deny', 'CONSENT_RENEWAL_REQUIRED', 'contract'],
    ['5', 'explicit consent renewed after the notice change', HEALTH, SERVICE_RENEWED, state({ consents: [grant('essential.service', { explicit: true, recordedAt: after })] }), 'allow', 'LEGAL_BASIS', 'contract'],
    ['6', 'a grant given before a material notice change', field(), RENEWED, state({ consents: [grant('marketing.communications', { recordedAt: before })] }), 'deny', 'CONSENT_RENEWAL_REQUIRED', 'consent'],
    ['6', 'a grant of unknown date under a material notice change', field(), RENEWED, state({ consents: [grant('marketing.communications')] }), 'deny', 'CONSENT_RENEWAL_REQUIRED', 'consent'],
    ['6', 'a grant renewed after the notice change', field(), RENEWED, state({ consents: [grant('marketing.communications', { recordedAt: after })] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'a grant recorded exactly at the notice change counts as renewed', field(), RENEWED, state({ consents: [grant('marketing.communications', { recordedAt: RENEWED.renewConsentsBefore })] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'a grant recorded a millisecond before the notice change needs renewal', field(), RENEWED, state({ consents: [grant('marketing.communications', { recordedAt: new Date(RENEWED.renewConsentsBefore.getTime() - 1) })] }), 'deny', 'CONSENT_RENEWAL_REQUIRED', 'consent'],
    ['6', 'a grant of the broader purpose after the notice change does not renew it (given under that purpose’s notice)', field(), RENEWED, state({ consents: [grant('marketing', { recordedAt: after })] }), 'deny', 'CONSENT_RENEWAL_REQUIRED', 'consent'],
    ['6', 'a grant of the purpose itself after the change renews it, whatever the broader grant says', field(), RENEWED, state({ consents: [grant('marketing', { recordedAt: before }), grant('marketing.communications', { recordedAt: after })] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'no grant at all is still CONSENT_REQUIRED under a notice change', field(), RENEWED, state(), 'deny', 'CONSENT_REQUIRED', 'consent'],
  ] as const)('rule %s: %s', (_rule, _description, fieldPolicy, requestPurpose, subjectState, effect, reason, legalBasis) => {
    expect(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW })).toEqual({ effect, reason, legalBasis });
  });

  const MASKED_EMAIL = field({ mask: { strategy: 'partial_email', purposes: ['analytics', 'marketing.advertising'] } });
  const ANALYTICS = purpose('analytics.reporting', 'legitimate_interests');
  const ADVERTISING = purpose('marketing.advertising', 'consent');
  it.each([
    ['2', 'a mask for another purpose does not open the field', MASKED_EMAIL, purpose('third_party_sharing', 'consent'), state(), 'deny', 'PURPOSE_NOT_DECLARED', 'consent'],
    ['2', 'a declared purpose the mask does not cover: the full value', MASKED_EMAIL, MARKETING, state({ consents: [grant('marketing')] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['2', 'a purpose both declared and covered by the mask: the declaration wins, the full value', { ...MASKED_EMAIL, purposes: [...MASKED_EMAIL.purposes, 'analytics.reporting'] }, ANALYTICS, state(), 'allow', 'LEGAL_BASIS', 'legitimate_interests'],
    ['2a', 'a masked release still needs the subject state', MASKED_EMAIL, ANALYTICS, null, 'deny', 'GOVERNANCE_UNAVAILABLE', 'legitimate_interests'],
    ['3', 'restriction stops a masked release', MASKED_EMAIL, ANALYTICS, state({ restricted: true }), 'deny', 'PROCESSING_RESTRICTED', 'legitimate_interests'],
    ['4', 'objection stops a masked release', MASKED_EMAIL, ANALYTICS, state({ objections: [objection('analytics')] }), 'deny', 'OBJECTED', 'legitimate_interests'],
    ['5', 'special data masked still needs explicit consent', { ...MASKED_EMAIL, special: true }, ANALYTICS, state(), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'legitimate_interests'],
    ['6', 'a masked release on a consent basis needs the consent', MASKED_EMAIL, ADVERTISING, state(), 'deny', 'CONSENT_REQUIRED', 'consent'],
  ] as const)('rule %s (masked): %s', (_rule, _description, fieldPolicy, requestPurpose, subjectState, effect, reason, legalBasis) => {
    expect(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW })).toEqual({ effect, reason, legalBasis });
  });

  it.each([
    ['8', 'legitimate interests, covered by the mask of a parent purpose', MASKED_EMAIL, ANALYTICS, state(), { effect: 'mask', reason: 'LEGAL_BASIS', legalBasis: 'legitimate_interests', mask: 'partial_email' }],
    ['8', 'a consent purpose with its grant, naming the receipt', MASKED_EMAIL, ADVERTISING, state({ consents: [grant('marketing', { receiptId: 'rcpt-9' })] }), { effect: 'mask', reason: 'CONSENT_GIVEN', legalBasis: 'consent', consentReceiptId: 'rcpt-9', mask: 'partial_email' }],
    ['0', 'the subject themself always sees the full value', MASKED_EMAIL, ANALYTICS, state(), { effect: 'allow', reason: 'SUBJECT_REQUEST', legalBasis: 'legal_obligation' }],
  ] as const)('rule %s: %s', (rule, _description, fieldPolicy, requestPurpose, subjectState, expected) => {
    expect(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW, ...(rule === '0' ? { selfAccessBy: 's1' } : {}) })).toEqual(expected);
  });

  it('names the receipt of the consent a release relied on', () => {
    const subjectState = state({ consents: [grant('marketing', { receiptId: 'rcpt-1' })] });
    expect(decide({ field: field(), purpose: MARKETING, subjectState, now: NOW })).toEqual({ effect: 'allow', reason: 'CONSENT_GIVEN', legalBasis: 'consent', consentReceiptId: 'rcpt-1' });
    const explicit = state({ consents: [grant('essential', { explicit: true, receiptId: 'rcpt-2' })] });
    expect(decide({ field: HEALTH, purpose: SERVICE, subjectState: explicit, now: NOW }).consentReceiptId).toBe('rcpt-2');
    expect(decide({ field: field(), purpose: SERVICE, subjectState: explicit, now: NOW }).consentReceiptId).toBeUndefined();
  });

  it.each([
    // [rule, description, field, purpose, subject state, effect, reason, legal basis]
    ['1', 'non-personal category, whatever the purpose or state', field({ category: 'system.operations', personal: false, purposes: [] }), MARKETING, null, 'allow', 'NON_PERSONAL', null],
    ['1', 'non-personal category even when the subject restricted processing', field({ category: 'system.operations', personal: false, purposes: [] }), MARKETING, state({ restricted: true }), 'allow', 'NON_PERSONAL', null],
    ['2', 'purpose not declared on the field', field(), purpose('analytics.reporting', 'legitimate_interests'), state(), 'deny', 'PURPOSE_NOT_DECLARED', 'legitimate_interests'],
    ['2', 'a declared sub-purpose does not cover its parent', field({ purposes: ['essential.service.payment_processing'] }), SERVICE, state(), 'deny', 'PURPOSE_NOT_DECLARED', 'contract'],
    ['2', 'prefix without a dot boundary does not cover', field({ purposes: ['essential.serv'] }), SERVICE, state(), 'deny', 'PURPOSE_NOT_DECLARED', 'contract'],
    ['2', 'declared before the state is known: no subject lookup needed', field(), purpose('analytics.reporting', 'legitimate_interests'), null, 'deny', 'PURPOSE_NOT_DECLARED', 'legitimate_interests'],
    ['2', 'a declared parent purpose covers its sub-purpose', field({ purposes: ['essential.service'] }), purpose('essential.service.payment_processing', 'contract'), state(), 'allow', 'LEGAL_BASIS', 'contract'],
    ['2a', 'subject state unknown (store unreachable)', field(), SERVICE, null, 'deny', 'GOVERNANCE_UNAVAILABLE', 'contract'],
    ['3', 'restricted processing', field(), SERVICE, state({ restricted: true, consents: [grant('essential.service')] }), 'deny', 'PROCESSING_RESTRICTED', 'contract'],
    ['3', 'restriction does not stop a legal obligation', ALL_PURPOSES, LEGAL, state({ restricted: true }), 'allow', 'LEGAL_BASIS', 'legal_obligation'],
    ['3', 'restriction stops even a granted consent purpose', field(), MARKETING, state({ restricted: true, consents: [grant('marketing.communications')] }), 'deny', 'PROCESSING_RESTRICTED', 'consent'],
    ['4', 'objection to the purpose itself', field({ purposes: ['essential.fraud_detection'] }), FRAUD, state({ objections: [objection('essential.fraud_detection')] }), 'deny', 'OBJECTED', 'legitimate_interests'],
    ['4', 'objection to a parent purpose covers the request', ALL_PURPOSES, purpose('analytics.reporting', 'legitimate_interests'), state({ objections: [objection('analytics')] }), 'deny', 'OBJECTED', 'legitimate_interests'],
    ['4', 'objection to a sibling purpose does not count', ALL_PURPOSES, purpose('analytics.reporting', 'legitimate_interests'), state({ objections: [objection('marketing')] }), 'allow', 'LEGAL_BASIS', 'legitimate_interests'],
    ['4', 'a withdrawn objection no longer counts', ALL_PURPOSES, purpose('analytics.reporting', 'legitimate_interests'), state({ objections: [objection('analytics.reporting', false)] }), 'allow', 'LEGAL_BASIS', 'legitimate_interests'],
    ['4', 'a narrower withdrawn objection wins over a broader objection', ALL_PURPOSES, purpose('analytics.reporting', 'legitimate_interests'), state({ objections: [objection('analytics'), objection('analytics.reporting', false)] }), 'allow', 'LEGAL_BASIS', 'legitimate_interests'],
    ['4', 'objection does not stop a legal obligation', ALL_PURPOSES, LEGAL, state({ objections: [objection('essential')] }), 'allow', 'LEGAL_BASIS', 'legal_obligation'],
    ['4', 'objection does not stop vital interests', field({ purposes: ['essential'] }), VITAL, state({ objections: [objection('essential')] }), 'allow', 'LEGAL_BASIS', 'vital_interests'],
    ['4', 'objection stops a consent purpose even when granted', field(), MARKETING, state({ consents: [grant('marketing.communications')], objections: [objection('marketing')] }), 'deny', 'OBJECTED', 'consent'],
    ['5', 'special category without any consent', HEALTH, SERVICE, state(), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['5', 'special category with a non-explicit consent', HEALTH, SERVICE, state({ consents: [grant('essential.service')] }), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['5', 'special category with an expired explicit consent', HEALTH, SERVICE, state({ consents: [grant('essential.service', { explicit: true, expiresAt: new Date('2026-01-01T00:00:00Z') })] }), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['5', 'special category with a withdrawn explicit consent', HEALTH, SERVICE, state({ consents: [withdrawn('essential.service')] }), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['5', 'special category under a legal obligation still needs explicit consent', HEALTH, LEGAL, state(), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'legal_obligation'],
    ['5', 'special category with explicit consent, contract basis', HEALTH, SERVICE, state({ consents: [grant('essential.service', { explicit: true })] }), 'allow', 'LEGAL_BASIS', 'contract'],
    ['5', 'special category with explicit consent on a parent purpose', HEALTH, purpose('personalize.content', 'consent'), state({ consents: [grant('personalize', { explicit: true })] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'consent basis without a grant', field(), MARKETING, state(), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'consent basis with a grant', field(), MARKETING, state({ consents: [grant('marketing.communications')] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'consent basis with a grant on the parent purpose', field(), MARKETING, state({ consents: [grant('marketing')] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'a grant on a sub-purpose does not cover the parent', field({ purposes: ['personalize'] }), purpose('personalize.content', 'consent'), state({ consents: [grant('personalize.content.profiling')] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'a withdrawn grant', field(), MARKETING, state({ consents: [withdrawn('marketing.communications')] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'withdrawing the sub-purpose after granting the parent', field(), MARKETING, state({ consents: [grant('marketing'), withdrawn('marketing.communications')] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'granting the sub-purpose after withdrawing the parent', field(), MARKETING, state({ consents: [withdrawn('marketing'), grant('marketing.communications')] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'a grant expired before now', field(), MARKETING, state({ consents: [grant('marketing.communications', { expiresAt: new Date('2026-05-31T00:00:00Z') })] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'a grant expiring exactly now no longer counts', field(), MARKETING, state({ consents: [grant('marketing.communications', { expiresAt: NOW })] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['6', 'a grant expiring after now', field(), MARKETING, state({ consents: [grant('marketing.communications', { expiresAt: new Date('2026-06-02T00:00:00Z') })] }), 'allow', 'CONSENT_GIVEN', 'consent'],
    ['6', 'a grant for another purpose', field(), MARKETING, state({ consents: [grant('marketing.advertising')] }), 'deny', 'CONSENT_REQUIRED', 'consent'],
    ['3', 'restriction stops vital interests (only a legal obligation is exempt)', field({ purposes: ['essential'] }), VITAL, state({ restricted: true }), 'deny', 'PROCESSING_RESTRICTED', 'vital_interests'],
    ['3', 'restriction stops a public task', field({ purposes: ['essential'] }), PUBLIC_TASK, state({ restricted: true }), 'deny', 'PROCESSING_RESTRICTED', 'public_task'],
    ['4', 'objection stops a contract purpose', field(), SERVICE, state({ objections: [objection('essential.service')] }), 'deny', 'OBJECTED', 'contract'],
    ['4', 'objection stops a public task', field({ purposes: ['essential'] }), PUBLIC_TASK, state({ objections: [objection('essential')] }), 'deny', 'OBJECTED', 'public_task'],
    ['5', 'special category under vital interests still needs explicit consent', HEALTH, VITAL, state(), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'vital_interests'],
    ['5', 'an explicit consent expiring exactly now no longer counts', HEALTH, SERVICE, state({ consents: [grant('essential.service', { explicit: true, expiresAt: NOW })] }), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['5', 'an explicit parent grant, but a non-explicit grant on the purpose itself (the most specific counts)', HEALTH, SERVICE, state({ consents: [grant('essential', { explicit: true }), grant('essential.service')] }), 'deny', 'EXPLICIT_CONSENT_REQUIRED', 'contract'],
    ['7', 'contract basis needs no consent', field(), SERVICE, state(), 'allow', 'LEGAL_BASIS', 'contract'],
    ['7', 'public task', field({ purposes: ['essential'] }), PUBLIC_TASK, state(), 'allow', 'LEGAL_BASIS', 'public_task'],
    ['7', 'legitimate interests without objection', field({ purposes: ['essential.fraud_detection'] }), FRAUD, state(), 'allow', 'LEGAL_BASIS', 'legitimate_interests'],
    ['7', 'legal obligation', ALL_PURPOSES, LEGAL, state(), 'allow', 'LEGAL_BASIS', 'legal_obligation'],
  ] as const)('rule %s: %s', (_rule, _description, fieldPolicy, requestPurpose, subjectState, effect, reason, legalBasis) => {
    expect(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW })).toEqual({ effect, reason, legalBasis });
  });

  it('covers every reason code with at least one row', () => {
    // Keeps the table honest when a reason is added to codes.ts.
    const { RELEASE_REASONS, DENIAL_REASONS } = jest.requireActual('../../src/policy/codes');
    const reasons = new Set<string>();
    const subjects = [null, state(), state({ restricted: true }), state({ objections: [objection('marketing')] }), state({ consents: [grant('marketing', { explicit: true })] })];
    for (const fieldPolicy of [field(), HEALTH, field({ personal: false, category: 'system.operations' })]) {
      for (const requestPurpose of [MARKETING, SERVICE, LEGAL, RENEWED, purpose('analytics.reporting', 'legitimate_interests')]) {
        for (const subjectState of subjects) {
          reasons.add(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW }).reason);
          reasons.add(decide({ field: fieldPolicy, purpose: requestPurpose, subjectState, now: NOW, selfAccessBy: 's1' }).reason);
        }
      }
    }
    expect([...reasons].sort()).toEqual([...RELEASE_REASONS, ...DENIAL_REASONS].sort());
  });

  it('is pure: the same request always gives the same decision and inputs are not touched', () => {
    // Frozen all the way down (strict mode: a write throws); a Date cannot be frozen, so its time is compared.
    const deepFreeze = <T>(value: T): T => {
      if (value !== null && typeof value === 'object' && !(value instanceof Date)) for (const child of Object.values(value)) deepFreeze(child);
      return Object.freeze(value);
    };
    const now = new Date(NOW.getTime());
    const expiresAt = new Date(NOW.getTime() + 86_400_000);
    const subjectState = state({ consents: [grant('marketing', { expiresAt }), grant('marketing.communications', { granted: false })], objections: [{ purpose: 'analytics', objected: true }] });
    const request = deepFreeze({ field: field(), purpose: MARKETING, subjectState, now });
    const first = decide(request);
    expect(decide(request)).toEqual(first);
    expect([now.getTime(), expiresAt.getTime()]).toEqual([NOW.getTime(), NOW.getTime() + 86_400_000]);
  });
});

describe('the property enforcement relies on', () => {
  it('rules 2a–7 read the field only through `special`: declared fields with the same flag get the same decision', () => {
    // RequestGovernance decides once per (subject, special flag) for fields declared for the purpose.
    const declaredFields = [field(), field({ category: 'user.name', purposes: ['marketing'] }), field({ category: 'user.behavior', purposes: ['essential', 'marketing.communications', 'analytics'] })];
    const specialFields = declaredFields.map((policy) => ({ ...policy, special: true }));
    const states = [null, state(), state({ restricted: true }), state({ objections: [objection('marketing')] }), state({ consents: [grant('marketing', { explicit: true })] }), state({ consents: [grant('marketing.communications', { expiresAt: new Date('2020-01-01') })] })];
    for (const requestPurpose of [MARKETING, purpose('marketing.communications', 'legitimate_interests'), purpose('marketing.communications', 'legal_obligation')]) {
      for (const subjectState of states) {
        for (const group of [declaredFields, specialFields]) {
          const decisions = group.map((policy) => decide({ field: policy, purpose: requestPurpose, subjectState, now: NOW }));
          expect(decisions.every((decision) => decision.reason !== 'PURPOSE_NOT_DECLARED')).toBe(true);
          expect(new Set(decisions.map((decision) => JSON.stringify(decision))).size).toBe(1);
        }
      }
    }
  });
});

describe('the masked variant of the same property', () => {
  it('after rule 2, a masked release reads the field only through `special` and the mask strategy', () => {
    // RequestGovernance decides once per (subject, special flag, strategy) for fields masked for the purpose.
    const masked = (category: string, purposes: string[]) => field({ category, purposes, mask: { strategy: 'year', purposes: ['analytics'] } });
    const group = [masked('user.demographic.date_of_birth', ['essential.service']), masked('user.name', []), masked('user.account', ['marketing'])];
    const states = [null, state(), state({ restricted: true }), state({ objections: [objection('analytics')] })];
    for (const subjectState of states) {
      const decisions = group.map((policy) => decide({ field: policy, purpose: purpose('analytics.reporting', 'legitimate_interests'), subjectState, now: NOW }));
      expect(new Set(decisions.map((decision) => JSON.stringify(decision))).size).toBe(1);
    }
  });
});

describe('consentStanding()', () => {
  it('calls only a grant that ran out expired, never a withdrawal (the reports and privacy page tell them apart)', () => {
    const standing = (consent: ConsentStatement) => consentStanding(state({ consents: [consent] }), MARKETING, NOW);
    expect(standing(grant('marketing', { expiresAt: new Date('2026-05-01T00:00:00Z') }))).toMatchObject({ active: false, expired: true });
    expect(standing(withdrawn('marketing'))).toMatchObject({ active: false, expired: false });
    expect(standing({ ...withdrawn('marketing'), expiresAt: new Date('2026-05-01T00:00:00Z') })).toMatchObject({ active: false, expired: false });
  });
});

describe('mostSpecific()', () => {
  it('picks the statement on the longest covering key, ignoring non-covering ones', () => {
    const statements = [grant('marketing'), withdrawn('marketing.communications'), grant('marketing.communicationsx')];
    expect(mostSpecific(statements, 'marketing.communications.email')?.purpose).toBe('marketing.communications');
    expect(mostSpecific(statements, 'marketing.advertising')?.purpose).toBe('marketing');
    expect(mostSpecific(statements, 'analytics')).toBeUndefined();
  });
});
