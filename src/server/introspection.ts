import { type DocumentNode, Kind, parse, type SelectionSetNode } from 'graphql';

/**
 * True when the operation selects only introspection fields (`__schema`, `__type`, `__typename`), through
 * fragments too. Such a request needs a valid key but no purpose: it reads the schema, not personal data.
 * An unparsable document is not introspection (it will need a purpose and then fail to parse).
 */
export function isIntrospectionOnly(query: unknown, operationName: unknown): boolean {
  if (typeof query !== 'string' || query.length > 100_000) return false;
  let document: DocumentNode;
  try {
    document = parse(query, { noLocation: true });
  } catch {
    return false;
  }
  const fragments = new Map(document.definitions.flatMap((definition) => (definition.kind === Kind.FRAGMENT_DEFINITION ? [[definition.name.value, definition] as const] : [])));
  const operations = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  const selected = typeof operationName === 'string' && operationName ? operations.filter((operation) => operation.name?.value === operationName) : operations;
  if (selected.length !== 1) return false;
  const visited = new Set<string>();
  const onlyIntrospection = (selectionSet: SelectionSetNode): boolean =>
    selectionSet.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value.startsWith('__');
      if (selection.kind === Kind.INLINE_FRAGMENT) return onlyIntrospection(selection.selectionSet);
      const fragment = fragments.get(selection.name.value);
      if (!fragment) return false;
      if (visited.has(fragment.name.value)) return true;
      visited.add(fragment.name.value);
      return onlyIntrospection(fragment.selectionSet);
    });
  return onlyIntrospection(selected[0].selectionSet);
}
