/**
 * A thread that sends file bytes to HTTP clients with sendfile(2): the bytes go from the page cache into the socket
 * inside the kernel, never through JavaScript buffers (no copy, no garbage), and the main thread's event loop stays
 * free for DHCP, TFTP and scripts while kernels and ISOs stream. http/sendfile-pool.ts owns these threads.
 *
 * The thread runs its own small poll(2) loop rather than an event loop: a job is a connection (this thread's own
 * duplicate descriptor of it) and the runs of files to send into it. Each turn every connection that can take bytes
 * gets up to TURN_BYTES (so 50 clients share fairly), a full one waits for POLLOUT, and an eventfd from the main
 * thread wakes the poll when jobs arrive (they are read with receiveMessageOnPort: this thread never yields to an
 * event loop). A connection that takes no byte for `stallMs` is given up. The duplicate is closed before the job
 * is reported done, so the main thread may use the connection again at once (HTTP keep-alive).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import {
  EAGAIN,
  EINTR,
  loadSendfileLibc,
  POLLERR,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from '../net/libc-sendfile.ts';
import { errnoName, lastErrno, loadLibc } from '../net/libc.ts';
import type { DiskExtent } from '../tree/tree.ts';

export interface SendfileWorkerData {
  /** The eventfd the main thread writes to after posting messages. */
  wake: number;
  /** A connection that accepts no byte for this long is given up. */
  stallMs: number;
}

export type ToWorker =
  | { type: 'send'; id: number; socket: number; extents: DiskExtent[] }
  | { type: 'abort'; id: number }
  | { type: 'stop' };

export interface FromWorker {
  type: 'done';
  id: number;
  sent: number;
  /** Why it ended before every byte was sent: the errno name, 'stalled', 'aborted', 'short file' or 'stopped'. */
  error?: string;
}

/** What one connection may send per turn before the others get theirs. */
const TURN_BYTES = 2 * 1024 * 1024;

interface Job {
  id: number;
  socket: number;
  extents: DiskExtent[];
  index: number;
  /** The file position for sendfile, in and out (off_t). */
  position: Buffer;
  /** Bytes of the current extent still to send. */
  left: number;
  sent: number;
  lastProgress: number;
  /** The socket was full: wait for POLLOUT before trying again. */
  blocked: boolean;
}

if (!parentPort) throw new Error('sendfile-worker.ts runs as a worker thread');
const port: MessagePort = parentPort;
const { wake, stallMs } = workerData as SendfileWorkerData;
const c = loadSendfileLibc();
const libc = loadLibc();
const jobs = new Map<number, Job>();
const counter = Buffer.alloc(8);
let pollfds = Buffer.alloc(POLLFD_SIZE * 64);
const state = { running: true };

function finish(job: Job, error?: string): void {
  jobs.delete(job.id);
  libc.close(job.socket);
  const message: FromWorker = { type: 'done', id: job.id, sent: job.sent, ...(error === undefined ? {} : { error }) };
  port.postMessage(message);
}

function startExtent(job: Job): void {
  const extent = job.extents[job.index];
  if (!extent) return;
  job.position.writeBigInt64LE(BigInt(extent.offset));
  job.left = extent.length;
}

function accept(message: ToWorker, now: number): void {
  if (message.type === 'stop') {
    for (const job of [...jobs.values()]) finish(job, 'stopped');
    state.running = false;
    return;
  }
  if (message.type === 'abort') {
    const job = jobs.get(message.id);
    if (job) finish(job, 'aborted');
    return;
  }
  const job: Job = {
    id: message.id,
    socket: message.socket,
    extents: message.extents.filter((extent) => extent.length > 0),
    index: 0,
    position: Buffer.alloc(8),
    left: 0,
    sent: 0,
    lastProgress: now,
    blocked: false,
  };
  jobs.set(job.id, job);
  startExtent(job);
}

/** One turn for one connection: send until it is full, done, or has had TURN_BYTES. */
function pump(job: Job, now: number): void {
  let budget = TURN_BYTES;
  while (budget > 0) {
    const extent = job.extents[job.index];
    if (!extent) {
      finish(job);
      return;
    }
    const moved = c.sendfile(job.socket, extent.fd, job.position, Math.min(job.left, budget));
    if (moved > 0) {
      job.sent += moved;
      job.left -= moved;
      budget -= moved;
      job.lastProgress = now;
      if (job.left === 0) {
        job.index++;
        startExtent(job);
      }
      continue;
    }
    if (moved === 0) {
      // The file is shorter than it was when the response announced its length.
      finish(job, 'short file');
      return;
    }
    const errno = lastErrno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN) {
      job.blocked = true;
      return;
    }
    finish(job, errnoName(errno));
    return;
  }
}

/** One round: a turn for every connection that can take bytes, then wait for the rest, messages or a stall. */
function round(): void {
  let now = Date.now();
  for (const job of [...jobs.values()]) if (!job.blocked) pump(job, now);
  // Everything still waiting: the wake-up eventfd first, then the full connections.
  const polled: Job[] = [];
  let ready = false;
  for (const job of jobs.values()) {
    if (job.blocked) polled.push(job);
    else ready = true;
  }
  if (pollfds.length < POLLFD_SIZE * (polled.length + 1)) pollfds = Buffer.alloc(POLLFD_SIZE * 2 * (polled.length + 1));
  pollfds.writeInt32LE(wake, 0);
  pollfds.writeInt16LE(POLLIN, 4);
  pollfds.writeInt16LE(0, 6);
  polled.forEach((job, index) => {
    const at = POLLFD_SIZE * (index + 1);
    pollfds.writeInt32LE(job.socket, at);
    pollfds.writeInt16LE(POLLOUT, at + 4);
    pollfds.writeInt16LE(0, at + 6);
  });
  // Connections with bytes left to send this turn: look, do not wait. Otherwise wake for the nearest stall.
  let timeout = 30_000;
  for (const job of polled) timeout = Math.min(timeout, Math.max(0, job.lastProgress + stallMs - now + 1));
  const events = c.poll(pollfds, polled.length + 1, ready ? 0 : timeout);
  if (events < 0 && lastErrno() !== EINTR) throw new Error(`poll: ${libc.strerror(lastErrno())}`);
  now = Date.now();
  if (events > 0) {
    polled.forEach((job, index) => {
      const revents = pollfds.readInt16LE(POLLFD_SIZE * (index + 1) + 6);
      // An error or hang-up is found by the next sendfile, which reports it.
      if (revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) job.blocked = false;
    });
    if (pollfds.readInt16LE(6) & POLLIN) {
      c.read(wake, counter, 8);
      for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) {
        accept(message.message as ToWorker, now);
      }
    }
  }
  for (const job of polled) {
    if (job.blocked && jobs.has(job.id) && now - job.lastProgress >= stallMs) finish(job, 'stalled');
  }
}

try {
  while (state.running) round();
} catch (error) {
  // A bug, not a client: let go of every connection (the main thread cuts those responses off) and fail loudly.
  for (const job of jobs.values()) libc.close(job.socket);
  jobs.clear();
  throw error;
}
