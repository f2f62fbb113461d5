import type { ConsentStatement, ObjectionStatement, SubjectState } from '../policy/decide';
import { covers } from '../taxonomy/keys';
import type { ConsentEventEntity } from './consent-event.entity';

/**
 * Derives subjects' states from ledger entries (in any order) — the same rule the `consent_state`
 * projection applies in SQL: statements take effect in the order they were made (`recordedAt`, then the
 * ledger's order), and a later statement on a purpose replaces those on its sub-purposes; a test checks
 * both agree. Reports use it to see the state at any past instant.
 */
export function replayLedger(events: readonly ConsentEventEntity[], until?: string): Map<string, SubjectState> {
  const states = new Map<string, { restricted: boolean; consents: ConsentStatement[]; objections: ObjectionStatement[] }>();
  const inOrderMade = [...events].sort((a, b) => (a.recordedAt < b.recordedAt ? -1 : a.recordedAt > b.recordedAt ? 1 : a.id - b.id));
  for (const event of inOrderMade) {
    if (until !== undefined && event.recordedAt >= until) continue;
    let state = states.get(event.subjectId);
    if (!state) states.set(event.subjectId, (state = { restricted: false, consents: [], objections: [] }));
    const purpose = event.purpose ?? '';
    switch (event.kind) {
      case 'restrict':
      case 'lift_restriction':
        state.restricted = event.kind === 'restrict';
        break;
      case 'grant':
      case 'withdraw':
        state.consents = state.consents.filter((statement) => !covers(purpose, statement.purpose));
        state.consents.push({
          purpose,
          granted: event.kind === 'grant',
          explicit: event.explicit,
          expiresAt: event.expiresAt ? new Date(event.expiresAt) : null,
          recordedAt: new Date(event.recordedAt),
          receiptId: event.receiptId,
        });
        break;
      case 'object':
      case 'withdraw_objection':
        state.objections = state.objections.filter((statement) => !covers(purpose, statement.purpose));
        state.objections.push({ purpose, objected: event.kind === 'object' });
        break;
    }
  }
  return new Map([...states].map(([subjectId, state]) => [subjectId, { subjectId, ...state }]));
}
