import type { z } from 'zod';
import type { Collection, Store, Versioned } from '../store/store.ts';

/** One store collection seen through its schema: what comes out is parsed, so a bad row cannot go unnoticed. */
export interface TypedCollection<T> {
  get(key: string): Promise<Versioned<T> | undefined>;
  all(): Promise<Versioned<T>[]>;
  put(key: string, value: T, ifVersion?: number): Promise<number>;
  delete(key: string, ifVersion?: number): Promise<boolean>;
  /** Several puts in one durable commit. */
  putMany(entries: readonly { key: string; value: T }[]): Promise<number>;
}

export function typedCollection<S extends z.ZodType>(
  store: Store,
  name: Collection,
  schema: S,
): TypedCollection<z.output<S>> {
  const parse = (row: Versioned): Versioned<z.output<S>> => ({ ...row, value: schema.parse(row.value) });
  return {
    async get(key) {
      const row = await store.get(name, key);
      return row && parse(row);
    },
    async all() {
      return (await store.list(name)).map(parse);
    },
    put: (key, value, ifVersion) => store.put(name, key, value, ifVersion === undefined ? {} : { ifVersion }),
    delete: (key, ifVersion) => store.delete(name, key, ifVersion === undefined ? {} : { ifVersion }),
    putMany: (entries) => store.batch(entries.map(({ key, value }) => ({ collection: name, key, value }))),
  };
}
