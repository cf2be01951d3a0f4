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
 * Restarting the log: once a checkpoint has copied all of it, the next write starts the log again from its
 * beginning, and that write writes the log's header and fsyncs it before anything else (SQLite does so that a
 * reordered write cannot mix the old log with the new: https://sqlite.org/src/info/ff5be73dee). Left to the writer,
 * that fsync ran on the event loop in the first commit of every DHCP storm after a quiet time: 0.1-8 ms of the
 * first exchanges' latency (perf sched here, BENCHMARKS.md, DHCP). So when the store has been quiet for
 * restartQuietMs after such a checkpoint, this thread restarts the log with a one-row write of its own (a counter),
 * never waiting for the lock (if the writer has it, the writer restarts the log as before). During a storm nothing
 * changes: commits keep coming, and a restart fsync every gapMs or so is the writer's, short because the log is
 * fsynced often.
 *
 * Messages: read requests (answered with a ReadReply); 'wrote' after commits (sqlite.ts sends one per gapMs at most,
 * after every commit made meanwhile): a checkpoint follows, at least gapMs after the previous one, so every commit
 * is followed by a checkpoint that starts after it; 'writing' at the first commit after a notice (the writer is
 * busy now: no restart of the log here until it has been quiet again); 'close' as a request, answered once this
 * connection is closed (the writer's is then the last, which checkpoints and removes the log).
 */
export interface BackgroundData {
  dataDir: string;
  /** The checkpoint's fsyncs follow it: as durable as the store's own writes. */
  synchronous: 'FULL' | 'NORMAL';
  gapMs: number;
  /** Quiet after a checkpoint that copied the whole log, before this thread restarts it. */
  restartQuietMs: number;
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

/** What the store sends: read requests, the notice that commits were made, and that one is being made now. */
export type BackgroundMessage = ReadRequest | 'wrote' | 'writing';

const port = parentPort;
if (!port) throw new Error('sqlite-background.ts runs in a worker thread');
const { dataDir, synchronous, gapMs, restartQuietMs } = workerData as BackgroundData;

// The main thread made the database and its schema before starting this thread; this connection writes no rows.
const store = openInlineSqliteStore(dataDir, { existing: true, synchronous });
let lastCheckpoint = 0;
let timer: NodeJS.Timeout | undefined;
let restartTimer: NodeJS.Timeout | undefined;
let closed = false;

function checkpoint(): void {
  timer = undefined;
  if (closed) return;
  lastCheckpoint = performance.now();
  // SQLITE_BUSY (another checkpoint running: the writer's backstop) is a result row, not an error: the next notice
  // brings another.
  if (store.checkpoint().complete) {
    clearTimeout(restartTimer);
    restartTimer = setTimeout(restartLog, restartQuietMs);
  }
}

function restartLog(): void {
  restartTimer = undefined;
  if (closed) return;
  // False when the writer holds the lock: it is writing, and restarts the log itself. A failure (a full disk) is
  // the writer's to meet too: it must not end this thread, which answers the reads.
  try {
    store.restartLog();
  } catch {
    // The writer's next commit restarts the log, as it did before this thread did.
  }
}

port.on('message', (message: BackgroundMessage) => {
  if (message === 'wrote' || message === 'writing') {
    // The writer is busy: the log is left to it until the store has been quiet again.
    clearTimeout(restartTimer);
    restartTimer = undefined;
    if (message === 'wrote' && !timer && !closed) {
      timer = setTimeout(checkpoint, Math.max(0, lastCheckpoint + gapMs - performance.now()));
    }
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
      clearTimeout(timer);
      clearTimeout(restartTimer);
      await store.close();
    }
    return { id: request.id, ok: true, result };
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    return { id: request.id, ok: false, error: { name: failure.name, message: failure.message } };
  }
}
