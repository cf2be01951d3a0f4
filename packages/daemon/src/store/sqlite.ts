import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { encodeBatch } from './batch-wire.ts';
import type { StoreReply, StoreRequest } from './sqlite-worker.ts';
import { StoreConflictError, type BatchOp, type Collection, type Store, type WatchEvent } from './store.ts';

/**
 * When a write to the embedded store counts as done (config `store.sync`):
 * - `disk` (the default): on disk (SQLite synchronous=FULL: the log is fsynced in COMMIT). It survives kill -9 of
 *   the daemon, a kernel crash and a power loss.
 * - `os`: handed to the kernel (synchronous=NORMAL: the log is write()n in COMMIT and fsynced only when it is
 *   checkpointed). It survives kill -9 of the daemon, not a kernel crash or a power loss, which can lose the last
 *   writes (never corrupt the store: the log's frames are checksummed). This is what Kea's memfile lease store
 *   does: one write(2) of a CSV line per lease before the reply, never an fsync (strace: BENCHMARKS.md, DHCP).
 */
export type StoreSync = 'disk' | 'os';

/**
 * The embedded default store: SQLite in the data directory (sqlite-inline.ts), run on a worker thread of its own.
 * Commits and their fsyncs happen there while the event loop goes on answering DHCP, TFTP and HTTP; everything
 * written while one commit is on disk goes into the next (group commit does the rest). Requests are answered in
 * the order they were made, so a read after a write sees it.
 */
export function openSqliteStore(dataDir: string, options: { sync?: StoreSync } = {}): Store {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const worker = new Worker(new URL('./sqlite-worker.ts', import.meta.url), {
    workerData: { dataDir, sync: options.sync ?? 'disk' },
  });
  const pending = new Map<
    number,
    { resolve(value: unknown): void; reject(error: Error): void; events?: (reply: StoreReply) => WatchEvent[] }
  >();
  const listeners = new Set<(event: WatchEvent) => void>();
  let nextId = 1;
  let closed: Promise<void> | undefined;

  worker.on('message', (reply: StoreReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiter) return;
    if (reply.ok && waiter.events) {
      for (const event of waiter.events(reply)) for (const listener of listeners) listener(event);
    }
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(errorOf(reply.error));
  });
  worker.on('error', (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });

  function call<T>(
    method: StoreRequest['method'],
    args: unknown[],
    events?: (reply: StoreReply) => WatchEvent[],
  ): Promise<T> {
    if (closed && method !== 'close') return Promise.reject(new Error('store is closed'));
    return new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, {
        resolve: (value) => {
          resolve(value as T);
        },
        reject,
        ...(events && { events }),
      });
      worker.postMessage({ id, method, args } satisfies StoreRequest);
    });
  }

  /** The watch events of a committed batch, from what was asked and what the worker says it did. */
  function batchEvents(ops: readonly BatchOp[], reply: StoreReply): WatchEvent[] {
    const version = reply.revision ?? 0;
    const deleted = new Set(reply.deleted);
    return ops.flatMap((op): WatchEvent[] =>
      op.value === undefined
        ? deleted.has(`${op.collection} ${op.key}`)
          ? [{ collection: op.collection, key: op.key, kind: 'delete', version }]
          : []
        : [{ collection: op.collection, key: op.key, kind: 'put', value: op.value, version }],
    );
  }

  return {
    get: (collection, key) => call('get', [collection, key]),
    list: (collection, options) => call('list', [collection, options]),
    put: (collection, key, value, options) =>
      call('put', [collection, key, JSON.stringify(value), options], (reply) =>
        batchEvents([{ collection, key, value }], reply),
      ),
    delete: (collection, key, options) =>
      call('delete', [collection, key, options], (reply) => batchEvents([{ collection, key }], reply)),
    // One string per batch (batch-wire.ts): a structured clone of many small objects costs the event loop far more.
    batch: (ops) => call('batch', [encodeBatch(ops)], (reply) => batchEvents(ops, reply)),
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed ??= call<undefined>('close', []).then(
        async () => {
          listeners.clear();
          await worker.terminate();
        },
        async () => {
          await worker.terminate();
        },
      );
      return closed;
    },
  };
}

function errorOf(error: StoreReply['error']): Error {
  if (error?.conflict) {
    const [collection, key, expected, actual] = error.conflict;
    return new StoreConflictError(collection as Collection, key, expected, actual);
  }
  const failure = new Error(error?.message ?? 'store request failed');
  failure.name = error?.name ?? 'Error';
  return failure;
}
