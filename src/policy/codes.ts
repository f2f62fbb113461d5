/**
 * Every code Candor puts in `extensions.code`. Decision reasons explain a field-level release or denial;
 * refusal codes stop a whole operation before execution. Codes are stable API: never rename one.
 */
export const RELEASE_REASONS = ['SUBJECT_REQUEST', 'NON_PERSONAL', 'LEGAL_BASIS', 'CONSENT_GIVEN'] as const;
export type ReleaseReason = (typeof RELEASE_REASONS)[number];

export const DENIAL_REASONS = [
  'PURPOSE_NOT_DECLARED',
  'GOVERNANCE_UNAVAILABLE',
  'PROCESSING_RESTRICTED',
  'OBJECTED',
  'EXPLICIT_CONSENT_REQUIRED',
  'CONSENT_REQUIRED',
  'CONSENT_RENEWAL_REQUIRED',
] as const;
export type DenialReason = (typeof DENIAL_REASONS)[number];

export type DecisionReason = ReleaseReason | DenialReason;

/** Plain-language explanation of each denial, used in error messages (never containing a value). */
export const DENIAL_EXPLANATIONS: Readonly<Record<DenialReason, string>> = {
  PURPOSE_NOT_DECLARED: 'the field is not declared for this purpose',
  GOVERNANCE_UNAVAILABLE: "the data subject's consent state could not be loaded, so the field is withheld",
  PROCESSING_RESTRICTED: 'the data subject has restricted processing of their data',
  OBJECTED: 'the data subject has objected to processing for this purpose',
  EXPLICIT_CONSENT_REQUIRED: 'special-category data needs the data subject’s explicit consent for this purpose',
  CONSENT_REQUIRED: 'the data subject has not given consent for this purpose',
  CONSENT_RENEWAL_REQUIRED: "the data subject's consent predates a material change of this purpose's notice and must be renewed",
};

/** The access-log reason of a subject a list kept because their choices allow the purpose (`onlyPermitted`). */
export const FILTERED_ON_CHOICES = 'FILTERED_ON_CHOICES';
/** The access-log reason of a subject such a list left out of its page because their choices do not allow the purpose. */
export const FILTERED_OUT_ON_CHOICES = 'FILTERED_OUT_ON_CHOICES';
/**
 * The records of a list filtered on the subjects' choices: it read the choices to respect them, which is no
 * use of a field a purpose declares (usage figures and the ROPA leave them out; the subject-access report lists them).
 */
export const CHOICE_FILTER_REASONS: ReadonlySet<string> = new Set([FILTERED_ON_CHOICES, FILTERED_OUT_ON_CHOICES]);

/** The category of what a subject's consent ledger and choices tell: their privacy preferences. */
export const CHOICES_CATEGORY = 'user.privacy_preferences';
/** The access-log reason of a subject's choices recorded by staff (a consent mutation). */
export const CHOICE_RECORDED = 'CHOICE_RECORDED';
/** The access-log reason of a subject's consent history read by staff (`consentHistory`). */
export const CHOICES_READ = 'CHOICES_READ';
/** Operations on a subject's consent ledger that decide no field: a use of their privacy preferences all the same. */
export const CHOICES_OPERATIONS: ReadonlySet<string> = new Set([CHOICE_RECORDED, CHOICES_READ]);

/** Rule 0's reason: the data subject looking at their own record (the privacy page), their right of access. */
export const SELF_ACCESS: (typeof RELEASE_REASONS)[number] = 'SUBJECT_REQUEST';

/** Refusals of a whole operation, with their HTTP status. */
export const REFUSALS = {
  UNAUTHENTICATED: 401,
  PURPOSE_REQUIRED: 400,
  PURPOSE_UNKNOWN: 400,
  PURPOSE_NOT_REQUESTABLE: 400,
  PURPOSE_NOT_PERMITTED: 403,
  /** The actor store could not be read: nobody is authenticated, so nothing runs (fail closed). */
  GOVERNANCE_UNAVAILABLE: 503,
  AUDIT_UNAVAILABLE: 503,
  RATE_LIMITED: 429,
  TOO_MANY_TOKENS: 400,
  BATCH_NOT_ALLOWED: 400,
  BATCH_TOO_LARGE: 400,
  BAD_GOVERNANCE_HEADER: 400,
  GOVERNANCE_REJECTED: 403,
  EXPLAIN_QUERIES_ONLY: 400,
  /** The log repeats the name in each of the operation's records: a name past its limit is not run. */
  OPERATION_NAME_TOO_LONG: 400,
} as const;
export type RefusalCode = keyof typeof REFUSALS;

/** Documents refused by the query limits (depth, aliases, cost, tokens, directives). */
export const QUERY_LIMIT_CODES = ['QUERY_TOO_DEEP', 'TOO_MANY_ALIASES', 'QUERY_TOO_COSTLY', 'TOO_MANY_TOKENS', 'TOO_MANY_DIRECTIVES'] as const;

/** Field-level errors that are not decisions on personal data. */
export const FIELD_ERROR_CODES = ['FORBIDDEN', 'BAD_USER_INPUT', 'AUDIT_LOG_BROKEN'] as const;

/** Errors Apollo Server itself produces for malformed requests; safe to show as they are. */
export const APOLLO_REQUEST_ERROR_CODES = [
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
] as const;

/** Every code `formatError` lets through; anything else is masked as INTERNAL_SERVER_ERROR. */
export const PUBLIC_ERROR_CODES: ReadonlySet<string> = new Set<string>([
  ...RELEASE_REASONS,
  ...DENIAL_REASONS,
  ...Object.keys(REFUSALS),
  ...FIELD_ERROR_CODES,
  ...QUERY_LIMIT_CODES,
  ...APOLLO_REQUEST_ERROR_CODES,
]);
