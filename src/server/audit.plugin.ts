import type { ApolloServerPlugin } from '@apollo/server';
import { type AccessLog, type AccessRecordInput, entriesOf } from '../audit/access-log';
import type { AppendEntry } from '../audit/audit-store';
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
          // Field decisions go to the log already grouped per subject: no intermediate record per field.
          const groups = governance?.decisionsBySubject ?? [];
          const header = {
            at: contextValue.now.toISOString(),
            requestId: contextValue.requestId,
            actorId: contextValue.accessActor.id,
            actorName: contextValue.accessActor.name,
            actorTeam: contextValue.accessActor.team,
            purpose: governance?.purpose.key ?? null,
            operationName: operationName ?? null,
          };
          const counts = new Map<string, number>();
          const entries: AppendEntry[] = groups.map(({ subjectId, decisions }) => ({
            ...header,
            subjectId,
            items: decisions.map(({ field, decision }) => {
              const outcome = decision.effect === 'allow' ? 'RELEASED' : 'WITHHELD';
              const key = `${outcome}\u0000${decision.reason}`;
              counts.set(key, (counts.get(key) ?? 0) + 1);
              return { coordinate: field.coordinate, category: field.category, decision: outcome, reason: decision.reason, legalBasis: decision.legalBasis, consentReceiptId: decision.consentReceiptId ?? null };
            }),
          }));
          // Withheld leaves in `extensions` reporting: listed once, with their paths and reasons.
          const withheld = governance?.withheld ?? [];
          if (withheld.length && response.body.kind === 'single') {
            const result = response.body.singleResult;
            result.extensions = { ...result.extensions, governance: { ...(result.extensions?.governance as object), purpose: governance!.purpose.key, withheld } };
          }
          if (records.length === 0 && entries.length === 0) return;
          for (const record of records) counts.set(`${record.decision}\u0000${record.reason}`, (counts.get(`${record.decision}\u0000${record.reason}`) ?? 0) + 1);
          for (const [key, count] of counts) {
            const [decision, reason] = key.split('\u0000');
            metrics.decisions.inc({ decision, reason }, count);
          }
          try {
            // One hand-over per request, so its records share one transaction.
            await accessLog.appendEntries([...entriesOf(records), ...entries]);
          } catch {
            // A refusal released nothing and stands as it is; anything that touched governed data is withdrawn.
            if (entries.length === 0 && (governance?.recordedOperations.length ?? 0) === 0) return;
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
