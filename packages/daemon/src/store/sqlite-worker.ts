import { parentPort, workerData } from 'node:worker_threads';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import { StoreConflictError, type Store, type WatchEvent } from './store.ts';

/**
 * The embedded store's thread: requests from sqlite.ts are run one at a time, in order, against the inline SQLite
 * store; each reply carries the watch events its write produced, so the main thread tells its watchers in commit
 * order. A reply to a write is sent only once the commit (and its fsync) is done.
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
  events: WatchEvent[];
  error?: { name: string; message: string; conflict?: [string, string, number, number] };
}

const port = parentPort;
if (!port) throw new Error('sqlite-worker.ts runs in a worker thread');
const { dataDir } = workerData as { dataDir: string };

let store: ReturnType<typeof openInlineSqliteStore> | undefined;
let openError: unknown;
try {
  store = openInlineSqliteStore(dataDir);
} catch (error) {
  openError = error;
}
const events: WatchEvent[] = [];
store?.watch((event) => events.push(event));

port.on('message', (request: StoreRequest) => {
  void handle(request).then((reply) => {
    port.postMessage(reply);
  });
});

async function handle(request: StoreRequest): Promise<StoreReply> {
  events.length = 0;
  try {
    if (!store) throw openError instanceof Error ? openError : new Error(String(openError));
    const result = await call(store, request);
    return { id: request.id, ok: true, result, events: [...events] };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return {
      id: request.id,
      ok: false,
      events: [...events],
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
      return target.put(a[0], a[1], a[2], a[3]);
    case 'delete':
      return target.delete(a[0], a[1], a[2]);
    case 'batch':
      return target.batch(a[0]);
    case 'close':
      return target.close();
  }
}
