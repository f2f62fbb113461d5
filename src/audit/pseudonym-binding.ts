import { AsyncLocalStorage } from 'node:async_hooks';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { derivedKey } from '../config';
import { auditLogBroken } from '../errors';

/**
 * The label of the key mappings are bound under (derived from CANDOR_SECRET). No digest, batch hash or
 * checkpoint covers `subject_pseudonym`: whoever can write the database could swap two subjects' rows, and
 * each one's records would be attributed to the other while the chain still verified. A binding, an HMAC of
 * the row under this key, makes such a row detectable by whoever holds the secret (verify, the readers).
 */
const BINDING_KEY_LABEL = 'candor-pseudonym-binding/1';

/** The key bindings are made under, derived from CANDOR_SECRET. */
export function pseudonymBindingKey(secret: string): Buffer {
  return derivedKey(secret, BINDING_KEY_LABEL);
}

/**
 * A mapping's binding: hex HMAC-SHA-256 of `candor-pseudonym/1\n<pseudonym>\n<subject_id>`. The separator
 * is unambiguous for every row a record can point at: a pseudonym Candor made never holds a newline, and one
 * that does names no record.
 */
export function pseudonymBinding(key: Buffer, pseudonym: string, subjectId: string): string {
  return createHmac('sha256', key).update(`candor-pseudonym/1\n${pseudonym}\n${subjectId}`, 'utf8').digest('hex');
}

/** Whether `binding` (a stored value, null when missing) binds `pseudonym` to `subjectId` under `key`. */
export function isBound(key: Buffer, pseudonym: string, subjectId: string, binding: string | null): boolean {
  return sameBinding(pseudonymBinding(key, pseudonym, subjectId), binding);
}

/**
 * An erased pseudonym's binding (`erased_pseudonym`): hex HMAC-SHA-256 of `candor-erased-pseudonym/1\n<pseudonym>`
 * under the mappings' key. Without the secret no one can account for a mapping they deleted as an erasure.
 */
export function erasedPseudonymBinding(key: Buffer, pseudonym: string): string {
  return createHmac('sha256', key).update(`candor-erased-pseudonym/1\n${pseudonym}`, 'utf8').digest('hex');
}

/** Whether `binding` (a stored value, null when missing) is `pseudonym`'s as an erased pseudonym under `key`. */
export function isErasedBound(key: Buffer, pseudonym: string, binding: string | null): boolean {
  return sameBinding(erasedPseudonymBinding(key, pseudonym), binding);
}

// In constant time: a comparison that stops at the first differing byte would let a caller find a binding byte by byte.
function sameBinding(expected: string, binding: string | null): boolean {
  if (binding === null) return false;
  const wanted = Buffer.from(expected);
  const given = Buffer.from(binding);
  return wanted.length === given.length && timingSafeEqual(wanted, given);
}

/** What verify says of a pseudonym that records name, that no mapping maps, and that no erasure accounts for. */
export function unmappedPseudonymProblem(pseudonym: string): string {
  return `pseudonym ${pseudonym} names records, but no mapping maps it and no erasure removed one (its mapping was deleted): its subject's records would be attributed to no one`;
}

/** The rows `erased_pseudonym` gets for `pseudonyms`: each with its binding under `key`. */
export const erasedPseudonymRows = (key: Buffer, pseudonyms: readonly string[]) => pseudonyms.map((pseudonym) => ({ pseudonym, binding: erasedPseudonymBinding(key, pseudonym) }));

/** What verify and the readers say of a mapping whose binding is missing or does not match. */
export function alteredMappingProblem(pseudonym: string): string {
  return `the mapping of pseudonym ${pseudonym} was altered (its binding is missing or does not match): its records would be attributed to a subject they are not about`;
}

/**
 * Checks the mappings one read uses, each once (a report reads many records per subject): refuses, coded
 * AUDIT_LOG_BROKEN, to attribute records through a mapping whose binding does not hold.
 */
export class MappingCheck {
  /** Pseudonym → the subject its mapping was checked to bind it to. */
  private readonly checked = new Map<string, string>();

  constructor(private readonly key: Buffer) {}

  /** Throws AUDIT_LOG_BROKEN unless the stored row (`pseudonym`, `subjectId`, `binding`) is bound. */
  assertBound(pseudonym: string, subjectId: string, binding: string | null): void {
    if (this.checked.get(pseudonym) === subjectId) return;
    if (!isBound(this.key, pseudonym, subjectId, binding)) {
      throw auditLogBroken(`${alteredMappingProblem(pseudonym)} — nothing is attributed from it: run "npx candor audit verify" and investigate`);
    }
    this.checked.set(pseudonym, subjectId);
  }
}

/** A `subject_pseudonym` row as stored. */
export interface StoredMapping {
  readonly subjectId: string;
  readonly pseudonym: string;
  readonly binding: string | null;
}

/** Mappings read per statement. */
const MAPPING_PAGE = 1_000;

/** Every mapping, a page at a time in subject id order (keyset): memory stays one page's whatever the subjects. */
export async function* mappingPages(manager: EntityManager): AsyncGenerator<StoredMapping[]> {
  const parameter = manager.connection.options.type === 'postgres' ? '$1' : '?';
  for (let after: string | undefined; ; ) {
    const rows: Array<{ subject_id: string; pseudonym: string; binding: string | null }> = await manager.query(
      `SELECT subject_id, pseudonym, binding FROM subject_pseudonym ${after === undefined ? '' : `WHERE subject_id > ${parameter}`} ORDER BY subject_id LIMIT ${MAPPING_PAGE}`,
      after === undefined ? [] : [after],
    );
    if (rows.length === 0) return;
    yield rows.map((row) => ({ subjectId: row.subject_id, pseudonym: row.pseudonym, binding: row.binding }));
    after = rows[rows.length - 1].subject_id;
  }
}

/**
 * Binds every mapping under `next` instead of `current`, in the caller's transaction (`secret rotate`), after
 * checking it under `current`: one that does not hold refuses the whole rotation (nothing changes) — bound
 * anew, an altered mapping would pass every later check.
 */
export async function rebindMappings(manager: EntityManager, current: Buffer, next: Buffer): Promise<void> {
  for await (const mappings of mappingPages(manager)) {
    for (const { subjectId, pseudonym, binding } of mappings) {
      if (!isBound(current, pseudonym, subjectId, binding)) throw auditLogBroken(`nothing rotated: ${alteredMappingProblem(pseudonym)} — investigate it first (npx candor audit verify)`);
      await storeBinding(manager, next, pseudonym, subjectId);
    }
  }
  const parameter = (index: number) => (manager.connection.options.type === 'postgres' ? `$${index}` : '?');
  for (let after = ''; ; ) {
    const rows: Array<{ pseudonym: string; binding: string }> = await manager.query(`SELECT pseudonym, binding FROM erased_pseudonym WHERE pseudonym > ${parameter(1)} ORDER BY pseudonym LIMIT ${MAPPING_PAGE}`, [after]);
    if (rows.length === 0) return;
    for (const { pseudonym, binding } of rows) {
      if (!isErasedBound(current, pseudonym, binding)) throw auditLogBroken(`nothing rotated: the erased pseudonym ${pseudonym} was altered (its binding does not match) — investigate it first (npx candor audit verify)`);
      await manager.query(`UPDATE erased_pseudonym SET binding = ${parameter(1)} WHERE pseudonym = ${parameter(2)}`, [erasedPseudonymBinding(next, pseudonym), pseudonym]);
    }
    after = rows[rows.length - 1].pseudonym;
  }
}

/** Writes the binding of the stored mapping (`pseudonym`, `subjectId`) under `key`, in the caller's transaction. */
export async function storeBinding(manager: EntityManager, key: Buffer, pseudonym: string, subjectId: string): Promise<void> {
  const postgres = manager.connection.options.type === 'postgres';
  await manager.query(`UPDATE subject_pseudonym SET binding = ${postgres ? '$1' : '?'} WHERE subject_id = ${postgres ? '$2' : '?'}`, [pseudonymBinding(key, pseudonym, subjectId), subjectId]);
}

/**
 * How Candor's own migration runs hand the secret to the migration that binds the mappings written before
 * bindings existed (TypeORM gives a migration no configuration): `migrate` runs the migrations inside
 * `withMigrationSecret`, scoped to that run (concurrent runs in one process keep their own). A run without it
 * (TypeORM's CLI, `npm run typeorm`) has no secret, and that migration refuses a database with rows to bind.
 */
const migrationSecret = new AsyncLocalStorage<string>();

export function withMigrationSecret<T>(secret: string | undefined, run: () => Promise<T>): Promise<T> {
  return secret === undefined ? run() : migrationSecret.run(secret, run);
}

/** The secret of the migration run in progress, when Candor started it with one. */
export function secretOfMigrationRun(): string | undefined {
  return migrationSecret.getStore();
}
