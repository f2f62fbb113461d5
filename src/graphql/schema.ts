import { DirectiveLocation, GraphQLDirective, GraphQLList, GraphQLNonNull, GraphQLString, type GraphQLSchema, specifiedDirectives } from 'graphql';
import { buildSchema, getMetadataStorage } from 'type-graphql';
import { AccessLogResolver } from './access-log.resolver';
import { ConsentResolver } from './consent.resolver';
import { CustomerResolver } from './customer.resolver';
import { ReportResolver } from './report.resolver';
import { SubjectRightsResolver } from './subject-rights.resolver';
import { MASK_STRATEGIES } from '../policy/masking';
import type { Taxonomy } from '../taxonomy/taxonomy';
import { readGovernance } from './governance-catalog';

/** The SDL form of `@Governed`, so the printed schema shows every field's category and purposes. */
export const governedDirective = new GraphQLDirective({
  name: 'governed',
  description: "A field's data category, the purposes it may serve and, on root fields, the roles needed to call it.",
  locations: [DirectiveLocation.FIELD_DEFINITION],
  args: {
    category: { type: new GraphQLNonNull(GraphQLString) },
    purposes: { type: new GraphQLList(new GraphQLNonNull(GraphQLString)) },
    roles: { type: new GraphQLList(new GraphQLNonNull(GraphQLString)) },
  },
});

export const RESOLVERS = [CustomerResolver, ConsentResolver, AccessLogResolver, ReportResolver, SubjectRightsResolver] as const;

/**
 * Builds the (not yet enforced) schema from the type-graphql classes and writes each field's governance
 * into its description, where Apollo Sandbox's docs panel shows it: the annotation's category, purposes
 * and roles, and the masked release the taxonomy gives the category (a purpose scoped to a masked field
 * sees the field, so its description must say in what form it comes: the strategy's own description).
 */
export async function buildCandorSchema(taxonomy: Taxonomy): Promise<GraphQLSchema> {
  // TypeScript applies a method's parameter decorators last to first, and type-graphql writes the arguments in
  // the order it collected them: the Docs panel would list `accessLog(after, first, filter)`. Resolvers are
  // called by parameter index whatever this order, so the arguments are put back in source order (a stable sort).
  getMetadataStorage().params.sort((a, b) => a.index - b.index);
  const schema = await buildSchema({
    resolvers: [...RESOLVERS],
    // buildSchema replaces the built-in directives unless they are passed along.
    directives: [...specifiedDirectives, governedDirective],
    validate: false,
  });
  for (const field of readGovernance(schema)) {
    if (!field.annotated) continue;
    const definition = schema.getType(field.typeName) as { getFields(): Record<string, { description?: string | null }> };
    const target = definition.getFields()[field.fieldName];
    const mask = taxonomy.categories.get(field.category)?.mask;
    const line = [
      `Category: ${field.category}`,
      field.purposes.length ? `Purposes: ${field.purposes.join(', ')}` : '',
      mask ? `Masked (${mask.strategy}) for: ${mask.purposes.join(', ')} — ${MASK_STRATEGIES[mask.strategy]}` : '',
      field.roles.length ? `Roles: ${field.roles.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' · ');
    target.description = target.description ? `${target.description}\n\n${line}` : line;
  }
  return schema;
}
