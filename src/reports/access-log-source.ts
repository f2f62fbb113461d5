import type { DataSource } from 'typeorm';
import { decodeItems, type EntryHeader, type EntryItem } from '../audit/chain';
import { MappingCheck } from '../audit/pseudonym-binding';

/**
 * One logical access record as reports read it: the stored header and item, the subject mapped back (null
 * once erased; the pseudonym stays, so figures can still tell subjects apart).
 */
export type LogRecord = EntryHeader & Omit<EntryItem, 'consentReceiptId'> & { readonly seq: number; readonly subjectId: string | null };

export interface LogQuery {
  /** Inclusive ISO time. */
  readonly from?: string;
  /** Exclusive ISO time. */
  readonly to?: string;
  readonly subjectId?: string;
  /** Leaves out the records of this actor (entries without an actor stay). */
  readonly exceptActorId?: string;
  /** Only records up to this sequence number (the head when the report started). */
  readonly throughSeq: number;
}

/**
 * Streams the access log's records in sequence order, reading stored entries page by page (keyset on the
 * primary key), so a report over millions of records runs in memory bounded by one page. A record is
 * attributed to a subject only through a mapping bound under `bindingKey` (each checked once per read):
 * one whose binding does not hold stops the read, AUDIT_LOG_BROKEN.
 */
export async function* readAccessLog(dataSource: DataSource, bindingKey: Buffer, query: LogQuery, options: { pageSize?: number; onPage?: (throughSeq: number) => void } = {}): AsyncGenerator<LogRecord> {
  const mappings = new MappingCheck(bindingKey);
  const pageSize = options.pageSize ?? 2_000;
  const driver = dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  const parameter = (index: number) => (driver === 'postgres' ? `$${index}` : '?');
  let after = 0;
  for (;;) {
    const conditions = [`e.seq > ${parameter(1)}`, `e.seq <= ${parameter(2)}`];
    const values: unknown[] = [after, query.throughSeq];
    if (query.from) conditions.push(`e.at >= ${parameter(values.push(query.from))}`);
    if (query.to) conditions.push(`e.at < ${parameter(values.push(query.to))}`);
    if (query.subjectId) conditions.push(`p.subject_id = ${parameter(values.push(query.subjectId))}`);
    if (query.exceptActorId) conditions.push(`(e.actor_id IS NULL OR e.actor_id <> ${parameter(values.push(query.exceptActorId))})`);
    const rows: Array<Record<string, unknown>> = await dataSource.query(
      `SELECT e.seq, e.at, e.request_id, e.actor_id, e.actor_name, e.actor_team, e.purpose, e.operation_name, e.subject_pseudonym, e.items, p.subject_id, p.binding
         FROM audit_entry e LEFT JOIN subject_pseudonym p ON p.pseudonym = e.subject_pseudonym
        WHERE ${conditions.join(' AND ')} ORDER BY e.seq LIMIT ${pageSize}`,
      values,
    );
    if (rows.length === 0) return;
    // How far through the log the read is: with filters, pages skip entries, so a count would fall short.
    options.onPage?.(Number(rows[rows.length - 1].seq));
    for (const row of rows) {
      if (row.subject_id !== null) mappings.assertBound(String(row.subject_pseudonym), String(row.subject_id), (row.binding as string | null) ?? null);
      const seq = Number(row.seq);
      const header = {
        at: String(row.at),
        requestId: String(row.request_id),
        actorId: (row.actor_id as string | null) ?? null,
        actorName: (row.actor_name as string | null) ?? null,
        actorTeam: (row.actor_team as string | null) ?? null,
        purpose: (row.purpose as string | null) ?? null,
        operationName: (row.operation_name as string | null) ?? null,
        subjectPseudonym: (row.subject_pseudonym as string | null) ?? null,
        subjectId: (row.subject_id as string | null) ?? null,
      };
      let index = 0;
      for (const item of decodeItems(String(row.items))) {
        yield { seq: seq + index++, ...header, coordinate: item.coordinate, category: item.category, decision: item.decision, reason: item.reason, legalBasis: item.legalBasis, maskStrategy: item.maskStrategy };
      }
      after = seq;
    }
  }
}
