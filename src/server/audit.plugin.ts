import type { ApolloServerPlugin } from '@apollo/server';
import type { AccessLog, AccessRecordInput } from '../audit/access-log';
import { QUERY_LIMIT_CODES } from '../policy/codes';
import { GOVERNANCE_CONTEXT_KEY } from '../policy/enforcement';
import type { CandorContext } from './context';
import type { CandorMetrics } from './observability';

const LIMIT_CODES: ReadonlySet<string> = new Set(QUERY_LIMIT_CODES);

/**
 * Writes each request's access records once, when the response is ready and before it is sent: the
 * leaf guard and shield rules only buffered them. If the log cannot be written, a response that carried
 * governed data is replaced by AUDIT_UNAVAILABLE (503): governed data never leaves without its record.
 * Documents refused by the query limits are recorded too. No `willResolveField` here: that hook would make
 * Apollo wrap every resolver.
 */
export function accessLogPlugin(accessLog: AccessLog, metrics: CandorMetrics): ApolloServerPlugin<CandorContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, operationName, response }) {
          const governance = contextValue[GOVERNANCE_CONTEXT_KEY];
          const errors = response.body.kind === 'single' ? (response.body.singleResult.errors ?? []) : [];
          const limitCodes = [...new Set(errors.map((error) => String(error.extensions?.code)).filter((code) => LIMIT_CODES.has(code)))];
          const common = { at: contextValue.now, requestId: contextValue.requestId, actor: contextValue.accessActor, purpose: governance?.purpose.key ?? null, operationName: operationName ?? null };
          const operation = { subjectId: null, category: null, decision: 'REFUSED' as const, legalBasis: null };
          const records: AccessRecordInput[] = limitCodes.map((code) => ({ ...common, ...operation, coordinate: null, reason: code }));
          for (const { field, code } of governance?.refusals ?? []) records.push({ ...common, ...operation, coordinate: field.coordinate, reason: code });
          for (const field of governance?.recordedOperations ?? []) {
            records.push({ ...common, subjectId: null, coordinate: field.coordinate, category: null, decision: 'RELEASED', reason: field.recordAs!, legalBasis: governance!.purpose.legalBasis });
          }
          const decisions = governance?.decisions ?? [];
          for (const { subjectId, field, decision } of decisions) {
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
          // Withheld leaves in `extensions` reporting: listed once, with their paths and reasons.
          const withheld = governance?.withheld ?? [];
          if (withheld.length && response.body.kind === 'single') {
            const result = response.body.singleResult;
            result.extensions = { ...result.extensions, governance: { ...(result.extensions?.governance as object), purpose: governance!.purpose.key, withheld } };
          }
          if (records.length === 0) return;
          const counts = new Map<string, number>();
          for (const record of records) counts.set(`${record.decision}\u0000${record.reason}`, (counts.get(`${record.decision}\u0000${record.reason}`) ?? 0) + 1);
          for (const [key, count] of counts) {
            const [decision, reason] = key.split('\u0000');
            metrics.decisions.inc({ decision, reason }, count);
          }
          try {
            await accessLog.append(records);
          } catch {
            // A refusal released nothing and stands as it is; anything that touched governed data is withdrawn.
            if (decisions.length === 0 && (governance?.recordedOperations.length ?? 0) === 0) return;
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
