import { Field, Int } from 'type-graphql';
import { Governed, GovernedType } from './governed.decorator';
import { WATCH_HISTORY_PURPOSES } from './purposes';

@GovernedType('WatchEvent', { subjectKey: 'customerId', description: 'A title a customer watched. Its data subject is the viewer.' })
export class WatchEventType {
  @Field(() => String, { nullable: true })
  @Governed({ category: 'user.behavior', purposes: WATCH_HISTORY_PURPOSES })
  title!: string;

  @Field(() => String, { nullable: true, description: 'When viewing started (ISO-8601, UTC).' })
  @Governed({ category: 'user.behavior', purposes: WATCH_HISTORY_PURPOSES })
  watchedAt!: string;

  @Field(() => Int, { nullable: true, description: 'Seconds watched.' })
  @Governed({ category: 'user.behavior', purposes: WATCH_HISTORY_PURPOSES })
  seconds!: number;
}
