import type { AccessActor } from '../audit/access-log';
import { ErasedSubjectEntity } from '../audit/audit.entities';
import { SubjectMessageEntity } from '../consent/subject-message.entity';
import { auditUnavailable, unknownSubject } from '../errors';
import type { CandorServices } from '../server/services';
import { inAdvisoryTurn } from '../storage/data-source';
import { type OldCopies, overwriteOldCopies } from '../storage/old-copies';
import { inTransaction } from '../storage/transactions';

export interface ErasureResult {
  readonly subjectId: string;
  readonly erasedAt: string;
  readonly watchEventsDeleted: number;
  readonly paymentsKept: number;
  readonly messagesErased: number;
  /** Whether old copies of the erased values may remain in the database's files, and until when. */
  readonly oldCopies: OldCopies;
}

/**
 * The tables an erasure deletes or overwrites rows of: on PostgreSQL, the ones to VACUUM for the old row
 * versions to go (the access log's mapping of pseudonyms, `subject_pseudonym`, among them). Keep it and
 * docs/operations.md in step with what `erase` changes.
 */
export const ERASURE_TABLES = ['customer', 'watch_event', 'payment', 'consent_event', 'consent_receipt', 'consent_state', 'subject_message', 'subject_pseudonym'] as const;

/**
 * Erases a data subject (GDPR Art. 17): their personal fields are removed from the domain data, their
 * viewing history is deleted, their payments keep only what bookkeeping law requires (amount, currency,
 * date; no card digits), their messages are deleted, and the access log's pseudonym mapping is
 * deleted, so the log keeps verifying but no longer points at the person; the log remembers them as erased,
 * so a record about them that arrives later maps to no one either. The consent ledger keeps the proof of
 * consent pseudonymised: under a new random id, which the receipts the log's records name carry too.
 *
 * The domain and the log are written one after the other (the log may be another store): the erasure
 * record first, then the mapping's deletion, which marks the subject erased in the log. Until that mark
 * exists the log's part is not done: if the log fails after the domain part committed, the call fails and
 * erasing the subject again finishes the job (that run reports no domain counts: the first one made them).
 * A run that fails between the record and the deletion leaves the record written twice once finished,
 * which over-reports, never under-reports.
 *
 * Last, the old copies of the erased values in the database's files are overwritten where the store allows
 * (SQLite: `overwriteOldCopies`); the result says whether any may remain. Failing to overwrite them does not
 * fail the erasure: the data is erased for every reader of the database, and the result says what remains.
 */
export async function eraseSubject(services: CandorServices, subjectId: string, actor: AccessActor, requestId: string): Promise<ErasureResult> {
  // One erasure of a subject at a time, in this process and (on PostgreSQL) across the instances and the
  // CLI: a second one that ran beside the first would take the first's committed domain part for an
  // unfinished erasure and record it again. After its turn it finds the subject erased — or finishes an
  // erasure whose log part failed.
  const running = erasuresInProgress(services);
  const earlier = running.get(subjectId);
  const erasure = (earlier ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => inAdvisoryTurn(services.dataSource, `candor-erasure:${subjectId}`, ERASURE_TURN_WAIT_MS, () => erase(services, subjectId, actor, requestId), () => auditUnavailable(`another erasure of subject "${subjectId}" has not finished for ${ERASURE_TURN_WAIT_MS / 1000} s; try again once it has`)));
  running.set(subjectId, erasure);
  try {
    return await erasure;
  } finally {
    if (running.get(subjectId) === erasure) running.delete(subjectId);
  }
}

/** How long an erasure waits for another erasure of the same subject (on another instance) to finish. */
const ERASURE_TURN_WAIT_MS = 30_000;

/** SQLite: how long an erasure that finds the subject erased waits for the log part of an erasure in another process. */
const UNFINISHED_ERASURE_WAIT_MS = 2_000;
const UNFINISHED_ERASURE_POLL_MS = 50;

/**
 * Whether the log marks the subject erased, i.e. an erasure finished its log part. On PostgreSQL the erasure
 * turn has let any other erasure finish or fail. On SQLite turns are per process: a CLI erasure beside the
 * server's may be between its domain part and its log part, so the mark is awaited a moment before the
 * erasure is taken for one whose log part failed (and recorded again).
 */
async function markedErased(services: CandorServices, subjectId: string): Promise<boolean> {
  const erasedSubjects = services.dataSource.getRepository(ErasedSubjectEntity);
  const deadline = Date.now() + (services.dataSource.options.type === 'postgres' ? 0 : UNFINISHED_ERASURE_WAIT_MS);
  for (;;) {
    if (await erasedSubjects.existsBy({ subjectId })) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, UNFINISHED_ERASURE_POLL_MS));
  }
}

const inProgress = new WeakMap<CandorServices, Map<string, Promise<ErasureResult>>>();

/** The latest erasure of each subject this process runs: the next one waits for it. */
function erasuresInProgress(services: CandorServices): Map<string, Promise<ErasureResult>> {
  let running = inProgress.get(services);
  if (!running) inProgress.set(services, (running = new Map()));
  return running;
}

async function erase(services: CandorServices, subjectId: string, actor: AccessActor, requestId: string): Promise<ErasureResult> {
  const customer = await services.domain.findCustomerRecord(subjectId);
  if (!customer) throw unknownSubject(`unknown subject "${subjectId}"`, { argument: 'subjectId' });
  const alreadyErased = (on: string) => unknownSubject(`subject "${subjectId}" was already erased on ${on}`, { argument: 'subjectId' });
  let erased: Omit<ErasureResult, 'oldCopies'>;
  if (customer.erasedAt) {
    if (await markedErased(services, subjectId)) {
      // Again, in case the last step of the first erasure (a second deletion of the mapping) did not run.
      await services.accessLog.forgetSubject(subjectId).catch(() => undefined);
      throw alreadyErased(customer.erasedAt);
    }
    erased = { subjectId, erasedAt: customer.erasedAt, watchEventsDeleted: 0, paymentsKept: 0, messagesErased: 0 };
  } else {
    const erasedAt = services.clock().toISOString();
    const result = await inTransaction(services.dataSource, async (manager) => {
      const domain = await services.domain.eraseCustomer(subjectId, erasedAt, manager);
      if (!domain) return undefined;
      await services.consent.pseudonymise(subjectId, manager);
      // Deleted, not blanked: a message kept in the inbox would be read under the subject's id, and its
      // access record would tie the log to them again.
      const messages = await manager.getRepository(SubjectMessageEntity).delete({ subjectId });
      return { ...domain, messagesErased: messages.affected ?? 0 };
    });
    // Another erasure of the subject committed first: it reports and finishes the erasure.
    if (!result) throw alreadyErased((await services.domain.findCustomerRecord(subjectId))?.erasedAt ?? erasedAt);
    erased = { subjectId, erasedAt, ...result };
  }
  try {
    await services.accessLog.append([
      { at: services.clock(), requestId, actor, purpose: 'essential.legal_obligation', operationName: 'subject erase', subjectId: null, coordinate: null, category: null, decision: 'RELEASED', reason: 'SUBJECT_ERASED', legalBasis: 'legal_obligation' },
    ]);
    await services.accessLog.forgetSubject(subjectId);
  } catch {
    throw auditUnavailable(`subject "${subjectId}" was erased from the domain data, but the access log could not be updated (it still links their records): erase them again to finish`);
  }
  // After the log's part: its worker deleted the pseudonym mapping on a connection of its own.
  return { ...erased, oldCopies: await overwriteOldCopies(services.dataSource) };
}
