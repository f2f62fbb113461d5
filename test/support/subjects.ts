import { CustomerEntity } from '../../src/domain/customer.entity';
import { PaymentEntity } from '../../src/domain/payment.entity';
import type { Harness } from './candor-harness';

/** Test-owned data subjects sort before every seeded customer (`cus_0000…` < `cus_<hex>`). */
export async function addCustomer(harness: Harness, id: string, overrides: Partial<CustomerEntity> = {}): Promise<CustomerEntity> {
  const customer = Object.assign(new CustomerEntity(), {
    id,
    fullName: `Test Person ${id}`,
    displayName: `tp_${id}`,
    email: `${id}@secret.example`,
    phone: '+49 30 5550000',
    birthDate: '1990-04-01',
    country: 'DE',
    postalAddress: '1 Test Street, Berlin',
    favoriteGenres: ['drama'],
    accessibilityNeeds: 'audio description',
    createdAt: '2025-01-01T00:00:00.000Z',
    erasedAt: null,
    ...overrides,
  });
  await harness.services.dataSource.getRepository(CustomerEntity).insert(customer);
  await harness.services.dataSource.getRepository(PaymentEntity).insert({ id: `${id}_pay`, customerId: id, amount: 9.99, currency: 'EUR', paidAt: '2025-12-01T00:00:00.000Z', cardLast4: '4242' });
  return customer;
}
