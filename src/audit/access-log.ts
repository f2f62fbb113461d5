import type { DataSource } from 'typeorm';
import { type AccessDecision, AccessRecordEntity } from './access-record.entity';

export interface AccessActor {
  readonly id: string;
  readonly name: string;
  readonly team: string;
}

/** One logical access record before it is stored. Values are never part of it. */
export interface AccessRecordInput {
  readonly at: Date;
  readonly requestId: string;
  readonly actor: AccessActor | null;
  readonly purpose: string | null;
  readonly operationName: string | null;
  readonly subjectId: string | null;
  readonly coordinate: string | null;
  readonly category: string | null;
  readonly decision: AccessDecision;
  readonly reason: string;
  readonly legalBasis: string | null;
}

/** 14 columns × 400 rows stays far below SQLite's and PostgreSQL's bind-parameter limits. */
const INSERT_CHUNK = 400;

/**
 * The access log: every decision on personal data and every refused operation. A request's records are
 * written in one transaction before its response leaves; when that fails the caller must not release data.
 */
export class AccessLog {
  constructor(private readonly dataSource: DataSource) {}

  async append(records: readonly AccessRecordInput[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map((record) => ({
      at: record.at.toISOString(),
      requestId: record.requestId,
      actorId: record.actor?.id ?? null,
      actorName: record.actor?.name ?? null,
      actorTeam: record.actor?.team ?? null,
      purpose: record.purpose,
      operationName: record.operationName,
      subjectId: record.subjectId,
      coordinate: record.coordinate,
      category: record.category,
      decision: record.decision,
      reason: record.reason,
      legalBasis: record.legalBasis,
    }));
    await this.dataSource.transaction(async (manager) => {
      for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
        await manager.createQueryBuilder().insert().into(AccessRecordEntity).values(rows.slice(start, start + INSERT_CHUNK)).updateEntity(false).execute();
      }
    });
  }

  /** Records of one request, in order (used by tests and, later, the query API). */
  byRequest(requestId: string): Promise<AccessRecordEntity[]> {
    return this.dataSource.getRepository(AccessRecordEntity).find({ where: { requestId }, order: { seq: 'ASC' } });
  }
}
