import { GraphQLError } from 'graphql';
import { formatErrorTelling, type MaskedErrorSink } from '../../src/server/format-error';

describe('masked errors are told to operators by kind and code, never by message', () => {
  const told: Array<Parameters<MaskedErrorSink>[0]> = [];
  const format = formatErrorTelling((cause) => told.push(cause));
  beforeEach(() => told.splice(0));

  it('masks a driver error for the client and tells its class and code, not the values its message quotes', () => {
    const driverError = Object.assign(new Error('duplicate key value violates unique constraint: Key (email)=(secret@example.com) already exists'), { code: '23505' });
    const error = new GraphQLError(driverError.message, { path: ['customers', 0, 'email'], originalError: driverError });
    expect(format(error.toJSON(), error)).toEqual({ message: 'Internal server error', path: ['customers', 0, 'email'], locations: undefined, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(told).toEqual([{ error: 'Error', code: '23505', path: 'customers.0.email' }]);
    expect(JSON.stringify(told)).not.toContain('secret');
  });

  it('tells nothing of a coded error the client may see', () => {
    const error = new GraphQLError('Customer.email withheld', { extensions: { code: 'CONSENT_REQUIRED' } });
    expect(format(error.toJSON(), error).extensions?.code).toBe('CONSENT_REQUIRED');
    expect(told).toEqual([]);
  });

  it("codes graphql's own refusal of an argument, but masks a resolver's error dressed as one", () => {
    const located = (raised: GraphQLError) => new GraphQLError(raised.message, { path: ['customers'], originalError: raised });
    const refusal = located(new GraphQLError('Argument "limit" of non-null type "Int!" must not be null.'));
    expect(format({ ...refusal.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, refusal)).toEqual(expect.objectContaining({ message: 'Argument "limit" of non-null type "Int!" must not be null.', extensions: { code: 'BAD_USER_INPUT' } }));
    const dressed = located(new GraphQLError('Argument "id" of non-null type "ID!" must not be null: duplicate key (email)=(secret@example.com).'));
    expect(format({ ...dressed.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, dressed)).toEqual(expect.objectContaining({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }));
    const withCause = new GraphQLError('Argument "limit" of non-null type "Int!" must not be null.', { originalError: new Error('Argument "limit" of non-null type "Int!" must not be null.') });
    expect(format({ ...withCause.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, withCause).extensions?.code).toBe('INTERNAL_SERVER_ERROR');
  });
});
