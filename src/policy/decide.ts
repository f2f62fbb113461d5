import { type LegalBasis, latestMaterialChange, type Purpose } from '../taxonomy/taxonomy';
import { anyCovers, covers } from '../taxonomy/keys';
import { type DecisionReason, SELF_ACCESS } from './codes';
import type { MaskStrategy } from './masking';

/** What the schema annotation says about a field (built once from `@Governed`). */
export interface FieldPolicy {
  readonly category: string;
  /** The category is about a person (`user.*`). */
  readonly personal: boolean;
  /** The category is a GDPR Art. 9 special category. */
  readonly special: boolean;
  /** Purposes the field may serve; each covers its sub-purposes. */
  readonly purposes: readonly string[];
  /** The category's masking (taxonomy): a reduced form of the value may serve these further purposes. */
  readonly mask?: { readonly strategy: MaskStrategy; readonly purposes: readonly string[] };
}

/** The purpose a request declared, as the taxonomy defines it (always requestable, so it has a basis). */
export interface RequestPurpose {
  readonly key: string;
  readonly legalBasis: LegalBasis;
  /**
   * When the purpose's current notice took effect, if its change was material: consents given before
   * it no longer count until renewed. Absent when earlier consents stay valid.
   */
  readonly renewConsentsBefore?: Date;
}

/** The subject's latest consent statement for one purpose key (covering its sub-purposes). */
export interface ConsentStatement {
  readonly purpose: string;
  readonly granted: boolean;
  /** Explicit consent (GDPR Art. 9(2)(a)), needed for special-category data. */
  readonly explicit: boolean;
  readonly expiresAt: Date | null;
  /** When the statement was recorded (compared with a purpose's material notice change). */
  readonly recordedAt?: Date | null;
  /** The consent receipt issued for the statement. */
  readonly receiptId?: string | null;
}

/** The subject's latest objection statement for one purpose key (GDPR Art. 21). */
export interface ObjectionStatement {
  readonly purpose: string;
  readonly objected: boolean;
}

/** A data subject's current choices, derived from the consent ledger. */
export interface SubjectState {
  readonly subjectId: string;
  /** GDPR Art. 18 restriction of processing. */
  readonly restricted: boolean;
  readonly consents: readonly ConsentStatement[];
  readonly objections: readonly ObjectionStatement[];
}

export interface DecisionRequest {
  readonly field: FieldPolicy;
  readonly purpose: RequestPurpose;
  /** `null` when the subject's state could not be loaded (store unreachable, deadline passed). */
  readonly subjectState: SubjectState | null;
  readonly now: Date;
  /** Set when the data subject themself is looking at their own data (the privacy page). */
  readonly selfAccessBy?: string;
}

export interface Decision {
  /** `mask`: released in the reduced form of `mask` only. */
  readonly effect: 'allow' | 'mask' | 'deny';
  readonly reason: DecisionReason;
  /** The legal basis the decision rests on; null for non-personal data. */
  readonly legalBasis: LegalBasis | null;
  /** The receipt of the consent the release relied on, if it relied on one. */
  readonly consentReceiptId?: string | null;
  /** With effect `mask`: the strategy the value is reduced by. */
  readonly mask?: MaskStrategy;
}

/**
 * Decides whether one field of one data subject's record may be released for the request's purpose.
 * Pure: everything it needs is in the request, so it is tested by tables and applied unchanged by both
 * enforcement points (graphql-shield rules and the leaf guard). Rules, first match wins:
 *
 *  0. The data subject is looking at their own record (`selfAccessBy` is the record's subject) → allow,
 *     SUBJECT_REQUEST, on the legal obligation to answer them (GDPR Art. 15) — its own path, not a
 *     relaxation of the purpose rules.
 *  1. The category is non-personal → allow, NON_PERSONAL (no subject state needed).
 *  2. No purpose declared on the field covers the request purpose → deny, PURPOSE_NOT_DECLARED — unless
 *     the category's mask covers it: then rules 2a–7 decide a masked release (rule 8).
 *  2a. The subject's state is unknown (store unreachable) → deny, GOVERNANCE_UNAVAILABLE (fail closed).
 *  3. The subject restricted processing (GDPR Art. 18) → deny, PROCESSING_RESTRICTED,
 *     unless the purpose's basis is legal_obligation.
 *  4. The subject's most specific objection statement covering the purpose is an objection (Art. 21)
 *     → deny, OBJECTED, unless the basis is legal_obligation or vital_interests.
 *  5. Special-category data needs an explicit, active consent covering the purpose, whatever the basis
 *     → else deny, EXPLICIT_CONSENT_REQUIRED (CONSENT_RENEWAL_REQUIRED when it does not renew a material
 *     notice change, as in rule 6).
 *  6. Basis consent → the most specific consent statement covering the purpose is an active grant (not
 *     withdrawn, not expired at `now`) → allow, CONSENT_GIVEN; a grant that does not renew a material
 *     change of the purpose's notice — one given before it, or one on a broader purpose (its receipt names
 *     that purpose's notice, not the changed one) → deny, CONSENT_RENEWAL_REQUIRED; else deny,
 *     CONSENT_REQUIRED.
 *  7. Any other basis → allow, LEGAL_BASIS.
 *  8. A release (rule 6 or 7) for a purpose the field serves only masked (rule 2) → mask, with the
 *     release's reason and basis and the category's strategy: a masked value needs the same legal ground
 *     as the value itself, and a subject's restriction or objection stops it too.
 *
 * "Most specific" means the statement on the longest key covering the purpose, so withdrawing
 * `marketing.communications` after granting `marketing` withdraws just that sub-purpose.
 */
export function decide(request: DecisionRequest): Decision {
  const { field, purpose, subjectState, now } = request;
  const basis = purpose.legalBasis;
  // Rule 0
  if (request.selfAccessBy !== undefined && subjectState !== null && request.selfAccessBy === subjectState.subjectId) {
    return { effect: 'allow', reason: SELF_ACCESS, legalBasis: 'legal_obligation' };
  }
  // Rule 1
  if (isReleasedWithoutSubject(field)) return { effect: 'allow', reason: 'NON_PERSONAL', legalBasis: null };
  // Rule 2
  const form = declaredForm(field, purpose.key);
  if (form === undefined) return deny('PURPOSE_NOT_DECLARED', basis);
  // Rule 2a
  if (subjectState === null) return deny('GOVERNANCE_UNAVAILABLE', basis);
  // Rule 3
  if (subjectState.restricted && basis !== 'legal_obligation') return deny('PROCESSING_RESTRICTED', basis);
  // Rule 4
  const objection = mostSpecific(subjectState.objections, purpose.key);
  if (objection?.objected && basis !== 'legal_obligation' && basis !== 'vital_interests') return deny('OBJECTED', basis);
  // consentStanding() in parts: decide() runs once per subject and field class, and allocates nothing on the way.
  const consent = mostSpecific(subjectState.consents, purpose.key);
  const consentActive = isActiveGrant(consent, now);
  const consentOutdated = consentActive && needsRenewal(consent!, purpose);
  const receipt = consent?.receiptId ?? null;
  // Rule 5
  if (field.special && !(consentActive && consent!.explicit)) return deny('EXPLICIT_CONSENT_REQUIRED', basis);
  if (field.special && consentOutdated) return deny('CONSENT_RENEWAL_REQUIRED', basis);
  // Rule 6
  if (basis === 'consent') {
    if (!consentActive) return deny('CONSENT_REQUIRED', basis);
    if (consentOutdated) return deny('CONSENT_RENEWAL_REQUIRED', basis);
    return release(field, form, allow('CONSENT_GIVEN', basis, receipt));
  }
  // Rule 7
  return release(field, form, allow('LEGAL_BASIS', basis, field.special ? receipt : null));
}

/**
 * How the subject's consent stands for the purpose, as rules 5 and 6 read it: the most specific statement
 * covering the purpose, whether it is a grant active at `now` (not withdrawn, not expired), and whether
 * that grant fails to renew a material change of the purpose's notice (then it needs renewing: only a grant
 * of the purpose itself, given at or after the change, was given under the changed notice); `expired` when it
 * is a grant that ran out (no consent to decide(), but no "no" of the subject's either). The privacy page
 * and the reports classify subjects with it, so they say what `decide()` does.
 */
export function consentStanding(state: SubjectState, purpose: RequestPurpose, now: Date): { consent: ConsentStatement | undefined; active: boolean; outdated: boolean; expired: boolean } {
  const consent = mostSpecific(state.consents, purpose.key);
  const active = isActiveGrant(consent, now);
  return { consent, active, outdated: active && needsRenewal(consent!, purpose), expired: consent !== undefined && consent.granted && !active };
}

/** A grant, neither withdrawn nor expired at `now`. */
function isActiveGrant(consent: ConsentStatement | undefined, now: Date): boolean {
  return consent !== undefined && consent.granted && (consent.expiresAt === null || consent.expiresAt.getTime() > now.getTime());
}

/** A grant that does not renew a material change of the purpose's notice: not of the purpose itself, or given before the change. */
function needsRenewal(grant: ConsentStatement, purpose: RequestPurpose): boolean {
  return (
    purpose.renewConsentsBefore !== undefined &&
    (grant.purpose !== purpose.key || grant.recordedAt === undefined || grant.recordedAt === null || grant.recordedAt.getTime() < purpose.renewConsentsBefore.getTime())
  );
}

/**
 * The purpose a request declares at `at`, as `decide()` reads it from the taxonomy: its basis, and the
 * instant before which consents need renewing: the latest material notice change in effect at `at` — this
 * version's, or an earlier version's (`materialSince`) when this one was not material or applies later (one
 * announced for later does not stop earlier consents before then).
 */
export function requestPurposeOf(purpose: Purpose, at: Date): RequestPurpose {
  if (!purpose.legalBasis) throw new Error(`${purpose.key} is not a requestable purpose`);
  const latest = latestMaterialChange(purpose.notice, at);
  return { key: purpose.key, legalBasis: purpose.legalBasis, ...(latest ? { renewConsentsBefore: latest } : {}) };
}

/**
 * Rule 2 on its own: the form in which the field may serve the purpose — `full` when a declared purpose
 * covers it, `masked` when only the category's mask does, undefined when neither (PURPOSE_NOT_DECLARED).
 */
export function declaredForm(field: FieldPolicy, purpose: string): 'full' | 'masked' | undefined {
  if (anyCovers(field.purposes, purpose)) return 'full';
  if (field.mask && anyCovers(field.mask.purposes, purpose)) return 'masked';
  return undefined;
}

/** Rule 8: a release for a purpose the field serves only masked is a masked release. */
function release(field: FieldPolicy, form: 'full' | 'masked', allowed: Decision): Decision {
  if (form === 'full') return allowed;
  // A literal of one fixed shape, not a spread: the leaf guard reads these once per masked field.
  return { effect: 'mask', reason: allowed.reason, legalBasis: allowed.legalBasis, consentReceiptId: allowed.consentReceiptId, mask: field.mask!.strategy };
}

/**
 * Rule 1 on its own: true when a field is released whatever the purpose and subject (non-personal data).
 * The leaf guard does not decide such fields; it is the same rule `decide()` applies first.
 */
export function isReleasedWithoutSubject(field: FieldPolicy): boolean {
  return !field.personal;
}

/**
 * Decisions that name no receipt are shared: they are read-only, decided once per subject and field class,
 * and a list response decides hundreds of alike ones.
 */
const sharedDecisions: Record<'allow' | 'deny', Record<string, Record<string, Decision>>> = { allow: {}, deny: {} };
function shared(effect: 'allow' | 'deny', reason: DecisionReason, legalBasis: LegalBasis): Decision {
  const byBasis = (sharedDecisions[effect][reason] ??= {});
  return (byBasis[legalBasis] ??= Object.freeze({ effect, reason, legalBasis }));
}

/** A release, naming the consent receipt it relied on when there is one. */
function allow(reason: DecisionReason, legalBasis: LegalBasis, consentReceiptId: string | null): Decision {
  return consentReceiptId ? { effect: 'allow', reason, legalBasis, consentReceiptId } : shared('allow', reason, legalBasis);
}

function deny(reason: DecisionReason, legalBasis: LegalBasis): Decision {
  return shared('deny', reason, legalBasis);
}

/** The statement on the longest key that covers `purpose`, if any. An index loop, as in `anyCovers` (why: there). */
export function mostSpecific<T extends { readonly purpose: string }>(statements: readonly T[], purpose: string): T | undefined {
  let best: T | undefined;
  for (let index = 0; index < statements.length; index++) {
    const statement = statements[index];
    if (covers(statement.purpose, purpose) && (best === undefined || statement.purpose.length > best.purpose.length)) best = statement;
  }
  return best;
}
