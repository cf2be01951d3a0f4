import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The embedded store's checkpointer: a thread of its own with a second connection to the database, which copies
 * the write-ahead log back into the database file (a PASSIVE checkpoint, https://sqlite.org/wal.html#ckpt) while
 * the store's thread goes on committing.
 *
 * Why: left to SQLite, the checkpoint runs inside the COMMIT that makes the log 1000 pages long — writing those
 * pages and fsyncing the database file, ~10 ms here — so every ~4 MiB of writes one group of DHCP ACKs waited
 * for it, and all those queued behind it (replaying 782 commits of 256 ACK-like rows: commits over 5 ms 26-28
 * with it, 3-10 without; BENCHMARKS.md, DHCP). Here the commit only appends to the log. A PASSIVE checkpoint never blocks the writer; once it has copied every frame, the next
 * commit starts the log again from its beginning, so the log stays short except while commits never pause.
 *
 * Messages: 'wrote' after commits (checkpointer-thread.ts sends one per gapMs at most, after every commit made
 * meanwhile; a checkpoint follows, at least `gapMs` after the previous one; one that arrives while a checkpoint runs
 * is handled after it, so every commit is followed by a checkpoint that starts after it); 'close' (answered by
 * 'closed' once this connection is closed: the store's own close is then the last, and removes the log).
 */
export interface CheckpointerData {
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  gapMs: number;
}

const port = parentPort;
if (!port) throw new Error('sqlite-checkpointer.ts runs in a worker thread');
const { path, synchronous, gapMs } = workerData as CheckpointerData;

const db = new DatabaseSync(path);
// The checkpoint's fsyncs follow this connection's setting: as durable as the store's own.
db.exec(`PRAGMA synchronous = ${synchronous}; PRAGMA busy_timeout = 5000;`);
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let last = 0;
let timer: NodeJS.Timeout | undefined;
let closed = false;

function run(): void {
  timer = undefined;
  if (closed) return;
  last = performance.now();
  // SQLITE_BUSY (another checkpoint running: the store's backstop) is a result row here, not an error.
  checkpoint.get();
}

port.on('message', (message: unknown) => {
  if (message === 'wrote' && !timer && !closed) {
    timer = setTimeout(run, Math.max(0, last + gapMs - performance.now()));
  } else if (message === 'close') {
    closed = true;
    if (timer) clearTimeout(timer);
    db.close();
    port.postMessage('closed');
  }
});
