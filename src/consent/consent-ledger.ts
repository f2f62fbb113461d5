import { randomBytes } from 'node:crypto';
import DataLoader from 'dataloader';
import { type DataSource, type EntityManager, In } from 'typeorm';
import { SUBJECT_ACTOR_ID } from '../actors/actor-directory';
import { badInput, checkPageSize, unknownSubject } from '../errors';
import { holdsHidden, holdsUnprintable } from '../printable';
import { deleteRows, insertRows } from '../storage/multi-row';
import { committedRead, inTransaction } from '../storage/transactions';
import type { ConsentStatement, ObjectionStatement, SubjectState } from '../policy/decide';
import { coveringKeys } from '../taxonomy/keys';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { ConsentEventEntity, type ConsentEventKind } from './consent-event.entity';
import { ConsentImportEntity } from './consent-import.entity';
import { buildReceipt, newReceiptIds, type ReceiptContext, reissuedTo } from './consent-receipt';
import { ConsentReceiptEntity } from './consent-receipt.entity';
import { ConsentStateEntity, type StatementKind } from './consent-state.entity';

/** The longest `source` a statement takes. */
export const MAX_SOURCE_LENGTH = 200;

/**
 * The source of the statements subjects make themselves, on their privacy page. Reserved: staff recording a
 * statement (GraphQL, an import) cannot claim it, or a receipt would show as the subject's own act on the page
 * what someone else entered.
 */
export const PRIVACY_PAGE_SOURCE = 'privacy-page';

/**
 * Whether a source reads, to a person, as PRIVACY_PAGE_SOURCE. Compared as it is read: compatibility forms
 * folded (NFKD: a fullwidth `ｐ` is `p`), accents dropped, every dash (`\p{Pd}`: the non-breaking hyphen, the
 * en dash) a hyphen-minus, case folded. A look-alike letter from another script (a Cyrillic `р`) or sign (the
 * minus `−`) has no such fold, and no table of them is complete: a source of the name's length that is the
 * name wherever it is ASCII, and holds some ASCII of it, reads as the name whatever stands in its other places.
 * A source in another script of that length (`プライバシーページ申込書`) holds no ASCII, and is not taken for it.
 */
function readsAsPrivacyPage(source: string): boolean {
  const read = [...source.normalize('NFKD').replace(/\p{M}/gu, '').replace(/\p{Pd}/gu, '-').toLowerCase().trim()];
  const name = [...PRIVACY_PAGE_SOURCE];
  const ascii = (character: string) => character < '\u0080';
  return read.length === name.length && read.some(ascii) && read.every((character, index) => character === name[index] || !ascii(character));
}

/** The ledger's id for a subject once erased: random, so that nothing about them can be read from it or mapped back. */
const newErasedSubjectId = (): string => `erased_${randomBytes(12).toString('hex')}`;

export interface ConsentChange {
  readonly subjectId: string;
  readonly kind: ConsentEventKind;
  /** Required for every kind but restrict / lift_restriction. */
  readonly purpose?: string | null;
  readonly explicit?: boolean;
  readonly source: string;
  readonly expiresAt?: Date | null;
  readonly actorId?: string | null;
  /** When the statement was made, if not now (imports of existing consents); never in the future. */
  readonly recordedAt?: Date;
}

/** What the ledger asks about data subjects (the domain owns them; the ledger only asks). */
export interface SubjectDirectory {
  /** Which of these subjects exist and are not erased, inside `manager`'s transaction. */
  existingAmong(subjectIds: readonly string[], manager: EntityManager): Promise<ReadonlySet<string>>;
  /** Which of these subjects are erased. */
  erasedAmong(subjectIds: readonly string[]): Promise<ReadonlySet<string>>;
}

const STATEMENT_OF: Record<ConsentEventKind, { kind: StatementKind; active: boolean }> = {
  grant: { kind: 'consent', active: true },
  withdraw: { kind: 'consent', active: false },
  object: { kind: 'objection', active: true },
  withdraw_objection: { kind: 'objection', active: false },
  restrict: { kind: 'restriction', active: true },
  lift_restriction: { kind: 'restriction', active: false },
};

/** First key of the per-subject advisory locks on PostgreSQL (the second is the subject's bucket). */
const CONSENT_LOCK_NAMESPACE = 0x636f6e;
/**
 * Subjects are locked by bucket of their hash: an import of a hundred thousand subjects would otherwise
 * take as many locks in one transaction, past PostgreSQL's shared lock table (`out of shared memory`).
 */
const CONSENT_LOCK_BUCKETS = 1024;
/** Changes of at most this many subjects also take the per-subject locks earlier versions took. */
const PER_SUBJECT_LOCKS_UP_TO = 16;

/** The most ledger entries one `consentHistory` call returns. */
export const MAX_HISTORY_PAGE = 500;

/** Reads by subject (states, entries) are chunked so one IN list stays well inside every driver's parameter limit. */
const STATE_READ_CHUNK = 500;

/**
 * Ledger entries (and their receipts, and projection rows) written per statement: a multi-row insert of 500
 * entries binds 5,000 values, well inside SQLite's 32,766 and PostgreSQL's 65,535 (`src/storage/multi-row.ts`).
 */
const WRITE_CHUNK = 500;

/**
 * The consent ledger: append-only entries (grant, withdraw, object, withdraw objection, restrict, lift),
 * and the subjects' current state derived from them. Each append also updates the `consent_state`
 * projection in the same transaction, so a change is visible to the very next request.
 */
export class ConsentLedger {
  constructor(
    private readonly dataSource: DataSource,
    private readonly taxonomy: Taxonomy,
    private readonly subjects: SubjectDirectory,
    private readonly receipts: ReceiptContext,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Validates and appends one entry; nothing is written when the input is rejected. */
  async append(change: ConsentChange): Promise<ConsentEventEntity> {
    return (await this.appendMany([change]))[0];
  }

  /**
   * Validates every change, then appends them all in one transaction (all or nothing); `alongside` runs in it
   * before anything is appended, once no other change of these subjects can commit before this one (an
   * import's record of its file, and its look for statements the ledger holds already).
   */
  async appendMany(changes: readonly ConsentChange[], onWritten?: (written: number, total: number) => void, alongside?: (manager: EntityManager) => Promise<void>): Promise<ConsentEventEntity[]> {
    const now = this.clock();
    const rows = changes.map((change) => this.validate(change, now));
    return inTransaction(this.dataSource, async (manager) => {
      const subjects = [...new Set(rows.map((row) => row.subjectId))].sort();
      if (this.dataSource.options.type === 'postgres') {
        // Changes to one subject are applied one at a time (buckets in sorted order, so never deadlocking):
        // the projection must end in the state of the subject's latest ledger entry.
        const buckets: Array<{ bucket: number }> = await manager.query(
          `SELECT DISTINCT (hashtext(subject_id) & ${CONSENT_LOCK_BUCKETS - 1}) AS bucket FROM unnest($1::text[]) AS subject_id ORDER BY bucket`,
          [subjects],
        );
        // Instances of the version before buckets lock (namespace, subject hash): during a rolling upgrade a change
        // of a few subjects takes those locks too, so that the two versions still exclude each other on them. A
        // larger change (an import) does not: run imports once every instance is upgraded.
        if (subjects.length <= PER_SUBJECT_LOCKS_UP_TO) {
          for (const subjectId of subjects) await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [CONSENT_LOCK_NAMESPACE, subjectId]);
        }
        for (const { bucket } of buckets) await manager.query('SELECT pg_advisory_xact_lock($1, $2)', [CONSENT_LOCK_NAMESPACE, bucket]);
      }
      await alongside?.(manager);
      // Every subject is checked before anything is written, so a rejected change never leaves a partial write.
      const existing = await this.subjects.existingAmong(subjects, manager);
      const unknown = subjects.find((subjectId) => !existing.has(subjectId));
      if (unknown !== undefined) throw unknownSubject(`unknown subject "${unknown}"`);
      // A statement made now takes effect after every earlier one of its subject, whichever instance's clock
      // stamped those: a withdrawal through an instance whose clock runs behind must not lose to a grant.
      const latest = new Map<string, string>();
      for (const row of rows) {
        if (row.stampedNow && !latest.has(row.subjectId)) latest.set(row.subjectId, await this.latestStatementTime(row.subjectId, manager));
      }
      // The receipt id is chosen first, so the ledger entry is written once, complete (updated only at an erasure).
      const receiptIds = newReceiptIds(rows.length);
      const entries = rows.map((validated, index) => ({ ...this.takingEffect(validated, latest.get(validated.subjectId) ?? ''), receiptId: receiptIds[index] }));
      const events: ConsentEventEntity[] = [];
      for (let start = 0; start < entries.length; start += WRITE_CHUNK) {
        const written = await insertEntries(manager, entries.slice(start, start + WRITE_CHUNK));
        await insertRows(manager, ConsentReceiptEntity, written.map((event) => buildReceipt(this.receipts, event.receiptId!, event)));
        for (const event of written) {
          events.push(event);
          // The last one is written with the projection: until then the append is not done.
          if (events.length < rows.length) onWritten?.(events.length, rows.length);
        }
      }
      await applyToProjection(manager, events);
      onWritten?.(events.length, rows.length);
      return events;
    });
  }

  /**
   * Checks changes without writing anything: the problems by position (validation and unknown subjects).
   * `appendMany` would reject exactly these.
   */
  async check(changes: readonly ConsentChange[], onChecked?: (checked: number, total: number) => void): Promise<Map<number, string>> {
    const now = this.clock();
    const problems = new Map<number, string>();
    const existing = await this.subjects.existingAmong(changes.map((change) => change.subjectId), this.dataSource.manager);
    // A subject no longer there because they were erased is told apart from an id no one has (a typo, another system's).
    const erased = await this.subjects.erasedAmong([...new Set(changes.map((change) => change.subjectId).filter((subjectId) => !existing.has(subjectId)))]);
    const latest = new Map<string, string>();
    for (const [index, change] of changes.entries()) {
      try {
        const row = this.validate(change, now);
        if (!existing.has(change.subjectId)) {
          problems.set(index, erased.has(change.subjectId) ? `subject "${change.subjectId}" is erased: nothing is recorded about them any more` : `unknown subject "${change.subjectId}"`);
        } else {
          if (row.stampedNow && !latest.has(row.subjectId)) latest.set(row.subjectId, await this.latestStatementTime(row.subjectId, this.dataSource.manager));
          // As appendMany takes it: at the time it takes effect.
          this.takingEffect(row, latest.get(row.subjectId) ?? '');
        }
      } catch (error) {
        problems.set(index, (error as Error).message);
      }
      onChecked?.(index + 1, changes.length);
    }
    return problems;
  }

  /**
   * Pseudonymises a subject's part of the ledger at their erasure (GDPR Art. 17), in the erasure's
   * transaction: their entries and receipts stay — the proof of consent a legal obligation may require —
   * under a new random id that nothing maps back to (each receipt names it and is digested anew), and their
   * current state goes, with no one left to decide about. Access records name the receipts they relied on:
   * kept under the subject's id, a receipt would tie the log to them again once their pseudonym is unmapped.
   */
  async pseudonymise(subjectId: string, manager: EntityManager): Promise<void> {
    const erasedId = newErasedSubjectId();
    await manager.getRepository(ConsentEventEntity).update({ subjectId }, { subjectId: erasedId });
    const receipts = manager.getRepository(ConsentReceiptEntity);
    for (const receipt of await receipts.find({ select: { id: true, document: true }, where: { subjectId } })) await receipts.update({ id: receipt.id }, reissuedTo(receipt, erasedId));
    await manager.getRepository(ConsentStateEntity).delete({ subjectId });
  }

  /**
   * The entries that hold these statements already, by the change's position: the first entry of the same
   * subject, action and purpose, made at the same time. Source, explicit and expiry do not tell statements
   * apart: they describe one, and another export of it (another system's, a corrected one) may describe it
   * otherwise — one made on the privacy page cannot even be imported under that source, which is reserved —
   * while a subject says one thing about a purpose at one instant; recorded again, it would get a second
   * receipt. A change the ledger would refuse, or one without its time (made now), has none. One read per
   * chunk of changes.
   */
  async entriesHolding(changes: readonly ConsentChange[], manager: EntityManager = this.dataSource.manager): Promise<Map<number, ConsentEventEntity>> {
    const now = this.clock();
    const statements = changes.flatMap((change, index) => {
      if (change.recordedAt === undefined) return [];
      try {
        return [{ index, row: this.validate(change, now) }];
      } catch {
        return [];
      }
    });
    const keyOf = (statement: Pick<ConsentEventEntity, 'subjectId' | 'kind' | 'purpose' | 'recordedAt'>) => JSON.stringify([statement.subjectId, statement.kind, statement.purpose, statement.recordedAt]);
    const held = new Map<number, ConsentEventEntity>();
    for (let start = 0; start < statements.length; start += STATE_READ_CHUNK) {
      const chunk = statements.slice(start, start + STATE_READ_CHUNK);
      const entries = await manager.getRepository(ConsentEventEntity).find({
        where: { subjectId: In([...new Set(chunk.map(({ row }) => row.subjectId))]), recordedAt: In([...new Set(chunk.map(({ row }) => row.recordedAt))]) },
        order: { id: 'DESC' },
      });
      // Newest first: of a statement recorded more than once, the map keeps the last read, its first entry.
      const entryOf = new Map(entries.map((entry) => [keyOf(entry), entry]));
      for (const { index, row } of chunk) {
        const entry = entryOf.get(keyOf(row));
        if (entry) held.set(index, entry);
      }
    }
    return held;
  }

  /** The import file the ledger holds with this digest of its text, if it holds one. */
  importOf(digest: string): Promise<ConsentImportEntity | null> {
    return this.dataSource.getRepository(ConsentImportEntity).findOneBy({ digest });
  }

  /** The receipts issued to one subject, newest first. */
  receiptsOf(subjectId: string): Promise<ConsentReceiptEntity[]> {
    return this.dataSource.getRepository(ConsentReceiptEntity).find({ where: { subjectId }, order: { issuedAt: 'DESC', eventId: 'DESC' } });
  }

  /**
   * The notice a statement made at `at` was given under: the current one, unless the statement predates the
   * current notice (an imported history) — then the taxonomy does not say which it was, and neither does the
   * receipt (null), rather than claim the current one.
   */
  private noticeVersionAt(purposeKey: string, at: Date): number | null {
    const { notice } = this.taxonomy.purposes.get(purposeKey)!;
    return notice.since !== undefined && at.getTime() < notice.since.getTime() ? null : notice.version;
  }

  /** When the subject's latest statement was made ('' when there is none). */
  private async latestStatementTime(subjectId: string, manager: EntityManager): Promise<string> {
    const [row] = await manager.getRepository(ConsentEventEntity).find({ where: { subjectId }, order: { recordedAt: 'DESC' }, take: 1, select: { recordedAt: true } });
    return row?.recordedAt ?? '';
  }

  /**
   * A validated statement as it takes effect: one made now goes after its subject's latest one (`latest`, ''
   * when there is none), whichever instance's clock stamped that; refused when that leaves its expiry behind.
   * Its notice is the one of when it takes effect: moved past a material notice change, it counts in
   * decide() as given under the new notice, and its ledger entry and receipt say so.
   */
  private takingEffect({ stampedNow, ...row }: ReturnType<ConsentLedger['validate']>, latest: string): Omit<ConsentEventEntity, 'id' | 'receiptId'> {
    const recordedAt = stampedNow && latest > row.recordedAt ? latest : row.recordedAt;
    if (row.expiresAt !== null && row.expiresAt <= recordedAt) throw badInput('expiresAt must be a valid time after the statement takes effect', { field: 'expiresAt' });
    return { ...row, recordedAt, noticeVersion: row.purpose ? this.noticeVersionAt(row.purpose, new Date(recordedAt)) : null };
  }

  /** A change as the ledger will store it, but for its notice (see takingEffect); `stampedNow` when it carried no time of its own. */
  private validate(change: ConsentChange, now: Date): Omit<ConsentEventEntity, 'id' | 'receiptId' | 'noticeVersion'> & { readonly stampedNow: boolean } {
    const statement = STATEMENT_OF[change.kind];
    if (!statement) throw badInput(`unknown ledger entry kind "${String(change.kind)}"`, { field: 'kind' });
    const needsPurpose = statement.kind !== 'restriction';
    // A restriction (Art. 18) is of all processing: one naming a purpose would be read as narrower than it is.
    if (!needsPurpose && change.purpose !== undefined && change.purpose !== null && change.purpose.trim() !== '') {
      throw badInput(`${change.kind} applies to all processing: it takes no purpose (got "${change.purpose}")`, { field: 'purpose' });
    }
    const purpose = needsPurpose ? (change.purpose ?? '').trim() : null;
    if (purpose === '') throw badInput(`${change.kind} needs the purpose it is about`, { field: 'purpose' });
    if (needsPurpose && !this.taxonomy.purposes.has(purpose!)) throw badInput(`unknown purpose "${change.purpose ?? ''}"`, { field: 'purpose' });
    if (change.explicit && change.kind !== 'grant') throw badInput('explicit applies to a grant only', { field: 'explicit' });
    if (!change.subjectId || change.subjectId.trim() === '') throw badInput('subjectId is required', { field: 'subjectId' });
    // A stored text that PostgreSQL cannot hold (NUL) or a terminal would run is refused before any write.
    if (holdsUnprintable(change.subjectId)) throw badInput('subjectId holds control characters', { field: 'subjectId' });
    if (!change.source || change.source.trim() === '') throw badInput('source is required (where the statement was collected)', { field: 'source' });
    // Hidden characters would let a source show as another reads (`privacy-page\u200b` as the reserved one);
    // unprintable ones include a lone surrogate, which is no character at all.
    if (holdsHidden(change.source)) throw badInput('source must be plain text in a line (it holds control or invisible characters)', { field: 'source' });
    // It is copied onto every receipt and shown on the privacy page: where the statement was collected, in a line.
    if (change.source.trim().length > MAX_SOURCE_LENGTH) throw badInput(`source must be at most ${MAX_SOURCE_LENGTH} characters`, { field: 'source' });
    if (readsAsPrivacyPage(change.source) && change.actorId !== SUBJECT_ACTOR_ID) {
      throw badInput(`source "${PRIVACY_PAGE_SOURCE}" is reserved for what subjects state on their privacy page`, { field: 'source' });
    }
    if (change.recordedAt !== undefined && (Number.isNaN(change.recordedAt.getTime()) || change.recordedAt.getTime() > now.getTime())) {
      throw badInput('recordedAt must be a valid time that is not in the future', { field: 'recordedAt' });
    }
    if (change.expiresAt !== undefined && change.expiresAt !== null) {
      if (change.kind !== 'grant') throw badInput('expiresAt applies to grants only', { field: 'expiresAt' });
      // A statement of the past may have expired since (an imported history): it must only expire after it was made.
      const made = change.recordedAt ?? now;
      if (Number.isNaN(change.expiresAt.getTime()) || change.expiresAt.getTime() <= made.getTime()) {
        throw badInput(change.recordedAt ? 'expiresAt must be a valid time after recordedAt' : 'expiresAt must be a valid time in the future', { field: 'expiresAt' });
      }
    }
    return {
      subjectId: change.subjectId,
      kind: change.kind,
      purpose,
      explicit: change.kind === 'grant' && Boolean(change.explicit),
      source: change.source.trim(),
      expiresAt: change.expiresAt ? change.expiresAt.toISOString() : null,
      recordedAt: (change.recordedAt ?? now).toISOString(),
      stampedNow: change.recordedAt === undefined,
      actorId: change.actorId ?? null,
    };
  }

  /** The ledger of one subject, in the order its statements were made (an imported older one among them, not last). */
  history(subjectId: string): Promise<ConsentEventEntity[]> {
    return this.dataSource.getRepository(ConsentEventEntity).find({ where: { subjectId }, order: { recordedAt: 'ASC', id: 'ASC' } });
  }

  /**
   * A subject's latest `first` ledger entries, newest first, for the consent managers (`Query.consentHistory`):
   * what a support call needs before it changes a choice. A subject who is unknown or erased is bad input (an
   * erased subject's entries are pseudonymised, and no longer theirs to look up).
   */
  async latestOf(subjectId: string, first: number): Promise<ConsentEventEntity[]> {
    checkPageSize('first', first, 1, MAX_HISTORY_PAGE);
    if (!(await this.subjects.existingAmong([subjectId], this.dataSource.manager)).has(subjectId)) throw unknownSubject(`unknown subject "${subjectId}"`, { argument: 'subjectId' });
    return this.dataSource.getRepository(ConsentEventEntity).find({ where: { subjectId }, order: { recordedAt: 'DESC', id: 'DESC' }, take: first });
  }

  /**
   * Current states of many subjects in one read per chunk; unknown subjects get an empty state. An erased
   * subject's state reads as restricted. Their statements went with the erasure, and a request that read
   * their record just before it committed decides after it: an empty state would release what their
   * objection withheld (a legitimate-interests purpose). Erasure is looked up after the statements (an
   * erasure committing between the two reads makes the state stricter, never laxer), for every chunk: one
   * statement more per chunk, whatever the subjects, so a request's reads stay constant.
   */
  async states(subjectIds: readonly string[]): Promise<SubjectState[]> {
    const rows: ConsentStateEntity[] = [];
    const erased = new Set<string>();
    const repository = this.dataSource.getRepository(ConsentStateEntity);
    for (let start = 0; start < subjectIds.length; start += STATE_READ_CHUNK) {
      const chunk = subjectIds.slice(start, start + STATE_READ_CHUNK);
      rows.push(...(await committedRead(this.dataSource, () => repository.find({ where: { subjectId: In(chunk) } }))));
      for (const subjectId of await this.subjects.erasedAmong(chunk)) erased.add(subjectId);
    }
    const bySubject = new Map<string, { restricted: boolean; consents: ConsentStatement[]; objections: ObjectionStatement[] }>();
    for (const subjectId of subjectIds) bySubject.set(subjectId, { restricted: erased.has(subjectId), consents: [], objections: [] });
    for (const row of rows) {
      const state = bySubject.get(row.subjectId)!;
      // Or'ed: a lifted restriction read before an erasure committed must not undo its reading as restricted.
      if (row.kind === 'restriction') state.restricted ||= row.active;
      else if (row.kind === 'objection') state.objections.push({ purpose: row.purpose, objected: row.active });
      else
        state.consents.push({
          purpose: row.purpose,
          granted: row.active,
          explicit: row.explicit,
          expiresAt: row.expiresAt ? new Date(row.expiresAt) : null,
          recordedAt: row.recordedAt ? new Date(row.recordedAt) : null,
          receiptId: row.receiptId,
        });
    }
    return subjectIds.map((subjectId) => ({ subjectId, ...bySubject.get(subjectId)! }));
  }

  /** A per-request loader: every subject a request touches is loaded in one batch per tick. */
  createStateLoader(): DataLoader<string, SubjectState> {
    return new DataLoader((subjectIds) => this.states(subjectIds), { maxBatchSize: 5_000 });
  }
}

/**
 * Inserts ledger entries in one statement and returns them with their ids. The ids come back by receipt id,
 * which is unique; entries that share a `recordedAt` take effect in the ledger's order, so the ids must follow
 * the entries' order, as both databases number a multi-row insert's rows — checked, and the append rolled back
 * rather than recorded in another order.
 */
async function insertEntries(manager: EntityManager, entries: ReadonlyArray<Omit<ConsentEventEntity, 'id'>>): Promise<ConsentEventEntity[]> {
  const returned = await insertRows(manager, ConsentEventEntity, entries as ConsentEventEntity[], { returning: ['id', 'receiptId'] });
  const idOf = new Map(returned.map((row) => [row.receiptId, Number(row.id)]));
  const events = entries.map((entry) => ({ ...entry, id: idOf.get(entry.receiptId)! }));
  if (events.some((event, position) => !(event.id > (events[position - 1]?.id ?? 0)))) throw new Error('the ledger numbered a multi-row insert out of its order');
  return events;
}

/** A subject's current statements of one kind (`consent_state` rows) by purpose ('' for the restriction). */
type Standing = Map<string, ConsentStateEntity>;

/**
 * Statements take effect in the order they were made (`recordedAt`; the later append wins a tie), not the
 * order they reach the ledger: an import of old consents must not override what a subject said since. A
 * statement is current unless one on its purpose or a broader one was made later; a current statement
 * replaces those on its purpose and its sub-purposes made no later than it. So the most specific current
 * statement covering a purpose is always the latest one made about it (`replayLedger` sorts and agrees).
 *
 * Applies `event` to its subject's standing; returns the purposes whose statements it replaced or removed.
 */
function applyStatement(standing: Standing, event: ConsentEventEntity): string[] {
  const { kind, active } = STATEMENT_OF[event.kind];
  const purpose = event.purpose ?? '';
  const broaderOrSame = purpose === '' ? [''] : coveringKeys(purpose);
  const madeLater = (statement: ConsentStateEntity | undefined) => statement?.recordedAt != null && statement.recordedAt > event.recordedAt;
  if (broaderOrSame.some((key) => madeLater(standing.get(key)))) return [];
  standing.set(purpose, { subjectId: event.subjectId, kind, purpose, active, explicit: event.explicit, expiresAt: event.expiresAt, eventId: event.id, recordedAt: event.recordedAt, receiptId: event.receiptId });
  const replaced = [purpose];
  for (const [other, statement] of standing) {
    // A prefix, not a pattern: purpose keys hold `_`.
    if (other.startsWith(`${purpose}.`) && (statement.recordedAt === null || statement.recordedAt <= event.recordedAt)) {
      standing.delete(other);
      replaced.push(other);
    }
  }
  return replaced;
}

/**
 * Brings the `consent_state` projection up to date with appended ledger entries, in the append's transaction:
 * the subjects' current statements are read once, each entry applied in the order appended
 * (`applyStatement`), and what changed written back a chunk at a time — statements replaced first, then
 * those removed, so that no moment shows a subject without the statement that replaced another.
 */
async function applyToProjection(manager: EntityManager, events: readonly ConsentEventEntity[]): Promise<void> {
  const repository = manager.getRepository(ConsentStateEntity);
  const standings = new Map<string, Standing>();
  const standingOf = (subjectId: string, kind: StatementKind) => {
    const key = `${subjectId}\0${kind}`;
    let standing = standings.get(key);
    if (!standing) standings.set(key, (standing = new Map()));
    return standing;
  };
  const subjects = [...new Set(events.map((event) => event.subjectId))];
  for (let start = 0; start < subjects.length; start += STATE_READ_CHUNK) {
    for (const statement of await repository.find({ where: { subjectId: In(subjects.slice(start, start + STATE_READ_CHUNK)) } })) standingOf(statement.subjectId, statement.kind).set(statement.purpose, statement);
  }
  const touched = new Map<string, { standing: Standing; subjectId: string; kind: StatementKind; purpose: string }>();
  for (const event of events) {
    const kind = STATEMENT_OF[event.kind].kind;
    const standing = standingOf(event.subjectId, kind);
    for (const purpose of applyStatement(standing, event)) touched.set(`${event.subjectId}\0${kind}\0${purpose}`, { standing, subjectId: event.subjectId, kind, purpose });
  }
  const current = [...touched.values()].flatMap(({ standing, purpose }) => standing.get(purpose) ?? []);
  const removed = [...touched.values()].filter(({ standing, purpose }) => !standing.has(purpose)).map(({ subjectId, kind, purpose }) => ({ subjectId, kind, purpose }));
  for (let start = 0; start < current.length; start += WRITE_CHUNK) await insertRows(manager, ConsentStateEntity, current.slice(start, start + WRITE_CHUNK), { replacingOn: ['subjectId', 'kind', 'purpose'] });
  for (let start = 0; start < removed.length; start += WRITE_CHUNK) await deleteRows(manager, ConsentStateEntity, removed.slice(start, start + WRITE_CHUNK));
}
