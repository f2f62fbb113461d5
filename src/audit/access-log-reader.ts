import { createHash } from 'node:crypto';
import type { DataSource, SelectQueryBuilder } from 'typeorm';
import { badInput, isoTime } from '../errors';
import { AuditBatchEntity, SubjectPseudonymEntity } from './audit.entities';
import type { AccessDecision, EntryHeader, EntryItem } from './chain';

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
  readonly pageInfo: { readonly hasNextPage: boolean; readonly endCursor: string | null };
  readonly totalCount: number;
}

export const MAX_PAGE = 500;
const DECISIONS = ['RELEASED', 'WITHHELD', 'MASKED', 'REFUSED'];

interface Cursor {
  /** The last sequence number returned. */
  readonly seq: number;
  /** The first sequence number of the stored entry it belongs to (entries are what the index orders). */
  readonly entrySeq: number;
  /** The head when the first page was read: later pages never see newer records. */
  readonly asOf: number;
  /** The filtered count as of `asOf`, computed once for the first page, and the filter it counted. */
  readonly totalCount?: number;
  readonly countedFilter?: string;
}

const encodeCursor = (cursor: Cursor) => Buffer.from(JSON.stringify([cursor.seq, cursor.asOf, cursor.entrySeq, cursor.totalCount, cursor.countedFilter])).toString('base64url');

/** A short digest of the filter's set values: a count carried by a cursor serves the filter it was made for only. */
function filterDigest(filter: AccessLogFilter): string {
  const set = Object.entries(filter).filter(([, value]) => value !== undefined && value !== null).sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify(set)).digest('base64url').slice(0, 16);
}

function decodeCursor(value: string): Cursor {
  try {
    const [seq, asOf, entrySeq = 0, totalCount, countedFilter] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown[];
    // A cursor of an earlier version has neither the entry nor the count: it reads from the first entry, counts again.
    if (Number.isInteger(seq) && Number.isInteger(asOf) && Number.isInteger(entrySeq) && (totalCount === undefined || totalCount === null || Number.isInteger(totalCount))) {
      return { seq: seq as number, asOf: asOf as number, entrySeq: entrySeq as number, totalCount: (totalCount as number | null) ?? undefined, countedFilter: typeof countedFilter === 'string' ? countedFilter : undefined };
    }
  } catch {
    // fall through
  }
  throw badInput('`after` is not a cursor returned by accessLog', { argument: 'after' });
}

/** Filters on a record's own item (the rest are on its entry's header). */
const ITEM_FILTERS: ReadonlyArray<keyof AccessLogFilter> = ['coordinate', 'category', 'decision', 'reason'];

/** Reads the access log for auditors: filters, keyset pagination over a snapshot, pseudonyms mapped back. */
export class AccessLogReader {
  constructor(private readonly dataSource: DataSource) {}

  /** The last committed sequence number. */
  async headSeq(): Promise<number> {
    const [batch] = await this.dataSource.getRepository(AuditBatchEntity).find({ order: { id: 'DESC' }, take: 1 });
    return batch?.lastSeq ?? 0;
  }

  async page(filter: AccessLogFilter = {}, first = 50, after?: string | null): Promise<AccessLogPage> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be between 1 and ${MAX_PAGE}`, { argument: 'first' });
    if (filter.decision && !DECISIONS.includes(filter.decision)) throw badInput(`decision must be one of ${DECISIONS.join(', ')}`, { argument: 'filter.decision' });
    // PostgreSQL text cannot hold NUL (it would fail the query), and no recorded value does.
    const withNul = Object.entries(filter).find(([, value]) => typeof value === 'string' && value.includes('\u0000'));
    if (withNul) throw badInput(`filter.${withNul[0]} holds a NUL character, which no recorded value does`, { argument: `filter.${withNul[0]}` });
    const cursor: Cursor = after ? decodeCursor(after) : { seq: 0, entrySeq: 0, asOf: await this.headSeq() };
    // Keyset on the entry's sequence number, which the store indexes, then on the record's: a page reads the
    // entries it returns (and a filter's matches), not the log from its start.
    const rows = await this.filtered(filter, cursor.asOf, 'records')
      .andWhere('record.entry_seq >= :afterEntry AND record.seq > :afterSeq', { afterEntry: cursor.entrySeq, afterSeq: cursor.seq })
      .orderBy('record.entry_seq', 'ASC')
      .addOrderBy('record.seq', 'ASC')
      .limit(first + 1)
      .getRawMany();
    const countedFilter = filterDigest(filter);
    const totalCount = cursor.totalCount !== undefined && cursor.countedFilter === countedFilter ? cursor.totalCount : await this.count(filter, cursor.asOf);
    const nodes = rows.slice(0, first).map((row) => ({ node: toView(row), entrySeq: Number(row.entry_seq) }));
    const edges = nodes.map(({ node, entrySeq }) => ({ cursor: encodeCursor({ seq: node.seq, entrySeq, asOf: cursor.asOf, totalCount, countedFilter }), node }));
    return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null }, totalCount };
  }

  /**
   * How many records match as of `asOf`. Without a filter on the record's own item, every record of a
   * matching entry matches: the entries' counts are summed, and nothing is expanded.
   */
  private async count(filter: AccessLogFilter, asOf: number): Promise<number> {
    const byEntry = ITEM_FILTERS.every((key) => filter[key] === undefined || filter[key] === null);
    const query = byEntry ? this.filtered(filter, asOf, 'entries').select('SUM(record.count)', 'count') : this.filtered(filter, asOf, 'records').select('COUNT(*)', 'count');
    return Number((await query.getRawOne())?.count ?? 0);
  }

  /**
   * The records (from `audit_record`, the view expanding each stored entry into its logical records) or
   * the stored entries (`audit_entry`, for header-only filters) matching `filter` as of `asOf`.
   */
  private filtered(filter: AccessLogFilter, asOf: number, rows: 'records' | 'entries'): SelectQueryBuilder<Record<string, unknown>> {
    const query = this.dataSource.createQueryBuilder().from(rows === 'records' ? 'audit_record' : 'audit_entry', 'record').leftJoin(SubjectPseudonymEntity, 'subject', 'subject.pseudonym = record.subject_pseudonym');
    if (rows === 'entries') {
      query.where('record.seq <= :asOf AND record.seq + record.count - 1 <= :asOf', { asOf });
    } else {
      query
        .select([
          'record.seq AS seq', 'record.entry_seq AS entry_seq', 'record.at AS at', 'record.request_id AS request_id', 'record.actor_id AS actor_id',
          'record.actor_name AS actor_name', 'record.actor_team AS actor_team', 'record.purpose AS purpose', 'record.operation_name AS operation_name',
          'subject.subject_id AS subject_id', 'record.coordinate AS coordinate', 'record.category AS category', 'record.decision AS decision',
          'record.reason AS reason', 'record.legal_basis AS legal_basis', 'record.consent_receipt_id AS consent_receipt_id', 'record.mask_strategy AS mask_strategy',
        ])
        .where('record.entry_seq <= :asOf AND record.seq <= :asOf', { asOf });
    }
    const equals: Array<[keyof AccessLogFilter, string]> = [
      ['subjectId', 'subject.subject_id'],
      ['actorId', 'record.actor_id'],
      ['team', 'record.actor_team'],
      ['purpose', 'record.purpose'],
      ['coordinate', 'record.coordinate'],
      ['category', 'record.category'],
      ['decision', 'record.decision'],
      ['reason', 'record.reason'],
      ['requestId', 'record.request_id'],
    ];
    for (const [key, column] of equals) {
      const value = filter[key];
      if (value !== undefined && value !== null) query.andWhere(`${column} = :${key}`, { [key]: value });
    }
    if (filter.from) query.andWhere('record.at >= :from', { from: isoTime(filter.from, 'filter.from', { argument: 'filter.from' }).toISOString() });
    if (filter.to) query.andWhere('record.at < :to', { to: isoTime(filter.to, 'filter.to', { argument: 'filter.to' }).toISOString() });
    return query;
  }
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
