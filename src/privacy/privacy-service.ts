import { IsNull } from 'typeorm';
import { SUBJECT_ACTOR_ID } from '../actors/actor-directory';
import type { AccessActor, AccessRecordInput } from '../audit/access-log';
import { RECORDED_TEXT_LIMITS } from '../audit/audit-store';
import type { ConsentEventEntity } from '../consent/consent-event.entity';
import type { ConsentReceiptEntity } from '../consent/consent-receipt.entity';
import { PRIVACY_PAGE_SOURCE } from '../consent/consent-ledger';
import { holdsUnprintable } from '../printable';
import { inTransaction } from '../storage/transactions';
import { SubjectMessageEntity } from '../consent/subject-message.entity';
import { badInput, unknownSubject } from '../errors';
import { CHOICES_CATEGORY, CHOICES_OPERATIONS, FILTERED_OUT_ON_CHOICES, SELF_ACCESS } from '../policy/codes';
import type { FieldGovernance } from '../graphql/governance-catalog';
import { consentStanding, decide, mostSpecific, requestPurposeOf, type SubjectState } from '../policy/decide';
import { readAccessLog } from '../reports/access-log-source';
import { consentCoverageOf, type Coverage, coverageOf } from '../reports/governance.reports';
import type { CandorServices } from '../server/services';
import { anyCovers } from '../taxonomy/keys';
import type { Purpose } from '../taxonomy/taxonomy';
import { type RecordsByType, recordsHeldAbout, valuesByRecord } from './records-held';

/** The data subject, acting on their own page: how their actions appear in the access log. */
export const SUBJECT_ACTOR: AccessActor = { id: SUBJECT_ACTOR_ID, name: 'The data subject', team: 'privacy-page' };

/**
 * The page's operations, as the access log names them: the page's records, and its refusals (a choice is
 * recorded as `privacy-page <action>`, refused as `privacy-page choice`: the action may be what was refused).
 */
export const PAGE_OPERATIONS = {
  view: 'privacy-page view',
  choice: 'privacy-page choice',
  question: 'privacy-page question',
  export: 'privacy-page export',
  receipt: 'privacy-page receipt',
} as const;

/**
 * The longest context a form of the page sends: a usage line's `usage:<month>:<team>:<purpose>`, for the
 * longest team name and purpose key the log keeps.
 */
const MAX_FORM_CONTEXT_LENGTH = 'usage:2026-11:'.length + RECORDED_TEXT_LIMITS.actorTeam + ':'.length + RECORDED_TEXT_LIMITS.purpose;
/** What the page's forms send as a question's context: a purpose card's, or a usage line's (month, team, purpose). */
const FORM_CONTEXT = /^(purpose:[^\u0000-\u001f:]+|usage:\d{4}-(0[1-9]|1[0-2]):[^\u0000-\u001f]+:[^\u0000-\u001f:]+)$/;

/**
 * A subject may have this many questions waiting for an answer, no more: the inbox and every view of the
 * page carry them, and a link holder could otherwise post one a second until the page took the server down.
 */
export const MAX_UNANSWERED_QUESTIONS = 20;
/** The page shows this many of the subject's messages, newest first; the download holds them all. */
export const MESSAGES_SHOWN = 20;

const SELF_ACCESS_PURPOSE = { key: 'essential.legal_obligation', legalBasis: 'legal_obligation' as const };
/** A schema name in words, for a person: `cardLast4` → "card last 4", `WatchEvent` → "watch event". */
export const nameInWords = (name: string) => name.replace(/([a-z])([A-Z0-9])/g, '$1 $2').toLowerCase();
/** A schema coordinate in words: `Payment.cardLast4` → "payment: card last 4". */
const inWords = (coordinate: string) => coordinate.split('.').map(nameInWords).join(': ');

/** Withheld because of the subject's own choices (as opposed to the purpose not being declared); left out of a list filtered on them too. */
const CHOICE_REASONS = new Set(['CONSENT_REQUIRED', 'OBJECTED', 'PROCESSING_RESTRICTED', 'EXPLICIT_CONSENT_REQUIRED', 'CONSENT_RENEWAL_REQUIRED', FILTERED_OUT_ON_CHOICES]);

export interface HeldField {
  readonly coordinate: string;
  readonly category: string;
  readonly label: string;
  readonly values: readonly string[];
  /** The value in each of the subject's records of the field's type, in order (null where one holds none). */
  readonly byRecord: ReadonlyArray<string | null>;
  /** The field holds yes/no flags (stored as booleans), which the page words as such: text that reads `true` stays text. */
  readonly flag: boolean;
}

type ChoiceAction = 'grant' | 'withdraw' | 'object' | 'withdraw_objection';

export interface PurposeChoice {
  readonly purpose: Purpose;
  readonly state: Coverage;
  /**
   * Where the page asks for consent to the purpose — its basis is consent, or it may use special-category
   * data, which needs explicit consent whatever the basis (rule 5) — how the subject's consent stands,
   * objections aside.
   */
  readonly consent?: Exclude<Coverage, 'objected'>;
  /**
   * The subject's yes (`consent` granted or needing renewal) was not explicit — given elsewhere (an import,
   * a consent manager) without naming the special categories — so it does not cover them (rule 5).
   */
  readonly notExplicit?: true;
  /** The subject's yes ran out at this instant (`consent` reads withdrawn, though the subject never said no). */
  readonly expiredAt?: Date;
  /** What the subject can do about it on the page. */
  readonly actions: readonly ChoiceAction[];
  /**
   * The special categories (GDPR Art. 9) of the fields declared for the purpose: a yes on the page names
   * them, which is what makes it the explicit consent rule 5 asks for.
   */
  readonly specialCategories: readonly string[];
  /**
   * The broader purpose whose answer stands for this one (a yes to "essential.service" covers its
   * sub-purposes), when the subject's answer was not given to this purpose itself.
   */
  readonly answeredThrough?: Purpose;
}

export interface UsageLine {
  readonly month: string;
  readonly team: string;
  readonly category: string;
  readonly purpose: string;
  readonly used: number;
  /**
   * Of the uses, those that had only a reduced form of the value (a masked release), by the mask strategy the
   * access log recorded (null in a record made before strategies were recorded).
   */
  readonly reduced: ReadonlyArray<{ readonly strategy: string | null; readonly uses: number }>;
  readonly withheldByChoice: number;
}

export interface PrivacyView {
  readonly subjectId: string;
  readonly held: readonly HeldField[];
  readonly restricted: boolean;
  readonly choices: readonly PurposeChoice[];
  readonly usage: readonly UsageLine[];
  readonly receipts: readonly ConsentReceiptEntity[];
  /** The newest MESSAGES_SHOWN messages, newest first. */
  readonly messages: readonly SubjectMessageEntity[];
  /** How many older messages the page does not show. */
  readonly earlierMessages: number;
}

/** A subject's records as they may see them (rule 0 of decide()), with every value held about them. */
interface SubjectRecord {
  readonly records: RecordsByType;
  readonly state: SubjectState;
}

/**
 * What the privacy page shows and does. Every look at the subject's own data goes through decide()'s rule 0
 * (self-access) and is recorded; every action is a ledger entry with source `privacy-page` plus a record.
 */
export class PrivacyService {
  constructor(
    private readonly services: CandorServices,
    private readonly fields: readonly FieldGovernance[],
  ) {}

  async view(subjectId: string, requestId: string): Promise<PrivacyView> {
    const record = await this.load(subjectId);
    const held = await this.selfAccess(record, requestId, PAGE_OPERATIONS.view);
    const now = this.services.clock();
    const purposes = [...this.services.taxonomy.purposes.values()].filter((purpose) => purpose.requestable);
    const choices = purposes.map((purpose): PurposeChoice => {
      const asked = requestPurposeOf(purpose, now);
      const state = coverageOf(record.state, asked, now);
      const specialCategories = this.specialCategoriesOf(purpose.key);
      const kinds = choiceKinds(purpose, specialCategories);
      const actions: ChoiceAction[] = [];
      if (state === 'objected') actions.push('withdraw_objection');
      else if (kinds.includes('object')) actions.push('object');
      const consent = kinds.includes('grant') ? consentCoverageOf(record.state, asked, now) : undefined;
      const yes = consent === 'granted' || consent === 'renewal needed';
      // A yes that special-category data cannot rest on: the page's own yes, which names them, would be explicit.
      const notExplicit = yes && specialCategories.length > 0 && !consentStanding(record.state, asked, now).consent!.explicit;
      // Under an objection a yes or no changes nothing (the objection decides): the card offers its withdrawal only.
      if (consent !== undefined && state !== 'objected') actions.push(...(consent === 'granted' && !notExplicit ? ['withdraw' as const] : yes ? ['grant' as const, 'withdraw' as const] : ['grant' as const]));
      // The statement that decides the card, as decide() reads it — the objection, else the consent — when it
      // was given to a broader purpose and says what the card says (an expired yes is no "no" of the subject's).
      const grantOrWithdrawal = mostSpecific(record.state.consents, purpose.key);
      const deciding =
        state === 'objected'
          ? mostSpecific(record.state.objections, purpose.key)
          : (consent === 'granted' || consent === 'renewal needed') && grantOrWithdrawal?.granted
            ? grantOrWithdrawal
            : consent === 'withdrawn' && grantOrWithdrawal?.granted === false
              ? grantOrWithdrawal
              : undefined;
      const answeredThrough = deciding && deciding.purpose !== purpose.key ? this.services.taxonomy.purposes.get(deciding.purpose) : undefined;
      const expiredAt = consent === 'withdrawn' && consentStanding(record.state, asked, now).expired ? (grantOrWithdrawal?.expiresAt ?? undefined) : undefined;
      return {
        purpose,
        state,
        ...(consent !== undefined ? { consent } : {}),
        ...(notExplicit ? { notExplicit: true as const } : {}),
        ...(expiredAt ? { expiredAt } : {}),
        actions,
        specialCategories,
        ...(answeredThrough ? { answeredThrough } : {}),
      };
    });
    // Newest first; recorded with the rest of what the page shows (their bodies are personal: selfAccess).
    const messages = [...(record.records.SubjectMessage as unknown as SubjectMessageEntity[])].reverse();
    return {
      subjectId,
      held,
      restricted: record.state.restricted,
      choices,
      usage: await this.usage(subjectId),
      receipts: await this.services.consent.receiptsOf(subjectId),
      messages: messages.slice(0, MESSAGES_SHOWN),
      earlierMessages: Math.max(0, messages.length - MESSAGES_SHOWN),
    };
  }

  /** The special categories of the fields a purpose may use, in schema order, each once. */
  private specialCategoriesOf(purposeKey: string): string[] {
    const { categories } = this.services.taxonomy;
    return [...new Set(this.fields.filter((field) => categories.get(field.category)?.special && anyCovers(field.purposes, purposeKey)).map((field) => field.category))];
  }

  /**
   * Grant, withdraw, object or withdraw an objection, from the page; visible to the very next query. A
   * grant is explicit when the purpose may use special-category data: the page's yes names those
   * categories (`specialCategories`); a yes that named none is not explicit consent to them.
   */
  async choose(subjectId: string, purposeKey: string, action: string, requestId: string): Promise<ConsentEventEntity> {
    const purpose = this.services.taxonomy.purposes.get(purposeKey);
    if (!purpose?.requestable) throw badInput('unknown purpose');
    const specialCategories = this.specialCategoriesOf(purposeKey);
    const record = await this.load(subjectId);
    // Withdrawing an objection stays possible wherever one stands (one made elsewhere, on a consent purpose say).
    const objected = mostSpecific(record.state.objections, purposeKey)?.objected === true;
    if (!(choiceKinds(purpose, specialCategories) as string[]).includes(action) && !(action === 'withdraw_objection' && objected)) throw badInput('this choice is not available for this purpose');
    // An objection stands above a yes (decide() reads it first): a yes saved under it would not apply, as the page would say it did.
    if (action === 'grant' && objected) throw badInput('you objected to this use: withdraw your objection first, then say yes');
    // A receipt saying they withdrew an objection they never made would be false.
    if (action === 'withdraw_objection' && !objected) throw badInput('you have not objected to this use: there is no objection to withdraw');
    const event = await this.services.consent.append({ subjectId, kind: action as ConsentEventEntity['kind'], purpose: purposeKey, source: PRIVACY_PAGE_SOURCE, explicit: action === 'grant' && specialCategories.length > 0, actorId: SUBJECT_ACTOR.id });
    await this.record(requestId, `privacy-page ${action}`, subjectId, purposeKey, event.receiptId);
    return event;
  }

  /** A question or objection in the subject's own words, for the consent managers' inbox. */
  async ask(subjectId: string, context: string | undefined, body: string, requestId: string): Promise<SubjectMessageEntity> {
    // A browser sends a textarea's line breaks as CRLF: a line break is text, whichever way it is written.
    const text = body.replace(/\r\n?/g, '\n').trim();
    if (text.length === 0) throw badInput('please write your question');
    if (text.length > 4_000) throw badInput('your message may be at most 4,000 characters: please shorten it');
    if (holdsUnprintable(text)) throw badInput('please write your question as plain text (it holds control characters)');
    // The page's forms name what a question is about in a short, plain context; it is recorded, so checked first.
    if (context !== undefined && context !== '' && (context.length > MAX_FORM_CONTEXT_LENGTH || !FORM_CONTEXT.test(context) || holdsUnprintable(context))) throw badInput('this question does not come from a form of this page');
    await this.load(subjectId);
    // In a transaction of its own: on SQLite a bare write would join whichever transaction is open, and share its fate.
    // The subject is looked up again in it (locked on PostgreSQL): an erasure that committed since the page
    // loaded has deleted their messages, and one saved now would outlive it.
    const message = await inTransaction(this.services.dataSource, async (manager) => {
      if (!(await this.services.domain.customerExists(subjectId, manager))) throw unknownSubject('unknown subject');
      // A bound, not an exact count: on PostgreSQL questions posted at the same moment may each take the last
      // place (the subject's row is share-locked, for the erasure), as many as the link's rate limit lets through.
      const waiting = await manager.getRepository(SubjectMessageEntity).countBy({ subjectId, answeredAt: IsNull() });
      if (waiting >= MAX_UNANSWERED_QUESTIONS) throw badInput(`you have ${MAX_UNANSWERED_QUESTIONS} questions waiting for our answer: we answer them before you can ask more`);
      return manager.getRepository(SubjectMessageEntity).save({
        subjectId,
        context: context || null,
        body: text,
        createdAt: this.services.clock().toISOString(),
        answer: null,
        answeredAt: null,
        answeredBy: null,
      });
    });
    // The context says what the question is about, not a purpose; it stays with the message (erased with it),
    // never in the log, which keeps what it holds after an erasure.
    await this.record(requestId, PAGE_OPERATIONS.question, subjectId, null, null);
    return message;
  }

  /** Every governed field about the subject, machine-readable (GDPR Art. 20), recorded like a view. */
  async export(subjectId: string, requestId: string) {
    const record = await this.load(subjectId);
    const held = await this.selfAccess(record, requestId, PAGE_OPERATIONS.export);
    return {
      format: 'candor-subject-export/1',
      subjectId,
      exportedAt: this.services.clock().toISOString(),
      controller: this.services.taxonomy.controller.name,
      data: Object.fromEntries(held.map((field) => [field.coordinate, { category: field.category, values: field.values }])),
      // What they said, when, where and under which notice, with its receipt — not the ledger's row: who on
      // the staff recorded it (an identity provider's id for a person, say) is someone else's data.
      consentHistory: (record.records.ConsentEntry as unknown as ConsentEventEntity[]).map(({ kind, purpose, explicit, source, expiresAt, recordedAt, noticeVersion, receiptId }) => ({
        kind, purpose, explicit, source, expiresAt, recordedAt, noticeVersion, receiptId,
      })),
      messages: (record.records.SubjectMessage as unknown as SubjectMessageEntity[]).map(({ createdAt, context, body, answer, answeredAt }) => ({ createdAt, context, body, answer, answeredAt })),
      receipts: (await this.services.consent.receiptsOf(subjectId)).map((receipt) => ({ ...receipt, document: JSON.parse(receipt.document) })),
    };
  }

  /** One of the subject's receipts (a subject who is erased has none), recorded like every look at their data. */
  async receipt(subjectId: string, receiptId: string, requestId: string): Promise<ConsentReceiptEntity | undefined> {
    await this.load(subjectId);
    const receipt = (await this.services.consent.receiptsOf(subjectId)).find((candidate) => candidate.id === receiptId);
    if (receipt) await this.record(requestId, PAGE_OPERATIONS.receipt, subjectId, null, receipt.id);
    return receipt;
  }

  private async load(subjectId: string): Promise<SubjectRecord> {
    const customer = await this.services.domain.findCustomerRecord(subjectId);
    if (!customer || customer.erasedAt) throw unknownSubject('unknown subject');
    const [records, [state]] = await Promise.all([recordsHeldAbout(this.services, customer), this.services.consent.states([subjectId])]);
    return { records, state };
  }

  /** The subject's personal fields with their values, each released by rule 0 and recorded. */
  private async selfAccess(record: SubjectRecord, requestId: string, operationName: string): Promise<HeldField[]> {
    const now = this.services.clock();
    const held: HeldField[] = [];
    const records: AccessRecordInput[] = [];
    for (const field of this.fields) {
      const category = this.services.taxonomy.categories.get(field.category);
      const byRecord = valuesByRecord(field, record.records);
      if (!category?.personal || byRecord === undefined) continue;
      const values = byRecord.filter((value): value is string => value !== null);
      // Only what holds a value is told, and so recorded: a RELEASED record means the value was shown.
      if (values.length === 0) continue;
      const decision = decide({ field: { category: field.category, personal: true, special: category.special, purposes: field.purposes }, purpose: SELF_ACCESS_PURPOSE, subjectState: record.state, now, selfAccessBy: record.state.subjectId });
      records.push({ at: now, requestId, actor: SUBJECT_ACTOR, purpose: SELF_ACCESS_PURPOSE.key, operationName, subjectId: record.state.subjectId, coordinate: field.coordinate, category: field.category, decision: decision.effect === 'allow' ? 'RELEASED' : 'WITHHELD', reason: decision.reason, legalBasis: decision.legalBasis });
      const flag = record.records[field.typeName]!.some((row) => typeof row[field.fieldName] === 'boolean');
      if (decision.effect === 'allow') held.push({ coordinate: field.coordinate, category: field.category, label: category.description, values, byRecord, flag });
    }
    // The page shows nothing it could not record.
    await this.services.accessLog.append(records);
    // Each type's fields in its records' own order (a consent entry's kind, purpose, explicit, source), not the catalogue's.
    const typeOf = (field: HeldField) => field.coordinate.split('.')[0];
    const typeOrder = [...new Set(held.map(typeOf))];
    const positionOf = (field: HeldField) => Object.keys(record.records[typeOf(field)]?.[0] ?? {}).indexOf(field.coordinate.split('.')[1]);
    held.sort((a, b) => typeOrder.indexOf(typeOf(a)) - typeOrder.indexOf(typeOf(b)) || positionOf(a) - positionOf(b));
    // Fields of one category (a consent entry's purpose, source, …) are told apart by what they are.
    const labels = held.map((field) => field.label);
    return held.map((field) => (labels.indexOf(field.label) === labels.lastIndexOf(field.label) ? field : { ...field, label: `${field.label} — ${inWords(field.coordinate)}` }));
  }

  private async usage(subjectId: string): Promise<UsageLine[]> {
    // Counted by request: one look at the data is one use, whatever number of its fields or records it read.
    const lines = new Map<string, { month: string; team: string; category: string; purpose: string; usedBy: Set<string>; usedFullyBy: Set<string>; reducedBy: Map<string | null, Set<string>>; withheldFrom: Set<string> }>();
    const head = await this.services.accessLogReader.headSeq();
    // The subject's own reads are not a use of their data (by the actor's id: a team's name is anyone's to
    // choose); left out by the query, as each view of the page adds some: reading them would make every view
    // slower than the one before.
    for await (const record of readAccessLog(this.services.dataSource, this.services.pseudonymBindingKey, { subjectId, throughSeq: head, exceptActorId: SUBJECT_ACTOR.id })) {
      // Staff reading or recording their choices decides no field, yet uses their privacy preferences.
      const category = record.category ?? (CHOICES_OPERATIONS.has(record.reason) ? CHOICES_CATEGORY : null);
      if (category === null) continue;
      const used = record.decision === 'RELEASED' || record.decision === 'MASKED';
      // Only uses and what the subject's choices stopped: a dry run or a rejected operation used nothing.
      if (!used && !CHOICE_REASONS.has(record.reason)) continue;
      const key = `${record.at.slice(0, 7)}|${record.actorTeam}|${category}|${record.purpose}`;
      const line = lines.get(key) ?? { month: record.at.slice(0, 7), team: record.actorTeam ?? 'unknown', category, purpose: record.purpose ?? '', usedBy: new Set(), usedFullyBy: new Set(), reducedBy: new Map(), withheldFrom: new Set() };
      lines.set(key, line);
      (used ? line.usedBy : line.withheldFrom).add(record.requestId);
      // A request that had the value itself (one field released, another of the category masked) used it, not a reduced form.
      if (record.decision === 'RELEASED') line.usedFullyBy.add(record.requestId);
      if (record.decision === 'MASKED') {
        const strategy = record.maskStrategy ?? null;
        line.reducedBy.set(strategy, (line.reducedBy.get(strategy) ?? new Set()).add(record.requestId));
      }
    }
    const reducedOnly = (reducedBy: Map<string | null, Set<string>>, usedFullyBy: Set<string>) =>
      [...reducedBy].map(([strategy, requests]) => ({ strategy, uses: [...requests].filter((requestId) => !usedFullyBy.has(requestId)).length })).filter(({ uses }) => uses > 0);
    return [...lines.values()]
      .map(({ usedBy, usedFullyBy, reducedBy, withheldFrom, ...line }) => ({ ...line, used: usedBy.size, reduced: reducedOnly(reducedBy, usedFullyBy), withheldByChoice: withheldFrom.size }))
      .sort((a, b) => (a.month === b.month ? `${a.team}${a.purpose}`.localeCompare(`${b.team}${b.purpose}`) : a.month < b.month ? 1 : -1));
  }

  private async record(requestId: string, operationName: string, subjectId: string, purpose: string | null, receiptId: string | null): Promise<void> {
    await this.services.accessLog.append([
      { at: this.services.clock(), requestId, actor: SUBJECT_ACTOR, purpose, operationName, subjectId, coordinate: null, category: null, decision: 'RELEASED', reason: SELF_ACCESS, legalBasis: 'legal_obligation', consentReceiptId: receiptId },
    ]);
  }
}

/**
 * The choices the page offers for a purpose, whatever the subject's state: consent where the basis is
 * consent or the purpose may use special-category data (explicit consent, rule 5, whatever the basis), an
 * objection where the basis is legitimate interests (Art. 21).
 */
function choiceKinds(purpose: Purpose, specialCategories: readonly string[]): ChoiceAction[] {
  return [...(purpose.legalBasis === 'consent' || specialCategories.length ? (['grant', 'withdraw'] as const) : []), ...(purpose.legalBasis === 'legitimate_interests' ? (['object', 'withdraw_objection'] as const) : [])];
}
