import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphQLBoolean, GraphQLID, GraphQLInputObjectType, GraphQLInt, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString, specifiedDirectives } from 'graphql';
import { buildSchema, Field, FieldResolver, ID, Query, Resolver } from 'type-graphql';
import { loadConfig, projectRoot } from '../../src/config';
import { assertGoverned, lintGovernance, readGovernance, SchemaGovernanceError } from '../../src/graphql/governance-catalog';
import { Governed, GovernedType, GOVERNANCE_EXTENSION, SUBJECT_EXTENSION } from '../../src/graphql/governed.decorator';
import { buildCandorSchema, governedDirective } from '../../src/graphql/schema';
import { renderSchemaFiles } from '../../src/graphql/schema-files';
import { WRITTEN_TIME } from '../../src/graphql/time-format';
import { MASK_STRATEGIES } from '../../src/policy/masking';
import { enforceGovernance, UnguardedFieldError } from '../../src/policy/enforcement';
import { buildGovernedSchema, loadConfiguredTaxonomy } from '../../src/server/services';

const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));

describe('the Candor schema', () => {
  it('is fully governed: every field is guarded by graphql-shield, the leaf guard, or released as non-personal', async () => {
    const governed = await buildGovernedSchema(taxonomy);
    const enforcement = Object.fromEntries(governed.enforcement);
    expect(enforcement).toEqual(
      expect.objectContaining({
        'Query.customers': 'shield',
        'Query.customer': 'shield',
        'Mutation.grantConsent': 'shield',
        'Customer.payments': 'shield',
        'Customer.watchHistory': 'shield',
        'Customer.email': 'leaf-guard',
        'Customer.accessibilityNeeds': 'leaf-guard',
        'Payment.cardLast4': 'leaf-guard',
        'WatchEvent.title': 'leaf-guard',
        'Customer.id': 'non-personal',
        'Payment.currency': 'non-personal',
      }),
    );
    for (const field of readGovernance(governed.schema)) {
      const category = taxonomy.categories.get(field.category)!;
      if (category.personal) expect([field.coordinate, enforcement[field.coordinate]]).toEqual([field.coordinate, expect.stringMatching(/^(shield|leaf-guard)$/)]);
    }
  });

  it('declares the issue’s categories and purposes on the demo fields', async () => {
    const fields = Object.fromEntries(readGovernance(await buildCandorSchema(taxonomy)).map((field) => [field.coordinate, field]));
    expect(fields['Customer.email']).toEqual(expect.objectContaining({ category: 'user.contact.email', purposes: ['essential.service', 'marketing.communications'], subjectKey: 'id' }));
    expect(fields['Customer.accessibilityNeeds'].category).toBe('user.health_and_medical');
    expect(fields['Payment.amount']).toEqual(expect.objectContaining({ category: 'user.financial', subjectKey: 'customerId' }));
    expect(fields['WatchEvent.seconds'].purposes).toEqual(fields['Customer.watchHistory'].purposes);
    expect(fields['Mutation.grantConsent'].roles).toEqual(['consent-manager']);
  });

  it('shows governance in the SDL (directive) and in the field description for Sandbox', async () => {
    const sdl = renderSchemaFiles(await buildCandorSchema(taxonomy), taxonomy)['schema/schema.graphql'];
    expect(sdl).toContain('email: String @governed(category: "user.contact.email", purposes: ["essential.service", "marketing.communications"])');
    expect(sdl).toContain(`Category: user.contact.email · Purposes: essential.service, marketing.communications · Masked (partial_email) for: analytics.reporting — ${MASK_STRATEGIES.partial_email}`);
  });

  it('tells analysts what a masked value looks like: the strategy\'s own description, with an example', async () => {
    const schema = await buildCandorSchema(taxonomy);
    const description = (typeName: string, field: string) => (schema.getType(typeName) as GraphQLObjectType).getFields()[field].description;
    expect(description('Customer', 'email')).toMatch(/Masked \(partial_email\) for: analytics\.reporting — .*j\*\*\*@example\.com/);
    expect(description('Customer', 'phone')).toMatch(/Masked \(keyed_hash\) for: analytics\.reporting — kh_ and 16 hex digits/);
    expect(description('Customer', 'birthDate')).toMatch(/Masked \(year\) for: marketing\.advertising — .*1990/);
  });

  it('gives every operation a sentence of its own, every input type a description, and the form of the times it returns', async () => {
    const schema = await buildCandorSchema(taxonomy);
    for (const root of [schema.getQueryType()!, schema.getMutationType()!]) {
      for (const field of Object.values(root.getFields())) expect([`${root.name}.${field.name}`, field.description]).toEqual([`${root.name}.${field.name}`, expect.not.stringMatching(/^Category: /)]);
    }
    for (const type of Object.values(schema.getTypeMap())) {
      if (type instanceof GraphQLInputObjectType) expect([type.name, type.description]).toEqual([type.name, expect.any(String)]);
    }
    for (const coordinate of ['Report.generatedAt', 'Report.from', 'Report.to', 'SubjectMessage.createdAt', 'SubjectMessage.answeredAt', 'ErasureResult.erasedAt', 'ConsentEntry.recordedAt', 'ConsentEntry.expiresAt']) {
      const [typeName, field] = coordinate.split('.');
      expect([coordinate, (schema.getType(typeName) as GraphQLObjectType).getFields()[field].description]).toEqual([coordinate, expect.stringContaining(WRITTEN_TIME)]);
    }
    // The form said is the form written.
    expect(WRITTEN_TIME).toContain(new Date('2026-11-01T12:00:00Z').toISOString());
  });

  it('lists each operation\'s arguments in the order its resolver declares them (the Docs panel\'s order)', async () => {
    const query = (await buildCandorSchema(taxonomy)).getQueryType()!.getFields();
    expect(['accessLog', 'customers', 'consentHistory', 'report', 'inbox'].map((name) => [name, query[name].args.map((argument) => argument.name)])).toEqual([
      ['accessLog', ['filter', 'first', 'after']],
      ['customers', ['limit', 'offset', 'onlyPermitted']],
      ['consentHistory', ['subjectId', 'first']],
      ['report', ['kind', 'subjectId', 'from', 'to']],
      ['inbox', ['unansweredOnly', 'first', 'after']],
    ]);
  });

  it('says in the description when the taxonomy serves a field masked, as a deployment\'s taxonomy has it', async () => {
    const descriptionOfEmail = async (serving: typeof taxonomy) => ((await buildCandorSchema(serving)).getType('Customer') as GraphQLObjectType).getFields().email.description;
    const unmasked = { ...taxonomy, categories: new Map([...taxonomy.categories].map(([key, category]) => [key, key === 'user.contact.email' ? { ...category, mask: undefined } : category])) };
    expect(await descriptionOfEmail(unmasked)).toBe('Category: user.contact.email · Purposes: essential.service, marketing.communications');
    const wider = { ...taxonomy, categories: new Map([...taxonomy.categories].map(([key, category]) => [key, key === 'user.contact.email' ? { ...category, mask: { strategy: 'partial_email' as const, purposes: ['analytics.reporting', 'marketing.advertising'] } } : category])) };
    expect(await descriptionOfEmail(wider)).toBe(`Category: user.contact.email · Purposes: essential.service, marketing.communications · Masked (partial_email) for: analytics.reporting, marketing.advertising — ${MASK_STRATEGIES.partial_email}`);
  });

  it('has committed schema/schema.graphql and schema/governance.json that match the annotations (run `npx candor schema emit`)', async () => {
    const files = renderSchemaFiles(await buildCandorSchema(taxonomy), taxonomy);
    // Both files, always: a generator that dropped one would otherwise shrink the check.
    expect(Object.keys(files).sort()).toEqual(['schema/governance.json', 'schema/schema.graphql']);
    for (const [file, content] of Object.entries(files)) expect([file, readFileSync(join(projectRoot(), file), 'utf8')]).toEqual([file, content]);
  });
});

describe('schema lint', () => {
  const governed = (category: string, purposes: string[] = []) => ({ [GOVERNANCE_EXTENSION]: { category, purposes } });
  const schemaWith = (fields: Record<string, { type: any; extensions?: Record<string, unknown> }>, subjectKey: string | null = 'id') => {
    const Person = new GraphQLObjectType({ name: 'Person', extensions: subjectKey ? { [SUBJECT_EXTENSION]: subjectKey } : {}, fields: { id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') }, ...fields } });
    const Query = new GraphQLObjectType({ name: 'Query', fields: { people: { type: new GraphQLList(Person), extensions: governed('system.operations'), resolve: () => [] } } });
    return new GraphQLSchema({ query: Query });
  };

  it.each([
    ['an unannotated field', { nickname: { type: GraphQLString } }, 'Person.nickname has no @Governed annotation'],
    ['an unknown category', { nickname: { type: GraphQLString, extensions: governed('user.nickname', ['essential.service']) } }, 'Person.nickname names unknown category "user.nickname"'],
    ['an unknown purpose', { email: { type: GraphQLString, extensions: governed('user.contact.email', ['marketing.spam']) } }, 'Person.email names unknown purpose "marketing.spam"'],
    ['a non-nullable personal field', { email: { type: new GraphQLNonNull(GraphQLString), extensions: governed('user.contact.email', ['essential.service']) } }, 'Person.email is non-nullable but has personal category'],
    ['a personal field without purposes', { email: { type: GraphQLString, extensions: governed('user.contact.email') } }, 'Person.email has personal category "user.contact.email" but declares no purposes'],
    [
      'roles on a field that is not an operation (they would protect nothing)',
      { email: { type: GraphQLString, extensions: { [GOVERNANCE_EXTENSION]: { category: 'user.contact.email', purposes: ['essential.service'], roles: ['auditor'] } } } },
      'Person.email declares roles, which only root fields may',
    ],
    [
      'recordAs on a field that is not an operation (its calls would look recorded and be not)',
      { email: { type: GraphQLString, extensions: { [GOVERNANCE_EXTENSION]: { category: 'user.contact.email', purposes: ['essential.service'], recordAs: 'EMAIL_READ' } } } },
      'Person.email declares recordAs, which only root fields may',
    ],
    [
      'filtersOnChoices on a field that is not an operation',
      { email: { type: GraphQLString, extensions: { [GOVERNANCE_EXTENSION]: { category: 'user.contact.email', purposes: ['essential.service'], filtersOnChoices: 'onlyPermitted' } } } },
      'Person.email declares filtersOnChoices, which only root fields may',
    ],
  ])('refuses %s, naming the coordinate', (_case, fields, problem) => {
    const fieldsOf = readGovernance(schemaWith(fields));
    expect(lintGovernance(fieldsOf, taxonomy)).toEqual([expect.stringContaining(problem)]);
    expect(() => assertGoverned(fieldsOf, taxonomy)).toThrow(SchemaGovernanceError);
  });

  it('refuses a filtersOnChoices that names no Boolean argument of its operation: its subjects would go unrecorded', () => {
    const Person = new GraphQLObjectType({ name: 'Person', extensions: { [SUBJECT_EXTENSION]: 'id' }, fields: { id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') } } });
    const people = (filtersOnChoices: string) =>
      new GraphQLSchema({
        query: new GraphQLObjectType({
          name: 'Query',
          fields: { people: { type: new GraphQLList(Person), args: { onlyPermitted: { type: GraphQLBoolean } }, extensions: { [GOVERNANCE_EXTENSION]: { category: 'system.operations', purposes: [], filtersOnChoices } }, resolve: () => [] } },
        }),
      });
    expect(lintGovernance(readGovernance(people('onlyPermitted')), taxonomy)).toEqual([]);
    expect(lintGovernance(readGovernance(people('onlyPermited')), taxonomy)).toEqual(['Query.people declares filtersOnChoices "onlyPermited", which is not a Boolean argument of the field']);
  });

  it('refuses a subjectArgument without recordAs, or one that names no non-null ID or String argument (nor a field of an input argument)', () => {
    const Person = new GraphQLObjectType({ name: 'Person', extensions: { [SUBJECT_EXTENSION]: 'id' }, fields: { id: { type: new GraphQLNonNull(GraphQLID), extensions: governed('system.operations') } } });
    const Change = new GraphQLInputObjectType({ name: 'Change', fields: { subjectId: { type: new GraphQLNonNull(GraphQLID) }, note: { type: GraphQLString }, count: { type: GraphQLInt } } });
    const change = (declaration: Record<string, unknown>) =>
      new GraphQLSchema({
        query: new GraphQLObjectType({ name: 'Query', fields: { person: { type: Person, extensions: governed('system.operations'), resolve: () => null } } }),
        mutation: new GraphQLObjectType({
          name: 'Mutation',
          fields: { change: { type: Person, args: { input: { type: new GraphQLNonNull(Change) }, id: { type: GraphQLID }, key: { type: new GraphQLNonNull(GraphQLString) } }, extensions: { [GOVERNANCE_EXTENSION]: { category: 'system.operations', purposes: [], ...declaration } }, resolve: () => null } },
        }),
      });
    const problems = (declaration: Record<string, unknown>) => lintGovernance(readGovernance(change(declaration)), taxonomy);
    expect([problems({ recordAs: 'CHANGED', subjectArgument: 'input.subjectId' }), problems({ recordAs: 'CHANGED', subjectArgument: 'key' })]).toEqual([[], []]);
    expect(problems({ subjectArgument: 'input.subjectId' })).toEqual(['Mutation.change declares subjectArgument without recordAs: only a recorded call names its subject']);
    // Misnamed, not an identifier, or nullable (`id`, `input.note`: a call without it would name no one).
    for (const misnamed of ['input.subjectid', 'input.count', 'input', 'subjectId', 'id', 'input.note']) {
      expect(problems({ recordAs: 'CHANGED', subjectArgument: misnamed })).toEqual([`Mutation.change declares subjectArgument "${misnamed}", which is not a non-null ID or String argument of the field (or a field of an input argument)`]);
    }
  });

  it('refuses a root field of a personal category: an operation is authorised, never decided per subject', () => {
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']), resolve: () => null } } }),
    });
    expect(lintGovernance(readGovernance(schema), taxonomy)).toEqual(expect.arrayContaining([expect.stringContaining('Query.email is a root field with personal category "user.contact.email"')]));
  });

  it('refuses a personal field on a type that does not say where its data subject is', () => {
    const fields = readGovernance(schemaWith({ email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) } }, null));
    expect(lintGovernance(fields, taxonomy)).toEqual([expect.stringContaining('Person.email is personal but type Person declares no data subject')]);
  });

  it('accepts a fully annotated schema and guards each field', () => {
    const schema = schemaWith({ email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) } });
    const fields = readGovernance(schema);
    expect(lintGovernance(fields, taxonomy)).toEqual([]);
    expect(Object.fromEntries(enforceGovernance(schema, fields, taxonomy).enforcement)).toEqual({ 'Person.email': 'leaf-guard', 'Person.id': 'non-personal', 'Query.people': 'shield' });
  });

  it('fails the build when a field ends up guarded by neither enforcement point', () => {
    const schema = schemaWith({ email: { type: GraphQLString, extensions: governed('user.contact.email', ['essential.service']) } });
    const withoutEmail = readGovernance(schema).filter((field) => field.coordinate !== 'Person.email');
    expect(() => enforceGovernance(schema, withoutEmail, taxonomy)).toThrow(UnguardedFieldError);
    expect(() => enforceGovernance(schema, withoutEmail, taxonomy)).toThrow('Person.email');
  });

  describe('a field declared twice (the SDL would show one declaration, the enforcement another)', () => {
    const SERVICE_ONLY = { category: 'user.contact.email', purposes: ['essential.service'] };
    const SERVICE_AND_MARKETING = { category: 'user.contact.email', purposes: ['essential.service', 'marketing.communications'] };
    const typeGraphqlSchema = (resolvers: [Function, ...Function[]]) => buildSchema({ resolvers, directives: [...specifiedDirectives, governedDirective], validate: false });
    const problemsOf = async (resolvers: [Function, ...Function[]], coordinate: string) =>
      lintGovernance(readGovernance(await typeGraphqlSchema(resolvers)), taxonomy).filter((problem) => problem.startsWith(coordinate));

    it('refuses a subclass narrowing an inherited field', async () => {
      @GovernedType('PersonBase', { subjectKey: 'id' })
      class PersonBase {
        @Field(() => ID) @Governed({ category: 'system.operations' }) id!: string;
        @Field(() => String, { nullable: true }) @Governed(SERVICE_AND_MARKETING) email?: string;
      }
      @GovernedType('Member', { subjectKey: 'id' })
      class Member extends PersonBase {
        @Field(() => String, { nullable: true }) @Governed(SERVICE_ONLY) declare email?: string;
      }
      @Resolver()
      class MemberResolver {
        @Query(() => [Member]) @Governed({ category: 'system.operations' }) members(): Member[] {
          return [];
        }
      }
      expect(await problemsOf([MemberResolver], 'Member.email')).toEqual([expect.stringContaining('Member.email shows other governance in the SDL')]);
    });

    it('refuses a field resolver annotating a property again', async () => {
      @GovernedType('Person', { subjectKey: 'id' })
      class Person {
        @Field(() => ID) @Governed({ category: 'system.operations' }) id!: string;
        @Field(() => String, { nullable: true }) @Governed(SERVICE_ONLY) email?: string;
      }
      @Resolver(() => Person)
      class PersonResolver {
        @Query(() => [Person]) @Governed({ category: 'system.operations' }) people(): Person[] {
          return [];
        }
        @FieldResolver(() => String, { nullable: true }) @Governed(SERVICE_AND_MARKETING) email(): string | null {
          return null;
        }
      }
      expect(await problemsOf([PersonResolver], 'Person.email')).toEqual([expect.stringContaining('Person.email shows other governance in the SDL')]);
    });

    it('accepts a field declared once, as the Candor schema declares each', async () => {
      @GovernedType('Visitor', { subjectKey: 'id' })
      class Visitor {
        @Field(() => ID) @Governed({ category: 'system.operations' }) id!: string;
        @Field(() => String, { nullable: true }) @Governed(SERVICE_AND_MARKETING) email?: string;
      }
      @Resolver(() => Visitor)
      class VisitorResolver {
        @Query(() => [Visitor]) @Governed({ category: 'system.operations', roles: ['auditor'] }) visitors(): Visitor[] {
          return [];
        }
      }
      expect(lintGovernance(readGovernance(await typeGraphqlSchema([VisitorResolver])), taxonomy)).toEqual([]);
    });
  });
});
