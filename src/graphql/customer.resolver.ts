import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root } from 'type-graphql';
import type { CustomerEntity } from '../domain/customer.entity';
import type { PaymentEntity } from '../domain/payment.entity';
import type { WatchEventEntity } from '../domain/watch-event.entity';
import { badInput } from '../errors';
import type { GraphQLContext } from './context';
import { CustomerType } from './customer.type';
import { Governed } from './governed.decorator';

/** The largest page `customers` returns; larger requests are refused as BAD_USER_INPUT. */
export const MAX_CUSTOMERS_PAGE = 1000;

@Resolver(() => CustomerType)
export class CustomerResolver {
  @Query(() => [CustomerType], { description: 'Customers ordered by id. Personal fields are released per customer, per purpose.' })
  @Governed({ category: 'system.operations', filtersOnChoices: 'onlyPermitted' })
  customers(
    @Ctx() context: GraphQLContext,
    @Arg('limit', () => Int, { defaultValue: 20, description: `At most ${MAX_CUSTOMERS_PAGE}.` }) limit: number,
    @Arg('offset', () => Int, { defaultValue: 0 }) offset: number,
    @Arg('onlyPermitted', () => Boolean, {
      defaultValue: false,
      description: "Keep only customers whose choices (restriction, objection, consent) allow the request's purpose; applied before pagination.",
    })
    onlyPermitted: boolean,
  ): Promise<CustomerEntity[]> {
    if (limit < 0 || limit > MAX_CUSTOMERS_PAGE) throw badInput(`limit must be between 0 and ${MAX_CUSTOMERS_PAGE}`, { argument: 'limit' });
    if (offset < 0) throw badInput('offset must not be negative', { argument: 'offset' });
    return context.domain.listCustomers({ limit, offset, filter: onlyPermitted ? context.permittedSubjects('customer.id') : undefined });
  }

  @Query(() => CustomerType, { nullable: true, description: 'One customer by id, or null when there is none.' })
  @Governed({ category: 'system.operations' })
  async customer(@Ctx() context: GraphQLContext, @Arg('id', () => ID) id: string): Promise<CustomerEntity | null> {
    return (await context.domain.findCustomer(id)) ?? null;
  }

  @FieldResolver()
  watchHistory(@Root() customer: CustomerEntity, @Ctx() context: GraphQLContext): Promise<WatchEventEntity[]> {
    return context.loaders.watchHistoryByCustomer.load(customer.id);
  }

  @FieldResolver()
  payments(@Root() customer: CustomerEntity, @Ctx() context: GraphQLContext): Promise<PaymentEntity[]> {
    return context.loaders.paymentsByCustomer.load(customer.id);
  }
}
