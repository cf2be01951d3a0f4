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
  const cursor = query.cursor;
  // Each key computed once, and only what lies after the cursor sorted: a key function called in the comparator
  // ran 2 n log n times per page (a lease's key parses its address, 50,000 of them in a large site's store).
  const keyed: { key: string; item: T }[] = [];
  for (const item of items) {
    const key = keyOf(item);
    if (cursor === undefined || key > cursor) keyed.push({ key, item });
  }
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const page = keyed.slice(0, query.limit);
  const last = page.at(-1);
  return { items: page.map((k) => k.item), next: keyed.length > page.length && last !== undefined ? last.key : null };
}
