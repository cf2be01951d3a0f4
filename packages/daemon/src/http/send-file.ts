import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { DiskExtent, TreeFile } from '../tree/tree.ts';
import type { SendfilePool } from './sendfile-pool.ts';

/**
 * Sends a file with what download clients rely on (RFC 9110): GET and HEAD, validators (ETag from size and mtime,
 * Last-Modified), conditional requests (If-None-Match, If-Modified-Since, If-Range), single and multiple byte
 * ranges (206, multipart/byteranges, 416), and a body streamed with backpressure — a kernel or a whole ISO is never
 * held in memory. A large body of a file on disk (a directory's file, a file inside an ISO) is sent by the sendfile
 * threads when the server has them (zero copy); anything else is streamed through the event loop in chunks. The
 * file is closed when the response ends or the client goes away, and not before a sending thread is done with it.
 */

/**
 * What all responses streaming at once may hold in read buffers together. Each response streams through two
 * buffers of MAX_CHUNK bytes while the budget allows (one client: 256 KiB chunks were ~30% faster than 128 KiB
 * here), smaller ones once it is spent, never below MIN_CHUNK: 50 clients at once hold ~14 MiB, not 25
 * (BENCHMARKS.md, HTTP memory). Fairness between clients does not depend on it: the sockets' buffers pace them.
 */
export const STREAM_BUDGET = 12 * 1024 * 1024;
const MAX_CHUNK = 256 * 1024;
const MIN_CHUNK = 32 * 1024;

/** Sizes each streaming response's buffers out of what the responses already streaming leave of the budget. */
export interface StreamBudget {
  /** A response is about to stream `length` bytes: the size of each of its two buffers. */
  begin(length: number): number;
  /** It is done with buffers of that size. */
  end(chunk: number): void;
  /** Bytes held by the responses streaming now. */
  readonly held: number;
}

export function createStreamBudget(budget = STREAM_BUDGET): StreamBudget {
  let held = 0;
  return {
    begin(length) {
      const left = Math.floor((budget - held) / 2 / 16384) * 16384;
      const chunk = Math.min(length, MAX_CHUNK, Math.max(MIN_CHUNK, left));
      held += 2 * chunk;
      return chunk;
    },
    end(chunk) {
      held = Math.max(0, held - 2 * chunk);
    },
    get held() {
      return held;
    },
  };
}

/** More ranges than this are answered with the whole file (RFC 9110 §14.2 lets a server ignore Range). */
const MAX_RANGES = 32;

export interface ByteRange {
  start: number;
  end: number; // inclusive
}

/** Parses a Range header against a size: the ranges, 'unsatisfiable', or undefined to ignore it. */
export function parseRange(header: string, size: number): ByteRange[] | 'unsatisfiable' | undefined {
  const match = /^bytes=(.+)$/i.exec(header.trim());
  if (!match?.[1]) return undefined;
  const ranges: ByteRange[] = [];
  for (const part of match[1].split(',')) {
    const spec = /^\s*(\d*)-(\d*)\s*$/.exec(part);
    if (!spec) return undefined;
    const [, first = '', last = ''] = spec;
    if (first === '' && last === '') return undefined;
    if (first === '') {
      const suffix = Number(last);
      if (suffix === 0) continue;
      ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
    } else {
      const start = Number(first);
      const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
      if (last !== '' && Number(last) < start) return undefined;
      if (start >= size) continue;
      ranges.push({ start, end });
    }
  }
  if (ranges.length === 0) return 'unsatisfiable';
  return ranges.length > MAX_RANGES ? undefined : ranges;
}

export function etagOf(file: TreeFile): string | undefined {
  return file.mtime ? `"${file.size.toString(16)}-${file.mtime.getTime().toString(16)}"` : undefined;
}

function notModified(request: IncomingMessage, etag: string | undefined, mtime: Date | undefined): boolean {
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    return (
      etag !== undefined &&
      ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*')
    );
  }
  const since = request.headers['if-modified-since'];
  if (since !== undefined && mtime) {
    const when = Date.parse(since);
    return !Number.isNaN(when) && Math.floor(mtime.getTime() / 1000) <= Math.floor(when / 1000);
  }
  return false;
}

/** If-Range: the range applies only if the validator still matches (RFC 9110 §13.1.5). */
function rangeStillValid(request: IncomingMessage, etag: string | undefined, mtime: Date | undefined): boolean {
  const header = request.headers['if-range'];
  const ifRange = Array.isArray(header) ? header[0] : header;
  if (ifRange === undefined) return true;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return etag !== undefined && ifRange === etag;
  const when = Date.parse(ifRange);
  return mtime !== undefined && !Number.isNaN(when) && Math.floor(mtime.getTime() / 1000) === Math.floor(when / 1000);
}

/** How a body is sent: through the event loop in budgeted chunks, or (when given) by the sendfile threads. */
export interface SendFileOptions {
  budget?: StreamBudget;
  zeroCopy?: SendfilePool;
}

/**
 * Bodies shorter than this are streamed through the event loop even when zero-copy sending is available: a
 * hand-over to a thread and back costs more than reading a small file (iPXE binaries, configs).
 */
export const ZERO_COPY_MIN = 256 * 1024;

/** How the body went out: by a sendfile thread, streamed through the event loop, or no body (HEAD, 304, 416). */
export type BodyVia = 'sendfile' | 'stream' | 'none';

export async function sendFile(
  request: IncomingMessage,
  response: ServerResponse,
  file: TreeFile,
  contentType: string,
  options: SendFileOptions = {},
): Promise<BodyVia> {
  const budget = options.budget ?? createStreamBudget();
  let closed = false;
  // While a sending thread reads the file's descriptors, closing it waits: the response may close first.
  let inUse: Promise<unknown> = Promise.resolve();
  const close = async () => {
    if (!closed) {
      closed = true;
      await inUse;
      await file.close();
    }
  };
  const body = async (from: number, to: number): Promise<BodyVia> => {
    if (options.zeroCopy && to - from >= ZERO_COPY_MIN && file.diskExtents) {
      const transfer = handOver(response, file.diskExtents(from, to), options.zeroCopy);
      inUse = transfer;
      if ((await transfer) !== undefined) return 'sendfile';
    }
    await stream(response, file, from, to, budget);
    return 'stream';
  };
  response.once('close', () => void close());
  try {
    const etag = etagOf(file);
    response.setHeader('Accept-Ranges', 'bytes');
    if (etag) response.setHeader('ETag', etag);
    if (file.mtime) response.setHeader('Last-Modified', file.mtime.toUTCString());
    if (notModified(request, etag, file.mtime)) {
      response.statusCode = 304;
      response.end();
      return 'none';
    }
    const rangeHeader = request.headers.range;
    const ranges =
      rangeHeader !== undefined && rangeStillValid(request, etag, file.mtime)
        ? parseRange(rangeHeader, file.size)
        : undefined;
    if (ranges === 'unsatisfiable') {
      response.statusCode = 416;
      response.setHeader('Content-Range', `bytes */${String(file.size)}`);
      response.end();
      return 'none';
    }
    const head = request.method === 'HEAD';
    if (!ranges) {
      response.statusCode = 200;
      response.setHeader('Content-Type', contentType);
      response.setHeader('Content-Length', String(file.size));
      if (head) {
        response.end();
        return 'none';
      }
      return await body(0, file.size);
    }
    response.statusCode = 206;
    const [single] = ranges;
    if (ranges.length === 1 && single) {
      response.setHeader('Content-Type', contentType);
      response.setHeader('Content-Range', `bytes ${String(single.start)}-${String(single.end)}/${String(file.size)}`);
      response.setHeader('Content-Length', String(single.end - single.start + 1));
      if (head) {
        response.end();
        return 'none';
      }
      return await body(single.start, single.end + 1);
    }
    const boundary = randomBytes(12).toString('hex');
    const parts = ranges.map((range, index) => ({
      range,
      header: Buffer.from(
        `${index === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${contentType}\r\n` +
          `Content-Range: bytes ${String(range.start)}-${String(range.end)}/${String(file.size)}\r\n\r\n`,
      ),
    }));
    const trailer = Buffer.from(`\r\n--${boundary}--\r\n`);
    const length = parts.reduce((sum, p) => sum + p.header.length + p.range.end - p.range.start + 1, trailer.length);
    response.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`);
    response.setHeader('Content-Length', String(length));
    if (head) {
      response.end();
      return 'none';
    }
    for (const part of parts) {
      if (!(await write(response, part.header))) return 'stream';
      if (!(await stream(response, file, part.range.start, part.range.end + 1, budget, false))) return 'stream';
    }
    response.end(trailer);
    return 'stream';
  } finally {
    if (response.writableEnded || response.destroyed) await close();
  }
}

/**
 * Sends a body with the sendfile threads (http/sendfile-pool.ts): the head goes out through Node first, the
 * thread writes the body into the same connection, then Node ends the response (keep-alive carries on). Resolves
 * true when every byte went, false when the client went away or stopped reading (the connection is destroyed:
 * a response cut short must never look complete), undefined when the connection cannot be handed over (nothing
 * of the body sent: stream it instead).
 */
async function handOver(
  response: ServerResponse,
  extents: DiskExtent[],
  pool: SendfilePool,
): Promise<boolean | undefined> {
  const socket = response.socket;
  if (!socket || response.destroyed) return false;
  response.flushHeaders();
  // The head (and anything before it on a keep-alive connection) must be in the kernel before the thread writes.
  if (socket.writableLength > 0 && !(await drained(socket))) return false;
  const transfer = pool.send(socket, extents);
  if (!transfer) return undefined;
  const abort = () => {
    transfer.abort();
  };
  response.once('close', abort);
  const outcome = await transfer.done;
  response.off('close', abort);
  // Asked again: the response may have been destroyed while the thread was sending.
  if (outcome.error === undefined && !isDestroyed(response)) {
    response.end();
    return true;
  }
  response.destroy();
  return false;
}

function isDestroyed(response: ServerResponse): boolean {
  return response.destroyed;
}

/**
 * Streams [from, to) of the file; resolves false if the client went away. Two buffers per response, alternating:
 * the next chunk is read while the previous one is being written, and a buffer is refilled only once the socket
 * has taken it (its write callback), so a response holds two chunks (sized by the budget) and makes no garbage per chunk
 * (bench/http/variants.ts measured this against a fresh buffer per chunk: faster, and a third of the memory).
 */
async function stream(
  response: ServerResponse,
  file: TreeFile,
  from: number,
  to: number,
  budget: StreamBudget,
  end = true,
): Promise<boolean> {
  const size = budget.begin(to - from);
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  // A write whose connection is torn down may never call back: the response's close ends the wait as well.
  let onClose: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    onClose = resolve;
    response.once('close', resolve);
  });
  try {
    return await pump();
  } finally {
    budget.end(size);
    if (onClose) response.off('close', onClose);
  }

  async function pump(): Promise<boolean> {
    let which = 0;
    for (let offset = from; offset < to; which ^= 1) {
      await Promise.race([written[which], closed]);
      if (response.destroyed) return false;
      const buffer = buffers[which] ?? Buffer.allocUnsafe(size);
      const got = await file.readInto(buffer.subarray(0, Math.min(size, to - offset)), offset);
      if (got === 0) break;
      offset += got;
      written[which] = new Promise((resolve) => {
        // The callback runs once the bytes are in the kernel (or the write failed and the response is destroyed).
        response.write(buffer.subarray(0, got), () => {
          resolve();
        });
      });
      // No wait for 'drain': the write callbacks already bound what is in flight to the two buffers, and the
      // next read overlaps this write.
    }
    await Promise.race([Promise.all(written), closed]);
    if (response.destroyed) return false;
    if (end) response.end();
    return true;
  }
}

/** Resolves true on 'drain', false if the stream (a response or its socket) closes first. */
function drained(stream: EventEmitter): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = () => {
      stream.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      stream.off('drain', onDrain);
      resolve(false);
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

function write(response: ServerResponse, chunk: Buffer): Promise<boolean> {
  if (response.destroyed) return Promise.resolve(false);
  if (response.write(chunk)) return Promise.resolve(true);
  return drained(response);
}
