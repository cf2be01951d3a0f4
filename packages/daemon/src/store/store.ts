/**
 * The state store: small CRUD + compare-and-set + watch over JSON values in named collections (DESIGN.md §5.3).
 * Policy (uniqueness, references between resources) lives above it, in inventory/. Every backend passes
 * store.contract.ts.
 */

export const collections = ['boots', 'deployments', 'machines', 'defaults', 'leases', 'events', 'tokens'] as const;
export type Collection = (typeof collections)[number];

/** A stored value with the store-wide revision at which it was last written (like etcd's mod_revision). */
export interface Versioned<T = unknown> {
  key: string;
  value: T;
  version: number;
}

export interface PutOptions {
  /** Compare-and-set: write only if the current version equals this; 0 means "only if absent". */
  ifVersion?: number;
}

export interface ListOptions {
  /** Only keys strictly greater than this (keys are listed in ascending byte order). */
  after?: string;
  limit?: number;
}

export interface WatchEvent {
  collection: Collection;
  key: string;
  kind: 'put' | 'delete';
  /** The new value for a put; absent for a delete. */
  value?: unknown;
  version: number;
}

/** One write in a batch: a put when value is present, a delete when it is undefined. */
export interface BatchOp {
  collection: Collection;
  key: string;
  value?: unknown;
  ifVersion?: number;
}

export interface Store {
  get(collection: Collection, key: string): Promise<Versioned | undefined>;
  list(collection: Collection, options?: ListOptions): Promise<Versioned[]>;
  /** Writes the value and resolves to its new version once it is durable; rejects with StoreConflictError. */
  put(collection: Collection, key: string, value: unknown, options?: PutOptions): Promise<number>;
  /** Resolves true if something was deleted; with ifVersion, rejects with StoreConflictError on mismatch. */
  delete(collection: Collection, key: string, options?: PutOptions): Promise<boolean>;
  /**
   * Applies every op in one atomic, durable commit (all or none; one fsync for all of them, which is what lets the
   * DHCP server persist thousands of leases a second). Every op gets the same new revision, as in an etcd txn.
   * Rejects with StoreConflictError, writing nothing, if any ifVersion does not match. Deleting an absent key is
   * not an error. Resolves to the revision.
   */
  batch(ops: readonly BatchOp[]): Promise<number>;
  /** Calls the listener after every committed change, in commit order. Returns the unsubscribe function. */
  watch(listener: (event: WatchEvent) => void): () => void;
  close(): Promise<void>;
}

/** A compare-and-set failed: someone else wrote the key first. */
export class StoreConflictError extends Error {
  readonly collection: Collection;
  readonly key: string;
  readonly expected: number;
  readonly actual: number;

  constructor(collection: Collection, key: string, expected: number, actual: number) {
    super(`${collection}/${key}: expected version ${expected}, found ${actual}`);
    this.name = 'StoreConflictError';
    this.collection = collection;
    this.key = key;
    this.expected = expected;
    this.actual = actual;
  }
}
