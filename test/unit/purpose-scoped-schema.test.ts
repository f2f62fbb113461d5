import { assertValidSchema, buildClientSchema, type GraphQLObjectType, type GraphQLSchema, getNamedType, introspectionFromSchema, isIntrospectionType, isObjectType, validateSchema } from 'graphql';
import { loadConfig } from '../../src/config';
import { decide } from '../../src/policy/decide';
import type { GovernedSchema } from '../../src/policy/enforcement';
import { PurposeScopedSchemas, purposeScopedSchema } from '../../src/server/purpose-scoped-introspection';
import { buildGovernedSchema, loadConfiguredTaxonomy } from '../../src/server/services';
import { anyCovers } from '../../src/taxonomy/keys';
import type { Taxonomy } from '../../src/taxonomy/taxonomy';

const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));
const requestable = [...taxonomy.purposes.values()].filter((purpose) => purpose.requestable && purpose.legalBasis).map((purpose) => purpose.key);

/** The field names of an object type of `schema`, or undefined when the type is not there. */
const fieldsOf = (schema: GraphQLSchema, typeName: string) => {
  const type = schema.getType(typeName);
  return isObjectType(type) ? Object.keys(type.getFields()) : undefined;
};
const coordinatesOf = (schema: GraphQLSchema) =>
  Object.values(schema.getTypeMap())
    .filter((type): type is GraphQLObjectType => isObjectType(type) && !isIntrospectionType(type))
    .flatMap((type) => Object.keys(type.getFields()).map((field) => `${type.name}.${field}`));
const maskPurposes = (tax: Taxonomy, category: string) => tax.categories.get(category)?.mask?.purposes ?? [];

describe('the purpose-scoped schema', () => {
  let governed: GovernedSchema;
  let allRoles: string[];
  beforeAll(async () => {
    governed = await buildGovernedSchema(taxonomy);
    allRoles = [...new Set([...governed.fields.values()].flatMap((field) => field.roles))];
  });

  it('is built for some requestable purposes', () => {
    expect(requestable).toEqual(expect.arrayContaining(['marketing.communications', 'analytics.reporting', 'essential.service', 'essential.legal_obligation']));
  });

  describe.each(requestable)('for %s', (purpose) => {
    it.each([
      ['no roles', () => []],
      ['every role', () => allRoles],
    ])('with %s is a valid, non-empty schema that a client can rebuild from its introspection', (_name, roles) => {
      const schema = purposeScopedSchema(governed, { purpose, roles: roles() });
      expect(() => assertValidSchema(schema)).not.toThrow();
      const client = buildClientSchema(introspectionFromSchema(schema));
      expect(validateSchema(client)).toEqual([]);
      expect(fieldsOf(client, 'Query')!.length).toBeGreaterThan(0);
      expect(fieldsOf(client, 'Customer')).toContain('id');
    });

    it('shows a non-root field exactly when decide() would not refuse it as PURPOSE_NOT_DECLARED (or a mask covers the purpose) and its type is shown', () => {
      const schema = purposeScopedSchema(governed, { purpose, roles: allRoles });
      const shown = new Set(coordinatesOf(schema));
      const requestPurpose = { key: purpose, legalBasis: taxonomy.purposes.get(purpose)!.legalBasis! };
      for (const field of governed.fields.values()) {
        if (field.root) continue;
        const [typeName] = field.coordinate.split('.');
        const target = getNamedType((governed.schema.getType(typeName) as GraphQLObjectType).getFields()[field.fieldName].type);
        const declared = decide({ field: field.policy, purpose: requestPurpose, subjectState: null, now: new Date(0) }).reason !== 'PURPOSE_NOT_DECLARED' || anyCovers(maskPurposes(taxonomy, field.category), purpose);
        const reachable = schema.getType(typeName) !== undefined && (!isObjectType(target) || schema.getType(target.name) !== undefined);
        expect([field.coordinate, shown.has(field.coordinate)]).toEqual([field.coordinate, declared && reachable]);
      }
    });
  });

  it('marketing.communications sees the contact fields declared for it, not the date of birth or health data, nor the audit root fields', () => {
    const schema = purposeScopedSchema(governed, { purpose: 'marketing.communications', roles: [] });
    expect(fieldsOf(schema, 'Customer')).toEqual(expect.arrayContaining(['id', 'fullName', 'email']));
    for (const hidden of ['birthDate', 'accessibilityNeeds', 'phone', 'postalAddress', 'payments']) expect(fieldsOf(schema, 'Customer')).not.toContain(hidden);
    expect(fieldsOf(schema, 'Query')!.sort()).toEqual(['customer', 'customers']);
    expect(schema.getMutationType()).toBeUndefined();
    // Types and inputs only the hidden fields reached are pruned.
    for (const pruned of ['AccessLogConnection', 'AccessRecord', 'AccessLogFilter', 'Payment', 'Report', 'GrantConsentInput', 'SafeInt']) expect([pruned, schema.getType(pruned)]).toEqual([pruned, undefined]);
  });

  it('analytics.reporting sees the date of birth and the relations declared for it, not the full name or health data', () => {
    const schema = purposeScopedSchema(governed, { purpose: 'analytics.reporting', roles: [] });
    expect(fieldsOf(schema, 'Customer')).toEqual(expect.arrayContaining(['id', 'displayName', 'birthDate', 'country', 'favoriteGenres', 'payments', 'watchHistory']));
    for (const hidden of ['fullName', 'accessibilityNeeds', 'postalAddress']) expect(fieldsOf(schema, 'Customer')).not.toContain(hidden);
    expect(fieldsOf(schema, 'Payment')).toContain('amount');
    expect(fieldsOf(schema, 'Payment')).not.toContain('cardLast4');
  });

  it('keeps a root field only for an actor holding its roles', () => {
    const withRoles = purposeScopedSchema(governed, { purpose: 'essential.legal_obligation', roles: ['auditor', 'consent-manager'] });
    const withoutRoles = purposeScopedSchema(governed, { purpose: 'essential.legal_obligation', roles: [] });
    expect(fieldsOf(withRoles, 'Query')).toEqual(expect.arrayContaining(['accessLog', 'auditIntegrity', 'report', 'inbox', 'customers']));
    expect(fieldsOf(withRoles, 'Mutation')).toEqual(expect.arrayContaining(['grantConsent', 'eraseSubject']));
    expect(fieldsOf(withoutRoles, 'Query')!.sort()).toEqual(['customer', 'customers']);
    expect(withoutRoles.getMutationType()).toBeUndefined();
  });

  it('shows a field whose category has a masked release for the purpose (a parent key covers its sub-purposes)', async () => {
    const birth = taxonomy.categories.get('user.demographic.date_of_birth')!;
    const masked: Taxonomy = { ...taxonomy, categories: new Map(taxonomy.categories).set(birth.key, { ...birth, mask: { strategy: 'year', purposes: ['marketing'] } }) };
    expect(fieldsOf(purposeScopedSchema(governed, { purpose: 'marketing.communications', roles: [] }), 'Customer')).not.toContain('birthDate');
    expect(fieldsOf(purposeScopedSchema(await buildGovernedSchema(masked), { purpose: 'marketing.communications', roles: [] }), 'Customer')).toContain('birthDate');
  });

  it('builds each scope once; roles no root field requires do not make a new scope; the cache is bounded', () => {
    const schemas = new PurposeScopedSchemas(governed, 2);
    const first = schemas.get('marketing.communications', []);
    expect(schemas.get('marketing.communications', ['unrelated-role'])).toBe(first);
    expect(schemas.get('marketing.communications', ['auditor'])).not.toBe(first);
    schemas.get('analytics.reporting', []);
    expect(schemas.get('marketing.communications', [])).not.toBe(first);
  });
});
