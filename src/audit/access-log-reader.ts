import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { DataSource, SelectQueryBuilder } from 'typeorm';
import { closest } from '../closest';
import { derivedKey } from '../config';
import { badInput, checkPageSize, isGiven, isoTime, unknownSubject } from '../errors';
import { coveringKeys } from '../taxonomy/keys';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { AuditBatchEntity, SubjectPseudonymEntity } from './audit.entities';
import { ACCESS_DECISIONS, type AccessDecision, type EntryHeader, type EntryItem } from './chain';
import { MappingCheck, pseudonymBindingKey } from './pseudonym-binding';

export interface AccessLogFilter {
  readonly subjectId?: string | null;
  readonly actorId?: string | null;
  readonly team?: string | null;
  readonly purpose?: string | null;
  readonly coordinate?: string | null;
  readonly category?: string | null;
  readonly decision?: string | null;
  readonly reason?: string | null;
  readonly requestId?: string | null;
  /** Inclusive lower bound on the record time (ISO-8601). */
  readonly from?: string | null;
  /** Exclusive upper bound on the record time (ISO-8601). */
  readonly to?: string | null;
  /**
   * Records after this sequence number only. Sequence numbers follow commit order, which record times do
   * not (a slow request commits records timed before others already committed): an export that remembers
   * the last one it read misses nothing and repeats nothing.
   */
  readonly afterSeq?: number | null;
}

/** A record as auditors read it: the stored item and header, the pseudonym mapped back to the subject id (null once erased). */
export type AccessRecordView = EntryItem &
  Pick<EntryHeader, 'at' | 'requestId' | 'purpose' | 'operationName'> & {
    readonly seq: number;
    readonly actor: { readonly id: string | null; readonly name: string | null; readonly team: string | null };
    readonly subjectId: string | null;
  };

export interface AccessLogPage {
  readonly edges: ReadonlyArray<{ readonly cursor: string; readonly node: AccessRecordView }>;
  readonly pageInfo: { readonly hasNextPage: boolean; readonly hasPreviousPage: boolean; readonly startCursor: string | null; readonly endCursor: string | null };
  readonly totalCount: number;
}

export const MAX_PAGE = 500;

/** Where reading starts: the records after `seq`, found from the stored entry `entrySeq` on (entries are what the index orders). */
interface Position {
  readonly seq: number;
  /** The first sequence number of the entry holding record `seq + 1`, or of an entry before it. */
  readonly entrySeq: number;
}

const LOG_START: Position = { seq: 0, entrySeq: 0 };

/** A position after the last record returned, with the snapshot and the count it was read under. */
interface Cursor extends Position {
  /** The head when the first page was read: later pages never see newer records. */
  readonly asOf: number;
  /** The filtered count as of `asOf`, computed once for the first page, and the filter it counted. */
  readonly totalCount: number;
  readonly countedFilter: string;
}

/** The label of the key cursors are authenticated under (derived from CANDOR_SECRET). */
const CURSOR_KEY_LABEL = 'candor-access-log-cursor/1';

/**
 * `<payload>.<tag>`: the payload (base64url JSON of [seq, asOf, entrySeq, totalCount, countedFilter]) is
 * readable by anyone; the tag, HMAC-SHA-256 of the payload's text under the cursor key, lets only the server
 * make one. A cursor carries the count and the snapshot it reports: altered, it would have the server report
 * a figure of the caller's choosing.
 */
function encodeCursor(key: Buffer, cursor: Cursor): string {
  const payload = Buffer.from(JSON.stringify([cursor.seq, cursor.asOf, cursor.entrySeq, cursor.totalCount, cursor.countedFilter])).toString('base64url');
  return `${payload}.${cursorTag(key, payload)}`;
}

// Over the payload's text as sent, not its decoded bytes: base64url spells some byte strings more than one way.
const cursorTag = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest('base64url');

/** A short digest of the filter's set values: a count carried by a cursor serves the filter it was made for only. */
function filterDigest(filter: AccessLogFilter): string {
  const set = Object.entries(filter).filter(([, value]) => isGiven(value)).sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(set)).digest('base64url').slice(0, 16);
}

/**
 * The cursor `value` stands for, when its tag verifies under `key`. Nothing else is read from it: a cursor
 * altered, made under another secret, or unsigned (the format before cursors were authenticated) is refused.
 */
function decodeCursor(key: Buffer, value: string): Cursor {
  const [payload, tag, ...rest] = value.split('.');
  const expected = Buffer.from(cursorTag(key, payload));
  const given = Buffer.from(tag ?? '');
  // In constant time: a comparison that stops at the first differing byte would let a caller find a tag byte by byte.
  if (rest.length > 0 || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw badInput('`after` is not a cursor returned by accessLog', { argument: 'after' });
  }
  const [seq, asOf, entrySeq, totalCount, countedFilter] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as [number, number, number, number, string];
  return { seq, asOf, entrySeq, totalCount, countedFilter };
}

/** Filters on a record's own item (the rest are on its entry's header). */
const ITEM_FILTERS: ReadonlyArray<keyof AccessLogFilter> = ['coordinate', 'category', 'decision', 'reason'];

/** What a subject id names: a customer, an erased one, or none (the domain owns subjects; the reader only asks). */
export type SubjectStatusOf = (subjectId: string) => Promise<'customer' | 'erased' | 'unknown'>;

/** Filters naming a taxonomy key, matched as Candor matches keys: the key and the keys under it. */
const TAXONOMY_KEY_FILTERS = ['purpose', 'category'] as const;

/** How far a mistyped key may be from the key it suggests. */
const SUGGESTED_WITHIN_EDITS = 3;

/** The key a mistyped one likely meant: the shortest key it begins (a key cut short), else the closest by edits. */
function suggestedKey(typed: string, keys: ReadonlySet<string>): string | undefined {
  const completions = [...keys].filter((key) => key.startsWith(typed)).sort((a, b) => a.length - b.length);
  if (completions.length > 0) return completions[0];
  // Text longer than every key by more than the edits allowed is near none (and costs its length per key to compare).
  const longest = Math.max(0, ...[...keys].map((key) => key.length));
  return typed.length > longest + SUGGESTED_WITHIN_EDITS ? undefined : closest(typed, keys, SUGGESTED_WITHIN_EDITS);
}

/** Reads the access log for auditors: filters, keyset pagination over a snapshot, pseudonyms mapped back. */
export class AccessLogReader {
  private readonly cursorKey: Buffer;
  private readonly bindingKey: Buffer;
  /** Every purpose and category key a filter may name: the taxonomy's keys and the keys above them. */
  private readonly filterKeys: Record<'purpose' | 'category', ReadonlySet<string>>;

  /**
   * `secret`: CANDOR_SECRET, which the cursors' key is derived from (every instance shares it, and so their
   * cursors), and the key the pseudonym mappings are bound under. `subjectStatusOf` tells a mistyped or
   * erased subject from one with no records: both would otherwise answer an empty page. `taxonomy` does the
   * same for a mistyped purpose or category.
   */
  constructor(
    private readonly dataSource: DataSource,
    secret: string,
    private readonly subjectStatusOf: SubjectStatusOf,
    taxonomy: Pick<Taxonomy, 'purposes' | 'categories'>,
  ) {
    this.cursorKey = derivedKey(secret, CURSOR_KEY_LABEL);
    this.bindingKey = pseudonymBindingKey(secret);
    const withAncestors = (keys: Iterable<string>) => new Set([...keys].flatMap(coveringKeys));
    this.filterKeys = { purpose: withAncestors(taxonomy.purposes.keys()), category: withAncestors(taxonomy.categories.keys()) };
  }

  /** The last committed sequence number. */
  async headSeq(): Promise<number> {
    const [batch] = await this.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
    return batch?.lastSeq ?? 0;
  }

  /**
   * A page of `first` (0 to MAX_PAGE: 0 answers the count, and whether anything follows `after`) records
   * matching `filter`, after the cursor `after` when given.
   */
  async page(filter: AccessLogFilter = {}, first = 50, after?: string | null): Promise<AccessLogPage> {
    checkPageSize('first', first, 0, MAX_PAGE);
    if (isGiven(filter.decision) && !(ACCESS_DECISIONS as readonly string[]).includes(filter.decision)) throw badInput(`decision must be one of ${ACCESS_DECISIONS.join(', ')}`, { argument: 'filter.decision' });
    const afterSeq = filter.afterSeq ?? 0;
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw badInput('filter.afterSeq must be a non-negative integer', { argument: 'filter.afterSeq' });
    // PostgreSQL text cannot hold NUL (it would fail the query), and no recorded value does.
    const withNul = Object.entries(filter).find(([, value]) => typeof value === 'string' && value.includes('\u0000'));
    if (withNul) throw badInput(`filter.${withNul[0]} holds a NUL character, which no recorded value does`, { argument: `filter.${withNul[0]}` });
    const period = periodOf(filter);
    const { from, to } = period;
    if (from && to && from >= to) throw badInput('filter.from must be before filter.to (`to` is exclusive)', { argument: 'filter.from' });
    if (isGiven(filter.subjectId)) await this.checkSubject(filter.subjectId);
    const resumed = after === undefined || after === null ? undefined : decodeCursor(this.cursorKey, after);
    const asOf = resumed?.asOf ?? (await this.headSeq());
    const since = afterSeq > 0 ? await this.positionAfter(afterSeq) : LOG_START;
    // A cursor at or past `afterSeq` is the later of the two starts (it may come from a page of another filter).
    const start = resumed && resumed.seq >= since.seq ? resumed : since;
    // Keyset on the entry's sequence number, which the store indexes, then on the record's: a page reads the
    // entries it returns (and a filter's matches), not the log from its start.
    const mappings = new MappingCheck(this.bindingKey);
    // The subject's mapping decides the count as well as the records: checked even when no record is returned.
    if (isGiven(filter.subjectId)) await this.checkMappingOf(filter.subjectId, mappings);
    const rows = await this.filtered(filter, period, asOf, 'records', start).orderBy('record.entry_seq', 'ASC').addOrderBy('record.seq', 'ASC').limit(first + 1).getRawMany();
    for (const row of rows) if (row.subject_id !== null) mappings.assertBound(String(row.subject_pseudonym), String(row.subject_id), row.subject_binding ?? null);
    const countedFilter = filterDigest(filter);
    const totalCount = resumed?.countedFilter === countedFilter ? resumed.totalCount : await this.count(filter, period, asOf, since);
    if (totalCount === 0) await this.refuseUnknownKeys(filter, asOf);
    const nodes = rows.slice(0, first).map((row) => ({ node: toView(row), entrySeq: Number(row.entry_seq) }));
    const edges = nodes.map(({ node, entrySeq }) => ({ cursor: encodeCursor(this.cursorKey, { seq: node.seq, entrySeq, asOf, totalCount, countedFilter }), node }));
    // Pages are read forward only: the Relay spec lets hasPreviousPage be false then, whatever precedes `after`.
    const pageInfo = { hasNextPage: rows.length > first, hasPreviousPage: false, startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null };
    return { edges, pageInfo, totalCount };
  }

  /**
   * Refuses a subject that is no customer, or an erased one, rather than answer no records: an auditor would
   * read a mistyped id as "never accessed", and an erased subject's records, which stay in the log, are
   * attributed to no one any more.
   */
  private async checkSubject(subjectId: string): Promise<void> {
    const status = await this.subjectStatusOf(subjectId);
    if (status === 'unknown') throw unknownSubject(`filter.subjectId: unknown subject "${subjectId}"`, { argument: 'filter.subjectId' });
    if (status === 'erased') throw unknownSubject(`filter.subjectId: subject "${subjectId}" is erased: its records stay in the log, attributed to no one`, { argument: 'filter.subjectId' });
  }

  /**
   * Refuses a purpose or category filter that is no key of the taxonomy (nor above one) and that no record
   * of the log carries — a typo — rather than answer no records, which an auditor would read as "never used
   * for that". A key the taxonomy no longer holds is answered for as long as records of it remain. Asked
   * only of a filter that matched nothing, so a read that finds records costs no more.
   */
  private async refuseUnknownKeys(filter: AccessLogFilter, asOf: number): Promise<void> {
    for (const key of TAXONOMY_KEY_FILTERS) {
      const value = filter[key];
      if (typeof value !== 'string' || this.filterKeys[key].has(value)) continue;
      const rows = ITEM_FILTERS.includes(key) ? 'records' : 'entries';
      const recorded = await this.filtered({ [key]: value }, {}, asOf, rows, LOG_START).select('1', 'found').limit(1).getRawOne();
      if (recorded) continue;
      const meant = suggestedKey(value.toLowerCase(), this.filterKeys[key]);
      throw badInput(`filter.${key}: "${value}" is no ${key} of the taxonomy, and no record of the log carries it${meant ? ` (did you mean "${meant}"?)` : ''}`, {
        argument: `filter.${key}`,
        reason: 'UNKNOWN_KEY',
      });
    }
  }

  /** Refuses (AUDIT_LOG_BROKEN) to read a subject's records through a mapping whose binding does not hold. */
  private async checkMappingOf(subjectId: string, mappings: MappingCheck): Promise<void> {
    const mapping = await this.dataSource.getRepository(SubjectPseudonymEntity).findOneBy({ subjectId });
    if (mapping) mappings.assertBound(mapping.pseudonym, mapping.subjectId, mapping.binding);
  }

  /**
   * Where the records after `seq` start. A record's sequence number is computed by the view, which no index
   * orders; the entry holding record `seq + 1` is the last one starting at or before `seq` (or the next one,
   * when an entry starts at `seq + 1`), which the entries' index finds at once.
   */
  private async positionAfter(seq: number): Promise<Position> {
    const row = await this.dataSource.createQueryBuilder().from('audit_entry', 'entry').select('MAX(entry.seq)', 'entry_seq').where('entry.seq <= :seq', { seq }).getRawOne();
    return { seq, entrySeq: Number(row?.entry_seq ?? 0) };
  }

  /**
   * How many records after `since` match as of `asOf`. Without a filter on the record's own item, every
   * record of a matching entry matches: the entries' counts are summed, and nothing is expanded — an entry
   * that starts at or before `since` counts only its records after it.
   */
  private async count(filter: AccessLogFilter, period: Period, asOf: number, since: Position): Promise<number> {
    const byEntry = ITEM_FILTERS.every((key) => filter[key] === undefined || filter[key] === null);
    const query = byEntry
      ? this.filtered(filter, period, asOf, 'entries', since).select('SUM(CASE WHEN record.seq > :afterSeq THEN record.count ELSE record.seq + record.count - 1 - :afterSeq END)', 'count')
      : this.filtered(filter, period, asOf, 'records', since).select('COUNT(*)', 'count');
    return Number((await query.getRawOne())?.count ?? 0);
  }

  /**
   * The records (from `audit_record`, the view expanding each stored entry into its logical records) or
   * the stored entries (`audit_entry`, for header-only filters) matching `filter` (its `from` and `to` as
   * `period`) as of `asOf`, with records after `start` (an entry: any of them).
   */
  private filtered(filter: AccessLogFilter, period: Period, asOf: number, rows: 'records' | 'entries', start: Position): SelectQueryBuilder<Record<string, unknown>> {
    const query = this.dataSource.createQueryBuilder().from(rows === 'records' ? 'audit_record' : 'audit_entry', 'record').leftJoin(SubjectPseudonymEntity, 'subject', 'subject.pseudonym = record.subject_pseudonym');
    const after = { afterEntry: start.entrySeq, afterSeq: start.seq };
    if (rows === 'entries') {
      query.where('record.seq <= :asOf AND record.seq + record.count - 1 <= :asOf', { asOf }).andWhere('record.seq >= :afterEntry AND record.seq + record.count - 1 > :afterSeq', after);
    } else {
      query
        .select([
          'record.seq AS seq', 'record.entry_seq AS entry_seq', 'record.at AS at', 'record.request_id AS request_id', 'record.actor_id AS actor_id',
          'record.actor_name AS actor_name', 'record.actor_team AS actor_team', 'record.purpose AS purpose', 'record.operation_name AS operation_name',
          'subject.subject_id AS subject_id', 'record.subject_pseudonym AS subject_pseudonym', 'subject.binding AS subject_binding', 'record.coordinate AS coordinate', 'record.category AS category', 'record.decision AS decision',
          'record.reason AS reason', 'record.legal_basis AS legal_basis', 'record.consent_receipt_id AS consent_receipt_id', 'record.mask_strategy AS mask_strategy',
        ])
        .where('record.entry_seq <= :asOf AND record.seq <= :asOf', { asOf })
        .andWhere('record.entry_seq >= :afterEntry AND record.seq > :afterSeq', after);
    }
    const equals: Array<[keyof AccessLogFilter, string]> = [
      ['subjectId', 'subject.subject_id'],
      ['actorId', 'record.actor_id'],
      ['team', 'record.actor_team'],
      ['coordinate', 'record.coordinate'],
      ['decision', 'record.decision'],
      ['reason', 'record.reason'],
      ['requestId', 'record.request_id'],
    ];
    for (const [key, column] of equals) {
      const value = filter[key];
      if (isGiven(value)) query.andWhere(`${column} = :${key}`, { [key]: value });
    }
    // Taxonomy keys match as everywhere in Candor (taxonomy/keys.ts `covers`): the key itself or any key under
    // it, so `marketing` finds `marketing.communications`. A prefix compared with substr, not LIKE: SQLite's
    // LIKE ignores case and `_` is a wildcard in it.
    for (const key of TAXONOMY_KEY_FILTERS) {
      const column = `record.${key}`;
      const value = filter[key];
      if (typeof value !== 'string') continue;
      const under = `${value}.`;
      query.andWhere(`(${column} = :${key} OR substr(${column}, 1, :${key}Length) = :${key}Under)`, { [key]: value, [`${key}Length`]: under.length, [`${key}Under`]: under });
    }
    const { from, to } = period;
    if (from) query.andWhere('record.at >= :from', { from: from.toISOString() });
    if (to) query.andWhere('record.at < :to', { to: to.toISOString() });
    return query;
  }
}

interface Period {
  readonly from?: Date;
  readonly to?: Date;
}

/** The filter's `from` and `to` as times (refused as BAD_USER_INPUT when not ISO-8601 with an offset). */
function periodOf(filter: AccessLogFilter): Period {
  return {
    from: isGiven(filter.from) ? isoTime(filter.from, 'filter.from', { argument: 'filter.from' }) : undefined,
    to: isGiven(filter.to) ? isoTime(filter.to, 'filter.to', { argument: 'filter.to' }) : undefined,
  };
}

function toView(row: Record<string, unknown>): AccessRecordView {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    seq: Number(row.seq),
    at: String(row.at),
    requestId: String(row.request_id),
    actor: { id: text(row.actor_id), name: text(row.actor_name), team: text(row.actor_team) },
    purpose: text(row.purpose),
    operationName: text(row.operation_name),
    subjectId: text(row.subject_id),
    coordinate: text(row.coordinate),
    category: text(row.category),
    decision: String(row.decision) as AccessDecision,
    reason: String(row.reason),
    legalBasis: text(row.legal_basis),
    consentReceiptId: text(row.consent_receipt_id),
    maskStrategy: text(row.mask_strategy),
  };
}
