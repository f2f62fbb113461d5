import type { AccessActor } from '../audit/access-log';
import { SubjectMessageEntity } from '../consent/subject-message.entity';
import { badInput } from '../errors';
import type { CandorServices } from '../server/services';
import { inTransaction } from '../storage/transactions';

export interface ErasureResult {
  readonly subjectId: string;
  readonly erasedAt: string;
  readonly watchEventsDeleted: number;
  readonly paymentsKept: number;
  readonly messagesErased: number;
}

/**
 * Erases a data subject (GDPR Art. 17): their personal fields are removed from the domain data, their
 * viewing history is deleted, their payments keep only what bookkeeping law requires (amount, currency,
 * date; no card digits), their messages lose their text, and the access log's pseudonym mapping is
 * deleted, so the log keeps verifying but no longer points at the person. The consent ledger keeps the
 * proof of consent under the opaque surrogate id.
 */
export async function eraseSubject(services: CandorServices, subjectId: string, actor: AccessActor, requestId: string): Promise<ErasureResult> {
  const customer = await services.domain.findCustomer(subjectId);
  if (!customer) throw badInput(`unknown subject "${subjectId}"`);
  if (customer.erasedAt) throw badInput(`subject "${subjectId}" was already erased on ${customer.erasedAt}`);
  const erasedAt = services.clock().toISOString();
  const result = await inTransaction(services.dataSource, async (manager) => {
    const domain = await services.domain.eraseCustomer(subjectId, erasedAt, manager);
    const messages = await manager.getRepository(SubjectMessageEntity).update({ subjectId }, { body: '[erased]', context: null });
    return { ...domain, messagesErased: messages.affected ?? 0 };
  });
  await services.accessLog.forgetSubject(subjectId);
  await services.accessLog.append([
    { at: services.clock(), requestId, actor, purpose: 'essential.legal_obligation', operationName: 'subject erase', subjectId: null, coordinate: null, category: null, decision: 'RELEASED', reason: 'SUBJECT_ERASED', legalBasis: 'legal_obligation' },
  ]);
  return { subjectId, erasedAt, ...result };
}
