import { ApolloServer } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { formatErrorKeepingCause as format, maskedCause, maskedCauseOf } from '../../src/server/format-error';

describe('masked errors are kept for operators by kind and code, never by message', () => {

  it('masks a driver error for the client and tells its class and code, not the values its message quotes', () => {
    const driverError = Object.assign(new Error('duplicate key value violates unique constraint: Key (email)=(secret@example.com) already exists'), { code: '23505' });
    const error = new GraphQLError(driverError.message, { path: ['customers', 0, 'email'], originalError: driverError });
    const answered = format(error.toJSON(), error);
    expect(answered).toEqual({ message: 'Internal server error', path: ['customers', 0, 'email'], locations: undefined, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(maskedCauseOf(answered)).toEqual({ error: 'Error', code: '23505', path: 'customers.0.email' });
    // The cause rides along for the log line only: the client's JSON does not carry it.
    expect(JSON.stringify(answered)).not.toContain('23505');
    expect(JSON.stringify(maskedCauseOf(answered))).not.toContain('secret');
    expect(maskedCause(driverError)).toEqual({ error: 'Error', code: '23505', path: null });
    // pg-pool's refusal when no connection came free in time carries no code: the log names it.
    const exhausted = new GraphQLError('timeout exceeded when trying to connect', { path: ['customers'], originalError: new Error('timeout exceeded when trying to connect') });
    expect(maskedCauseOf(format(exhausted.toJSON(), exhausted))).toEqual({ error: 'Error', code: 'CONNECTION_POOL_EXHAUSTED', path: 'customers' });
  });

  it('tells nothing of a coded error the client may see', () => {
    const error = new GraphQLError('Customer.email withheld', { extensions: { code: 'CONSENT_REQUIRED' } });
    const answered = format(error.toJSON(), error);
    expect(answered.extensions?.code).toBe('CONSENT_REQUIRED');
    expect([maskedCauseOf(answered), maskedCause(error)]).toEqual([undefined, undefined]);
  });

  it("codes graphql's own refusal of an argument, but masks a resolver's error dressed as one", () => {
    const located = (raised: GraphQLError) => new GraphQLError(raised.message, { path: ['customers'], originalError: raised });
    const refusal = located(new GraphQLError('Argument "limit" of non-null type "Int!" must not be null.'));
    expect(format({ ...refusal.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, refusal)).toEqual(expect.objectContaining({ message: 'Argument "limit" of non-null type "Int!" must not be null.', extensions: { code: 'BAD_USER_INPUT' } }));
    const dressed = located(new GraphQLError('Argument "id" of non-null type "ID!" must not be null: duplicate key (email)=(secret@example.com).'));
    expect(format({ ...dressed.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, dressed)).toEqual(expect.objectContaining({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }));
    // An input literal holding a null variable: coded, in a sentence of Candor's, not graphql-js's print of the literal.
    const literal = located(new GraphQLError('Argument "input" has invalid value {subjectId: "cus_1", purpose: "marketing",\n source: "crm", explicit: $e}.'));
    expect(format({ ...literal.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, literal)).toEqual(
      expect.objectContaining({ message: 'Argument "input" has an invalid value: a variable in it is null or missing where its field needs a value.', extensions: { code: 'BAD_USER_INPUT' } }),
    );
    const withCause = new GraphQLError('Argument "limit" of non-null type "Int!" must not be null.', { originalError: new Error('Argument "limit" of non-null type "Int!" must not be null.') });
    expect(format({ ...withCause.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, withCause).extensions?.code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('never lets a stack trace through, even on an error the client may see', () => {
    expect(format({ message: 'x', extensions: { code: 'BAD_USER_INPUT', stacktrace: ['at resolve (src/graphql/customer.resolver.ts:12:3)'] } })).toEqual({ message: 'x', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it("lets Apollo's own request errors through with their code: PERSISTED_QUERY_NOT_SUPPORTED, as Apollo answers it with persisted queries off", async () => {
    // Candor keeps automatic persisted queries on (Apollo's default; the bypass suite registers and replays one), so
    // its server never gives this code: an Apollo server with them off, formatting its errors as Candor does, does.
    const apollo = new ApolloServer({ typeDefs: 'type Query { ok: Boolean }', persistedQueries: false, formatError: format });
    await apollo.start();
    try {
      const response = await apollo.executeOperation({ query: '{ ok }', extensions: { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } } });
      expect(response.body.kind === 'single' && response.body.singleResult).toEqual({ errors: [{ message: 'PersistedQueryNotSupported', extensions: { code: 'PERSISTED_QUERY_NOT_SUPPORTED' } }] });
    } finally {
      await apollo.stop();
    }
  });
});
