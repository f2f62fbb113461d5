import { SubjectMessageEntity } from '../consent/subject-message.entity';
import type { CustomerEntity } from '../domain/customer.entity';
import type { FieldGovernance } from '../graphql/governance-catalog';
import type { CandorServices } from '../server/services';

/** A subject's records, by the schema type that serves them (`Customer`, `Payment`, …). */
export type RecordsByType = Readonly<Record<string, ReadonlyArray<Record<string, unknown>>>>;

/**
 * Every record Candor holds about a data subject, by the schema type that serves it: their customer
 * record, payments, viewing history, consent ledger entries and privacy-page messages. What the subject
 * sees of themselves (Art. 15 and 20, the privacy page) and what the subject-access report lists as held
 * are both read from here, so neither forgets a kind of record the other shows.
 */
export async function recordsHeldAbout(services: CandorServices, customer: CustomerEntity): Promise<RecordsByType> {
  const loaders = services.domain.createLoaders();
  const [payments, watched, history, messages] = await Promise.all([
    loaders.paymentsByCustomer.load(customer.id),
    loaders.watchHistoryByCustomer.load(customer.id),
    services.consent.history(customer.id),
    services.dataSource.getRepository(SubjectMessageEntity).find({ where: { subjectId: customer.id }, order: { id: 'ASC' } }),
  ]);
  const rows = (records: readonly object[]) => records as unknown as ReadonlyArray<Record<string, unknown>>;
  return { Customer: rows([customer]), Payment: rows(payments), WatchEvent: rows(watched), ConsentEntry: rows(history), SubjectMessage: rows(messages) };
}

/**
 * The value a governed leaf field holds in each of the subject's records of its type, in order (lists
 * joined; null where a record holds none), or undefined for fields the subject's records do not serve
 * (relations, other types' fields).
 */
export function valuesByRecord(field: FieldGovernance, records: RecordsByType): Array<string | null> | undefined {
  const rows = records[field.typeName];
  if (!rows || field.returnsType) return undefined;
  return rows.map((row) => {
    const value = row[field.fieldName];
    if (value === null || value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value instanceof Date ? value.toISOString() : String(value);
  });
}

/** The values a governed leaf field holds across the subject's records of its type (see `valuesByRecord`). */
export function valuesHeld(field: FieldGovernance, records: RecordsByType): string[] | undefined {
  return valuesByRecord(field, records)?.filter((value): value is string => value !== null);
}
