import { parentPort, workerData } from 'node:worker_threads';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import type { Collection, ListOptions } from './store.ts';

/**
 * The embedded store's second thread, with a connection of its own: its reads and its checkpoints, the two things
 * that must not run on the event loop that answers DHCP (sqlite.ts makes the writes there).
 *
 * Reads (get, list): the API listing 50,000 leases must not hold up DHCP. In WAL mode a read sees every commit made
 * before it began (https://sqlite.org/wal.html#concurrency), so a read asked for after a write resolved sees it.
 *
 * Checkpoints: a PASSIVE checkpoint (https://sqlite.org/wal.html#ckpt) copies the write-ahead log back into the
 * database file and fsyncs it while the writer goes on committing; once every frame is copied, the next commit
 * starts the log again from its beginning. Left to SQLite, the checkpoint runs inside the COMMIT that makes the log
 * 1000 pages long, writing them and fsyncing the database, ~10 ms here: every ~4 MiB of writes a group of DHCP ACKs
 * waited for it (replaying 782 commits of 256 ACK-like rows: commits over 5 ms 26-28 with it, 3-10 without;
 * BENCHMARKS.md, DHCP).
 *
 * One thread for both, not one each: a worker thread is a V8 isolate, ~10 MiB of resident memory, and the HTTP
 * target (RSS under 150 MB while 50 clients stream) has less margin than that. A checkpoint (a few ms) delays the
 * reads queued behind it, nothing else.
 *
 * Messages: read requests (answered with a ReadReply); 'wrote' after commits (sqlite.ts sends one per gapMs at most,
 * after every commit made meanwhile): a checkpoint follows, at least gapMs after the previous one, so every commit
 * is followed by a checkpoint that starts after it; 'close' as a request, answered once this connection is closed
 * (the writer's is then the last, which checkpoints and removes the log).
 */
export interface BackgroundData {
  dataDir: string;
  /** The checkpoint's fsyncs follow it: as durable as the store's own writes. */
  synchronous: 'FULL' | 'NORMAL';
  gapMs: number;
}

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

/** What the store sends: read requests, and the notice that commits were made. */
export type BackgroundMessage = ReadRequest | 'wrote';

const port = parentPort;
if (!port) throw new Error('sqlite-background.ts runs in a worker thread');
const { dataDir, synchronous, gapMs } = workerData as BackgroundData;

// The main thread made the database and its schema before starting this thread; this connection writes no rows.
const store = openInlineSqliteStore(dataDir, { existing: true, synchronous });
let lastCheckpoint = 0;
let timer: NodeJS.Timeout | undefined;
let closed = false;

function checkpoint(): void {
  timer = undefined;
  if (closed) return;
  lastCheckpoint = performance.now();
  // SQLITE_BUSY (another checkpoint running: the writer's backstop) is a result row, not an error: the next notice
  // brings another.
  store.checkpoint();
}

port.on('message', (message: BackgroundMessage) => {
  if (message === 'wrote') {
    if (!timer && !closed) timer = setTimeout(checkpoint, Math.max(0, lastCheckpoint + gapMs - performance.now()));
    return;
  }
  void handle(message).then((reply) => {
    port.postMessage(reply);
  });
});

async function handle(request: ReadRequest): Promise<ReadReply> {
  try {
    const [collection, second] = request.args as [Collection, unknown];
    let result: unknown;
    if (request.method === 'get') result = await store.get(collection, second as string);
    else if (request.method === 'list') result = await store.list(collection, second as ListOptions | undefined);
    else {
      closed = true;
      if (timer) clearTimeout(timer);
      await store.close();
    }
    return { id: request.id, ok: true, result };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return { id: request.id, ok: false, error: { name: failure.name, message: failure.message } };
  }
}
