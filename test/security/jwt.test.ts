import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { type Harness, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';

const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'candor';

describe.each(DRIVERS)('JWT bearer tokens on %s', (driver) => {
  let candor: Harness;
  let privateKey: KeyLike;
  let otherKey: KeyLike;
  /** Now, in a token's seconds. */
  const seconds = () => Math.floor(Date.now() / 1000);
  /** `expires: null` signs a token that never expires, `issued: null` one that does not say when it was issued. */
  const sign = (claims: Record<string, unknown>, options: { key?: KeyLike; issuer?: string; audience?: string; expires?: string | number | null; issued?: number | null; subject?: string } = {}) => {
    const token = new SignJWT({ name: 'Churn Model', team: 'Data Science', purposes: ['analytics.reporting'], ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(options.subject ?? 'churn-model')
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE);
    if (options.issued !== null) token.setIssuedAt(options.issued);
    if (options.expires !== null) token.setExpirationTime(options.expires ?? '5m');
    return token.sign(options.key ?? privateKey);
  };
  const ask = (token: string) => candor.query({ key: token, purpose: 'analytics.reporting', query: '{ customers(limit: 1) { birthDate } }' });

  beforeAll(async () => {
    ({ privateKey } = await generateKeyPair('RS256'));
    ({ privateKey: otherKey } = await generateKeyPair('RS256'));
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    candor = await startCandor(driver, { env: { CANDOR_JWT_ISSUER: ISSUER, CANDOR_JWT_AUDIENCE: AUDIENCE, CANDOR_JWT_PUBLIC_KEY: await exportSPKI(pair.publicKey) } });
  });
  afterAll(async () => {
    await candor?.stop();
  });

  it('accepts a valid token and maps its claims to the actor recorded in the log', async () => {
    const response = await ask(await sign({}));
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10);
    expect(recorded.edges[0].node.actor).toEqual({ id: 'jwt:churn-model', name: 'Churn Model', team: 'Data Science' });
  });

  it('checks entitlements from the token: a purpose it does not carry is not permitted', async () => {
    const response = await candor.query({ key: await sign({}), purpose: 'marketing.communications', query: '{ customers { id } }' });
    expect([response.status, response.body.errors?.[0].extensions?.code]).toEqual([403, 'PURPOSE_NOT_PERMITTED']);
  });

  it('accepts a token its provider stamped a few seconds ahead of this clock (whole-second claims, clocks a little apart)', async () => {
    const issued = seconds() + 2;
    const response = await ask(await sign({}, { issued, expires: issued + 300 }));
    expect([response.status, response.body.errors]).toEqual([200, undefined]);
  });

  it('accepts a token living as long as CANDOR_JWT_MAX_AGE_SECONDS allows (3600 by default), until it is that old', async () => {
    const issued = seconds() - 3_590;
    const response = await ask(await sign({}, { issued, expires: issued + 3_600 }));
    expect([response.status, response.body.errors]).toEqual([200, undefined]);
  });

  it.each<[string, () => Promise<string>]>([
    ['expired', () => sign({}, { expires: seconds() - 60 })],
    ['that never expires (no exp claim)', () => sign({}, { expires: null })],
    // The directory cannot revoke a JWT actor: a token's lifetime is bounded by CANDOR_JWT_MAX_AGE_SECONDS.
    ['that does not say when it was issued (no iat claim)', () => sign({}, { issued: null })],
    ['issued in the future', () => sign({}, { issued: seconds() + 60, expires: seconds() + 120 })],
    ['issued longer ago than the maximum age (past the clock tolerance), though not expired', () => sign({}, { issued: seconds() - 3_606, expires: seconds() + 60 })],
    ['made to live longer than the maximum age (exp in the year 2500)', () => sign({}, { expires: Date.UTC(2500, 0, 1) / 1000 })],
    ['made to live forever (exp 1e308)', () => sign({}, { expires: 1e308 })],
    ['for another audience', () => sign({}, { audience: 'someone-else' })],
    ['from another issuer', () => sign({}, { issuer: 'https://evil.example/' })],
    ['signed with another key', () => sign({}, { key: otherKey })],
    ['unsigned (alg: none)', async () => `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: 9_999_999_999, purposes: ['analytics.reporting'] })).toString('base64url')}.`],
    ['tampered', async () => (await sign({})).replace(/\.([\w-]+)\./, (_match, payload: string) => `.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), purposes: ['marketing.communications'] })).toString('base64url')}.`)],
    // Valid, but naming an actor the access log could not record: every request is logged under its actor.
    ['whose subject is longer than an actor id may be', () => sign({}, { subject: 's'.repeat(61) })],
    ['whose name holds a NUL character', () => sign({ name: 'Churn\u0000Model' })],
    ['whose name is longer than the log takes', () => sign({ name: 'n'.repeat(201) })],
    // Not text: hashed escaped, stored as U+FFFD, its records would never verify.
    ['whose name holds a lone surrogate', () => sign({ name: 'Mallory \ud83d' })],
    // Reports and the CLI print actors' names and teams: a terminal escape in one would run there.
    ['whose team holds a terminal escape', () => sign({ team: 'Data\u001b]0;pwned\u0007' })],
    ['whose name reorders what a reader sees', () => sign({ name: 'Churn\u202eModel' })],
    // The key is an RSA key: no outage can be why another algorithm does not verify under it.
    ...['ES256', 'ES384', 'EdDSA'].map((alg): [string, () => Promise<string>] => [
      `claiming ${alg}, which the configured key is not for`,
      async () => `${Buffer.from(JSON.stringify({ alg })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE })).toString('base64url')}.AAAA`,
    ]),
  ])('refuses a token %s with UNAUTHENTICATED', async (_case, token) => {
    const response = await ask(await token());
    expect([response.status, response.body.errors?.[0].extensions?.code]).toEqual([401, 'UNAUTHENTICATED']);
  });
});

describe.each(DRIVERS)('JWT bearer tokens verified against a JWKS endpoint, on %s', (driver) => {
  let jwks: Server;
  let candor: Harness;
  let privateKey: KeyLike;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'es1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    candor = await startCandor(driver, { env: { CANDOR_JWT_ISSUER: ISSUER, CANDOR_JWT_AUDIENCE: AUDIENCE, CANDOR_JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`, CANDOR_JWT_CLAIMS: '{"purposes":"scope"}' } });
  });
  afterAll(async () => {
    await candor?.stop();
    jwks?.close();
  });

  it('accepts a token whose key the JWKS publishes, reading purposes from a renamed claim', async () => {
    const token = await new SignJWT({ scope: 'analytics.reporting personalize.content', team: 'Data Science' }).setProtectedHeader({ alg: 'ES256', kid: 'es1' }).setSubject('recommender').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const response = await candor.query({ key: token, purpose: 'personalize.content', query: '{ customers(limit: 1) { displayName } }' });
    expect(response.status).toBe(200);
    // Authenticated as the token's subject, entitled by its renamed claim: the decision is recorded under it.
    const recorded = await candor.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10);
    expect(recorded.edges.map((edge) => [edge.node.actor?.id, edge.node.actor?.team, edge.node.purpose, edge.node.coordinate])).toEqual([['jwt:recommender', 'Data Science', 'personalize.content', 'Customer.displayName']]);
  });

  it('answers an unreachable or failing key set as an outage (503 GOVERNANCE_UNAVAILABLE, recorded), not as a bad token', async () => {
    const failing = createServer((_request, response) => response.writeHead(500).end('down'));
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    // A port nobody listens on: the one a server just closed.
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const gonePort = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    try {
      for (const jwksUrl of [`http://127.0.0.1:${(failing.address() as AddressInfo).port}/jwks.json`, `http://127.0.0.1:${gonePort}/jwks.json`]) {
        const outage = await startCandor(driver, { seed: false, env: { CANDOR_JWT_ISSUER: ISSUER, CANDOR_JWT_AUDIENCE: AUDIENCE, CANDOR_JWT_JWKS_URL: jwksUrl } });
        try {
          const token = await new SignJWT({ purposes: ['analytics.reporting'] }).setProtectedHeader({ alg: 'ES256', kid: 'es1' }).setSubject('recommender').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(privateKey);
          const response = await outage.query({ key: token, purpose: 'analytics.reporting', query: '{ customers(limit: 1) { displayName } }' });
          expect([response.status, response.body.data, response.body.errors?.[0].extensions?.code]).toEqual([503, undefined, 'GOVERNANCE_UNAVAILABLE']);
          const recorded = await outage.services.accessLogReader.page({ requestId: response.headers.get('x-request-id') }, 10);
          expect(recorded.edges.map((edge) => [edge.node.decision, edge.node.reason])).toEqual([['REFUSED', 'GOVERNANCE_UNAVAILABLE']]);
        } finally {
          await outage.stop();
        }
      }
    } finally {
      failing.close();
    }
  });
});
