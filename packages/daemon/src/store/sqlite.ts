import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { startCheckpointer } from './checkpointer-thread.ts';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import type { ReadReply, ReadRequest } from './sqlite-reader.ts';
import { createWalSync } from './wal-sync.ts';
import type { BatchOp, Store, WatchEvent } from './store.ts';

/**
 * When a write to the embedded store counts as done (config `store.sync`):
 * - `disk` (the default): on disk (the log fsynced after the commit, what SQLite's synchronous=FULL does). It
 *   survives kill -9 of the daemon, a kernel crash and a power loss.
 * - `os`: handed to the kernel (synchronous=NORMAL: the log is write()n in COMMIT and fsynced only when it is
 *   checkpointed). It survives kill -9 of the daemon, not a kernel crash or a power loss, which can lose the last
 *   writes (never corrupt the store: the log's frames are checksummed). This is what Kea's memfile lease store
 *   does: one write(2) of a CSV line per lease before the reply, never an fsync (strace: BENCHMARKS.md, DHCP).
 */
export type StoreSync = 'disk' | 'os';

/** SQLite's own checkpoint after a commit, left as a backstop for when the checkpointer cannot keep up: 128 MiB. */
const BACKSTOP_PAGES = 32_768;

/**
 * The embedded default store: SQLite in the data directory (sqlite-inline.ts), in three parts.
 * - Writes on the event loop, with synchronous=NORMAL: a commit of a hundred DHCP leases is ~1 ms of statements and
 *   write()s, cheaper here than the hand-over to another thread and back it replaced (the server shares one CPU with
 *   everything else; BENCHMARKS.md, DHCP). With `store.sync disk` a write resolves only after an fdatasync of the
 *   log that started after its commit (wal-sync.ts: the same durability as synchronous=FULL), run on libuv's thread
 *   pool and shared by every commit made meanwhile; group commit (group-commit.ts) does the rest.
 * - Reads (get, list) on a thread of their own (sqlite-reader.ts): the API listing 50,000 leases must not stall
 *   DHCP. A read asked for after a write has resolved sees it.
 * - Checkpoints on a third (sqlite-checkpointer.ts): copying the log back into the database and its fsync never
 *   happen inside a commit.
 * Watchers are told of a write once it is durable (when it resolves), in commit order.
 */
export function openSqliteStore(dataDir: string, options: { sync?: StoreSync } = {}): Store {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const sync = options.sync ?? 'disk';
  const dbPath = join(dataDir, 'smelt.db');
  const writer = openInlineSqliteStore(dataDir, {
    synchronous: 'NORMAL',
    autoCheckpoint: BACKSTOP_PAGES,
    // After a long burst the log is cut back to 64 MiB when it restarts, not kept at its longest.
    journalSizeLimit: 64 * 1024 * 1024,
  });
  const walSync = sync === 'disk' ? createWalSync(`${dbPath}-wal`) : undefined;
  const checkpointer = startCheckpointer({
    path: dbPath,
    synchronous: sync === 'disk' ? 'FULL' : 'NORMAL',
    gapMs: 100,
    // Without it, SQLite's checkpoint after a commit takes over again at its default size (1000 pages): slower
    // commits now and then, never a log that grows without end.
    onFailure: () => {
      writer.setAutoCheckpoint(1000);
    },
  });
  const reader = new Worker(new URL('./sqlite-reader.ts', import.meta.url), { workerData: { dataDir } });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  const listeners = new Set<(event: WatchEvent) => void>();
  let nextId = 1;
  let closed: Promise<void> | undefined;
  /** Writes made and not yet durable: close() waits for them. */
  let unsynced: Promise<unknown> = Promise.resolve();

  reader.on('message', (reply: ReadReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiter) return;
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(errorOf(reply.error));
  });
  // A reader thread that failed or ended answers nothing more: what waits on it, and every read after, fails.
  let readerGone: Error | undefined;
  const readerEnded = (error: Error) => {
    readerGone ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  reader.on('error', readerEnded);
  reader.on('exit', (code) => {
    readerEnded(new Error(`the store's reader thread exited (code ${String(code)})`));
  });

  function read<T>(method: ReadRequest['method'], args: unknown[]): Promise<T> {
    if (closed && method !== 'close') return Promise.reject(new Error('store is closed'));
    if (readerGone) return Promise.reject(readerGone);
    return new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, {
        resolve: (value) => {
          resolve(value as T);
        },
        reject,
      });
      reader.postMessage({ id, method, args } satisfies ReadRequest);
    });
  }

  /**
   * Commits `ops` now (a conflict or an SQLite error rejects before anything is written) and resolves once they are
   * durable; the watchers hear of them then, in commit order (the syncs end in the order they start, and writers
   * waiting on one sync are told in the order they asked).
   */
  function write(ops: readonly BatchOp[]): Promise<{ revision: number; removed: boolean[] }> {
    if (closed) return Promise.reject(new Error('store is closed'));
    let outcome: { revision: number; removed: boolean[] };
    try {
      outcome = writer.commitQuietly(ops);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    checkpointer.wrote();
    const tell = () => {
      if (listeners.size === 0) return;
      for (const event of eventsOf(ops, outcome)) for (const listener of listeners) listener(event);
    };
    // A failed sync leaves the commit in the database, maybe not on disk: the watchers still hear of it (it is what
    // reads return), the writer gets the error.
    const durable = (walSync?.sync() ?? Promise.resolve()).then(
      () => {
        tell();
        return outcome;
      },
      (error: unknown) => {
        tell();
        throw error;
      },
    );
    unsynced = durable.catch(() => undefined);
    return durable;
  }

  return {
    get: (collection, key) => read('get', [collection, key]),
    list: (collection, listOptions) => read('list', [collection, listOptions]),
    put: (collection, key, value, putOptions) =>
      write([
        { collection, key, value, ...(putOptions?.ifVersion !== undefined && { ifVersion: putOptions.ifVersion }) },
      ]).then((outcome) => outcome.revision),
    delete: (collection, key, deleteOptions) =>
      write([
        { collection, key, ...(deleteOptions?.ifVersion !== undefined && { ifVersion: deleteOptions.ifVersion }) },
      ]).then((outcome) => outcome.removed[0] ?? false),
    batch: (ops) => write(ops).then((outcome) => outcome.revision),
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed ??= (async () => {
        await unsynced;
        await walSync?.close();
        // The other connections close first: the writer's is then the last, which checkpoints and removes the log.
        await read<undefined>('close', []).catch(() => undefined);
        await reader.terminate();
        await checkpointer.close();
        listeners.clear();
        await writer.close();
      })();
      return closed;
    },
  };
}

/** The watch events of a committed write: its puts, and the deletes that removed something. */
function eventsOf(ops: readonly BatchOp[], outcome: { revision: number; removed: boolean[] }): WatchEvent[] {
  const version = outcome.revision;
  return ops.flatMap((op, i): WatchEvent[] =>
    op.value === undefined
      ? outcome.removed[i]
        ? [{ collection: op.collection, key: op.key, kind: 'delete', version }]
        : []
      : [{ collection: op.collection, key: op.key, kind: 'put', value: op.value, version }],
  );
}

function errorOf(error: ReadReply['error']): Error {
  const failure = new Error(error?.message ?? 'store request failed');
  failure.name = error?.name ?? 'Error';
  return failure;
}
