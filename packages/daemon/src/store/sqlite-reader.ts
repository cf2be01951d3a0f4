import { parentPort, workerData } from 'node:worker_threads';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import type { Collection, ListOptions } from './store.ts';

/**
 * The embedded store's reads (get, list), on a thread of their own with a connection of their own: listing tens of
 * thousands of leases for the API must not hold up the event loop that answers DHCP. Writes are made on the main
 * thread (sqlite.ts); in WAL mode a read sees every commit made before it began (https://sqlite.org/wal.html
 * #concurrency), so a read asked for after a write resolved sees that write.
 */
export interface ReadRequest {
  id: number;
  method: 'get' | 'list' | 'close';
  args: unknown[];
}

export interface ReadReply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string };
}

const port = parentPort;
if (!port) throw new Error('sqlite-reader.ts runs in a worker thread');
const { dataDir } = workerData as { dataDir: string };

// The main thread made the database and its schema before starting this thread. This connection never writes, so
// it never checkpoints; it is never the last to close either (sqlite.ts closes it first).
const store = openInlineSqliteStore(dataDir, { readOnly: true });

port.on('message', (request: ReadRequest) => {
  void handle(request).then((reply) => {
    port.postMessage(reply);
  });
});

async function handle(request: ReadRequest): Promise<ReadReply> {
  try {
    const [collection, second] = request.args as [Collection, unknown];
    let result: unknown;
    if (request.method === 'get') result = await store.get(collection, second as string);
    else if (request.method === 'list') result = await store.list(collection, second as ListOptions | undefined);
    else await store.close();
    return { id: request.id, ok: true, result };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return { id: request.id, ok: false, error: { name: failure.name, message: failure.message } };
  }
}
