import DataLoader from 'dataloader';
import { type DataSource, type EntityManager, In, IsNull, Not } from 'typeorm';
import { holdsUnprintable } from '../printable';
import { committedRead } from '../storage/transactions';
import { CUSTOMER_ID_LENGTH, CustomerEntity } from './customer.entity';
import { PaymentEntity } from './payment.entity';
import { WatchEventEntity } from './watch-event.entity';

/**
 * A SQL condition over the `customer` alias, with its named parameters (TypeORM query-builder syntax), and
 * who is told the page's customers it left out.
 */
export interface CustomerFilter {
  readonly sql: string;
  readonly parameters: Record<string, unknown>;
  leftOut(customerIds: readonly string[]): void;
}

export interface CustomerPage {
  readonly limit: number;
  readonly offset: number;
  readonly filter?: CustomerFilter;
}

/** A page of a customer's relation, newest first: at most `limit` items after the `offset` newest. */
export interface RelationPage {
  readonly limit: number;
  readonly offset: number;
}

/** A page of one customer's relation: what the paged loaders are asked for. */
export interface CustomerPageKey extends RelationPage {
  readonly customerId: string;
}

/**
 * Per-request loaders of the domain's relations, so a list of N customers costs one read per relation,
 * whatever pages its aliases ask for: every record (the subject's own page), or a page of each customer's.
 */
export interface DomainLoaders {
  readonly paymentsByCustomer: DataLoader<string, PaymentEntity[]>;
  readonly watchHistoryByCustomer: DataLoader<string, WatchEventEntity[]>;
  readonly paymentPages: DataLoader<CustomerPageKey, PaymentEntity[], string>;
  readonly watchHistoryPages: DataLoader<CustomerPageKey, WatchEventEntity[], string>;
}

/** How a relation is read: its entity, table, and the time it is ordered by, newest first (property and column). */
interface Relation<T> {
  readonly entity: new () => T;
  readonly table: string;
  readonly newestFirstBy: { readonly property: keyof T & string; readonly column: string };
}

const PAYMENTS: Relation<PaymentEntity> = { entity: PaymentEntity, table: 'payment', newestFirstBy: { property: 'paidAt', column: 'paid_at' } };
const WATCH_HISTORY: Relation<WatchEventEntity> = { entity: WatchEventEntity, table: 'watch_event', newestFirstBy: { property: 'watchedAt', column: 'watched_at' } };

/** Customer ids per read (relations, `customersAmong`): one IN list well inside every driver's parameter limit. */
const CUSTOMER_ID_CHUNK = 500;

/**
 * Whether `id` could name a stored customer. One that cannot is no one's, on either store: PostgreSQL would
 * refuse the query itself over a NUL (an internal error where the caller should hear "unknown subject").
 */
const couldBeCustomerId = (id: string): boolean => id.length <= CUSTOMER_ID_LENGTH && !holdsUnprintable(id);

/** Reads of the demo domain: customers, their payments and their watch history. */
export class DomainStore {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Customers who are not erased, by id: `limit` of them from `offset`. An erased customer is no one's to
   * serve: listed, its old consents would still filter it in, and a record of it would link a new pseudonym
   * to its id. A filter applies within the page: it keeps those of the page it holds for, and is told the
   * ids of the others (one read: each row comes with whether the filter holds for it).
   */
  async listCustomers(page: CustomerPage): Promise<CustomerEntity[]> {
    const query = this.dataSource.getRepository(CustomerEntity).createQueryBuilder('customer').where('customer.erased_at IS NULL').orderBy('customer.id', 'ASC').limit(page.limit).offset(page.offset);
    if (!page.filter) return query.getMany();
    query.addSelect(`CASE WHEN ${page.filter.sql} THEN 1 ELSE 0 END`, 'kept_by_filter').setParameters(page.filter.parameters);
    // The filter reads the subjects' consent state: only what committed.
    const { entities, raw } = await committedRead(this.dataSource, () => query.getRawAndEntities<{ customer_id: string; kept_by_filter: number | string }>());
    const kept = new Set(raw.filter((row) => Number(row.kept_by_filter) === 1).map((row) => row.customer_id));
    page.filter.leftOut(entities.filter((customer) => !kept.has(customer.id)).map((customer) => customer.id));
    return entities.filter((customer) => kept.has(customer.id));
  }

  /** A customer who is not erased (what queries serve). */
  async findCustomer(id: string): Promise<CustomerEntity | undefined> {
    if (!couldBeCustomerId(id)) return undefined;
    return (await this.dataSource.getRepository(CustomerEntity).findOneBy({ id, erasedAt: IsNull() })) ?? undefined;
  }

  /** The customer's row whatever its state, erased included (erasure itself, the subject's own page, reports). */
  async findCustomerRecord(id: string): Promise<CustomerEntity | undefined> {
    if (!couldBeCustomerId(id)) return undefined;
    return (await this.dataSource.getRepository(CustomerEntity).findOneBy({ id })) ?? undefined;
  }

  /** What the consent ledger asks about data subjects: whether one may still be given consent, which are erased. */
  subjects(): { existingAmong: DomainStore['customersAmong']; erasedAmong: DomainStore['erasedAmong'] } {
    return { existingAmong: this.customersAmong, erasedAmong: this.erasedAmong };
  }

  /** Which of `ids` are erased customers (the consent ledger reads them as restricted). */
  erasedAmong = async (ids: readonly string[]): Promise<ReadonlySet<string>> => {
    if (ids.length === 0) return new Set();
    const erased = await committedRead(this.dataSource, () => this.dataSource.getRepository(CustomerEntity).find({ select: { id: true }, where: { id: In([...ids]), erasedAt: Not(IsNull()) } }));
    return new Set(erased.map((customer) => customer.id));
  };

  /** Whether `id` names a customer, an erased one (its row kept as a tombstone), or none at all. */
  subjectStatus = async (id: string): Promise<'customer' | 'erased' | 'unknown'> => {
    const customer = await committedRead(this.dataSource, () => this.dataSource.getRepository(CustomerEntity).findOne({ select: { id: true, erasedAt: true }, where: { id } }));
    return !customer ? 'unknown' : customer.erasedAt ? 'erased' : 'customer';
  };

  /** Whether `id` is a customer who is not erased: `customersAmong` of one. */
  customerExists = async (id: string, manager: EntityManager = this.dataSource.manager): Promise<boolean> => (await this.customersAmong([id], manager)).has(id);

  /**
   * Which of `ids` are data subjects consent can still be given by (used by the consent ledger inside its
   * transaction): customers not erased, read by chunk. On PostgreSQL their rows are share-locked to the end
   * of that transaction, so an erasure committing meanwhile is either waited for and seen, or waits until the
   * consent is written — never a consent recorded after the erasure. (SQLite runs one write transaction at a
   * time.)
   */
  customersAmong = async (ids: readonly string[], manager: EntityManager = this.dataSource.manager): Promise<ReadonlySet<string>> => {
    const found = new Set<string>();
    const candidates = [...new Set(ids)].filter(couldBeCustomerId);
    // Only inside a transaction: outside one the lock would end with the statement, having done nothing.
    const lock = manager.connection.options.type === 'postgres' && manager.queryRunner?.isTransactionActive === true;
    for (let start = 0; start < candidates.length; start += CUSTOMER_ID_CHUNK) {
      const query = manager
        .getRepository(CustomerEntity)
        .createQueryBuilder('customer')
        .select('customer.id', 'id')
        .where({ id: In(candidates.slice(start, start + CUSTOMER_ID_CHUNK)), erasedAt: IsNull() });
      if (lock) query.setLock('pessimistic_read');
      for (const { id } of await query.getRawMany<{ id: string }>()) found.add(id);
    }
    return found;
  };

  /**
   * Removes a customer's personal data (erasure); payments keep only what bookkeeping requires. When the
   * account was created is personal too (`Customer.createdAt`): it keeps only its month, which the consent
   * coverage report needs to count who was a customer when.
   */
  async eraseCustomer(id: string, erasedAt: string, manager: EntityManager): Promise<{ watchEventsDeleted: number; paymentsKept: number } | undefined> {
    const customers = manager.getRepository(CustomerEntity);
    const { createdAt } = await customers.findOneOrFail({ select: { id: true, createdAt: true }, where: { id } });
    // Only a customer not yet erased: of two erasures at once, the second finds the row erased (PostgreSQL
    // re-reads it once the first commits) and changes nothing.
    const { affected } = await customers.update(
      { id, erasedAt: IsNull() },
      { fullName: null, displayName: null, email: null, phone: null, birthDate: null, country: null, postalAddress: null, favoriteGenres: null, accessibilityNeeds: null, createdAt: `${createdAt.slice(0, 7)}-01T00:00:00.000Z`, erasedAt },
    );
    if (!affected) return undefined;
    const watched = await manager.getRepository(WatchEventEntity).delete({ customerId: id });
    const payments = await manager.getRepository(PaymentEntity).update({ customerId: id }, { cardLast4: '****' });
    return { watchEventsDeleted: watched.affected ?? 0, paymentsKept: payments.affected ?? 0 };
  }

  createLoaders(): DomainLoaders {
    const paged = <T extends { id: string; customerId: string }>(relation: Relation<T>) =>
      new DataLoader<CustomerPageKey, T[], string>((keys) => this.pagesByCustomer(relation, keys), { cacheKeyFn: ({ customerId, limit, offset }) => `${limit}:${offset}:${customerId}` });
    return {
      paymentsByCustomer: new DataLoader((ids) => this.groupByCustomer(PAYMENTS, ids)),
      watchHistoryByCustomer: new DataLoader((ids) => this.groupByCustomer(WATCH_HISTORY, ids)),
      paymentPages: paged(PAYMENTS),
      watchHistoryPages: paged(WATCH_HISTORY),
    };
  }

  /** Each customer's rows of a relation, newest first, all of them. */
  private async groupByCustomer<T extends { customerId: string }>(relation: Relation<T>, customerIds: readonly string[]): Promise<T[][]> {
    const rows: T[] = [];
    for (let start = 0; start < customerIds.length; start += CUSTOMER_ID_CHUNK) {
      const chunk = customerIds.slice(start, start + CUSTOMER_ID_CHUNK);
      const found = await this.dataSource
        .getRepository(relation.entity)
        .createQueryBuilder('row')
        .where('row.customer_id IN (:...chunk)', { chunk })
        .orderBy(`row.${relation.newestFirstBy.property}`, 'DESC')
        .addOrderBy('row.id', 'ASC')
        .getMany();
      // One by one: a spread of a large chunk's rows would overflow the call stack (~100,000 arguments).
      for (const row of found) rows.push(row);
    }
    const byCustomer = new Map<string, T[]>(customerIds.map((id) => [id, []]));
    for (const row of rows) byCustomer.get(row.customerId)?.push(row);
    return customerIds.map((id) => byCustomer.get(id)!);
  }

  /**
   * The pages asked for, one read per chunk of customers whatever the pages: each of a customer's rows is
   * numbered (ROW_NUMBER over the customer's rows, newest first, in SQL), and a row is read only when a page
   * that customer was asked for holds it. An empty page reads nothing.
   */
  private async pagesByCustomer<T extends { id: string; customerId: string }>(relation: Relation<T>, keys: readonly CustomerPageKey[]): Promise<T[][]> {
    const asked = keys.filter((key) => key.limit > 0);
    const customerIds = [...new Set(asked.map((key) => key.customerId))];
    const positioned = new Map<string, Array<{ row: T; position: number }>>();
    const { property, column } = relation.newestFirstBy;
    for (let start = 0; start < customerIds.length; start += CUSTOMER_ID_CHUNK) {
      const chunk = customerIds.slice(start, start + CUSTOMER_ID_CHUNK);
      const inChunk = new Set(chunk);
      // Each distinct page, with the customers of the chunk it was asked for.
      const pages = new Map<string, { after: number; through: number; customerIds: string[] }>();
      for (const { customerId, limit, offset } of asked) {
        if (!inChunk.has(customerId)) continue;
        const page = pages.get(`${limit}:${offset}`) ?? { after: offset, through: offset + limit, customerIds: [] };
        pages.set(`${limit}:${offset}`, page);
        page.customerIds.push(customerId);
      }
      const parameters: Record<string, unknown> = { chunk };
      const inSomePage = [...pages.values()].map(({ after, through, customerIds: askedBy }, index) => {
        Object.assign(parameters, { [`after${index}`]: after, [`through${index}`]: through, [`askedBy${index}`]: askedBy });
        return `(ranked.customer_id IN (:...askedBy${index}) AND ranked.position > :after${index} AND ranked.position <= :through${index})`;
      });
      const { entities, raw } = await this.dataSource
        .getRepository(relation.entity)
        .createQueryBuilder('row')
        .innerJoin(
          `(SELECT id, customer_id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ${column} DESC, id ASC) AS position FROM ${relation.table} WHERE customer_id IN (:...chunk))`,
          'ranked',
          'ranked.id = row.id',
        )
        .addSelect('ranked.position', 'ranked_position')
        .where(inSomePage.join(' OR '), parameters)
        .orderBy(`row.${property}`, 'DESC')
        .addOrderBy('row.id', 'ASC')
        .getRawAndEntities<{ row_id: string; ranked_position: number | string }>();
      const positions = new Map(raw.map((row) => [row.row_id, Number(row.ranked_position)]));
      for (const row of entities) {
        const rows = positioned.get(row.customerId) ?? [];
        positioned.set(row.customerId, rows);
        rows.push({ row, position: positions.get(row.id)! });
      }
    }
    return keys.map(({ customerId, limit, offset }) => (positioned.get(customerId) ?? []).filter(({ position }) => position > offset && position <= offset + limit).map(({ row }) => row));
  }
}
