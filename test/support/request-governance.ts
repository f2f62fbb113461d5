import { execute, type ExecutionResult, type GraphQLSchema, parse } from 'graphql';
import type { CompiledFields } from '../../src/policy/guarded-field';
import { RequestGovernance, type RequestGovernanceOptions } from '../../src/policy/request-governance';
import { JitExecutor } from '../../src/server/jit-executor';

/**
 * A request's governance for purpose essential.service (basis contract) where every subject's state is
 * the default one (no restriction, consent or objection): every declared personal field is released.
 * `options` replace any of these.
 */
export function serviceGovernance(compiled: CompiledFields, options: Partial<RequestGovernanceOptions> = {}): RequestGovernance {
  return new RequestGovernance({
    purpose: { key: 'essential.service', legalBasis: 'contract' },
    actorRoles: [],
    now: new Date('2026-01-01T00:00:00Z'),
    loadSubjectStates: async (subjectIds) => subjectIds.map((subjectId) => ({ subjectId, restricted: false, consents: [], objections: [] })),
    compiled,
    mask: (_strategy, value) => value,
    ...options,
  });
}

/** Both executors of a governed schema, each running a query with a context; the jit one must compile it. */
export function executorsOf(schema: GraphQLSchema): Record<'graphql-js' | 'graphql-jit', (query: string, contextValue: unknown) => Promise<ExecutionResult>> {
  const jit = new JitExecutor(schema);
  return {
    'graphql-js': async (query, contextValue) => execute({ schema, document: parse(query), contextValue }),
    'graphql-jit': async (query, contextValue) => {
      const before = jit.executions.jit;
      const result = await jit.execute({ document: parse(query), documentKey: query, contextValue });
      if (jit.executions.jit !== before + 1) throw new Error(`graphql-jit did not compile ${query}`);
      return result;
    },
  };
}
