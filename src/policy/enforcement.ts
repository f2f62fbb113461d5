import { defaultFieldResolver, getNamedType, GraphQLError, type GraphQLNamedType, type GraphQLSchema, isAbstractType, isObjectType } from 'graphql';
import { applyMiddlewareToDeclaredResolvers, type IMiddlewareFunction } from 'graphql-middleware';
import { deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield/typings/types';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { isReleasedWithoutSubject } from './decide';
import { type CompiledFields, compileFields, type FieldDeclaration, type GuardedField } from './guarded-field';
import { asArray, type GuardedLeaves, listDepthOf, type RequestGovernance } from './request-governance';

/** Where the server puts a request's governance in the GraphQL context. */
export const GOVERNANCE_CONTEXT_KEY = 'governance';

export interface GovernedFieldDeclaration extends FieldDeclaration {
  readonly typeName: string;
  /** The object type a root field or relation returns, if any. */
  readonly returnsType?: string;
}

export interface GovernedSchema {
  readonly schema: GraphQLSchema;
  /** Every field of the schema, compiled; `fields[field.index] === field`. */
  readonly compiled: CompiledFields;
  /** Guarded fields by coordinate. */
  readonly fields: ReadonlyMap<string, GuardedField>;
  /** How each field is enforced: the shield rule tree, the leaf guard, or rule 1 (non-personal leaf). */
  readonly enforcement: ReadonlyMap<string, 'shield' | 'leaf-guard' | 'non-personal'>;
}

/** A schema on which some field ended up guarded by neither enforcement point. */
export class UnguardedFieldError extends Error {
  constructor(readonly coordinates: readonly string[]) {
    super(`fields guarded by neither graphql-shield nor the leaf guard: ${coordinates.join(', ')}`);
    this.name = 'UnguardedFieldError';
  }
}

type Context = Record<string, unknown>;
const governanceOf = (context: Context) => context[GOVERNANCE_CONTEXT_KEY] as RequestGovernance;

/**
 * Puts both enforcement points, generated from the same declarations, on the schema:
 *
 * 1. graphql-shield holds the permission tree for the fields that have their own resolver — root
 *    operations (roles, purposes served) and relations (the field's decision for the parent's subject) —
 *    and is applied to declared resolvers only, so plain scalar reads stay synchronous;
 * 2. after a root field or relation resolves, the subjects of the returned records are loaded in one batch
 *    (in a dry run a relation does not resolve: it is decided, and stays null);
 * 3. every other personal field is a leaf, decided by the leaf guard, compiled per object type: when a
 *    field returning records of that type resolves, the guard applies the same decision to each record's
 *    selected leaves at once and hands the executor the record itself (every leaf released) or a copy
 *    holding what each withheld or masked leaf resolves to. A leaf is a plain property read, without a
 *    resolver (graphql-jit inlines such reads), unless it holds a nested record itself: then its read is
 *    wrapped by the guard of that record's type.
 *
 * Rules never use shield's caches: a cached rule would share one subject's decision with another.
 */
export function enforceGovernance(schema: GraphQLSchema, declarations: readonly GovernedFieldDeclaration[], taxonomy: Taxonomy): GovernedSchema {
  const { fields: compiled, policies } = compileFields(declarations, taxonomy);
  const subjectKeys = new Map(declarations.filter((field) => field.subjectKey).map((field) => [field.typeName, field.subjectKey!]));
  const ruleTree: Record<string, Record<string, ReturnType<ReturnType<typeof rule>>>> = {};
  /** Around root fields and relations (after shield): preloading their records' subjects; dry-run relations; leaf guards. */
  const resolution: Record<string, Record<string, IMiddlewareFunction>> = {};
  const enforcement = new Map<string, 'shield' | 'leaf-guard' | 'non-personal'>();
  const hasOwnResolver = (declaration: GovernedFieldDeclaration) => {
    const { resolve } = typeFields(schema, declaration.typeName)[declaration.fieldName];
    return resolve !== undefined && resolve !== defaultFieldResolver;
  };

  // The leaves: personal fields read straight from the record, decided by the leaf guard of their type.
  const leavesByType = new Map<string, GuardedLeaves & { byName: Map<string, GuardedField> }>();
  declarations.forEach((declaration, position) => {
    const field = compiled[position];
    if (declaration.root || hasOwnResolver(declaration)) return;
    if (isReleasedWithoutSubject(field.policy)) {
      enforcement.set(field.coordinate, 'non-personal');
      return;
    }
    // A nested record has no reduced form either: masks are for scalar values.
    if (field.policy.mask && declaration.returnsType) throw new Error(`${field.coordinate} returns ${declaration.returnsType} records, but its category ${field.category} has a mask: masks apply to scalar leaves only`);
    let leaves = leavesByType.get(declaration.typeName);
    if (!leaves) leavesByType.set(declaration.typeName, (leaves = { typeName: declaration.typeName, byName: new Map() }));
    leaves.byName.set(declaration.fieldName, field);
    enforcement.set(field.coordinate, 'leaf-guard');
  });
  refuseAbstractTypesOver(schema, leavesByType);

  declarations.forEach((declaration, position) => {
    const field = compiled[position];
    if (!hasOwnResolver(declaration)) {
      // graphql-shield and the preload wrap declared resolvers only: a root field without one would go unchecked.
      if (declaration.root) throw new Error(`${field.coordinate} is a root field without a resolver of its own: graphql-shield could not guard it`);
      return;
    }
    // A relation resolves to records, which have no reduced form: masking is for leaf values.
    if (!declaration.root && field.policy.mask) throw new Error(`${field.coordinate} is a relation, but its category ${field.category} has a mask: masks apply to leaf fields only`);
    ruleTree[declaration.typeName] ??= {};
    // A dry run decides the fields of the data subjects a root field returns; one returning none (a report, a
    // read of the log) has nothing to decide, and would run in full.
    const readsSubjects = declaration.returnsType !== undefined && subjectKeys.has(declaration.returnsType);
    ruleTree[declaration.typeName][declaration.fieldName] = declaration.root
      ? rule(`operation ${field.coordinate}`, { cache: 'no_cache' })((_parent, args, context: Context, info) => governanceOf(context).authorizeOperation(field, args, info, readsSubjects))
      : rule(`field ${field.coordinate}`, { cache: 'no_cache' })((parent, _args, context: Context, info) => governanceOf(context).enforce(field, parent, info));
    enforcement.set(field.coordinate, 'shield');
    const subjectKey = declaration.returnsType ? subjectKeys.get(declaration.returnsType) : undefined;
    const leaves = declaration.returnsType ? leavesByType.get(declaration.returnsType) : undefined;
    if (subjectKey || leaves || !declaration.root) {
      // By the schema's own type, not the resolve info's (graphql-jit can hand one place another's).
      const fieldType = typeFields(schema, declaration.typeName)[declaration.fieldName].type;
      const returnsList = listDepthOf(fieldType) > 0;
      resolution[declaration.typeName] ??= {};
      resolution[declaration.typeName][declaration.fieldName] = async (resolve, parent, args, context: Context, info) => {
        // A dry run decides a relation (its rule has run and recorded the decision) but releases nothing of
        // it, not even its records' non-personal fields: the log says the relation was withheld.
        if (!declaration.root && governanceOf(context).mode === 'explain') return null;
        const filtering = field.filtersOnChoices !== undefined && (args as Record<string, unknown>)[field.filtersOnChoices] === true;
        const resolved: unknown = await (filtering ? governanceOf(context).filteringOnChoices(field, () => resolve(parent, args, context, info)) : resolve(parent, args, context, info));
        // A list given as another iterable (the executors take any), as an array: the preload reads arrays.
        const result = returnsList ? (asArray(resolved) ?? resolved) : resolved;
        const preloaded = subjectKey ? await governanceOf(context).preload(result, subjectKey, returnsList) : undefined;
        if (subjectKey) {
          if (filtering) governanceOf(context).noteFilteredOnChoices(field, result, subjectKey, returnsList);
          if (field.recordAs && !field.subjectArgument) governanceOf(context).noteSubjectsReturned(field, result, subjectKey, returnsList);
        }
        return leaves ? governanceOf(context).guardLeaves(result, leaves, info, preloaded) : result;
      };
    }
  });

  const permissions = shield(ruleTree as IRules, {
    fallbackRule: deny,
    allowExternalErrors: true,
    fallbackError: () => new GraphQLError('not permitted: the field has no governance rule', { extensions: { code: 'FORBIDDEN' } }),
  });
  const governed = applyMiddlewareToDeclaredResolvers(schema, permissions, resolution);

  for (const type of Object.values(governed.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const definition of Object.values(type.getFields())) {
      // graphql-middleware gives every field graphql-js's default resolver; a field without one reads the
      // property all the same, and graphql-jit then inlines the read instead of calling a function.
      if (definition.resolve === defaultFieldResolver) definition.resolve = undefined;
      // Records reached through a field without a resolver of its own (a nested object read from its
      // parent) meet their leaf guard there. Installed after shield, so shield never wraps these reads.
      const leaves = leavesByType.get(getNamedType(definition.type).name);
      if (!leaves || resolution[type.name]?.[definition.name]) continue;
      // Only a plain read is wrapped here: a resolver of its own would be replaced, with its shield rule.
      if (definition.resolve !== undefined) throw new Error(`${type.name}.${definition.name} returns ${leaves.typeName} through a resolver the leaf guard does not wrap`);
      definition.resolve = (source, args, context: Context, info) => governanceOf(context).guardLeaves(defaultFieldResolver(source, args, context, info), leaves, info);
    }
  }

  const unguarded = Object.values(governed.getTypeMap())
    .filter((type) => isObjectType(type) && !type.name.startsWith('__'))
    .flatMap((type) => Object.keys(typeFields(governed, type.name)).map((name) => `${type.name}.${name}`))
    .filter((coordinate) => !enforcement.has(coordinate));
  if (unguarded.length) throw new UnguardedFieldError(unguarded);

  return { schema: governed, compiled: { fields: compiled, policies }, fields: new Map(compiled.map((field) => [field.coordinate, field])), enforcement };
}

/**
 * The leaf guard finds a place's leaves from the operation down, by the types on the way; an interface or
 * union on the way leaves the runtime type, and so the selection, open (records of several types, or the
 * same place selecting differently per type). No governed schema has one: any abstract type from which a
 * type with guarded leaves can be reached is refused at build rather than guessed at run time.
 */
function refuseAbstractTypesOver(schema: GraphQLSchema, leavesByType: ReadonlyMap<string, GuardedLeaves>): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isAbstractType(type)) continue;
    const reached = new Set<string>();
    const pending: GraphQLNamedType[] = [type];
    for (let next = pending.pop(); next; next = pending.pop()) {
      if (reached.has(next.name)) continue;
      reached.add(next.name);
      if (leavesByType.has(next.name)) throw new Error(`${type.name} is an interface or union through which ${next.name}, whose personal leaves the leaf guard decides per concrete type, is reached: not supported`);
      if (isAbstractType(next)) pending.push(...schema.getPossibleTypes(next));
      else if (isObjectType(next)) for (const field of Object.values(next.getFields())) pending.push(getNamedType(field.type));
    }
  }
}

function typeFields(schema: GraphQLSchema, typeName: string) {
  const type = schema.getType(typeName);
  if (!isObjectType(type)) throw new Error(`${typeName} is not an object type of the schema`);
  return type.getFields();
}
