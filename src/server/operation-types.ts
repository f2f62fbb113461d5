import { GraphQLError, type ValidationRule } from 'graphql';

/**
 * Refuses an operation of a kind the schema has no root type for (a `subscription`: Candor serves queries
 * and mutations over HTTP). graphql-js 16 validates no such thing and fails the operation as it starts
 * executing, with an uncoded error that reaches the client as INTERNAL_SERVER_ERROR (HTTP 200, and no
 * record of the refusal); as a validation error it is the client's, 400 GRAPHQL_VALIDATION_FAILED, and
 * recorded like every other refused request. (graphql-js 17 has this rule as `KnownOperationTypesRule`.)
 */
export const KnownOperationTypes: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    if (context.getSchema().getRootType(operation.operation)) return;
    context.reportError(new GraphQLError(`the schema has no ${operation.operation} operations: Candor serves queries and mutations`, { nodes: operation }));
  },
});
