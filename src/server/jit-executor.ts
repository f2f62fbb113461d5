import type { ApolloServerOptionsWithGateway, BaseContext } from '@apollo/server';
import { BREAK, type DocumentNode, execute, type ExecutionResult, getOperationAST, getVariableValues, GraphQLError, type GraphQLSchema, Kind, printSchema, type SelectionSetNode, type VariableDefinitionNode, visit } from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

type Gateway = ApolloServerOptionsWithGateway<BaseContext>['gateway'];
type GatewayExecutor = NonNullable<Awaited<ReturnType<Gateway['load']>>['executor']>;
type GatewayRequestContext = Parameters<GatewayExecutor>[0];

/** How many compiled documents the executor keeps (least recently used dropped first). */
export const JIT_CACHE_ENTRIES = 1_000;

/**
 * How many field places the kept documents may hold together. A compiled document keeps a resolve info and
 * code per place (a field at a path, fragments spread out): measured ≈ 1.4 KiB a place and ≈ 15 KiB a
 * document, so ≈ 35 MiB here. Counting documents alone let a client fill the cache with large ones
 * (1,000 documents of 800 places ≈ 1.5 GiB).
 */
export const JIT_CACHE_PLACES = 25_000;
/** A document's own weight in places, besides its fields' (≈ 15 KiB). */
const DOCUMENT_PLACES = 10;

/** The marker of a document graphql-jit refused to compile, or that it would run unlike graphql-js: it runs on graphql-js. */
const ON_GRAPHQL_JS = Symbol('graphql-js');

const META_FIELDS = new Set(['__typename', '__schema', '__type']);

/**
 * Whether graphql-jit 0.8.9 could answer `document` otherwise than graphql-js (found in review, 2026-11-29):
 * - with `@skip`/`@include`, it collects fields otherwise: a fragment's fields under a skipped node merged
 *   with a kept one are sent (graphql-js leaves them out), and a fragment skipped once is left out where it
 *   is spread again;
 * - it names each field's resolve info by its response keys joined with `_`, list indexes as `idx<depth>`,
 *   and two places whose names coincide (keys `x`, list, `y` and `idx0_x`, `y`) share one resolve info, with
 *   the other place's field nodes and return type. A response key holding `_` or shaped `idx<n>` can do that;
 * - a variable inside an argument's object or list literal reaches the resolver unchecked (found in review,
 *   2026-12-01): null where the input field is non-null (`input: { explicit: $e }`, `$e` null: a consent
 *   granted that graphql-js refuses), null where it is absent and has a default.
 * The leaf guard does not rely on the first two (it collects each place's leaves as graphql-js does); these
 * run on graphql-js so that answers, errors' locations and the records stay the reference executor's.
 */
export function divergesOnGraphqlJit(document: DocumentNode): boolean {
  let diverges = false;
  /** How many object and list literals the visit is inside. */
  let insideLiteral = 0;
  const enterLiteral = () => void insideLiteral++;
  const leaveLiteral = () => void insideLiteral--;
  visit(document, {
    ObjectValue: { enter: enterLiteral, leave: leaveLiteral },
    ListValue: { enter: enterLiteral, leave: leaveLiteral },
    Variable() {
      if (insideLiteral > 0) return ((diverges = true), BREAK);
      return undefined;
    },
    Directive(node) {
      if (node.name.value === 'skip' || node.name.value === 'include') return ((diverges = true), BREAK);
      return undefined;
    },
    Field(node) {
      const key = node.alias?.value ?? node.name.value;
      if (!META_FIELDS.has(key) && (key.includes('_') || /^idx\d+$/.test(key))) return ((diverges = true), BREAK);
      return undefined;
    },
  });
  return diverges;
}

/**
 * The field places an executor compiles for `document`: every field once per place it is selected at, a
 * fragment's fields once per spread (counted once per fragment, then multiplied), every operation's.
 */
export function fieldPlacesOf(document: DocumentNode): number {
  const fragments = new Map(document.definitions.filter((definition) => definition.kind === Kind.FRAGMENT_DEFINITION).map((fragment) => [fragment.name.value, fragment]));
  const ofFragment = new Map<string, number>();
  const count = (selectionSet: SelectionSetNode | undefined, spreading: ReadonlySet<string>): number => {
    let places = 0;
    for (const selection of selectionSet?.selections ?? []) {
      if (selection.kind === Kind.FIELD) places += 1 + count(selection.selectionSet, spreading);
      else if (selection.kind === Kind.INLINE_FRAGMENT) places += count(selection.selectionSet, spreading);
      else {
        const name = selection.name.value;
        // Validation refuses cycles and unknown fragments; the guard keeps this walk finite whatever it gets.
        if (spreading.has(name) || !fragments.has(name)) continue;
        if (!ofFragment.has(name)) ofFragment.set(name, count(fragments.get(name)!.selectionSet, new Set([...spreading, name])));
        places += ofFragment.get(name)!;
      }
    }
    return places;
  };
  return document.definitions.reduce((places, definition) => places + (definition.kind === Kind.OPERATION_DEFINITION ? count(definition.selectionSet, new Set()) : 0), 0);
}

/** A compiled document, with the variables its operation defines. */
interface CompiledOperation {
  readonly run: CompiledQuery;
  readonly variableDefinitions: readonly VariableDefinitionNode[];
}

/** A kept document: compiled, or marked for graphql-js, with its weight in field places. */
interface KeptQuery {
  readonly query: CompiledOperation | typeof ON_GRAPHQL_JS;
  readonly places: number;
}

export interface JitExecutorOptions {
  /** Compiled documents kept, least recently used dropped first (default {@link JIT_CACHE_ENTRIES}). */
  readonly maxEntries?: number;
  /**
   * Field places the kept documents may hold together (default {@link JIT_CACHE_PLACES}); a document larger
   * than this alone runs on graphql-js.
   */
  readonly maxPlaces?: number;
  /** Told once per document that graphql-jit refused to compile (it then runs on graphql-js). */
  readonly onCompileFailure?: (operationName: string | undefined, error: unknown) => void;
}

/** One request, as either executor needs it. */
export interface ExecutionRequest {
  readonly document: DocumentNode;
  /** A stable key of the document's text (Apollo's query hash): the cache key, with the operation name. */
  readonly documentKey: string;
  readonly operationName?: string;
  readonly variables?: Record<string, unknown>;
  readonly contextValue: unknown;
}

/**
 * Runs operations on graphql-jit: each (document, operation name) is compiled once into a function and kept in
 * a bounded LRU cache; later requests with the same text only run it. The compiled function calls the
 * schema's own resolvers — graphql-shield's rules, the preloaders and the leaf guard — with the same
 * context, variables and (undefined) root value as graphql-js, so governance is the same code either way.
 *
 * Where graphql-jit cannot give graphql-js's answer, graphql-js gives it:
 * - a document graphql-jit refuses to compile, or would answer otherwise ({@link divergesOnGraphqlJit}), runs
 *   on graphql-js `execute` (remembered per document); a compile failure never executes anything on its own;
 * - variables are coerced by graphql-js first, and those it refuses are left to it (whose errors Apollo
 *   recognises and codes BAD_USER_INPUT): graphql-jit's own coercion accepts some it refuses (`[]` for an
 *   input object whose fields are all optional, found in review), and refuses some it accepts.
 * Errors are handed back as graphql-js would have built them (see {@link asGraphQLJsError}).
 */
export class JitExecutor {
  private readonly compiled = new Map<string, KeptQuery>();
  private readonly maxEntries: number;
  private readonly maxPlaces: number;
  /** The field places of the kept documents, together. */
  private places = 0;
  /** Operations executed so far by each executor (a document graphql-jit refused, or refused variables, count for graphql-js). */
  readonly executions = { jit: 0, graphqlJs: 0 };

  constructor(
    readonly schema: GraphQLSchema,
    private readonly options: JitExecutorOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? JIT_CACHE_ENTRIES;
    this.maxPlaces = options.maxPlaces ?? JIT_CACHE_PLACES;
  }

  /** The field places the kept documents hold together. */
  get keptPlaces(): number {
    return this.places;
  }

  /** Compiled documents (and documents marked for graphql-js) currently kept. */
  get size(): number {
    return this.compiled.size;
  }

  async execute(request: ExecutionRequest): Promise<ExecutionResult> {
    // An empty operation name names no operation for Apollo and graphql-js, but none at all for graphql-jit,
    // which would run the document's only operation: graphql-js answers it (Unknown operation named ""),
    // before the cache, whose key does not tell "" from no name.
    if (request.operationName === '') return this.onGraphQLJs(request);
    const query = this.compiledFor(request);
    if (query === ON_GRAPHQL_JS) return this.onGraphQLJs(request);
    if (query.variableDefinitions.length > 0 && getVariableValues(this.schema, query.variableDefinitions, request.variables ?? {}).errors) return this.onGraphQLJs(request);
    const result = await query.run.query(undefined, request.contextValue, request.variables);
    // No data at all: the variables were refused before anything ran.
    if (result.data === undefined) return this.onGraphQLJs(request);
    this.executions.jit++;
    return result.errors ? { data: result.data, errors: result.errors.map(asGraphQLJsError) } : { data: result.data };
  }

  /** Whether the cache holds (document, operation name), compiled or marked for graphql-js. */
  holds(documentKey: string, operationName?: string): boolean {
    return this.compiled.has(cacheKey(documentKey, operationName));
  }

  private compiledFor({ document, documentKey, operationName }: ExecutionRequest): CompiledOperation | typeof ON_GRAPHQL_JS {
    const key = cacheKey(documentKey, operationName);
    const kept = this.compiled.get(key);
    if (kept !== undefined) {
      // Most recently used goes last: Map keeps insertion order.
      this.compiled.delete(key);
      this.compiled.set(key, kept);
      return kept.query;
    }
    const places = DOCUMENT_PLACES + fieldPlacesOf(document);
    let query: CompiledOperation | typeof ON_GRAPHQL_JS;
    try {
      const result = divergesOnGraphqlJit(document) || places > this.maxPlaces ? undefined : compileQuery(this.schema, document, operationName, { disablingCapturingStackErrors: true });
      if (result === undefined) query = ON_GRAPHQL_JS;
      else if (isCompiledQuery(result)) query = { run: result, variableDefinitions: getOperationAST(document, operationName)?.variableDefinitions ?? [] };
      else {
        query = ON_GRAPHQL_JS;
        this.options.onCompileFailure?.(operationName, result.errors);
      }
    } catch (error) {
      query = ON_GRAPHQL_JS;
      this.options.onCompileFailure?.(operationName, error);
    }
    // A document marked for graphql-js weighs next to nothing: it keeps no compiled code.
    const entry: KeptQuery = { query, places: query === ON_GRAPHQL_JS ? 1 : places };
    while (this.compiled.size > 0 && (this.compiled.size >= this.maxEntries || this.places + entry.places > this.maxPlaces)) {
      const [oldestKey, oldest] = this.compiled.entries().next().value!;
      this.compiled.delete(oldestKey);
      this.places -= oldest.places;
    }
    this.compiled.set(key, entry);
    this.places += entry.places;
    return query;
  }

  private async onGraphQLJs({ document, operationName, variables, contextValue }: ExecutionRequest): Promise<ExecutionResult> {
    this.executions.graphqlJs++;
    return execute({ schema: this.schema, document, operationName, variableValues: variables, contextValue });
  }
}

const cacheKey = (documentKey: string, operationName: string | undefined) => `${operationName ?? ''}\u0000${documentKey}`;

/**
 * The error graphql-js would report. graphql-js keeps an error a resolver returned or threw as it is when it
 * already carries a path (Candor's coded refusals do, and its withheld errors of a leaf selected at one
 * place); graphql-jit wraps every error in its own object, which has no `nodes` and, for an uncoded error,
 * no `extensions` — Apollo's error formatting reads `extensions.code` and would answer a bare "Internal
 * server error" without the path.
 */
export function asGraphQLJsError(error: GraphQLError): GraphQLError {
  const original = error.originalError;
  if (original instanceof GraphQLError && original.path !== undefined) return original;
  const rebuilt = new GraphQLError(error.message, { path: error.path, originalError: original, extensions: error.extensions });
  // graphql-js derives locations from AST nodes, which graphql-jit does not keep: carry its computed ones.
  if (error.locations !== undefined) Object.defineProperty(rebuilt, 'locations', { value: error.locations, enumerable: true });
  return rebuilt;
}

/**
 * The gateway Apollo Server runs with instead of `schema` when `CANDOR_EXECUTOR=graphql-jit`: it reports the
 * governed schema once (Apollo validates and introspects against it as usual; plugins see every request
 * as before) and executes through a {@link JitExecutor}.
 */
export function jitGateway(schema: GraphQLSchema, options: JitExecutorOptions = {}): Gateway & { readonly executor: JitExecutor } {
  const executor = new JitExecutor(schema, options);
  const listeners = new Set<Parameters<Gateway['onSchemaLoadOrUpdate']>[0]>();
  return {
    executor,
    onSchemaLoadOrUpdate(callback) {
      listeners.add(callback);
      return () => listeners.delete(callback);
    },
    async load() {
      // Apollo subscribes before load() and expects the schema to be reported by the time load() resolves.
      const coreSupergraphSdl = printSchema(schema);
      for (const listener of listeners) listener({ apiSchema: schema, coreSupergraphSdl });
      return {
        executor: (requestContext: GatewayRequestContext) =>
          executor.execute({
            document: requestContext.document,
            documentKey: requestContext.queryHash,
            operationName: requestContext.request.operationName,
            variables: requestContext.request.variables,
            contextValue: requestContext.context,
          }),
      };
    },
    async stop() {
      listeners.clear();
    },
  };
}
