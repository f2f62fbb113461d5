import DataLoader from 'dataloader';
import { type DataSource, type EntityManager, In, IsNull } from 'typeorm';
import { CustomerEntity } from './customer.entity';
import { PaymentEntity } from './payment.entity';
import { WatchEventEntity } from './watch-event.entity';

/** A SQL condition over the `customer` alias, with its named parameters (TypeORM query-builder syntax). */
export interface CustomerFilter {
  readonly sql: string;
  readonly parameters: Record<string, unknown>;
}

export interface CustomerPage {
  readonly limit: number;
  readonly offset: number;
  readonly filter?: CustomerFilter;
}

/** Per-request loaders of the domain's relations, so a list of N customers costs one read per relation. */
export interface DomainLoaders {
  readonly paymentsByCustomer: DataLoader<string, PaymentEntity[]>;
  readonly watchHistoryByCustomer: DataLoader<string, WatchEventEntity[]>;
}

const RELATION_READ_CHUNK = 500;

/** Reads of the demo domain: customers, their payments and their watch history. */
export class DomainStore {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Customers who are not erased, by id. An erased customer is no one's to serve: listed, its old consents
   * would still filter it in, and a record of it would link a new pseudonym to its id.
   */
  listCustomers(page: CustomerPage): Promise<CustomerEntity[]> {
    const query = this.dataSource.getRepository(CustomerEntity).createQueryBuilder('customer').where('customer.erased_at IS NULL').orderBy('customer.id', 'ASC').limit(page.limit).offset(page.offset);
    if (page.filter) query.andWhere(page.filter.sql, page.filter.parameters);
    return query.getMany();
  }

  /** A customer who is not erased (what queries serve). */
  async findCustomer(id: string): Promise<CustomerEntity | undefined> {
    return (await this.dataSource.getRepository(CustomerEntity).findOneBy({ id, erasedAt: IsNull() })) ?? undefined;
  }

  /** The customer's row whatever its state, erased included (erasure itself, the subject's own page, reports). */
  async findCustomerRecord(id: string): Promise<CustomerEntity | undefined> {
    return (await this.dataSource.getRepository(CustomerEntity).findOneBy({ id })) ?? undefined;
  }

  /**
   * Whether `id` is a data subject consent can still be given by (used by the consent ledger inside its
   * transaction): not erased. On PostgreSQL the row is share-locked to the end of that transaction, so an
   * erasure committing meanwhile is either waited for and seen, or waits until the consent is written —
   * never a consent recorded after the erasure. (SQLite runs one write transaction at a time.)
   */
  customerExists = async (id: string, manager: EntityManager = this.dataSource.manager): Promise<boolean> => {
    const query = manager.getRepository(CustomerEntity).createQueryBuilder('customer').select('customer.id').where({ id, erasedAt: IsNull() });
    // Only inside a transaction: outside one the lock would end with the statement, having done nothing.
    if (manager.connection.options.type === 'postgres' && manager.queryRunner?.isTransactionActive) query.setLock('pessimistic_read');
    return (await query.getRawOne()) !== undefined;
  };

  /**
   * Removes a customer's personal data (erasure); payments keep only what bookkeeping requires. When the
   * account was created is personal too (`Customer.createdAt`): it keeps only its month, which the consent
   * coverage report needs to count who was a customer when.
   */
  async eraseCustomer(id: string, erasedAt: string, manager: EntityManager): Promise<{ watchEventsDeleted: number; paymentsKept: number }> {
    const customers = manager.getRepository(CustomerEntity);
    const { createdAt } = await customers.findOneOrFail({ select: { id: true, createdAt: true }, where: { id } });
    await customers.update(
      { id },
      { fullName: null, displayName: null, email: null, phone: null, birthDate: null, country: null, postalAddress: null, favoriteGenres: null, accessibilityNeeds: null, createdAt: `${createdAt.slice(0, 7)}-01T00:00:00.000Z`, erasedAt },
    );
    const watched = await manager.getRepository(WatchEventEntity).delete({ customerId: id });
    const payments = await manager.getRepository(PaymentEntity).update({ customerId: id }, { cardLast4: '****' });
    return { watchEventsDeleted: watched.affected ?? 0, paymentsKept: payments.affected ?? 0 };
  }

  createLoaders(): DomainLoaders {
    return {
      paymentsByCustomer: new DataLoader((ids) => this.groupByCustomer(PaymentEntity, ids, 'paidAt')),
      watchHistoryByCustomer: new DataLoader((ids) => this.groupByCustomer(WatchEventEntity, ids, 'watchedAt')),
    };
  }

  private async groupByCustomer<T extends { customerId: string }>(
    entity: new () => T,
    customerIds: readonly string[],
    newestFirstBy: keyof T & string,
  ): Promise<T[][]> {
    const rows: T[] = [];
    for (let start = 0; start < customerIds.length; start += RELATION_READ_CHUNK) {
      const chunk = customerIds.slice(start, start + RELATION_READ_CHUNK);
      const found = await this.dataSource.getRepository(entity).find({
        where: { customerId: In(chunk) } as never,
        order: { [newestFirstBy]: 'DESC', id: 'ASC' } as never,
      });
      // One by one: a spread of a large chunk's rows would overflow the call stack (~100,000 arguments).
      for (const row of found) rows.push(row);
    }
    const byCustomer = new Map<string, T[]>(customerIds.map((id) => [id, []]));
    for (const row of rows) byCustomer.get(row.customerId)?.push(row);
    return customerIds.map((id) => byCustomer.get(id)!);
  }
}
