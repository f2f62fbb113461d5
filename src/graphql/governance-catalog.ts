import { GraphQLBoolean, type GraphQLField, GraphQLID, type GraphQLInputType, type GraphQLObjectType, type GraphQLSchema, GraphQLString, getNamedType, isInputObjectType, isIntrospectionType, isListType, isNonNullType, isObjectType, valueFromASTUntyped } from 'graphql';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { GOVERNANCE_EXTENSION, type GovernedFieldOptions, SUBJECT_EXTENSION } from './governed.decorator';

/** One field's governance as declared by `@Governed`, with what the schema says about its shape. */
export interface FieldGovernance {
  /** Schema coordinate, e.g. `Customer.email`. */
  readonly coordinate: string;
  readonly typeName: string;
  readonly fieldName: string;
  /** False when the field carries no `@Governed` (the schema lint refuses such a schema). */
  readonly annotated: boolean;
  readonly category: string;
  readonly purposes: readonly string[];
  readonly roles: readonly string[];
  /** Root fields: the reason under which calling it is recorded, if it is. */
  readonly recordAs?: string;
  /** Root fields: the argument (path) naming the data subject a recorded call acts on, if any. */
  readonly subjectArgument?: string;
  /** Root fields: the Boolean argument that filters the returned subjects on their choices, if any. */
  readonly filtersOnChoices?: string;
  /** The field's Boolean arguments (what `filtersOnChoices` may name). */
  readonly booleanArguments?: readonly string[];
  /** The paths to the field's single ID or String values, one input object deep (what `subjectArgument` may name). */
  readonly identifierArguments?: readonly string[];
  /** A Query/Mutation field. */
  readonly root: boolean;
  /** Where the record's data subject is found (`GovernedType({ subjectKey })`), if the type declares it. */
  readonly subjectKey?: string;
  readonly nonNull: boolean;
  /** The object type the field returns, if any (relations and root fields). */
  readonly returnsType?: string;
  /** The named type of the field's value, whatever its kind (`AccessLogConnection`, `Boolean`). */
  readonly returns: string;
  /**
   * What the `@governed` directives the SDL prints on the field say, one entry per directive; absent when
   * the field has no SDL node (a schema built by hand rather than from the annotations).
   */
  readonly shownInSdl?: readonly ShownGovernance[];
}

/** A `@governed` directive's arguments, as the SDL shows them. */
export interface ShownGovernance {
  readonly category?: unknown;
  readonly purposes?: unknown;
  readonly roles?: unknown;
}

/** The `@governed` directives of a field's SDL node, read back (what `Governed` wrote for the printed schema). */
function shownGovernance(field: GraphQLField<unknown, unknown>): ShownGovernance[] | undefined {
  if (!field.astNode) return undefined;
  return (field.astNode.directives ?? [])
    .filter((directive) => directive.name.value === 'governed')
    .map((directive) => Object.fromEntries((directive.arguments ?? []).map((argument) => [argument.name.value, valueFromASTUntyped(argument.value)])));
}

/**
 * Whether the SDL shows exactly the governance that is enforced. The directive and the extensions are two
 * copies `Governed` writes; a field declared twice (a subclass narrowing an inherited field, a field
 * resolver annotating a property again) gets them merged differently, and the printed schema would then
 * promise less than the enforcement allows.
 */
function sdlShowsGovernance(field: FieldGovernance): boolean {
  if (!field.shownInSdl) return true;
  if (field.shownInSdl.length !== 1) return false;
  const [shown] = field.shownInSdl;
  const sameList = (list: unknown, expected: readonly string[]) => JSON.stringify(list ?? []) === JSON.stringify(expected);
  return shown.category === field.category && sameList(shown.purposes, field.purposes) && sameList(shown.roles, field.roles);
}

/** Every field of every object type of the schema (introspection types excluded), sorted by coordinate. */
export function readGovernance(schema: GraphQLSchema): FieldGovernance[] {
  const rootTypes = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(Boolean));
  const fields: FieldGovernance[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || isIntrospectionType(type)) continue;
    const subjectKey = type.extensions?.[SUBJECT_EXTENSION] as string | undefined;
    for (const field of Object.values(type.getFields())) fields.push(describeField(type, field, rootTypes.has(type), subjectKey));
  }
  return fields.sort((a, b) => (a.coordinate < b.coordinate ? -1 : a.coordinate > b.coordinate ? 1 : 0));
}

function describeField(type: GraphQLObjectType, field: GraphQLField<unknown, unknown>, root: boolean, subjectKey: string | undefined): FieldGovernance {
  const options = field.extensions?.[GOVERNANCE_EXTENSION] as GovernedFieldOptions | undefined;
  const named = getNamedType(field.type);
  return {
    coordinate: `${type.name}.${field.name}`,
    typeName: type.name,
    fieldName: field.name,
    annotated: options !== undefined,
    category: options?.category ?? '',
    purposes: options?.purposes ?? [],
    roles: options?.roles ?? [],
    recordAs: options?.recordAs,
    subjectArgument: options?.subjectArgument,
    filtersOnChoices: options?.filtersOnChoices,
    booleanArguments: field.args.filter((argument) => getNamedType(argument.type) === GraphQLBoolean).map((argument) => argument.name),
    identifierArguments: identifierPaths(field),
    root,
    subjectKey,
    nonNull: isNonNullType(field.type),
    returnsType: isObjectType(named) ? named.name : undefined,
    returns: named.name,
    shownInSdl: shownGovernance(field),
  };
}

/**
 * `id`, `input.subjectId`: the field's arguments, and their input objects' fields, that always hold one ID or
 * String (non-null: a call without it would be recorded naming no one).
 */
function identifierPaths(field: GraphQLField<unknown, unknown>): string[] {
  const isIdentifier = (type: GraphQLInputType) => isNonNullType(type) && (type.ofType === GraphQLID || type.ofType === GraphQLString);
  const paths: string[] = [];
  for (const argument of field.args) {
    if (isIdentifier(argument.type)) paths.push(argument.name);
    const named = getNamedType(argument.type);
    if (isInputObjectType(named) && !isListType(isNonNullType(argument.type) ? argument.type.ofType : argument.type)) {
      for (const inner of Object.values(named.getFields())) if (isIdentifier(inner.type)) paths.push(`${argument.name}.${inner.name}`);
    }
  }
  return paths;
}

/** A schema whose governance is incomplete or wrong; lists every problem by coordinate. */
export class SchemaGovernanceError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`the schema is not fully governed:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'SchemaGovernanceError';
  }
}

/**
 * Checks every field against the taxonomy; the server refuses to start on any problem. A personal field
 * must be nullable (a withheld non-null field would null its parent, up to the whole response) and must
 * belong to a type that says where its data subject is.
 */
export function lintGovernance(fields: readonly FieldGovernance[], taxonomy: Taxonomy): string[] {
  const problems: string[] = [];
  for (const field of fields) {
    const at = field.coordinate;
    if (!field.annotated) {
      problems.push(`${at} has no @Governed annotation`);
      continue;
    }
    if (!sdlShowsGovernance(field)) {
      problems.push(`${at} shows other governance in the SDL (${field.shownInSdl!.length} @governed directives) than it enforces: declare @Governed once per field, not again on a subclass or a field resolver`);
    }
    const category = taxonomy.categories.get(field.category);
    if (!category) problems.push(`${at} names unknown category "${field.category}"`);
    for (const purpose of field.purposes) if (!taxonomy.purposes.has(purpose)) problems.push(`${at} names unknown purpose "${purpose}"`);
    if (field.recordAs && !field.root) problems.push(`${at} declares recordAs, which only root fields may`);
    if (field.filtersOnChoices && !field.root) problems.push(`${at} declares filtersOnChoices, which only root fields may`);
    // A subject argument names whom a call's record is about: without recordAs there is no record, and a
    // misnamed one would record every call without its subject.
    if (field.subjectArgument && !field.recordAs) problems.push(`${at} declares subjectArgument without recordAs: only a recorded call names its subject`);
    if (field.subjectArgument && field.recordAs && !(field.identifierArguments ?? []).includes(field.subjectArgument)) problems.push(`${at} declares subjectArgument "${field.subjectArgument}", which is not a non-null ID or String argument of the field (or a field of an input argument)`);
    // A misnamed argument would never be seen set: the filter would run and its subjects go unrecorded.
    if (field.filtersOnChoices && field.root && !(field.booleanArguments ?? []).includes(field.filtersOnChoices)) problems.push(`${at} declares filtersOnChoices "${field.filtersOnChoices}", which is not a Boolean argument of the field`);
    // Roles are checked when an operation is called: on any other field they would look like a protection and be none.
    if (field.roles.length && !field.root) problems.push(`${at} declares roles, which only root fields may (they are checked when an operation is called)`);
    if (!category?.personal) continue;
    if (field.root) problems.push(`${at} is a root field with personal category "${field.category}"; root fields are operations, annotate them system.operations`);
    if (field.nonNull) problems.push(`${at} is non-nullable but has personal category "${field.category}"; make it nullable so it can be withheld`);
    if (field.purposes.length === 0) problems.push(`${at} has personal category "${field.category}" but declares no purposes`);
    if (!field.subjectKey) problems.push(`${at} is personal but type ${field.typeName} declares no data subject (GovernedType subjectKey)`);
  }
  return problems;
}

export function assertGoverned(fields: readonly FieldGovernance[], taxonomy: Taxonomy): void {
  const problems = lintGovernance(fields, taxonomy);
  if (problems.length) throw new SchemaGovernanceError(problems);
}
