import type { Category, Taxonomy } from '../taxonomy/taxonomy';
import type { FieldPolicy } from './decide';

/** What an enforcement point needs to know about one field, compiled once at schema build. */
export interface GuardedField {
  /** Dense index (0…n-1) used for per-request bookkeeping without string keys. */
  readonly index: number;
  readonly coordinate: string;
  readonly fieldName: string;
  readonly category: string;
  readonly policy: FieldPolicy;
  /** Index of `policy` among the distinct policies, so decisions are shared between fields with the same policy. */
  readonly policyIndex: number;
  /** The record property holding the data subject's id (absent on non-personal types). */
  readonly subjectKey?: string;
  readonly roles: readonly string[];
  readonly root: boolean;
  /** Root fields: record each call under this reason. */
  readonly recordAs?: string;
  /** Root fields with `recordAs`: the argument path (`input.subjectId`) naming the data subject a call acts on. */
  readonly subjectArgument?: string;
  /** Root fields: the Boolean argument filtering the returned subjects on their choices (each then recorded). */
  readonly filtersOnChoices?: string;
}

/** The declaration a field is compiled from (what `@Governed` and its type say). */
export interface FieldDeclaration {
  readonly coordinate: string;
  readonly fieldName: string;
  readonly category: string;
  readonly purposes: readonly string[];
  readonly roles: readonly string[];
  readonly root: boolean;
  readonly recordAs?: string;
  readonly subjectArgument?: string;
  readonly filtersOnChoices?: string;
  readonly subjectKey?: string;
}

/** Guarded fields (by index) and the distinct policies they share (by policy index). */
export interface CompiledFields {
  readonly fields: readonly GuardedField[];
  readonly policies: readonly FieldPolicy[];
}

/**
 * The policy `decide()` reads for a field of `category` declared for `purposes`. An unknown category (the
 * schema lint refuses those before this runs) counts as personal: never released without a subject.
 */
export function fieldPolicy(categoryKey: string, purposes: readonly string[], category: Category | undefined): FieldPolicy {
  return Object.freeze({
    category: categoryKey,
    personal: category?.personal ?? true,
    special: category?.special ?? false,
    purposes: Object.freeze([...purposes]),
    ...(category?.mask ? { mask: category.mask } : {}),
  });
}

/** Compiles declarations (already linted against the taxonomy) into guarded fields with interned policies. */
export function compileFields(declarations: readonly FieldDeclaration[], taxonomy: Taxonomy): CompiledFields {
  const policies = new Map<string, { policy: FieldPolicy; index: number }>();
  const fields = declarations.map((declaration, index) => {
    const category = taxonomy.categories.get(declaration.category);
    const policyKey = `${declaration.category}|${[...declaration.purposes].sort().join(',')}`;
    let interned = policies.get(policyKey);
    if (!interned) {
      const policy = fieldPolicy(declaration.category, declaration.purposes, category);
      interned = { policy, index: policies.size };
      policies.set(policyKey, interned);
    }
    return Object.freeze({
      index,
      coordinate: declaration.coordinate,
      fieldName: declaration.fieldName,
      category: declaration.category,
      policy: interned.policy,
      policyIndex: interned.index,
      subjectKey: declaration.subjectKey,
      roles: declaration.roles,
      root: declaration.root,
      recordAs: declaration.recordAs,
      subjectArgument: declaration.subjectArgument,
      filtersOnChoices: declaration.filtersOnChoices,
    });
  });
  return { fields, policies: [...policies.values()].map((interned) => interned.policy) };
}
