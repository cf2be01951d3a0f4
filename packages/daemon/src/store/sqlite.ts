import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import type { BackgroundData, BackgroundMessage, ReadReply, ReadRequest } from './sqlite-background.ts';
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

/** SQLite's own checkpoint after a commit, left as a backstop for when the background's cannot keep up: 128 MiB. */
const BACKSTOP_PAGES = 32_768;
/** SQLite's default, for when the background thread is gone. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/** Checkpoints at most this often; the notices that ask for them likewise. */
const CHECKPOINT_GAP_MS = 100;
/** The store quiet this long after a checkpoint of the whole log: the background thread restarts the log. */
const RESTART_QUIET_MS = 200;
/**
 * The embedded default store: SQLite in the data directory (sqlite-inline.ts), on two threads.
 * - Writes on the event loop, with synchronous=NORMAL: a commit of a hundred DHCP leases is ~1 ms of statements and
 *   write()s, cheaper here than the hand-over to another thread and back it replaced (the server shares one CPU with
 *   everything else; BENCHMARKS.md, DHCP). With `store.sync disk` a write resolves only after an fdatasync of the
 *   log that started after its commit (wal-sync.ts: the same durability as synchronous=FULL), run on libuv's thread
 *   pool and shared by every commit made meanwhile; group commit (group-commit.ts) does the rest.
 * - Reads (get, list) and checkpoints on a thread of its own (sqlite-background.ts): the API listing 50,000 leases
 *   must not stall DHCP, and copying the log back into the database and its fsync never happen inside a commit. A
 *   read asked for after a write has resolved sees it.
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
  const background = new Worker(new URL('./sqlite-background.ts', import.meta.url), {
    workerData: {
      dataDir,
      synchronous: sync === 'disk' ? 'FULL' : 'NORMAL',
      gapMs: CHECKPOINT_GAP_MS,
      restartQuietMs: RESTART_QUIET_MS,
    } satisfies BackgroundData,
  });
  // Commits are many (hundreds a second in a DHCP storm), checkpoints few: the first commit after a notice arms a
  // timer, and the notice goes when it fires, after every commit made meanwhile; so each commit is followed by a
  // checkpoint that starts after it, and the thread is woken once per gap, not once per commit.
  let noticeTimer: NodeJS.Timeout | undefined;
  const wrote = () => {
    if (noticeTimer || backgroundGone) return;
    // At once as well: the background must not restart the log under a writer that has started again.
    background.postMessage('writing' satisfies BackgroundMessage);
    noticeTimer = setTimeout(() => {
      noticeTimer = undefined;
      if (!backgroundGone) background.postMessage('wrote' satisfies BackgroundMessage);
    }, CHECKPOINT_GAP_MS);
    noticeTimer.unref();
  };
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  const listeners = new Set<(event: WatchEvent) => void>();
  let nextId = 1;
  let closed: Promise<void> | undefined;
  /** Writes made and not yet durable: close() waits for them. */
  let unsynced: Promise<unknown> = Promise.resolve();

  background.on('message', (reply: ReadReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiter) return;
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(errorOf(reply.error));
  });
  // A background thread that failed or ended answers nothing more: what waits on it, and every read after, fails;
  // SQLite's checkpoint after a commit takes over again at its default size (slower commits now and then, never a
  // log that grows without end).
  let backgroundGone: Error | undefined;
  const backgroundEnded = (error: Error) => {
    if (!backgroundGone && !closed) writer.setAutoCheckpoint(DEFAULT_AUTOCHECKPOINT_PAGES);
    backgroundGone ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  background.on('error', backgroundEnded);
  background.on('exit', (code) => {
    backgroundEnded(new Error(`the store's background thread exited (code ${String(code)})`));
  });

  function read<T>(method: ReadRequest['method'], args: unknown[]): Promise<T> {
    if (closed && method !== 'close') return Promise.reject(new Error('store is closed'));
    if (backgroundGone) return Promise.reject(backgroundGone);
    return new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, {
        resolve: (value) => {
          resolve(value as T);
        },
        reject,
      });
      background.postMessage({ id, method, args } satisfies BackgroundMessage);
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
    wrote();
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
        if (noticeTimer) clearTimeout(noticeTimer);
        // The background's connection closes first: the writer's is then the last, which checkpoints and removes
        // the log.
        await read<undefined>('close', []).catch(() => undefined);
        await background.terminate();
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
