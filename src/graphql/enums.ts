import { registerEnumType } from 'type-graphql';
import { ACCESS_DECISIONS, type AccessDecision } from '../audit/chain';
import { CONSENT_EVENT_KINDS, type ConsentEventKind } from '../consent/consent-event.entity';
import { REPORT_KINDS, type ReportKind } from '../reports/report-document';
import { OLD_COPIES, OLD_COPIES_MEANING, type OldCopies } from '../storage/old-copies';

/** A domain value's name in a GraphQL enum: upper snake case (`subject-access` is `SUBJECT_ACCESS`). */
export const enumValueName = (value: string): string => value.toUpperCase().replace(/-/g, '_');

/**
 * The schema's closed sets, as GraphQL enums: Sandbox lists their values, and a misspelt one is refused by
 * validation before anything runs. Each enum is made from the domain's own list of values, so the schema
 * cannot drift from what the code accepts. A value's GraphQL name is `enumValueName` of its domain value;
 * resolvers receive and return the domain value.
 */
function graphqlEnum<Value extends string>(
  name: string,
  values: readonly Value[],
  description: string,
  valueDescriptions: Readonly<Record<Value, string>>,
): Record<string, Value> {
  const enumObject = Object.fromEntries(values.map((value) => [enumValueName(value), value])) as Record<string, Value>;
  registerEnumType(enumObject, {
    name,
    description,
    valuesConfig: Object.fromEntries(Object.entries(enumObject).map(([graphqlName, value]) => [graphqlName, { description: valueDescriptions[value] }])),
  });
  return enumObject;
}

export const AccessDecisionEnum = graphqlEnum<AccessDecision>('AccessDecision', ACCESS_DECISIONS, 'What became of one field of one data subject, or of a whole operation.', {
  RELEASED: 'The value was returned.',
  WITHHELD: 'The value was not returned: null with a coded error, or listed in `extensions.governance.withheld`.',
  MASKED: 'A reduced form of the value was returned (see `maskStrategy`).',
  REFUSED: 'The whole operation was refused before it ran; its reason is the refusal code.',
});

export const ReportKindEnum = graphqlEnum<ReportKind>('ReportKind', REPORT_KINDS, 'A compliance report (`npx candor report` spells the same kinds in kebab case: subject-access).', {
  ropa: 'Record of processing activities (GDPR Art. 30): each purpose, the fields declared for it and the releases the log shows, with releases outside the declaration.',
  'subject-access': "One data subject's access report (GDPR Art. 15): every recorded use of their data. Needs `subjectId`.",
  'purpose-usage': 'Field accesses per purpose, category and team (released, withheld, masked), withheld by reason, per day.',
  denials: 'Denials and anomalies: the withheld rate per actor, refused operations by code, attempts at purposes an actor is not entitled to, days with a spike of withheld fields.',
  'consent-coverage': 'Subjects per purpose and consent standing at the start and end of the period, from the consent ledger (reads no log).',
});

export const ConsentEntryKindEnum = graphqlEnum<ConsentEventKind>('ConsentEntryKind', CONSENT_EVENT_KINDS, 'What a consent-ledger entry states.', {
  grant: 'Consent to a purpose (GDPR Art. 7).',
  withdraw: 'Consent to a purpose withdrawn (GDPR Art. 7(3)).',
  object: 'An objection to processing for a purpose (GDPR Art. 21).',
  withdraw_objection: 'An objection withdrawn.',
  restrict: 'Processing restricted (GDPR Art. 18): fields are released only for purposes based on a legal obligation.',
  lift_restriction: 'The restriction lifted.',
});

export const OldCopiesEnum = graphqlEnum<OldCopies>('OldCopies', OLD_COPIES, "Whether old copies of erased values may remain in the database's own files, and until when (backups, archives and replicas are the operator's: docs/operations.md).", OLD_COPIES_MEANING);
