import { type DataSource, IsNull } from 'typeorm';
import { badInput } from '../errors';
import { holdsUnprintable } from '../printable';
import { inTransaction } from '../storage/transactions';
import { SubjectMessageEntity } from './subject-message.entity';

/** As long as a subject's own message may be. */
const MAX_ANSWER_LENGTH = 4_000;

/** Message ids are positive 32-bit integers (an integer column on both stores): anything else names no message. */
const isMessageId = (id: number) => Number.isInteger(id) && id >= 1 && id <= 2 ** 31 - 1;

/** The consent managers' side of the privacy page's two-way channel. */
export class Inbox {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  list(unansweredOnly = true, limit = 50): Promise<SubjectMessageEntity[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw badInput('first must be between 1 and 500');
    return this.dataSource.getRepository(SubjectMessageEntity).find({ where: unansweredOnly ? { answeredAt: IsNull() } : {}, order: { id: 'ASC' }, take: limit });
  }

  /** Answers a message once; the answer appears on the subject's privacy page. */
  async answer(id: number, text: string, answeredBy: string): Promise<SubjectMessageEntity> {
    // A multi-line answer from a browser or a Windows terminal ends its lines with CR LF: a line break, not a control character.
    const answer = text.replace(/\r\n?/g, '\n').trim();
    if (answer.length === 0) throw badInput('the answer is empty');
    if (holdsUnprintable(answer)) throw badInput('the answer must be plain text (it holds control characters)');
    if (answer.length > MAX_ANSWER_LENGTH) throw badInput(`please keep the answer under ${MAX_ANSWER_LENGTH.toLocaleString('en')} characters`);
    const repository = this.dataSource.getRepository(SubjectMessageEntity);
    const message = isMessageId(id) ? await repository.findOneBy({ id }) : null;
    if (!message) throw badInput(`no message ${id}`);
    if (message.answeredAt) throw badInput(`message ${id} was already answered`);
    const answered = { ...message, answer, answeredAt: this.clock().toISOString(), answeredBy };
    // Only an unanswered message takes the answer: of two answering at once, the second is told.
    // In a transaction of its own: on SQLite a bare write would join whichever transaction is open, and share its fate.
    const { affected } = await inTransaction(this.dataSource, (manager) => manager.getRepository(SubjectMessageEntity).update({ id, answeredAt: IsNull() }, { answer, answeredAt: answered.answeredAt, answeredBy }));
    if (affected === 0) throw badInput(`message ${id} was already answered`);
    return answered;
  }
}
