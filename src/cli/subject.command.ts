import { badInput } from '../errors';
import { createSubjectToken, parseTtl } from '../privacy/subject-link';
import type { CandorServices } from '../server/services';
import { type Output, recordCliOperation } from './audit.command';

/** `candor subject link --subject ID [--ttl 7d]`: prints an encrypted, expiring link to the subject's privacy page. */
export async function subjectLink(services: CandorServices, subjectId: string | undefined, ttl: string | undefined, output: Output): Promise<number> {
  if (!subjectId) throw badInput('--subject ID is required');
  const customer = await services.domain.findCustomerRecord(subjectId);
  if (!customer) throw badInput(`unknown subject "${subjectId}"`);
  if (customer.erasedAt) throw badInput(`subject "${subjectId}" was erased on ${customer.erasedAt}: there is no page to link to`);
  let ttlMs: number;
  try {
    ttlMs = parseTtl(ttl ?? '7d');
  } catch (error) {
    throw badInput((error as Error).message);
  }
  // The link is sent to a person: it must name the address they reach the page at, not this machine.
  if (services.config.publicUrl === undefined) throw badInput('PUBLIC_URL is required when NODE_ENV=production: the https address the privacy page is served at');
  const token = createSubjectToken(services.config.secret, subjectId, new Date(services.clock().getTime() + ttlMs));
  // The link opens the subject's whole page to whoever holds it: who issued one, when, is on the record.
  await recordCliOperation(services, 'subject link', 'SUBJECT_LINK_ISSUED', { subjectId });
  output.out(`${services.config.publicUrl}/privacy?t=${token}\n`);
  return 0;
}
