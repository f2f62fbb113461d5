import { defaultFieldResolver, type GraphQLFieldResolver, GraphQLError, type GraphQLSchema, isObjectType } from 'graphql';
import { applyMiddlewareToDeclaredResolvers, type IMiddlewareFunction } from 'graphql-middleware';
import { deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield/typings/types';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { isReleasedWithoutSubject } from './decide';
import { type CompiledFields, compileFields, type FieldDeclaration, type GuardedField } from './guarded-field';
import type { RequestGovernance } from './request-governance';

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
 * 3. every other personal field gets one synchronous leaf guard that applies the same decision.
 *
 * Rules never use shield's caches: a cached rule would share one subject's decision with another.
 */
export function enforceGovernance(schema: GraphQLSchema, declarations: readonly GovernedFieldDeclaration[], taxonomy: Taxonomy): GovernedSchema {
  const { fields: compiled, policies } = compileFields(declarations, taxonomy);
  const subjectKeys = new Map(declarations.filter((field) => field.subjectKey).map((field) => [field.typeName, field.subjectKey!]));
  const ruleTree: Record<string, Record<string, ReturnType<ReturnType<typeof rule>>>> = {};
  /** Around root fields and relations (after shield): preloading their records' subjects; dry-run relations. */
  const resolution: Record<string, Record<string, IMiddlewareFunction>> = {};
  const enforcement = new Map<string, 'shield' | 'leaf-guard' | 'non-personal'>();

  declarations.forEach((declaration, position) => {
    const field = compiled[position];
    const definition = typeFields(schema, declaration.typeName)[declaration.fieldName];
    const hasOwnResolver = definition.resolve !== undefined && definition.resolve !== defaultFieldResolver;
    if (!declaration.root && !hasOwnResolver) return;
    // A relation resolves to records, which have no reduced form: masking is for leaf values.
    if (!declaration.root && field.policy.mask) throw new Error(`${field.coordinate} is a relation, but its category ${field.category} has a mask: masks apply to leaf fields only`);
    ruleTree[declaration.typeName] ??= {};
    ruleTree[declaration.typeName][declaration.fieldName] = declaration.root
      ? rule(`operation ${field.coordinate}`, { cache: 'no_cache' })((_parent, _args, context: Context, info) => governanceOf(context).authorizeOperation(field, info))
      : rule(`field ${field.coordinate}`, { cache: 'no_cache' })((parent, _args, context: Context, info) => governanceOf(context).enforce(field, parent, info));
    enforcement.set(field.coordinate, 'shield');
    const subjectKey = declaration.returnsType ? subjectKeys.get(declaration.returnsType) : undefined;
    if (subjectKey || !declaration.root) {
      resolution[declaration.typeName] ??= {};
      resolution[declaration.typeName][declaration.fieldName] = async (resolve, parent, args, context: Context, info) => {
        // A dry run decides a relation (its rule has run and recorded the decision) but releases nothing of
        // it, not even its records' non-personal fields: the log says the relation was withheld.
        if (!declaration.root && governanceOf(context).mode === 'explain') return null;
        const result = await resolve(parent, args, context, info);
        if (subjectKey) {
          await governanceOf(context).preload(result, subjectKey);
          if (field.filtersOnChoices && (args as Record<string, unknown>)[field.filtersOnChoices] === true) governanceOf(context).noteFilteredOnChoices(field, result, subjectKey);
        }
        return result;
      };
    }
  });

  const permissions = shield(ruleTree as IRules, {
    fallbackRule: deny,
    allowExternalErrors: true,
    fallbackError: () => new GraphQLError('not permitted: the field has no governance rule', { extensions: { code: 'FORBIDDEN' } }),
  });
  const governed = applyMiddlewareToDeclaredResolvers(schema, permissions, resolution);

  // The leaf guard goes on after shield, so shield never sees (and never wraps) the leaves.
  declarations.forEach((declaration, position) => {
    const field = compiled[position];
    if (enforcement.has(field.coordinate)) return;
    if (isReleasedWithoutSubject(field.policy)) {
      enforcement.set(field.coordinate, 'non-personal');
      return;
    }
    typeFields(governed, declaration.typeName)[declaration.fieldName].resolve = leafGuard(field);
    enforcement.set(field.coordinate, 'leaf-guard');
  });

  const unguarded = Object.values(governed.getTypeMap())
    .filter((type) => isObjectType(type) && !type.name.startsWith('__'))
    .flatMap((type) => Object.keys(typeFields(governed, type.name)).map((name) => `${type.name}.${name}`))
    .filter((coordinate) => !enforcement.has(coordinate));
  if (unguarded.length) throw new UnguardedFieldError(unguarded);

  return { schema: governed, compiled: { fields: compiled, policies }, fields: new Map(compiled.map((field) => [field.coordinate, field])), enforcement };
}

/** The synchronous guard of one personal leaf field: release the property, or resolve to the coded error. */
function leafGuard(field: GuardedField): GraphQLFieldResolver<Record<string, unknown>, Context> {
  return (source, _args, context, info) => governanceOf(context).resolveLeaf(field, source, info);
}

function typeFields(schema: GraphQLSchema, typeName: string) {
  const type = schema.getType(typeName);
  if (!isObjectType(type)) throw new Error(`${typeName} is not an object type of the schema`);
  return type.getFields();
}
