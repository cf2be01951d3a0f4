import type { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { lastErrno, loadLibc } from '../net/libc.ts';
import { EFD_CLOEXEC, EFD_NONBLOCK, loadSendfileLibc } from '../net/libc-sendfile.ts';
import type { DiskExtent } from '../tree/tree.ts';
import type { FromWorker, SendfileWorkerData, ToWorker } from './sendfile-worker.ts';

/**
 * Zero-copy sending of boot files to HTTP clients: a few threads (http/sendfile-worker.ts) move file bytes into
 * connections with sendfile(2). Streaming through JavaScript costs a read into a buffer and a write out of it per
 * chunk on the one event loop, and leaves the buffers to the garbage collector: BENCHMARKS.md (HTTP) measured 0.28x
 * nginx with 50 clients and 194 MiB resident. nginx itself sends with sendfile from its workers.
 *
 * The connection is shared, not moved: the main thread has written the response head through Node, hands the
 * thread a duplicate descriptor (F_DUPFD_CLOEXEC), writes nothing until the thread reports back, and then ends the
 * response through Node, so keep-alive, pipelining and Node's own bookkeeping carry on as for any response. The
 * file's descriptors must stay open until then (the caller holds the TreeFile open).
 */
export interface SendOutcome {
  sent: number;
  /** Why it ended early (the client went away: EPIPE, ECONNRESET; 'stalled'; 'aborted'); absent when complete. */
  error?: string;
}

export interface ZeroCopyTransfer {
  readonly done: Promise<SendOutcome>;
  /** Stop sending (the response was closed); `done` then resolves with what was sent. */
  abort(): void;
}

export interface SendfilePool {
  /** Starts sending; undefined when this connection cannot be sent to this way (no descriptor): stream it instead. */
  send(socket: Socket, extents: readonly DiskExtent[]): ZeroCopyTransfer | undefined;
  /** Transfers in flight. */
  readonly active: number;
  /** Ends every transfer (their connections are the HTTP server's to close) and the threads. */
  close(): Promise<void>;
}

export interface SendfilePoolOptions {
  threads: number;
  /** A connection that accepts no byte for this long is given up (the client stopped reading). */
  stallMs?: number;
  /** A thread failed (a bug, not a client): for the log. Its transfers end with an error. */
  onThreadError?: (error: Error) => void;
}

interface Lane {
  worker: Worker;
  wake: number;
  jobs: Map<number, (outcome: SendOutcome) => void>;
  exited: Promise<void>;
  /** False once the thread has exited and its eventfd is closed (the number may then belong to another file). */
  alive: boolean;
}

/** The descriptor under a Node TCP socket (libuv's; Node does not document it, so its absence is handled). */
function descriptorOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export function createSendfilePool(options: SendfilePoolOptions): SendfilePool {
  const c = loadSendfileLibc();
  const libc = loadLibc();
  const stallMs = options.stallMs ?? 120_000;
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  let nextId = 1;
  let closing = false;

  const lanes: Lane[] = [];
  for (let index = 0; index < options.threads; index++) {
    const wake = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) throw new Error(`eventfd: ${libc.strerror(lastErrno())}`);
    const workerData: SendfileWorkerData = { wake, stallMs };
    const worker = new Worker(new URL('./sendfile-worker.ts', import.meta.url), { workerData });
    const lane: Lane = {
      worker,
      wake,
      jobs: new Map(),
      alive: true,
      exited: new Promise((resolve) => {
        worker.once('exit', () => {
          resolve();
        });
      }),
    };
    worker.on('message', (message: FromWorker) => {
      const resolve = lane.jobs.get(message.id);
      lane.jobs.delete(message.id);
      resolve?.({ sent: message.sent, ...(message.error === undefined ? {} : { error: message.error }) });
    });
    // A thread that dies takes its transfers with it: their connections are closed by the HTTP server.
    worker.on('error', (error: Error) => {
      options.onThreadError?.(error);
      settleAll(lane, 'the sending thread failed');
    });
    worker.once('exit', () => {
      lane.alive = false;
      settleAll(lane, 'stopped');
      libc.close(wake);
    });
    lanes.push(lane);
  }

  function settleAll(lane: Lane, error: string): void {
    for (const resolve of lane.jobs.values()) resolve({ sent: 0, error });
    lane.jobs.clear();
  }

  function post(lane: Lane, message: ToWorker): void {
    if (!lane.alive) return;
    lane.worker.postMessage(message);
    c.write(lane.wake, one, 8);
  }

  return {
    send(socket, extents) {
      const fd = closing ? undefined : descriptorOf(socket);
      if (fd === undefined) return undefined;
      // The least busy thread.
      const lane = lanes.reduce<Lane | undefined>(
        (best, candidate) => (candidate.alive && (!best || candidate.jobs.size < best.jobs.size) ? candidate : best),
        undefined,
      );
      if (!lane) return undefined;
      const duplicate = c.dupCloexec(fd);
      if (duplicate < 0) return undefined;
      const id = nextId++;
      const done = new Promise<SendOutcome>((resolve) => {
        lane.jobs.set(id, resolve);
      });
      post(lane, { type: 'send', id, socket: duplicate, extents: [...extents] });
      return {
        done,
        abort: () => {
          if (lane.jobs.has(id)) post(lane, { type: 'abort', id });
        },
      };
    },
    get active() {
      return lanes.reduce((sum, lane) => sum + lane.jobs.size, 0);
    },
    async close() {
      closing = true;
      for (const lane of lanes) post(lane, { type: 'stop' });
      await Promise.all(lanes.map((lane) => lane.exited));
    },
  };
}
