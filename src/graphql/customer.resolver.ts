import { Arg, Args, ArgsType, Ctx, Field, FieldResolver, ID, Int, Query, Resolver, Root } from 'type-graphql';
import type { CustomerEntity } from '../domain/customer.entity';
import type { RelationPage } from '../domain/domain-store';
import type { PaymentEntity } from '../domain/payment.entity';
import type { WatchEventEntity } from '../domain/watch-event.entity';
import { badInput, checkPageSize } from '../errors';
import type { GraphQLContext } from './context';
import { CustomerType } from './customer.type';
import { Governed } from './governed.decorator';

/** The largest page `customers` returns; larger requests are refused as BAD_USER_INPUT. */
export const MAX_CUSTOMERS_PAGE = 1000;
/** A customer's `payments` and `watchHistory`: the page they return unless asked otherwise, and the largest. */
export const DEFAULT_RELATION_PAGE = 10;
export const MAX_RELATION_PAGE = 500;

/** The page of a customer's relation (`payments`, `watchHistory`) a query asks for, newest first. */
@ArgsType()
class RelationPageArgs {
  @Field(() => Int, { defaultValue: DEFAULT_RELATION_PAGE, description: `At most ${MAX_RELATION_PAGE}.` })
  limit!: number;

  @Field(() => Int, { defaultValue: 0, description: 'How many of the newest to skip.' })
  offset!: number;
}

@Resolver(() => CustomerType)
export class CustomerResolver {
  @Query(() => [CustomerType], { nullable: true, description: 'Customers ordered by id. Personal fields are released per customer, per purpose.' })
  @Governed({ category: 'system.operations', filtersOnChoices: 'onlyPermitted' })
  customers(
    @Ctx() context: GraphQLContext,
    @Arg('limit', () => Int, { defaultValue: 20, description: `At most ${MAX_CUSTOMERS_PAGE}.` }) limit: number,
    @Arg('offset', () => Int, { defaultValue: 0 }) offset: number,
    @Arg('onlyPermitted', () => Boolean, {
      defaultValue: false,
      description:
        "Keep only the customers of the page (the `limit` from `offset`) whose choices (restriction, objection, consent) allow the request's purpose: a page may hold fewer, or none, before the list's end (page on with offset + limit). Every customer of the page is recorded, kept or left out.",
    })
    onlyPermitted: boolean,
  ): Promise<CustomerEntity[]> {
    checkPageSize('limit', limit, 0, MAX_CUSTOMERS_PAGE);
    if (offset < 0) throw badInput('offset must not be negative', { argument: 'offset' });
    return context.domain.listCustomers({ limit, offset, filter: onlyPermitted ? context.permittedSubjects('customer.id') : undefined });
  }

  @Query(() => CustomerType, { nullable: true, description: 'One customer by id, or null when there is none.' })
  @Governed({ category: 'system.operations' })
  async customer(@Ctx() context: GraphQLContext, @Arg('id', () => ID) id: string): Promise<CustomerEntity | null> {
    return (await context.domain.findCustomer(id)) ?? null;
  }

  @FieldResolver()
  watchHistory(@Root() customer: CustomerEntity, @Ctx() context: GraphQLContext, @Args() page: RelationPageArgs): Promise<WatchEventEntity[]> {
    return context.loaders.watchHistoryPages.load({ customerId: customer.id, ...relationPage(page) });
  }

  @FieldResolver()
  payments(@Root() customer: CustomerEntity, @Ctx() context: GraphQLContext, @Args() page: RelationPageArgs): Promise<PaymentEntity[]> {
    return context.loaders.paymentPages.load({ customerId: customer.id, ...relationPage(page) });
  }
}

/** A page of a customer's relation as asked for, or BAD_USER_INPUT naming the argument. */
function relationPage({ limit, offset }: RelationPageArgs): RelationPage {
  checkPageSize('limit', limit, 0, MAX_RELATION_PAGE);
  if (offset < 0) throw badInput('offset must not be negative', { argument: 'offset' });
  return { limit, offset };
}
