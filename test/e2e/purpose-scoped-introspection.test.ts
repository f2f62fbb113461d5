import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery, validateSchema } from 'graphql';
import { startHttpServer } from '../../src/server/http-server';
import { type Harness, KEYS, startCandor, STORES_AND_EXECUTORS } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';

/**
 * Issue #8: with `X-Purpose` set, introspection (Sandbox's explorer and autocomplete) shows only what the
 * purpose may ask for; without it, or with CANDOR_PURPOSE_SCOPED_INTROSPECTION=false, the full schema.
 */
const CUSTOMER_FIELDS = '{ __type(name: "Customer") { fields { name } } }';
const QUERY_FIELDS = '{ __schema { queryType { fields { name } } } }';
const BOTH = '{ __type(name: "Customer") { fields { name } } __schema { queryType { fields { name } } } }';
const names = (body: { data?: Record<string, any> | null }, path: '__type' | '__schema') =>
  ((path === '__type' ? body.data?.__type?.fields : body.data?.__schema?.queryType?.fields) as Array<{ name: string }>).map((field) => field.name);

describe.each(STORES_AND_EXECUTORS)('purpose-scoped introspection on %s, executed by %s', (driver, executor) => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor(driver, { executor });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('marketing.communications sees Customer.id, fullName and email, not birthDate or accessibilityNeeds', async () => {
    const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: CUSTOMER_FIELDS });
    expect(response.status).toBe(200);
    const fields = names(response.body, '__type');
    expect(fields).toEqual(expect.arrayContaining(['id', 'fullName', 'email']));
    expect(fields).not.toContain('birthDate');
    expect(fields).not.toContain('accessibilityNeeds');
  });

  it('analytics.reporting sees Customer.birthDate and displayName, not fullName or accessibilityNeeds', async () => {
    const fields = names((await candor.query({ key: KEYS.analytics, purpose: 'analytics.reporting', query: CUSTOMER_FIELDS })).body, '__type');
    expect(fields).toEqual(expect.arrayContaining(['id', 'birthDate', 'displayName', 'country']));
    expect(fields).not.toContain('fullName');
    expect(fields).not.toContain('accessibilityNeeds');
  });

  it('root fields that do not serve the purpose, and the types only they reach, vanish', async () => {
    const marketing = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ __schema { queryType { fields { name } } } __type(name: "AccessLogConnection") { name } }' });
    expect(names(marketing.body, '__schema').sort()).toEqual(['customer', 'customers']);
    expect(marketing.body.data?.__type).toBeNull();
    // The compliance actor holds the auditor role: the audit root fields serve its legal obligation.
    const compliance = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: QUERY_FIELDS });
    expect(names(compliance.body, '__schema')).toEqual(expect.arrayContaining(['accessLog', 'report', 'customers']));
  });

  it('the full introspection query under a purpose gives a schema a client can rebuild, and records nothing', async () => {
    const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: getIntrospectionQuery() });
    expect(response.body.errors).toBeUndefined();
    const client = buildClientSchema(response.body.data as unknown as IntrospectionQuery);
    expect(validateSchema(client)).toEqual([]);
    expect(Object.keys(client.getQueryType()!.getFields()).sort()).toEqual(['customer', 'customers']);
    expect(client.getMutationType()).toBeNull();
    const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id')! }, 10);
    expect(recorded.totalCount).toBe(0);
  });

  it('without X-Purpose, introspection shows the full schema', async () => {
    expect(names((await candor.query({ key: KEYS.marketing, query: CUSTOMER_FIELDS })).body, '__type')).toEqual(expect.arrayContaining(['fullName', 'email', 'birthDate', 'accessibilityNeeds', 'payments']));
    expect(names((await candor.query({ key: KEYS.marketing, query: QUERY_FIELDS })).body, '__schema')).toEqual(expect.arrayContaining(['accessLog', 'report', 'customers']));
  });

  it('an executed query is unaffected: a field hidden from the purpose still validates and is withheld with its code', async () => {
    const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: '{ customers(limit: 2) { id birthDate } }' });
    expect(response.status).toBe(200);
    expect(response.body.data?.customers).toHaveLength(2);
    expect(response.body.data?.customers.map((customer: { birthDate: unknown }) => customer.birthDate)).toEqual([null, null]);
    expect(new Set(response.body.errors?.map((error) => error.extensions?.code))).toEqual(new Set(['PURPOSE_NOT_DECLARED']));
  });

  it("Apollo's introspection switch still applies first", async () => {
    const closed = await startHttpServer({ ...candor.services, config: { ...candor.services.config, introspection: false } }, candor.governed, { port: 0, host: '127.0.0.1' });
    try {
      const response = await fetch(closed.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.marketing}`, 'x-purpose': 'marketing.communications' },
        body: JSON.stringify({ query: CUSTOMER_FIELDS }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
      expect(body.data).toBeUndefined();
      expect(body.errors?.[0]).toEqual(
        expect.objectContaining({
          message: 'introspection is switched off (the default in production): CANDOR_INTROSPECTION=true turns it on',
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED', validationErrorCode: 'INTROSPECTION_DISABLED' },
        }),
      );
    } finally {
      await closed.stop();
      await new Promise((resolve) => closed.httpServer.close(resolve));
    }
  });
});

describe.each(DRIVERS)('purpose-scoped introspection switched off on %s', (driver) => {
  let candor: Harness;
  beforeAll(async () => {
    candor = await startCandor(driver, { env: { CANDOR_PURPOSE_SCOPED_INTROSPECTION: 'false' } });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('CANDOR_PURPOSE_SCOPED_INTROSPECTION=false shows the full schema under a purpose', async () => {
    const response = await candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: BOTH });
    expect(names(response.body, '__type')).toEqual(expect.arrayContaining(['birthDate', 'accessibilityNeeds']));
    expect(names(response.body, '__schema')).toContain('accessLog');
  });
});
