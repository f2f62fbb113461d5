import type { RequestPurpose } from '../policy/decide';
import { coveringKeys } from '../taxonomy/keys';

export interface SqlCondition {
  readonly sql: string;
  readonly parameters: Record<string, unknown>;
}

/**
 * A SQL condition (for a TypeORM query builder) that keeps the subjects for whom rules 3, 4 and 6 of
 * `decide()` allow `purpose`, so `onlyPermitted` filters in SQL (within its page). It reads the `consent_state`
 * projection, where the most specific statement covering a purpose is the one on the longest key;
 * a test checks that it agrees with `decide()` for every seeded subject and purpose.
 *
 * @param subjectIdColumn the qualified column holding the subject id, e.g. `customer.id`.
 */
export function permittedSubjectsCondition(purpose: RequestPurpose, subjectIdColumn: string, now: Date): SqlCondition {
  const parameters: Record<string, unknown> = { permittedCovering: coveringKeys(purpose.key), permittedNow: now.toISOString() };
  const mostSpecific = (alias: string, kind: string) =>
    `${alias}.subject_id = ${subjectIdColumn} AND ${alias}.kind = '${kind}' AND ${alias}.purpose IN (:...permittedCovering)
     AND NOT EXISTS (SELECT 1 FROM consent_state narrower WHERE narrower.subject_id = ${subjectIdColumn} AND narrower.kind = '${kind}'
                     AND narrower.purpose IN (:...permittedCovering) AND LENGTH(narrower.purpose) > LENGTH(${alias}.purpose))`;
  const conditions: string[] = [];
  // Rule 3: restriction, unless the basis is a legal obligation.
  if (purpose.legalBasis !== 'legal_obligation') {
    conditions.push(`NOT EXISTS (SELECT 1 FROM consent_state restriction WHERE restriction.subject_id = ${subjectIdColumn} AND restriction.kind = 'restriction' AND restriction.active = TRUE)`);
  }
  // Rule 4: objection, unless the basis is a legal obligation or vital interests.
  if (purpose.legalBasis !== 'legal_obligation' && purpose.legalBasis !== 'vital_interests') {
    conditions.push(`NOT EXISTS (SELECT 1 FROM consent_state objection WHERE ${mostSpecific('objection', 'objection')} AND objection.active = TRUE)`);
  }
  // Rule 6: an active, unexpired grant, when the basis is consent — of this purpose itself, given at or after
  // a material notice change.
  if (purpose.legalBasis === 'consent') {
    let renewed = '';
    if (purpose.renewConsentsBefore) {
      parameters.permittedRenewedAfter = purpose.renewConsentsBefore.toISOString();
      parameters.permittedRenewedPurpose = purpose.key;
      renewed = ' AND grant_.purpose = :permittedRenewedPurpose AND grant_.recorded_at >= :permittedRenewedAfter';
    }
    conditions.push(
      `EXISTS (SELECT 1 FROM consent_state grant_ WHERE ${mostSpecific('grant_', 'consent')} AND grant_.active = TRUE AND (grant_.expires_at IS NULL OR grant_.expires_at > :permittedNow)${renewed})`,
    );
  }
  return { sql: conditions.length ? conditions.map((condition) => `(${condition})`).join(' AND ') : '1 = 1', parameters };
}
