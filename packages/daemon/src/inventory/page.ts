import { SmeltError } from '../errors.ts';

/** A page of items sorted by key: `cursor` is the last key of the previous page. */
export function paginate<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  query: { limit: number; cursor?: string | undefined },
): { items: T[]; next: string | null } {
  if (query.cursor !== undefined && query.cursor === '') {
    throw new SmeltError('invalid_request', 'query.cursor: must not be empty', [
      { in: 'query', path: 'cursor', message: 'must not be empty' },
    ]);
  }
  const sorted = [...items].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const rest = query.cursor === undefined ? sorted : sorted.filter((item) => keyOf(item) > (query.cursor ?? ''));
  const page = rest.slice(0, query.limit);
  const last = page.at(-1);
  return { items: page, next: rest.length > page.length && last !== undefined ? keyOf(last) : null };
}
