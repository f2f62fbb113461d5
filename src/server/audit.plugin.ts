import type { ApolloServerPlugin } from '@apollo/server';
import { type DocumentNode, type FragmentDefinitionNode, GraphQLError, type GraphQLSchema, Kind, type OperationDefinitionNode } from 'graphql';
// The executor's own field collection (fragments, @skip/@include, aliases), as the leaf guard uses it.
import { collectFields } from 'graphql/execution/collectFields';
import { type AccessLog, type AccessRecordInput, entriesOf } from '../audit/access-log';
import { type AppendEntry, RECORDED_TEXT_LIMITS } from '../audit/audit-store';
import type { EntryItem } from '../audit/chain';
import { CHOICES_CATEGORY, FILTERED_ON_CHOICES, FILTERED_OUT_ON_CHOICES, QUERY_LIMIT_CODES, REFUSALS } from '../policy/codes';
import type { Decision } from '../policy/decide';
import { GOVERNANCE_CONTEXT_KEY } from '../policy/enforcement';
import type { GuardedField } from '../policy/guarded-field';
import { recordedAs, type RecordedDecision as Recorded, type RequestGovernance, subjectNamedBy } from '../policy/request-governance';
import { type CandorContext, recordedOperationName } from './context';

/** Refusals of a whole document that Candor itself makes (the rest are Apollo's or graphql-js's). */
const CANDOR_REFUSAL_CODES: ReadonlySet<string> = new Set([...QUERY_LIMIT_CODES, 'EXPLAIN_QUERIES_ONLY', 'OPERATION_NAME_TOO_LONG']);

/**
 * Writes each request's access records once, when the response is ready and before it is sent: the
 * leaf guard and shield rules only buffered them. If the log cannot be written, a response that carried
 * governed data is replaced by AUDIT_UNAVAILABLE (503): governed data never leaves without its record.
 * Documents refused by the query limits are recorded too. No `willResolveField` here: that hook would make
 * Apollo wrap every resolver.
 *
 * The request's governance mode shapes the response and the records: `explain` adds every decision to
 * `extensions.governance.explain` (no value was released, so each is recorded WITHHELD, EXPLAIN_ONLY);
 * `reject` replaces a response that withheld anything by GOVERNANCE_REJECTED (403) naming the offending
 * coordinates, and records every field of it as withheld. Otherwise a field decision is recorded when the
 * response still holds its subject: objects discarded by null propagation take their records with them.
 */
export function accessLogPlugin(accessLog: AccessLog): ApolloServerPlugin<CandorContext> {
  return {
    async requestDidStart({ contextValue }) {
      // Apollo hands plugins a shallow copy of the context: the flag is set on the object both share.
      contextValue.pipeline.started = true;
      return {
        async didResolveOperation({ contextValue, operation }) {
          // Every record of the operation carries its name: one the log would not take is refused, recorded without it.
          if (operation?.name && recordedOperationName(operation.name.value) === null) {
            throw new GraphQLError(`operation names are at most ${RECORDED_TEXT_LIMITS.operationName} characters`, {
              extensions: { code: 'OPERATION_NAME_TOO_LONG', http: { status: REFUSALS.OPERATION_NAME_TOO_LONG } },
            });
          }
          // A dry run must not change anything: explain applies to queries only.
          if (contextValue[GOVERNANCE_CONTEXT_KEY]?.mode === 'explain' && operation?.operation !== 'query') {
            throw new GraphQLError('X-Governance-Explain applies to queries only: a mutation cannot be dry-run', {
              extensions: { code: 'EXPLAIN_QUERIES_ONLY', http: { status: REFUSALS.EXPLAIN_QUERIES_ONLY } },
            });
          }
        },
        async willSendResponse({ contextValue, operation: executed, operationName, response, schema, document, request }) {
          const governance = contextValue[GOVERNANCE_CONTEXT_KEY];
          const errors = response.body.kind === 'single' ? (response.body.singleResult.errors ?? []) : [];
          // An operation answered without `data` never executed: unparseable, invalid, over a query limit, a
          // mutation by GET, a dry-run mutation. It is one refused operation, recorded under Candor's own code
          // when its answer has one (a document over the directive limit is also invalid to graphql-js).
          const answeredCodes = errors.map((error) => String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
          // Apollo's persisted-query handshake (a hash it does not know yet; the client sends the document next) refuses nothing.
          const neverExecuted = response.body.kind === 'single' && response.body.singleResult.data === undefined && !answeredCodes.includes('PERSISTED_QUERY_NOT_FOUND');
          const refusal = neverExecuted ? (answeredCodes.find((code) => CANDOR_REFUSAL_CODES.has(code)) ?? answeredCodes[0]) : undefined;
          const recordedName = recordedOperationName(operationName);
          const common = { at: contextValue.now, requestId: contextValue.requestId, actor: contextValue.accessActor, purpose: governance?.purpose.key ?? null, operationName: recordedName };
          const refused = { subjectId: null, category: null, decision: 'REFUSED' as const, legalBasis: null };
          const records: AccessRecordInput[] = refusal === undefined ? [] : [{ ...common, ...refused, coordinate: null, reason: refusal }];
          for (const { field, code } of governance?.refusals ?? []) records.push({ ...common, ...refused, coordinate: field.coordinate, reason: code });
          // A root field that refused the request's own input as it ran (an argument out of range, a cursor or a
          // subject it does not know) refused the operation it serves: recorded at its coordinate, naming no subject
          // (an id it does not know is nobody's).
          const refusedInput = errors.filter((error) => error.path?.length === 1 && error.extensions?.code === 'BAD_USER_INPUT');
          if (refusedInput.length && executed && document) {
            const coordinates = rootCoordinates(schema, document, executed, request.variables ?? {});
            for (const error of refusedInput) records.push({ ...common, ...refused, coordinate: coordinates.get(String(error.path![0])) ?? null, reason: 'BAD_USER_INPUT' });
          }
          // Null propagation may have discarded objects whose fields were decided: what leaves is what is recorded,
          // explained, or judged by reject mode. (Which of them were decided before the null propagated differs
          // between executors: graphql-jit completes every field first, graphql-js stops at the error.)
          if (governance && errors.length && response.body.kind === 'single' && response.body.singleResult.data !== undefined) {
            const dropped = governance.dropRecordsOfSubjectsAbsentFrom(response.body.singleResult.data);
            // Nor does the response tell why their fields were withheld (graphql-jit reports the fields of discarded objects too).
            const told = errors.filter((error) => {
              const subjectId = subjectNamedBy(error);
              return subjectId === undefined || !dropped.has(subjectId);
            });
            if (told.length < errors.length) response.body.singleResult.errors = told.length ? told : undefined;
          }
          const rejection = governance?.mode === 'reject' ? rejectionOf(governance) : undefined;
          const resultData = response.body.kind === 'single' ? response.body.singleResult.data : undefined;
          const changes = executed?.operation === 'mutation';
          for (const { field, subjectId, responseKey } of governance?.recordedOperations ?? []) {
            // A call is recorded once it answered (its change was made, or its read returned); one that failed changed
            // and returned nothing (a refusal of its input is recorded above).
            if ((resultData?.[responseKey] ?? null) === null) continue;
            // A rejected operation sent nothing: what it read (the log, the inbox, a subject's ledger) is withheld, as
            // its fields' releases are. A change of a subject's choices stands, rejected or not: it is recorded as made.
            const outcome = rejection && !changes ? { decision: 'WITHHELD' as const, reason: 'GOVERNANCE_REJECTED' } : { decision: 'RELEASED' as const, reason: field.recordAs! };
            records.push({ ...common, subjectId, coordinate: field.coordinate, category: null, ...outcome, legalBasis: governance!.purpose.legalBasis });
          }
          // What an operation recorded itself (a report) is judged with the rest: a rejected response told nothing.
          for (const record of governance?.operationRecords ?? []) records.push(rejection && record.decision !== 'REFUSED' ? { ...record, decision: 'WITHHELD', reason: 'GOVERNANCE_REJECTED' } : record);
          if (rejection) records.push({ ...common, ...refused, coordinate: null, reason: 'GOVERNANCE_REJECTED' });
          // A list filtered on the subjects' choices tells, by whom it holds, that theirs allow the purpose (released
          // in the list), and by whom of its page it left out, that theirs do not (withheld from it). A rejection
          // tells it too: whether the operation is rejected, and the subject counts it names, depend on whom the
          // filter kept (a one-customer page is rejected exactly when that customer's choices allow the purpose).
          const choicesTold = (subjectId: string, coordinate: string, decision: 'RELEASED' | 'WITHHELD', reason: string): AccessRecordInput => ({
            ...common,
            subjectId,
            coordinate,
            category: CHOICES_CATEGORY,
            decision,
            reason,
            legalBasis: governance!.purpose.legalBasis,
          });
          for (const { field, subjectId } of governance?.subjectsFilteredOnChoices ?? []) records.push(choicesTold(subjectId, field.coordinate, 'RELEASED', FILTERED_ON_CHOICES));
          for (const { field, subjectId } of governance?.subjectsLeftOutOnChoices ?? []) records.push(choicesTold(subjectId, field.coordinate, 'WITHHELD', FILTERED_OUT_ON_CHOICES));
          // Field decisions go to the log already grouped per subject: no intermediate record per field.
          const stored = storedItems(recordingFor(governance?.mode === 'explain' ? 'explain' : rejection ? 'rejected' : 'release'));
          const at = contextValue.now.toISOString();
          const { id: actorId, name: actorName, team: actorTeam } = contextValue.accessActor;
          const purpose = governance?.purpose.key ?? null;
          const entries: AppendEntry[] = (governance?.recordsBySubject(stored.itemOf) ?? []).map(({ subjectId, items }) => ({
            at,
            requestId: contextValue.requestId,
            actorId,
            actorName,
            actorTeam,
            purpose,
            operationName: recordedName,
            subjectId,
            items,
          }));
          // A mutation's change commits before its response leaves; whatever then replaces the response must say so.
          // Each of Candor's mutation fields answers an object once its change has committed, and nothing else
          // (a root `__typename` is a string).
          const changeMade = changes && Object.values(resultData ?? {}).some((value) => typeof value === 'object' && value !== null);
          const changeNote = changeMade ? { changeMade: true } : {};
          if (response.body.kind === 'single') {
            const result = response.body.singleResult;
            if (governance?.mode === 'explain') {
              result.extensions = { ...result.extensions, governance: { ...(result.extensions?.governance as object), purpose: governance.purpose.key, mode: 'explain', explain: governance.explanation } };
            }
            if (rejection) {
              response.http.status = REFUSALS.GOVERNANCE_REJECTED;
              response.body = {
                kind: 'single',
                singleResult: {
                  errors: [
                    {
                      message: `rejected: ${new Set(rejection.map(({ coordinate }) => coordinate)).size} selected field(s) would be withheld for ${governance!.purpose.key} (${governance!.rejectModeSetBy})${changeMade ? '; the change was made' : ''}`,
                      extensions: { code: 'GOVERNANCE_REJECTED', withheld: rejection, ...changeNote },
                    },
                  ],
                },
              };
            }
          }
          // Withheld leaves in `extensions` reporting: listed once, with their paths and reasons.
          const withheld = governance?.withheld ?? [];
          if (withheld.length && response.body.kind === 'single' && !rejection) {
            const result = response.body.singleResult;
            result.extensions = { ...result.extensions, governance: { ...(result.extensions?.governance as object), purpose: governance!.purpose.key, withheld } };
          }
          if (records.length === 0 && entries.length === 0) return;
          try {
            // One hand-over per request, so its records share one transaction.
            await accessLog.appendEntries(records.length ? [...entriesOf(records), ...entries] : entries);
          } catch {
            // A refusal released nothing and stands as it is; anything that touched governed data is withdrawn — a
            // list filtered on the subjects' choices too, even one that kept nobody: its emptiness tells theirs.
            const toldChoices = (governance?.subjectsFilteredOnChoices.length ?? 0) + (governance?.subjectsLeftOutOnChoices.length ?? 0);
            if (entries.length === 0 && (governance?.recordedOperations.length ?? 0) === 0 && (governance?.operationRecords.length ?? 0) === 0 && toldChoices === 0) return;
            // A change committed before its records failed stands (its own store keeps who made it: the consent
            // ledger, the inbox): the answer must not read as if nothing happened.
            response.http.status = 503;
            response.body = {
              kind: 'single',
              singleResult: {
                errors: [
                  changeMade
                    ? { message: 'the change was made, but the access log is unavailable: its record is not written, and no governed data is released — check before repeating it', extensions: { code: 'AUDIT_UNAVAILABLE', ...changeNote } }
                    : { message: 'the access log is unavailable, so no governed data is released', extensions: { code: 'AUDIT_UNAVAILABLE' } },
                ],
              },
            };
          }
        },
      };
    },
  };
}

/**
 * How a field decision is recorded: as decided (`release`); as withheld with EXPLAIN_ONLY in a dry run,
 * which released nothing; in a rejected operation, releases become withheld with GOVERNANCE_REJECTED and
 * denials keep their own reason.
 */
function recordingFor(recording: 'release' | 'explain' | 'rejected'): (decision: Decision) => Recorded {
  if (recording === 'release') return recordedAs;
  const unreleased = recording === 'explain' ? 'EXPLAIN_ONLY' : 'GOVERNANCE_REJECTED';
  return (decision) =>
    recording === 'rejected' && decision.effect === 'deny'
      ? recordedAs(decision)
      : { decision: 'WITHHELD', reason: unreleased, legalBasis: decision.legalBasis, consentReceiptId: null };
}

interface Outcome {
  /** The first decision with this outcome; `recorded` is a function of the fields `sameOutcome` compares. */
  readonly decision: Decision;
  readonly recorded: Recorded;
  /** The stored item of each field with this outcome. */
  readonly items: Map<GuardedField, EntryItem>;
  count: number;
}

const sameOutcome = (a: Decision, b: Decision) =>
  a === b || (a.effect === b.effect && a.reason === b.reason && a.legalBasis === b.legalBasis && (a.consentReceiptId ?? null) === (b.consentReceiptId ?? null) && a.mask === b.mask);

/**
 * The stored items of one request's field decisions. Subjects decided alike share one item object per
 * field (items are read-only to the log, which serialises them), and `recorded` runs once per distinct
 * outcome, not per field: a 100-row response makes ~900 records but a handful of distinct items.
 */
function storedItems(recorded: (decision: Decision) => Recorded) {
  const outcomes: Outcome[] = [];
  let last: Outcome | undefined;
  return {
    itemOf(field: GuardedField, decision: Decision): EntryItem {
      let outcome = last !== undefined && sameOutcome(last.decision, decision) ? last : outcomes.find((candidate) => sameOutcome(candidate.decision, decision));
      if (outcome === undefined) outcomes.push((outcome = { decision, recorded: recorded(decision), items: new Map(), count: 0 }));
      last = outcome;
      outcome.count++;
      let item = outcome.items.get(field);
      if (item === undefined) outcome.items.set(field, (item = { coordinate: field.coordinate, category: field.category, ...outcome.recorded }));
      return item;
    },
  };
}

/** In reject mode: what makes the operation rejected (withheld fields and refused root fields, with their subject counts), if anything. */
function rejectionOf(governance: RequestGovernance): Array<{ coordinate: string; reason: string; subjects: number }> | undefined {
  const offending = new Map<string, { coordinate: string; reason: string; subjects: number }>();
  for (const { items } of governance.recordsBySubject((field, decision) => ({ field, decision }))) {
    for (const { field, decision } of items) {
      if (decision.effect !== 'deny') continue;
      const key = `${field.coordinate}|${decision.reason}`;
      const entry = offending.get(key) ?? { coordinate: field.coordinate, reason: decision.reason, subjects: 0 };
      entry.subjects++;
      offending.set(key, entry);
    }
  }
  for (const { field, code } of governance.refusals) offending.set(`${field.coordinate}|${code}`, { coordinate: field.coordinate, reason: code, subjects: 0 });
  return offending.size ? [...offending.values()] : undefined;
}

/** The schema coordinate of each root field of `operation`, by response key, as the executor collects them. */
function rootCoordinates(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): Map<string, string> {
  const rootType = schema.getRootType(operation.operation);
  const coordinates = new Map<string, string>();
  if (!rootType) return coordinates;
  const fragments = Object.fromEntries(document.definitions.filter((definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION).map((fragment) => [fragment.name.value, fragment]));
  for (const [responseKey, nodes] of collectFields(schema, fragments, variables, rootType, operation.selectionSet)) coordinates.set(responseKey, `${rootType.name}.${nodes[0].name.value}`);
  return coordinates;
}
