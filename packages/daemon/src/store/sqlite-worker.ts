import { join } from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { decodeBatch } from './batch-wire.ts';
import type { CheckpointerData } from './sqlite-checkpointer.ts';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import type { StoreSync } from './sqlite.ts';
import { StoreConflictError, type Store, type WatchEvent } from './store.ts';

/**
 * The embedded store's thread: requests from sqlite.ts are run one at a time, in order, against the inline SQLite
 * store; a reply to a write carries its revision and which deletes removed something, from which the main thread
 * builds its watch events, in commit order. A reply to a write is sent only once the commit (and its fsync) is done.
 */
export interface StoreRequest {
  id: number;
  method: 'get' | 'list' | 'put' | 'delete' | 'batch' | 'close';
  args: unknown[];
}

export interface StoreReply {
  id: number;
  ok: boolean;
  result?: unknown;
  /** The revision the write committed at, and which of its deletes removed something ("collection key"). */
  revision?: number;
  deleted?: string[];
  error?: { name: string; message: string; conflict?: [string, string, number, number] };
}

const port = parentPort;
if (!port) throw new Error('sqlite-worker.ts runs in a worker thread');
const { dataDir, sync } = workerData as { dataDir: string; sync: StoreSync };

/** SQLite's own checkpoint after a commit, left as a backstop for when the checkpointer cannot keep up: 128 MiB. */
const BACKSTOP_PAGES = 32_768;
/** SQLite's default, for when there is no checkpointer. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

const synchronous = sync === 'os' ? 'NORMAL' : 'FULL';
let store: ReturnType<typeof openInlineSqliteStore> | undefined;
let openError: unknown;
try {
  store = openInlineSqliteStore(dataDir, {
    synchronous,
    autoCheckpoint: BACKSTOP_PAGES,
    // After a long burst the log is cut back to 64 MiB when it restarts, not kept at its longest.
    journalSizeLimit: 64 * 1024 * 1024,
  });
} catch (error) {
  openError = error;
}
const events: WatchEvent[] = [];
store?.watch((event) => events.push(event));
const checkpointer = store ? startCheckpointer() : undefined;

port.on('message', (request: StoreRequest) => {
  void handle(request).then((reply) => {
    port.postMessage(reply);
    if (reply.ok && reply.revision !== undefined) checkpointer?.wrote();
  });
});

/**
 * Checkpoints on a thread of their own (sqlite-checkpointer.ts), so that no commit waits for one. If that thread
 * fails, SQLite's checkpoint after a commit takes over again at its default size: slower ACKs now and then, never a
 * log that grows without end.
 */
function startCheckpointer(): { wrote(): void; close(): Promise<void> } | undefined {
  let worker: Worker | undefined;
  try {
    worker = new Worker(new URL('./sqlite-checkpointer.ts', import.meta.url), {
      workerData: { path: join(dataDir, 'smelt.db'), synchronous, gapMs: 100 } satisfies CheckpointerData,
    });
  } catch {
    store?.setAutoCheckpoint(DEFAULT_AUTOCHECKPOINT_PAGES);
    return undefined;
  }
  let alive = true;
  let closedNow: (() => void) | undefined;
  const fallBack = () => {
    if (!alive) return;
    alive = false;
    store?.setAutoCheckpoint(DEFAULT_AUTOCHECKPOINT_PAGES);
    closedNow?.();
  };
  worker.on('message', (message: unknown) => {
    if (message === 'closed') closedNow?.();
  });
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  // It must not keep the store's thread alive on its own.
  worker.unref();
  return {
    wrote() {
      // One small message per commit; the checkpointer coalesces them into one checkpoint per gapMs. (Telling it
      // only once per checkpoint raced: a commit made between a checkpoint's start and its notice went untold.)
      if (alive) worker.postMessage('wrote');
    },
    async close() {
      if (!alive) return;
      await new Promise<void>((resolve) => {
        closedNow = resolve;
        worker.postMessage('close');
      });
      alive = false;
      await worker.terminate();
    },
  };
}

async function handle(request: StoreRequest): Promise<StoreReply> {
  events.length = 0;
  try {
    if (!store) throw openError instanceof Error ? openError : new Error(String(openError));
    if (request.method === 'batch') {
      // The hot path (every DHCP ACK): values stay JSON text from the main thread to the database.
      const { revision, deleted } = store.batchJson(decodeBatch(request.args[0] as string));
      return { id: request.id, ok: true, result: revision, revision, deleted };
    }
    const result = await call(store, request);
    // Values do not travel back: the main thread made them, and builds its watch events from its own request.
    const revision = events[0]?.version;
    const deleted = events.filter((e) => e.kind === 'delete').map((e) => `${e.collection} ${e.key}`);
    return { id: request.id, ok: true, result, ...(revision !== undefined && { revision }), deleted };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return {
      id: request.id,
      ok: false,
      error: {
        name: failure.name,
        message: failure.message,
        ...(failure instanceof StoreConflictError && {
          conflict: [failure.collection, failure.key, failure.expected, failure.actual],
        }),
      },
    };
  }
}

/** Runs one request on the store; arguments arrive as they were sent, so their types are the Store's. */
function call(target: Store, request: StoreRequest): Promise<unknown> {
  const a = request.args as [never, never, never, never];
  switch (request.method) {
    case 'get':
      return target.get(a[0], a[1]);
    case 'list':
      return target.list(a[0], a[1]);
    case 'put':
      // Values arrive as JSON text: serialised once, on the thread that made them (cheaper than a structured clone).
      return target.put(a[0], a[1], JSON.parse(a[2]) as unknown, a[3]);
    case 'delete':
      return target.delete(a[0], a[1], a[2]);
    case 'batch':
      return target.batch(
        decodeBatch(a[0]).map((op) => ({
          collection: op.collection,
          key: op.key,
          ...(op.json !== undefined && { value: JSON.parse(op.json) as unknown }),
          ...(op.ifVersion !== undefined && { ifVersion: op.ifVersion }),
        })),
      );
    case 'close':
      // The checkpointer's connection closes first: the store's is then the last, which checkpoints and removes
      // the log.
      return (checkpointer?.close() ?? Promise.resolve()).then(() => target.close());
  }
}
