import { type DataSource, IsNull, MoreThan } from 'typeorm';
import { badInput, checkPageSize } from '../errors';
import { holdsUnprintable } from '../printable';
import { inTransaction } from '../storage/transactions';
import { SubjectMessageEntity } from './subject-message.entity';

/** As long as a subject's own message may be. */
export const MAX_ANSWER_LENGTH = 4_000;

/** Most messages a page holds (`inbox(first:)`, `inbox list`). */
export const MAX_INBOX_PAGE = 500;

/** Message ids are positive 32-bit integers (an integer column on both stores): anything else names no message. */
const isMessageId = (id: number) => Number.isInteger(id) && id >= 1 && id <= 2 ** 31 - 1;

/**
 * A message id written as `inbox` returns them — digits, with no sign or leading zero — as a number, which
 * may name no message; undefined for any other form (`0x10`, `1e1`, ` 7 ` would read as other numbers).
 */
export function parseMessageId(text: string): number | undefined {
  return /^[1-9]\d{0,9}$/.test(text) ? Number(text) : undefined;
}

/** The consent managers' side of the privacy page's two-way channel. */
export class Inbox {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * A page of messages, oldest first (in id order: the order they were written), only the unanswered ones
   * unless `unansweredOnly` is false. `after` is the id of the last message read, whatever has become of it
   * since: the page holds the messages after it, so pages chain without gaps or repeats while messages are
   * answered. An id that is no message's is refused rather than read as a position: a mistyped one would
   * page on from wherever it falls. (PostgreSQL draws ids as rows are inserted: a message whose insert
   * commits just after a later id's can be passed over by a page read in between; a read from the start
   * shows it.)
   */
  async list(unansweredOnly = true, first = 50, after: string | null = null): Promise<SubjectMessageEntity[]> {
    checkPageSize('first', first, 1, MAX_INBOX_PAGE);
    const repository = this.dataSource.getRepository(SubjectMessageEntity);
    let afterId: number | undefined;
    if (after !== null) {
      afterId = parseMessageId(after);
      if (afterId === undefined || !isMessageId(afterId)) throw badInput(`after must be the id of the last message read, got "${after}"`, { argument: 'after' });
      // Erasure deletes a subject's messages: the last one read may be gone since, the ones before it not.
      if (!(await repository.existsBy({ id: afterId }))) throw badInput(`after: no message ${afterId} (erased since, if it was read): page on after an earlier one`, { argument: 'after' });
    }
    return repository.find({ where: { ...(unansweredOnly ? { answeredAt: IsNull() } : {}), ...(afterId === undefined ? {} : { id: MoreThan(afterId) }) }, order: { id: 'ASC' }, take: first });
  }

  /** Answers a message once; the answer appears on the subject's privacy page. */
  async answer(id: number, text: string, answeredBy: string): Promise<SubjectMessageEntity> {
    // A multi-line answer from a browser or a Windows terminal ends its lines with CR LF: a line break, not a control character.
    const answer = text.replace(/\r\n?/g, '\n').trim();
    if (answer.length === 0) throw badInput('the answer is empty', { field: 'answer' });
    if (holdsUnprintable(answer)) throw badInput('the answer must be plain text (it holds control characters)', { field: 'answer' });
    if (answer.length > MAX_ANSWER_LENGTH) throw badInput(`the answer may be at most ${MAX_ANSWER_LENGTH.toLocaleString('en')} characters`, { field: 'answer' });
    const repository = this.dataSource.getRepository(SubjectMessageEntity);
    const message = isMessageId(id) ? await repository.findOneBy({ id }) : null;
    if (!message) throw badInput(`no message ${id}`, { field: 'id' });
    if (message.answeredAt) throw badInput(`message ${id} was already answered`, { field: 'id' });
    const answered = { ...message, answer, answeredAt: this.clock().toISOString(), answeredBy };
    // Only an unanswered message takes the answer: of two answering at once, the second is told.
    // In a transaction of its own: on SQLite a bare write would join whichever transaction is open, and share its fate.
    const { affected } = await inTransaction(this.dataSource, (manager) => manager.getRepository(SubjectMessageEntity).update({ id, answeredAt: IsNull() }, { answer, answeredAt: answered.answeredAt, answeredBy }));
    if (affected === 0) throw badInput(`message ${id} was already answered`, { field: 'id' });
    return answered;
  }
}
