import { anyCovers } from '../taxonomy/keys';
import { type Category, latestChangeAt } from '../taxonomy/taxonomy';

/**
 * The schema diff gate: what changed in the governance of the schema between a base `governance.json`
 * and the one the annotations produce now, and which of those changes need a privacy review before they
 * merge. Pure: documents in, a diff out, and renderers for a pull-request comment. Reading the base (a
 * file or a git ref) is the CLI's job (src/cli/schema.command.ts).
 */

/** One field of `schema/governance.json`, as `npx candor schema emit` writes it (src/graphql/schema-files.ts). */
export interface GovernedFieldEntry {
  readonly category: string;
  readonly purposes: readonly string[];
  /** Absent from documents written before the flags existed; then taken from the taxonomy. */
  readonly personal?: boolean;
  readonly special?: boolean;
  readonly sensitive?: boolean;
  readonly roles?: readonly string[];
  readonly subjectKey?: string;
  /** The category's masked release (strategy and purposes), compared like purposes. */
  readonly mask?: { readonly strategy: string; readonly purposes: readonly string[] };
  /** A root field (an operation): its purposes are the ones it serves, and none means every purpose. */
  readonly root?: boolean;
  /** Root fields: the reason each call is recorded under. */
  readonly recordAs?: string;
  /** Root fields: the argument naming the data subject each recorded call is recorded with. */
  readonly subjectArgument?: string;
  /** Root fields: the argument that filters the returned subjects on their choices (each then recorded). */
  readonly filtersOnChoices?: string;
  /**
   * Root fields: the named type the operation returns; relations: the object type they lead to. Absent from
   * documents written before it was emitted.
   */
  readonly returns?: string;
}

/** One purpose of the taxonomy, as `schema emit` writes it. */
export interface GovernedPurposeEntry {
  /** Null for a grouping purpose, which no request may declare. */
  readonly legalBasis: string | null;
  readonly noticeVersion?: number;
  readonly materialNotice?: boolean;
  /**
   * The material changes of the purpose's notice (ISO-8601, earliest first): from each one on, consents given
   * before it no longer count and must be renewed. Absent from documents written before it was emitted.
   */
  readonly materialChanges?: readonly string[];
}

export interface GovernanceDocument {
  readonly taxonomyVersion?: number;
  /** Purpose key → what it rests on; absent from documents written before purposes were emitted. */
  readonly purposes?: ReadonlyMap<string, GovernedPurposeEntry>;
  /** Coordinate (`Customer.email`) → governance. */
  readonly fields: ReadonlyMap<string, GovernedFieldEntry>;
}

/** Every kind of change the gate reports, in the order a reviewer reads them, with its default review need. */
export const GOVERNANCE_CHANGES = {
  personal_field_added: { title: 'new personal field', review: true },
  operation_added: { title: 'new operation', review: true },
  relation_added: { title: 'new relation', review: true },
  returns_changed: { title: 'returns another type', review: true },
  category_changed: { title: 'category changed', review: true },
  purposes_widened: { title: 'purposes widened', review: true },
  became_special: { title: 'became special category (GDPR Art. 9)', review: true },
  no_longer_special: { title: 'no longer special category (GDPR Art. 9)', review: true },
  mask_purposes_added: { title: 'masked release widened', review: true },
  mask_strategy_changed: { title: 'mask strategy changed', review: true },
  roles_removed: { title: 'roles no longer required', review: true },
  subject_changed: { title: 'data subject found elsewhere', review: true },
  recording_removed: { title: 'calls no longer recorded', review: true },
  legal_basis_changed: { title: 'legal basis changed', review: true },
  consent_renewal_relaxed: { title: 'consents from before a material notice change count again', review: true },
  purpose_added: { title: 'new purpose', review: true },
  became_sensitive: { title: 'became sensitive (CPRA)', review: false },
  no_longer_sensitive: { title: 'no longer sensitive (CPRA)', review: false },
  purposes_narrowed: { title: 'purposes narrowed', review: false },
  mask_purposes_removed: { title: 'masked release narrowed', review: false },
  roles_added: { title: 'roles now required', review: false },
  recording_added: { title: 'calls now recorded', review: false },
  notice_changed: { title: 'purpose notice changed', review: false },
  purpose_removed: { title: 'purpose removed', review: false },
  field_added: { title: 'new non-personal field', review: false },
  field_removed: { title: 'field removed', review: false },
} as const;
export type GovernanceChangeKind = keyof typeof GOVERNANCE_CHANGES;
const KIND_ORDER = Object.keys(GOVERNANCE_CHANGES) as GovernanceChangeKind[];

export interface GovernanceChange {
  /** Schema coordinate, e.g. `Customer.email`. */
  readonly coordinate: string;
  readonly kind: GovernanceChangeKind;
  /** True when the change must be reviewed by privacy before it merges (the gate exits 1). */
  readonly review: boolean;
  /** The field's category (at the base for a removed field). */
  readonly category: string;
  /** Category, mask strategy or subject key before the change. */
  readonly from?: string;
  /** Category, mask strategy or subject key after the change. */
  readonly to?: string;
  /** Purposes or roles gained or lost; for an added or removed field, its purposes. */
  readonly keys?: readonly string[];
  /** Added personal fields: whether the category is special (Art. 9) or sensitive. */
  readonly special?: boolean;
  readonly sensitive?: boolean;
  /** Why the change matters, or does not, when the kind alone does not say it (e.g. a category change that makes a field non-personal). */
  readonly note?: string;
}

export interface GovernanceDiff {
  /** Review items first, then by coordinate and kind. */
  readonly changes: readonly GovernanceChange[];
  readonly reviewRequired: boolean;
}

/** Input the gate cannot use; `code` is stable, the message fits one line. */
export class SchemaDiffError extends Error {
  constructor(
    readonly code: SchemaDiffErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'SchemaDiffError';
  }
}
export type SchemaDiffErrorCode =
  | 'BAD_ARGUMENT'
  | 'BASE_UNREADABLE'
  | 'GOVERNANCE_NOT_JSON'
  | 'GOVERNANCE_MALFORMED'
  | 'GIT_UNAVAILABLE'
  | 'GIT_REF_UNKNOWN'
  | 'BASE_MISSING_AT_REF'
  | 'OUT_UNWRITABLE';

/** Parses and checks a `governance.json`; `source` names it in errors. */
export function parseGovernanceDocument(text: string, source: string): GovernanceDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SchemaDiffError('GOVERNANCE_NOT_JSON', `${source} is not JSON (${(error as Error).message})`);
  }
  const malformed = (problem: string): never => {
    throw new SchemaDiffError('GOVERNANCE_MALFORMED', `${source}: ${problem}; expected the schema/governance.json written by \`npx candor schema emit\``);
  };
  const root = isRecord(parsed) ? parsed : malformed('the document is not a JSON object');
  const fieldsNode = isRecord(root.fields) ? root.fields : malformed('there is no "fields" object');
  const taxonomyVersion = root.taxonomyVersion;
  if (taxonomyVersion !== undefined && typeof taxonomyVersion !== 'number') malformed('"taxonomyVersion" is not a number');
  const fields = new Map<string, GovernedFieldEntry>();
  for (const [coordinate, node] of Object.entries(fieldsNode)) {
    const at = `field "${coordinate}"`;
    const entry = isRecord(node) ? node : malformed(`${at} is not an object`);
    if (typeof entry.category !== 'string' || entry.category === '') malformed(`${at} has no category`);
    const purposes = textList(entry.purposes) ?? malformed(`${at} has no list of purposes`);
    for (const flagName of ['personal', 'special', 'sensitive'] as const) {
      if (entry[flagName] !== undefined && typeof entry[flagName] !== 'boolean') malformed(`${at}: "${flagName}" is not true or false`);
    }
    const roles = entry.roles === undefined ? undefined : (textList(entry.roles) ?? malformed(`${at}: "roles" is not a list of role names`));
    if (entry.subjectKey !== undefined && typeof entry.subjectKey !== 'string') malformed(`${at}: "subjectKey" is not text`);
    let mask: GovernedFieldEntry['mask'];
    if (entry.mask !== undefined) {
      const maskNode = isRecord(entry.mask) ? entry.mask : malformed(`${at}: "mask" is not an object`);
      const maskPurposes = textList(maskNode.purposes);
      if (typeof maskNode.strategy !== 'string' || !maskPurposes) malformed(`${at}: "mask" needs a strategy and a list of purposes`);
      mask = { strategy: maskNode.strategy as string, purposes: maskPurposes as string[] };
    }
    if (entry.root !== undefined && typeof entry.root !== 'boolean') malformed(`${at}: "root" is not true or false`);
    for (const textField of ['recordAs', 'subjectArgument', 'filtersOnChoices', 'returns'] as const) {
      if (entry[textField] !== undefined && typeof entry[textField] !== 'string') malformed(`${at}: "${textField}" is not text`);
    }
    fields.set(coordinate, {
      category: entry.category as string,
      purposes,
      personal: entry.personal as boolean | undefined,
      special: entry.special as boolean | undefined,
      sensitive: entry.sensitive as boolean | undefined,
      roles,
      subjectKey: entry.subjectKey as string | undefined,
      mask,
      root: entry.root as boolean | undefined,
      recordAs: entry.recordAs as string | undefined,
      subjectArgument: entry.subjectArgument as string | undefined,
      filtersOnChoices: entry.filtersOnChoices as string | undefined,
      returns: entry.returns as string | undefined,
    });
  }
  let purposes: Map<string, GovernedPurposeEntry> | undefined;
  if (root.purposes !== undefined) {
    const purposesNode = isRecord(root.purposes) ? root.purposes : malformed('"purposes" is not an object');
    purposes = new Map();
    for (const [key, node] of Object.entries(purposesNode)) {
      const entry = isRecord(node) ? node : malformed(`purpose "${key}" is not an object`);
      if (entry.legalBasis !== null && typeof entry.legalBasis !== 'string') malformed(`purpose "${key}": "legalBasis" is not text or null`);
      if (entry.noticeVersion !== undefined && typeof entry.noticeVersion !== 'number') malformed(`purpose "${key}": "noticeVersion" is not a number`);
      if (entry.materialNotice !== undefined && typeof entry.materialNotice !== 'boolean') malformed(`purpose "${key}": "materialNotice" is not true or false`);
      const changes = entry.materialChanges;
      if (changes !== undefined && (!Array.isArray(changes) || changes.some((change) => typeof change !== 'string' || Number.isNaN(Date.parse(change))))) {
        malformed(`purpose "${key}": "materialChanges" is not a list of times`);
      }
      purposes.set(key, {
        legalBasis: entry.legalBasis as string | null,
        noticeVersion: entry.noticeVersion as number | undefined,
        materialNotice: entry.materialNotice as boolean | undefined,
        materialChanges: changes as string[] | undefined,
      });
    }
  }
  return { taxonomyVersion: taxonomyVersion as number | undefined, ...(purposes ? { purposes } : {}), fields };
}

interface Flags {
  readonly personal: boolean;
  readonly special: boolean;
  readonly sensitive: boolean;
}

/**
 * Compares the governance of every field. Purposes are compared by coverage, as decide() does: replacing
 * `marketing.communications` by `marketing` widens the field; the reverse narrows it. `categories` (the
 * taxonomy's) supplies personal/special/sensitive for entries that do not carry them; a category known to
 * neither is assumed personal, so that it is reviewed rather than waved through.
 */
export function diffGovernance(base: GovernanceDocument, head: GovernanceDocument, categories: ReadonlyMap<string, Category> = new Map(), now = new Date()): GovernanceDiff {
  const flagsOf = (entry: GovernedFieldEntry): Flags => {
    const category = categories.get(entry.category);
    return {
      personal: entry.personal ?? category?.personal ?? true,
      special: entry.special ?? category?.special ?? false,
      sensitive: entry.sensitive ?? category?.sensitive ?? false,
    };
  };
  const changes: GovernanceChange[] = [];
  /** A recorder of the changes of one coordinate (a field, or `purpose <key>`), reviewed as its kind says unless told. */
  const changesOf =
    (coordinate: string, category: string) =>
    (kind: GovernanceChangeKind, details: Omit<GovernanceChange, 'coordinate' | 'kind' | 'review' | 'category'> = {}, review: boolean = GOVERNANCE_CHANGES[kind].review) =>
      changes.push({ coordinate, kind, review, category, ...details });
  const coordinates = [...new Set([...base.fields.keys(), ...head.fields.keys()])].sort();
  // Documents that say where relations lead say it of every relation: there, a field without `returns` is a
  // scalar, and one that gains it became a way into other records. (Older documents said it of none.)
  const saysReturns = (document: GovernanceDocument) => [...document.fields.values()].some((entry) => entry.returns !== undefined);
  const comparesReturns = saysReturns(base) && saysReturns(head);
  for (const coordinate of coordinates) {
    const before = base.fields.get(coordinate);
    const after = head.fields.get(coordinate);
    const add = changesOf(coordinate, (after ?? before)!.category);
    if (!before) {
      const flags = flagsOf(after!);
      // An operation is a way into data: what it returns (the access log, a report) is protected by its own
      // roles and recording, which a new operation may lack. Every new one is reviewed.
      if (after!.root) add('operation_added', { keys: after!.purposes, ...(after!.returns ? { to: after!.returns } : {}), note: after!.roles?.length ? `roles: ${after!.roles.join(', ')}` : 'no roles required' });
      // A relation leads from a record to others: to records of the log or of another person, whatever its own category says.
      else if (after!.returns) add('relation_added', { keys: after!.purposes, to: after!.returns });
      else if (flags.personal) add('personal_field_added', { keys: after!.purposes, special: flags.special, sensitive: flags.sensitive });
      else add('field_added', { keys: after!.purposes });
      continue;
    }
    if (!after) {
      add('field_removed', { keys: before.purposes });
      continue;
    }
    const [was, is] = [flagsOf(before), flagsOf(after)];
    if (comparesReturns && before.returns !== after.returns) add('returns_changed', { from: before.returns ?? 'a scalar', to: after.returns ?? 'a scalar' });
    if (before.category !== after.category) {
      const note = was.personal === is.personal ? undefined : is.personal ? 'now personal: released only per purpose and data subject' : 'no longer personal: released to every caller without a decision';
      add('category_changed', { from: before.category, to: after.category, ...(note ? { note } : {}) });
    }
    // An operation's purposes are the ones it may be called for, and none means every one: dropping the last
    // opens it to all. A purpose on a non-personal field changes nothing (decide() releases non-personal data
    // whole): listed, not reviewed.
    const operation = Boolean(before.root || after.root);
    if (operation && before.purposes.length > 0 && after.purposes.length === 0) {
      add('purposes_widened', { keys: ['every purpose'], note: 'an operation declaring no purpose serves them all' });
    } else {
      const widened = uncovered(after.purposes, before.purposes);
      if (widened.length) add('purposes_widened', { keys: widened, ...(is.personal || operation ? {} : { note: 'non-personal: released whatever the purpose' }) }, is.personal || operation);
      const narrowed = uncovered(before.purposes, after.purposes);
      if (narrowed.length) add('purposes_narrowed', { keys: narrowed });
    }
    if (!was.special && is.special) add('became_special');
    if (was.special && !is.special) add('no_longer_special');
    // Special implies sensitive: report the sensitive flag only when special did not already say it.
    if (!was.sensitive && is.sensitive && !(is.special && !was.special)) add('became_sensitive');
    if (was.sensitive && !is.sensitive && !(was.special && !is.special)) add('no_longer_sensitive');
    const maskAdded = uncovered(after.mask?.purposes ?? [], before.mask?.purposes ?? []);
    if (maskAdded.length) add('mask_purposes_added', { keys: maskAdded, to: after.mask!.strategy });
    const maskRemoved = uncovered(before.mask?.purposes ?? [], after.mask?.purposes ?? []);
    if (maskRemoved.length) add('mask_purposes_removed', { keys: maskRemoved, from: before.mask!.strategy });
    if (before.mask && after.mask && before.mask.strategy !== after.mask.strategy) add('mask_strategy_changed', { from: before.mask.strategy, to: after.mask.strategy });
    // Roles are exact names, not dotted keys: a role that is no longer required opens the field to more actors.
    const rolesRemoved = (before.roles ?? []).filter((role) => !(after.roles ?? []).includes(role));
    if (rolesRemoved.length) add('roles_removed', { keys: rolesRemoved });
    const rolesAdded = (after.roles ?? []).filter((role) => !(before.roles ?? []).includes(role));
    if (rolesAdded.length) add('roles_added', { keys: rolesAdded });
    // Another subject key means another person's consent decides the field.
    if (before.subjectKey !== undefined && after.subjectKey !== undefined && before.subjectKey !== after.subjectKey) add('subject_changed', { from: before.subjectKey, to: after.subjectKey });
    // What an operation's calls leave in the access log: less of it is less evidence.
    for (const [was, is_, what] of [
      [before.recordAs, after.recordAs, 'each call'],
      [before.subjectArgument, after.subjectArgument, "each call's data subject"],
      [before.filtersOnChoices, after.filtersOnChoices, 'each subject the filter looked at'],
    ] as const) {
      if (was !== undefined && was !== is_) add('recording_removed', { from: was, ...(is_ ? { to: is_ } : {}), note: `${what} was recorded` });
      if (is_ !== undefined && was === undefined) add('recording_added', { to: is_ });
    }
  }
  // Purposes as the taxonomy defines them, when both documents carry them (older ones did not).
  if (base.purposes && head.purposes) {
    const personalHead = [...head.fields.values()].filter((entry) => flagsOf(entry).personal);
    // A purpose matters when a personal field may serve it: declared for it or a broader purpose, or masked for it.
    const served = (key: string) => personalHead.some((entry) => anyCovers(entry.purposes, key) || anyCovers(entry.mask?.purposes ?? [], key));
    for (const key of [...new Set([...base.purposes.keys(), ...head.purposes.keys()])].sort()) {
      const [was, is_] = [base.purposes.get(key), head.purposes.get(key)];
      const add = changesOf(`purpose ${key}`, '—');
      if (!was) add('purpose_added', { to: is_!.legalBasis ?? 'grouping', ...(served(key) ? {} : { note: 'no personal field serves it' }) }, is_!.legalBasis !== null && served(key));
      else if (!is_) add('purpose_removed', { from: was.legalBasis ?? 'grouping' });
      else {
        if (was.legalBasis !== is_.legalBasis) add('legal_basis_changed', { from: was.legalBasis ?? 'grouping', to: is_.legalBasis ?? 'grouping' });
        if (was.noticeVersion !== is_.noticeVersion || was.materialNotice !== is_.materialNotice) {
          add('notice_changed', { from: `version ${was.noticeVersion ?? '?'}`, to: `version ${is_.noticeVersion ?? '?'}${is_.materialNotice ? ', material' : ''}` });
        }
        const relaxed = was.materialChanges && is_.materialChanges ? renewalRelaxed(was.materialChanges, is_.materialChanges, now) : undefined;
        if (relaxed) add('consent_renewal_relaxed', relaxed);
      }
    }
  }
  changes.sort((a, b) => Number(b.review) - Number(a.review) || compareText(a.coordinate, b.coordinate) || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
  return { changes, reviewRequired: changes.some((change) => change.review) };
}

/**
 * Whether, at some time from `now` on, the head asks fewer consents to be renewed than the base did: the
 * latest material change in effect then is missing from the head or earlier than the base's (a change
 * dropped, moved earlier, or replaced by one dated later without `materialSince`, which leaves the time
 * between uncovered). The first such time is what the change says.
 */
function renewalRelaxed(base: readonly string[], head: readonly string[], now: Date): { from: string; to: string } | undefined {
  const [before, after] = [base, head].map((changes) => changes.map((change) => new Date(change)));
  const times = [now, ...[...before, ...after].filter((change) => change.getTime() > now.getTime())].sort((a, b) => a.getTime() - b.getTime());
  for (const at of times) {
    const [was, is_] = [latestChangeAt(before, at), latestChangeAt(after, at)];
    if (was && (!is_ || is_.getTime() < was.getTime())) {
      const when = at === now ? 'now' : `from ${at.toISOString()}`;
      return { from: `${when}: renew consents given before ${was.toISOString()}`, to: is_ ? `renew consents given before ${is_.toISOString()}` : 'no renewal' };
    }
  }
  return undefined;
}

/** The base of a comparison: a governance file, or that file at a git ref (and the commit it resolved to). */
export type DiffBase = { readonly file: string } | { readonly ref: string; readonly file: string; readonly commit: string };

/** What the two sides of the comparison were, for the reader of the summary. */
export interface DiffLabels {
  readonly base: DiffBase;
  /** e.g. "the annotations in this working tree". */
  readonly head: string;
}

/** The base as a Markdown reader reads it: "`origin/main` (schema/governance.json at 1a2b3c4d5e6f)". */
const baseInMarkdown = (base: DiffBase) => ('ref' in base ? `\`${base.ref}\` (${base.file} at ${base.commit.slice(0, 12)})` : `\`${base.file}\``);

export const DIFF_FORMATS = ['md', 'json'] as const;
export type DiffFormat = (typeof DIFF_FORMATS)[number];

export function renderGovernanceDiff(diff: GovernanceDiff, labels: DiffLabels, format: DiffFormat): string {
  return format === 'json' ? renderJson(diff, labels) : renderMarkdown(diff, labels);
}

function renderJson(diff: GovernanceDiff, labels: DiffLabels): string {
  const review = diff.changes.filter((change) => change.review).length;
  return JSON.stringify({ base: labels.base, head: labels.head, reviewRequired: diff.reviewRequired, counts: { review, informational: diff.changes.length - review }, changes: diff.changes }, null, 2) + '\n';
}

/** A summary for a pull-request comment: review items first, one table row per change. */
function renderMarkdown(diff: GovernanceDiff, labels: DiffLabels): string {
  const review = diff.changes.filter((change) => change.review);
  const informational = diff.changes.filter((change) => !change.review);
  const lines = [
    `## Candor schema diff: ${diff.reviewRequired ? 'privacy review required' : 'no privacy review needed'}`,
    '',
    `Compared ${labels.head} with ${baseInMarkdown(labels.base)}.`,
    '',
  ];
  if (diff.changes.length === 0) {
    lines.push('No governance changes: every field keeps its category, purposes, roles and data subject.');
    return lines.join('\n') + '\n';
  }
  lines.push(`${plural(review.length, 'change needs', 'changes need')} privacy review; ${plural(informational.length, 'change is', 'changes are')} informational.`, '');
  const table = (rows: readonly GovernanceChange[]) => {
    lines.push('| Field | Change | Detail |', '|---|---|---|');
    for (const change of rows) lines.push(`| ${code(change.coordinate)} | ${GOVERNANCE_CHANGES[change.kind].title} | ${detail(change)}${change.note ? ` (${change.note})` : ''} |`);
    lines.push('');
  };
  if (review.length) {
    lines.push('### Needs privacy review', '');
    table(review);
    lines.push('A privacy reviewer should confirm each item above (purpose compatibility, legal basis, notice) before this merges.', '');
  }
  if (informational.length) {
    // Folded: a schema change adds many non-personal fields, which must not bury the review items.
    lines.push('<details>', `<summary>Informational (${informational.length})</summary>`, '');
    table(informational);
    lines.push('</details>', '');
  }
  return lines.join('\n');
}

function detail(change: GovernanceChange): string {
  const keys = (change.keys ?? []).map(code).join(', ');
  const category = code(change.category);
  switch (change.kind) {
    case 'personal_field_added':
      return `${category} for ${keys || 'no purpose'}${change.special ? ' · special category (Art. 9)' : change.sensitive ? ' · sensitive' : ''}`;
    case 'field_added':
      return category;
    case 'operation_added':
      return `${change.to ? `returns ${code(change.to)}, ` : ''}for ${keys || 'every purpose'}`;
    case 'relation_added':
      return `${category} to ${code(change.to!)}${keys ? ` for ${keys}` : ''}`;
    case 'field_removed':
      return `was ${category}${keys ? ` for ${keys}` : ''}`;
    case 'category_changed':
    case 'returns_changed':
    case 'mask_strategy_changed':
    case 'subject_changed':
    case 'legal_basis_changed':
    case 'consent_renewal_relaxed':
    case 'notice_changed':
      return `${code(change.from!)} → ${code(change.to!)}`;
    case 'recording_removed':
      return change.to ? `${code(change.from!)} → ${code(change.to)}` : `no longer ${code(change.from!)}`;
    case 'recording_added':
      return code(change.to!);
    case 'purpose_added':
      return `on ${code(change.to!)}`;
    case 'purpose_removed':
      return `was on ${code(change.from!)}`;
    case 'purposes_widened':
    case 'roles_added':
      return `adds ${keys}`;
    case 'purposes_narrowed':
    case 'roles_removed':
      return `drops ${keys}`;
    case 'became_special':
      return `${category}: explicit consent now required`;
    case 'no_longer_special':
      return `${category}: explicit consent no longer required`;
    case 'became_sensitive':
    case 'no_longer_sensitive':
      return category;
    case 'mask_purposes_added':
      return `${code(change.to!)} for ${keys}`;
    case 'mask_purposes_removed':
      return `no ${code(change.from!)} release for ${keys}`;
  }
}

/** The keys of `keys` that no key of `by` covers (dot-boundary coverage, as everywhere in Candor). */
function uncovered(keys: readonly string[], by: readonly string[]): string[] {
  return keys.filter((key) => !anyCovers(by, key));
}

/** Inline code that a stray backtick, pipe or newline in a base file cannot break out of. */
function code(text: string): string {
  return '`' + text.replace(/[`\r\n]/g, ' ').replace(/\|/g, '\\|') + '`';
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function textList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? (value as string[]) : undefined;
}
