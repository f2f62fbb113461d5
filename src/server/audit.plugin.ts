import type { ApolloServerPlugin } from '@apollo/server';
import type { AccessLog, AccessRecordInput } from '../audit/access-log';
import { GOVERNANCE_CONTEXT_KEY } from '../policy/enforcement';
import type { CandorContext } from './context';

/**
 * Writes each request's access records once, when the response is ready and before it is sent: the
 * leaf guard and shield rules only buffered them. If the log cannot be written, the response is
 * replaced by AUDIT_UNAVAILABLE (503): governed data never leaves without its record.
 * No `willResolveField` here: that hook would make Apollo wrap every resolver.
 */
export function accessLogPlugin(accessLog: AccessLog): ApolloServerPlugin<CandorContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, operationName, response }) {
          const governance = contextValue[GOVERNANCE_CONTEXT_KEY];
          if (!governance || (governance.decisions.length === 0 && governance.refusals.length === 0 && governance.recordedOperations.length === 0)) return;
          const common = {
            at: contextValue.now,
            requestId: contextValue.requestId,
            actor: contextValue.accessActor,
            purpose: governance.purpose.key,
            operationName: operationName ?? null,
          };
          const records: AccessRecordInput[] = governance.refusals.map(({ field, code }) => ({
            ...common,
            subjectId: null,
            coordinate: field.coordinate,
            category: null,
            decision: 'REFUSED',
            reason: code,
            legalBasis: null,
          }));
          for (const field of governance.recordedOperations) {
            records.push({ ...common, subjectId: null, coordinate: field.coordinate, category: null, decision: 'RELEASED', reason: field.recordAs!, legalBasis: governance.purpose.legalBasis });
          }
          for (const { subjectId, field, decision } of governance.decisions) {
            records.push({
              ...common,
              subjectId,
              coordinate: field.coordinate,
              category: field.category,
              decision: decision.effect === 'allow' ? 'RELEASED' : 'WITHHELD',
              reason: decision.reason,
              legalBasis: decision.legalBasis,
              consentReceiptId: decision.consentReceiptId ?? null,
            });
          }
          try {
            await accessLog.append(records);
          } catch {
            response.http.status = 503;
            response.body = {
              kind: 'single',
              singleResult: { errors: [{ message: 'the access log is unavailable, so no governed data is released', extensions: { code: 'AUDIT_UNAVAILABLE' } }] },
            };
          }
        },
      };
    },
  };
}
