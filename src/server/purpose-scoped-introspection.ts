import { type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { filterSchema, pruneSchema } from '@graphql-tools/utils';
import { execute, getNamedType, type GraphQLObjectType, type GraphQLSchema, isIntrospectionType, isObjectType, Kind, OperationTypeNode } from 'graphql';
import { declaredForm, isReleasedWithoutSubject } from '../policy/decide';
import { GOVERNANCE_CONTEXT_KEY, type GovernedSchema } from '../policy/enforcement';
import type { GuardedField } from '../policy/guarded-field';
import { anyCovers } from '../taxonomy/keys';
import type { CandorContext } from './context';
import { formatError } from './format-error';
import { isIntrospectionOnly } from './introspection';

/** Who a scoped schema is for: the request's declared purpose and the actor's roles. */
export interface IntrospectionScope {
  readonly purpose: string;
  readonly roles: readonly string[];
}

/**
 * Whether a field's own declaration lets the scope see it (its type is checked separately):
 *
 * - a root field serves the purpose (no purposes declared = serves every purpose; the same test as
 *   `RequestGovernance.authorizeOperation`) and the actor holds every role it requires;
 * - any other field is non-personal (`decide()` rule 1), or one of its declared purposes covers the
 *   request purpose (rule 2 passes), or its category has a masked release covering the purpose.
 *
 * A field that passes may still be withheld per data subject at execution (rules 2a–7): the scoped schema
 * shows what the purpose may ask for, not what a given record will release.
 */
function declaredFor(field: GuardedField, scope: IntrospectionScope): boolean {
  const { policy } = field;
  if (field.root) return (policy.purposes.length === 0 || anyCovers(policy.purposes, scope.purpose)) && field.roles.every((role) => scope.roles.includes(role));
  return isReleasedWithoutSubject(policy) || declaredForm(policy, scope.purpose) !== undefined;
}

/**
 * The governed schema as one purpose (and the actor's roles) sees it: the fields declared for the purpose
 * and the ids and relations needed to navigate to them. A relation (or root field) stays only when its
 * own declaration allows it and the object type it returns keeps at least one field; object types left
 * without fields, and the arguments' input types and scalars nothing reaches any more, are pruned.
 * A field missing from the governance map is hidden (fail closed).
 *
 * Candor's schema has object types only (no interfaces or unions); the unit test checks the result is a
 * valid schema for every requestable purpose.
 */
export function purposeScopedSchema(governed: GovernedSchema, scope: IntrospectionScope): GraphQLSchema {
  const { schema } = governed;
  const objectTypes = Object.values(schema.getTypeMap()).filter((type): type is GraphQLObjectType => isObjectType(type) && !isIntrospectionType(type));
  const allowed = (coordinate: string) => {
    const field = governed.fields.get(coordinate);
    return field !== undefined && declaredFor(field, scope);
  };

  // Least fixpoint: a type is visible once some field of it is allowed and leads to a leaf or a visible type.
  const visibleTypes = new Set<string>();
  const shown = (typeName: string, fieldName: string) => {
    const target = getNamedType((schema.getType(typeName) as GraphQLObjectType).getFields()[fieldName].type);
    return allowed(`${typeName}.${fieldName}`) && (!isObjectType(target) || visibleTypes.has(target.name));
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const type of objectTypes) {
      if (visibleTypes.has(type.name) || !Object.keys(type.getFields()).some((fieldName) => shown(type.name, fieldName))) continue;
      visibleTypes.add(type.name);
      changed = true;
    }
  }

  const rootTypeNames: Record<string, string | undefined> = {
    Query: schema.getQueryType()?.name,
    Mutation: schema.getMutationType()?.name,
    Subscription: schema.getSubscriptionType()?.name,
  };
  return pruneSchema(
    filterSchema({
      schema,
      rootFieldFilter: (operation, fieldName) => shown(rootTypeNames[operation]!, fieldName),
      objectFieldFilter: (typeName, fieldName) => shown(typeName, fieldName),
    }),
  );
}

/**
 * Builds each scope's schema once. The key keeps only the roles some root field requires, so there are at
 * most (requestable purposes × subsets of those roles) entries; `maxEntries` bounds it anyway, dropping the
 * oldest entry.
 */
export class PurposeScopedSchemas {
  private readonly cache = new Map<string, GraphQLSchema>();
  private readonly schemaRoles: readonly string[];

  constructor(
    private readonly governed: GovernedSchema,
    private readonly maxEntries = 256,
  ) {
    this.schemaRoles = [...new Set([...governed.fields.values()].flatMap((field) => (field.root ? field.roles : [])))].sort();
  }

  get(purpose: string, actorRoles: readonly string[]): GraphQLSchema {
    const roles = this.schemaRoles.filter((role) => actorRoles.includes(role));
    const key = `${purpose}\u0000${roles.join('\u0000')}`;
    let schema = this.cache.get(key);
    if (schema === undefined) {
      schema = purposeScopedSchema(this.governed, { purpose, roles });
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, schema);
    }
    return schema;
  }
}

/**
 * Answers introspection-only queries (`__schema`, `__type`, `__typename` at the root) that declared a
 * purpose from that purpose's scoped schema, so Sandbox's explorer and autocomplete show what the purpose
 * may ask for. Every other operation executes as usual against the full schema; introspection without a
 * purpose shows the full schema. Apollo's own `introspection` switch is applied first (validation).
 */
export function purposeScopedIntrospectionPlugin(governed: GovernedSchema): ApolloServerPlugin<CandorContext> {
  const schemas = new PurposeScopedSchemas(governed);
  return {
    async requestDidStart() {
      return {
        async responseForOperation({ contextValue, operation, document, request, source }) {
          const purpose = contextValue[GOVERNANCE_CONTEXT_KEY]?.purpose.key;
          // Apollo calls this hook even when the operation name matched no operation (operation undefined).
          if (purpose === undefined || operation?.operation !== OperationTypeNode.QUERY) return null;
          // Cheap first: a root field that is not introspection ends it before the fragment-aware check.
          if (operation.selectionSet.selections.some((selection) => selection.kind === Kind.FIELD && !selection.name.value.startsWith('__'))) return null;
          if (!isIntrospectionOnly(source, request.operationName)) return null;
          const result = await execute({ schema: schemas.get(purpose, contextValue.actor.roles), document, variableValues: request.variables, operationName: request.operationName, contextValue });
          return {
            http: { headers: new HeaderMap() },
            body: { kind: 'single', singleResult: { data: result.data, ...(result.errors ? { errors: result.errors.map((error) => formatError(error.toJSON(), error)) } : {}) } },
          };
        },
      };
    },
  };
}
