import { parentPort, workerData } from 'node:worker_threads';
import { decodeBatch } from './batch-wire.ts';
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

let store: ReturnType<typeof openInlineSqliteStore> | undefined;
let openError: unknown;
try {
  store = openInlineSqliteStore(dataDir, { synchronous: sync === 'os' ? 'NORMAL' : 'FULL' });
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
      return target.close();
  }
}
