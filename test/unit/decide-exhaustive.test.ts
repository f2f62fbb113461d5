import { type ConsentStatement, decide, type FieldPolicy, type ObjectionStatement, type SubjectState } from '../../src/policy/decide';
import { LEGAL_BASES, type LegalBasis } from '../../src/taxonomy/taxonomy';

/**
 * Every combination of what decide() reads, each against an oracle that knows, scenario by scenario, what
 * the subject's choices amount to (written from the rules in words, not from decide()'s helpers): the
 * rules' order and every exemption are pinned, not only one example of each.
 */

const NOW = new Date('2026-06-01T12:00:00Z');
const NOTICE_CHANGED = new Date('2026-03-01T00:00:00Z');
const PURPOSE = 'marketing.communications';
const PARENT = 'marketing';

interface Scenario<T> {
  readonly name: string;
  readonly statements: readonly T[];
}

/**
 * What a consent scenario amounts to for PURPOSE: the statement that counts, active at NOW, explicit, made
 * before the notice changed, made on PURPOSE itself (a broader grant was given under its own notice).
 */
interface ConsentFacts {
  readonly active: boolean;
  readonly explicit: boolean;
  readonly predatesNotice: boolean;
  readonly onThisPurpose: boolean;
  readonly receiptId: string | null;
}

const grant = (purpose: string, receiptId: string, extra: Partial<ConsentStatement> = {}): ConsentStatement => ({
  purpose, granted: true, explicit: true, expiresAt: null, recordedAt: new Date('2026-04-01T00:00:00Z'), receiptId, ...extra,
});

const CONSENTS: Array<Scenario<ConsentStatement> & { readonly facts: ConsentFacts }> = [
  { name: 'no statement', statements: [], facts: { active: false, explicit: false, predatesNotice: false, onThisPurpose: false, receiptId: null } },
  { name: 'explicit grant', statements: [grant(PURPOSE, 'r-explicit')], facts: { active: true, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-explicit' } },
  { name: 'plain grant', statements: [grant(PURPOSE, 'r-plain', { explicit: false })], facts: { active: true, explicit: false, predatesNotice: false, onThisPurpose: true, receiptId: 'r-plain' } },
  { name: 'grant on the parent purpose', statements: [grant(PARENT, 'r-parent')], facts: { active: true, explicit: true, predatesNotice: false, onThisPurpose: false, receiptId: 'r-parent' } },
  { name: 'withdrawn', statements: [grant(PURPOSE, 'r-withdrawn', { granted: false })], facts: { active: false, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-withdrawn' } },
  { name: 'expiring exactly now', statements: [grant(PURPOSE, 'r-expiring', { expiresAt: NOW })], facts: { active: false, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-expiring' } },
  { name: 'expiring later', statements: [grant(PURPOSE, 'r-later', { expiresAt: new Date('2026-07-01T00:00:00Z') })], facts: { active: true, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-later' } },
  { name: 'given before the notice changed', statements: [grant(PURPOSE, 'r-old', { recordedAt: new Date('2026-02-01T00:00:00Z') })], facts: { active: true, explicit: true, predatesNotice: true, onThisPurpose: true, receiptId: 'r-old' } },
  { name: 'given at the notice change', statements: [grant(PURPOSE, 'r-at', { recordedAt: NOTICE_CHANGED })], facts: { active: true, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-at' } },
  { name: 'given at an unknown time', statements: [grant(PURPOSE, 'r-unknown', { recordedAt: null })], facts: { active: true, explicit: true, predatesNotice: true, onThisPurpose: true, receiptId: 'r-unknown' } },
  {
    name: 'parent granted, this purpose withdrawn',
    statements: [grant(PARENT, 'r-parent-2'), grant(PURPOSE, 'r-child-withdrawn', { granted: false })],
    facts: { active: false, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-child-withdrawn' },
  },
  {
    name: 'parent withdrawn, this purpose granted',
    statements: [grant(PARENT, 'r-parent-withdrawn', { granted: false }), grant(PURPOSE, 'r-child')],
    facts: { active: true, explicit: true, predatesNotice: false, onThisPurpose: true, receiptId: 'r-child' },
  },
  { name: 'a grant for another purpose only', statements: [grant('analytics', 'r-other')], facts: { active: false, explicit: false, predatesNotice: false, onThisPurpose: false, receiptId: null } },
];

const OBJECTIONS: Array<Scenario<ObjectionStatement> & { readonly objected: boolean }> = [
  { name: 'no objection', statements: [], objected: false },
  { name: 'objected to this purpose', statements: [{ purpose: PURPOSE, objected: true }], objected: true },
  { name: 'objected to the parent purpose', statements: [{ purpose: PARENT, objected: true }], objected: true },
  { name: 'objected to the parent, withdrawn for this purpose', statements: [{ purpose: PARENT, objected: true }, { purpose: PURPOSE, objected: false }], objected: false },
  { name: 'objection withdrawn', statements: [{ purpose: PURPOSE, objected: false }], objected: false },
  { name: 'objected to another purpose', statements: [{ purpose: 'analytics', objected: true }], objected: false },
];

type Form = 'declared' | 'declared on the parent' | 'masked only' | 'not declared';
const FORMS: Form[] = ['declared', 'declared on the parent', 'masked only', 'not declared'];
const fieldOf = (form: Form, personal: boolean, special: boolean): FieldPolicy => ({
  category: special ? 'user.health_and_medical' : 'user.contact.email',
  personal,
  special,
  purposes: form === 'declared' ? [PURPOSE] : form === 'declared on the parent' ? [PARENT] : ['essential.service'],
  ...(form === 'masked only' ? { mask: { strategy: 'partial_email' as const, purposes: [PARENT] } } : {}),
});

type Self = 'no' | 'the subject' | 'someone else';
interface Case {
  readonly self: Self;
  readonly personal: boolean;
  readonly special: boolean;
  readonly form: Form;
  readonly basis: LegalBasis;
  readonly noticeChanged: boolean;
  /** null: the subject's state could not be loaded. */
  readonly restricted: boolean | null;
  readonly objection: (typeof OBJECTIONS)[number];
  readonly consent: (typeof CONSENTS)[number];
}

interface Expected {
  readonly effect: 'allow' | 'mask' | 'deny';
  readonly reason: string;
  readonly legalBasis: LegalBasis | null;
  readonly consentReceiptId?: string | null;
  readonly mask?: string;
}

/** The rules, in words, for one case. */
function oracle(c: Case): Expected {
  const deny = (reason: string): Expected => ({ effect: 'deny', reason, legalBasis: c.basis });
  const stateKnown = c.restricted !== null;
  if (c.self === 'the subject' && stateKnown) return { effect: 'allow', reason: 'SUBJECT_REQUEST', legalBasis: 'legal_obligation' };
  if (!c.personal) return { effect: 'allow', reason: 'NON_PERSONAL', legalBasis: null };
  if (c.form === 'not declared') return deny('PURPOSE_NOT_DECLARED');
  if (!stateKnown) return deny('GOVERNANCE_UNAVAILABLE');
  if (c.restricted && c.basis !== 'legal_obligation') return deny('PROCESSING_RESTRICTED');
  if (c.objection.objected && !['legal_obligation', 'vital_interests'].includes(c.basis)) return deny('OBJECTED');
  const { active, explicit, predatesNotice, onThisPurpose, receiptId } = c.consent.facts;
  const needsRenewal = active && c.noticeChanged && (predatesNotice || !onThisPurpose);
  if (c.special && !(active && explicit)) return deny('EXPLICIT_CONSENT_REQUIRED');
  if (c.special && needsRenewal) return deny('CONSENT_RENEWAL_REQUIRED');
  let released: Expected;
  if (c.basis === 'consent') {
    if (!active) return deny('CONSENT_REQUIRED');
    if (needsRenewal) return deny('CONSENT_RENEWAL_REQUIRED');
    released = { effect: 'allow', reason: 'CONSENT_GIVEN', legalBasis: 'consent', consentReceiptId: receiptId };
  } else {
    released = { effect: 'allow', reason: 'LEGAL_BASIS', legalBasis: c.basis, consentReceiptId: c.special ? receiptId : null };
  }
  return c.form === 'masked only' ? { ...released, effect: 'mask', mask: 'partial_email' } : released;
}

function* cases(): Generator<Case> {
  for (const self of ['no', 'the subject', 'someone else'] as Self[])
    for (const [personal, special] of [[false, false], [true, false], [true, true]])
      for (const form of FORMS)
        for (const basis of LEGAL_BASES)
          for (const noticeChanged of [false, true])
            for (const restricted of [null, false, true])
              for (const objection of restricted === null ? OBJECTIONS.slice(0, 1) : OBJECTIONS)
                for (const consent of restricted === null ? CONSENTS.slice(0, 1) : CONSENTS) yield { self, personal, special, form, basis, noticeChanged, restricted, objection, consent };
}

const describeCase = (c: Case) =>
  `self ${c.self}, ${c.personal ? (c.special ? 'special' : 'personal') : 'non-personal'}, ${c.form}, ${c.basis}, notice ${c.noticeChanged ? 'changed' : 'unchanged'}, ${c.restricted === null ? 'state unknown' : c.restricted ? 'restricted' : 'not restricted'}, ${c.objection.name}, ${c.consent.name}`;

describe('decide() over every combination of its inputs', () => {
  it('agrees with the rules in words in every case', () => {
    const disagreements: string[] = [];
    let count = 0;
    const reasons = new Set<string>();
    for (const c of cases()) {
      count++;
      const subjectState: SubjectState | null =
        c.restricted === null ? null : { subjectId: 's1', restricted: c.restricted, objections: c.objection.statements, consents: c.consent.statements };
      const decision = decide({
        field: fieldOf(c.form, c.personal, c.special),
        purpose: { key: PURPOSE, legalBasis: c.basis, ...(c.noticeChanged ? { renewConsentsBefore: NOTICE_CHANGED } : {}) },
        subjectState,
        now: NOW,
        ...(c.self === 'no' ? {} : { selfAccessBy: c.self === 'the subject' ? 's1' : 's2' }),
      });
      const expected = oracle(c);
      reasons.add(expected.reason);
      // A denial names no receipt; a release names the one it relied on, or none.
      const actual = { effect: decision.effect, reason: decision.reason, legalBasis: decision.legalBasis, ...(decision.effect === 'deny' || expected.consentReceiptId === undefined ? {} : { consentReceiptId: decision.consentReceiptId ?? null }), ...(decision.mask ? { mask: decision.mask } : {}) };
      if (JSON.stringify(actual) !== JSON.stringify(expected)) disagreements.push(`${describeCase(c)}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    // The table reaches every rule: each reason decide() can give (and both exemption paths) occurs.
    expect([...reasons].sort()).toEqual(
      ['CONSENT_GIVEN', 'CONSENT_RENEWAL_REQUIRED', 'CONSENT_REQUIRED', 'EXPLICIT_CONSENT_REQUIRED', 'GOVERNANCE_UNAVAILABLE', 'LEGAL_BASIS', 'NON_PERSONAL', 'OBJECTED', 'PROCESSING_RESTRICTED', 'PURPOSE_NOT_DECLARED', 'SUBJECT_REQUEST'].sort(),
    );
    expect(count).toBe(3 * 3 * FORMS.length * LEGAL_BASES.length * 2 * (1 + 2 * OBJECTIONS.length * CONSENTS.length));
  });
});
