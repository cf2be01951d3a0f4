/**
 * One read transfer as a state machine: no sockets. It is driven by `start`, `onAck`, `onError` and `cancel`,
 * by its own timer on the injected clock and by reads it asks of its ByteSource; it acts only through `send`
 * (a datagram for the peer) and `done` (once, at the end).
 *
 * Protocol (RFC 1350, 2347, 2348, 2349, 7440):
 * - With an OACK, it is sent first and the transfer waits for ACK 0 (or the client's ERROR: a client refusing
 *   our options sends ERROR 8, OVMF sends an ERROR after reading tsize). Without one, DATA 1 goes out at once.
 * - Blocks are numbered from 1 and go on the wire modulo 65536, so block 65536 is sent as 0 (rollover, as
 *   tftpd-hpa, atftpd, iPXE and curl expect). Inside, blocks keep their full number; an ACK is mapped back to
 *   the only full number in [acked, sent] with those low 16 bits, which is unique because a window is at most
 *   64 blocks.
 * - `windowsize` blocks are sent without waiting (RFC 7440). An ACK for the last block sent opens the next
 *   window. An ACK for an earlier block of the window is the client reporting a gap (RFC 7440 §4: it
 *   acknowledges the last block it received in order): the window slides there and is sent again from the next
 *   block, so a lost DATA costs one round trip, not a timeout.
 * - The file ends with a block shorter than blksize, possibly empty; its ACK completes the transfer.
 * - Nothing heard within the timeout: the unacknowledged part of the window (or the OACK) is sent again and the
 *   timeout doubles, up to 4x; after `retries` retransmissions without progress the transfer gives up.
 *
 * Sorcerer's Apprentice (RFC 1123 §4.2.3.1): a duplicate ACK never makes a lock-step transfer resend; only the
 * timer does. In a window, a duplicate or gap ACK may be a reaction to blocks we sent twice (the client answers
 * each out-of-order or old block with an ACK), and answering such an echo with another resend would send every
 * later window twice. So a gap ACK makes us resend only if it acknowledges a block beyond everything we had sent
 * when we last retransmitted: an echo of a retransmission can only acknowledge blocks sent before it. Echoes
 * still slide the window, and fresh blocks fill it. Every ACK therefore causes at most one window of datagrams.
 *
 * Throughput: file data is read ahead in large chunks (a multiple of blksize, several windows long) while the
 * current window is in flight. A DATA datagram is a 4-byte header and a view of the chunk, handed to `send` as
 * two buffers (one sendmsg with two iovecs): file data is never copied in JavaScript and no buffer is allocated
 * per block but the header. When the source can read into a given buffer (`readInto`), a chunk whose blocks
 * are all acknowledged is kept and the next read goes into it, so a transfer allocates a few chunk buffers in
 * all rather than one per chunk: large short-lived buffers count as external memory, and their churn made V8
 * run full garbage collections in the middle of transfers. A buffer is written again only once nothing handed
 * to `send` can still be waiting to go out (`sendsSettled`: a send the kernel could not take at once stays
 * queued with its buffers); a retransmission therefore always resends the bytes it was given. The per-ACK path
 * does a constant amount of work besides the sends.
 *
 * Batched sends (UDP GSO, see gso-socket.ts): given `sendBlocks` and `blocksPerSend` > 1, consecutive blocks
 * sent together (a new window, or a retransmission) go out in groups of up to `blocksPerSend` with one call, as
 * the list header, data, header, data...: the kernel cuts it back into one datagram per block, so the peer sees
 * exactly the datagrams that separate sends would have made, in the same order. Every block but the file's last
 * is blksize bytes, and the last can only be the last of its group. A single block, the OACK and ERRORs still go
 * through `send`. If batched sends fail (`sendSeparately`), the transfer goes on with one block per send.
 * With `leadBlocks` 1 the first block of each new window goes out alone, before the group of the rest: a GSO
 * send hands the client its blocks only once the whole send is segmented (~50 µs for 15 blocks of 1468 bytes
 * on this VM), while a client like atftp takes ~10 µs per block to read and write, so a window of 16 reached
 * the client all at once and late; the lone block starts its work a send earlier, for one more syscall per
 * window. Measured on loopback, blksize 1468, windowsize 16: 66 → 76 MiB/s alone (noisy runs, medians of 7).
 */
import type { Clock } from './clock.ts';
import type { ByteSource } from './netascii.ts';
import { ERR_UNDEFINED, errorPacket, writeDataHeader } from './packet.ts';

export type TransferFailure = 'timeout' | 'peer-error' | 'read-error' | 'cancelled' | 'internal';
export type TransferEnd = { ok: true } | { ok: false; reason: TransferFailure; detail: string };

export interface TransferStats {
  /** Datagrams handed to `send` (DATA, OACK and a final ERROR), and their bytes. */
  datagrams: number;
  bytes: number;
  /** Calls to `sendBlocks` (each carrying several blocks). */
  batches: number;
  /** DATA blocks (and OACKs) sent again. */
  retransmissions: number;
  /**
   * Windows sent in part because the rest of their data was still being read (the disk or the thread pool did not
   * keep up): each such window goes out in one send more.
   */
  readSplits: number;
  /** File bytes the client has acknowledged. */
  delivered: number;
}

export interface TransferOptions {
  source: ByteSource;
  blksize: number;
  windowsize: number;
  /** An encoded OACK to send first; without it the transfer starts with DATA 1. */
  oack?: Buffer;
  /** First retransmission timeout. */
  timeoutMs: number;
  /** Retransmissions without progress before giving up. */
  retries: number;
  clock: Clock;
  /**
   * Sends a datagram to the peer: `head`, followed by `payload` when given (a DATA block goes out as its 4-byte
   * header and a view of the file data, without copying). Neither buffer is ever modified afterwards.
   */
  send(head: Buffer, payload?: Buffer): void;
  /** Called once when the transfer ends, for whatever reason. */
  done(end: TransferEnd): void;
  /** Called after each chunk of the file has been read: a cheap moment to publish `stats`. */
  progress?(): void;
  /** Read-ahead chunk size in bytes (rounded up to a multiple of blksize); defaults from blksize and windowsize. */
  chunkBytes?: number;
  /**
   * True when every datagram handed to `send` so far has left for the kernel (none is queued with its buffers),
   * so buffers of acknowledged blocks may be written again. Without it, read buffers are never reused.
   */
  sendsSettled?(): boolean;
  /**
   * Sends consecutive DATA blocks with one call (UDP GSO): `parts` alternates each block's 4-byte header and its
   * data, two to `blocksPerSend` blocks. Every block but the file's last has exactly blksize bytes of data, and
   * the last is only ever at the end. The buffers are never modified afterwards.
   */
  sendBlocks?(parts: Buffer[]): void;
  /** Most blocks per `sendBlocks` call; 1 (the default) or no `sendBlocks`: every block goes through `send`. */
  blocksPerSend?: number;
  /**
   * With batched sends, the first group of each run of new blocks (a window) carries at most this many blocks;
   * the default is `blocksPerSend`. A lone first block reaches the client while the kernel still segments the
   * rest, so the client's receive loop starts one segmented send earlier (see the note at the top).
   */
  leadBlocks?: number;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** The retransmission timeout doubles after each retransmission, up to this multiple of the first one. */
const MAX_BACKOFF = 4;

/** Default read-ahead: four windows, at least 256 KiB, at most 4 MiB; a whole number of blocks. */
export function defaultChunkBytes(blksize: number, windowsize: number): number {
  const target = Math.min(4 * 1024 * 1024, Math.max(256 * 1024, 4 * windowsize * blksize));
  return Math.ceil(target / blksize) * blksize;
}

/** Read buffers kept for reuse, beyond those in use: the window and the read-ahead need at most three chunks. */
const MAX_SPARE = 2;

export class Transfer {
  readonly stats: TransferStats = {
    datagrams: 0,
    bytes: 0,
    batches: 0,
    retransmissions: 0,
    readSplits: 0,
    delivered: 0,
  };

  private readonly options: TransferOptions;
  private readonly clock: Clock;
  private readonly size: number;
  private readonly blksize: number;
  private readonly window: number;
  /** Full number of the last block (the short one): floor(size / blksize) + 1. */
  private readonly last: number;
  private readonly chunkBytes: number;
  /** Blocks per send: 1 sends each block through `send`, more groups them through `sendBlocks`. */
  private batch: number;

  private phase: 'idle' | 'oack' | 'data' | 'done' = 'idle';
  /** Highest block the client acknowledged. */
  private acked = 0;
  /** Highest block sent. */
  private sent = 0;
  /**
   * The first block of our latest retransmission. A gap report (an ACK for block N < sent) is news only when
   * N + 1 > resentFrom: the client progressed past where we last went back to. An ACK below it echoes a gap we
   * already answered (the client re-ACKs on every stale block it discards), and resentFrom only grows, so each
   * retransmission needs progress and a window is never resent in a storm (RFC 1123 §4.2.3.1, RFC 7440 §4).
   */
  private resentFrom = 0;
  /** `sent` when we last retransmitted: the client's ACK of exactly this block echoes the complete resent copy. */
  private resentThrough = 0;
  /** Headers and payloads of blocks acked+1..sent, at index block % window, for retransmission. */
  private readonly heads: (Buffer | undefined)[];
  private readonly payloads: (Buffer | undefined)[];

  /** Read-ahead: consecutive chunks, the first one being chunk number `chunkBase` (offset chunkBase*chunkBytes). */
  private readonly chunks: Buffer[] = [];
  /** For each chunk, the whole buffer it was read into when that buffer is ours to reuse. */
  private readonly slabs: (Buffer | undefined)[] = [];
  /** Buffers of released chunks, for the next reads. */
  private readonly spare: Buffer[] = [];
  private chunkBase = 0;
  /** Bytes of the file available in `chunks` end here. */
  private bufferedEnd = 0;
  /** Next offset to read. */
  private readAt = 0;
  private reading = false;

  private retriesUsed = 0;
  private interval: number;
  private deadline = 0;
  private timer: unknown;
  private timerAt = Infinity;

  constructor(options: TransferOptions) {
    this.options = options;
    this.clock = options.clock;
    this.size = options.source.size;
    this.blksize = options.blksize;
    this.window = Math.max(1, options.windowsize);
    this.last = Math.floor(this.size / this.blksize) + 1;
    const chunk = options.chunkBytes ?? defaultChunkBytes(this.blksize, this.window);
    this.chunkBytes = Math.max(1, Math.ceil(chunk / this.blksize)) * this.blksize;
    this.heads = new Array<Buffer | undefined>(this.window).fill(undefined);
    this.payloads = new Array<Buffer | undefined>(this.window).fill(undefined);
    this.interval = options.timeoutMs;
    this.batch = options.sendBlocks ? Math.max(1, Math.floor(options.blocksPerSend ?? 1)) : 1;
  }

  get finished(): boolean {
    return this.phase === 'done';
  }

  /** True while DATA blocks are in flight and the next thing to happen is the client's ACK. */
  get awaitingAck(): boolean {
    return this.phase === 'data' && this.sent > this.acked;
  }

  /** Sends the OACK or the first window and starts reading the file. */
  start(): void {
    if (this.phase !== 'idle') return;
    this.guard(() => {
      if (this.options.oack) {
        this.phase = 'oack';
        this.transmit(this.options.oack);
        this.arm(this.interval);
      } else {
        this.phase = 'data';
        this.arm(this.interval);
        this.fill();
      }
      this.readAhead();
    });
  }

  /** An ACK from the peer, with its 16-bit block number. */
  onAck(block: number): void {
    if (this.phase === 'oack') {
      if (block !== 0) return;
      this.guard(() => {
        this.phase = 'data';
        this.retriesUsed = 0;
        this.interval = this.options.timeoutMs;
        this.arm(this.interval);
        this.fill();
      });
      return;
    }
    if (this.phase !== 'data') return;
    try {
      this.ack(block);
    } catch (error) {
      this.fault(error);
    }
  }

  /** An ERROR from the peer ends the transfer; it is never answered. */
  onError(code: number, message: string): void {
    if (this.phase === 'done') return;
    this.end({ ok: false, reason: 'peer-error', detail: `ERROR ${code}: ${message}` });
  }

  /**
   * Batched sends failed (the kernel refused GSO on this path, and so everything sent since the OACK): from now
   * on every block is its own send, and the OACK or the blocks in flight are sent again at once rather than
   * after a timeout, like a retransmission after a timeout without the wait. True if this call switched (false
   * when already sending separately, or when the transfer is over).
   */
  sendSeparately(): boolean {
    if (this.batch === 1 || this.phase === 'done') return false;
    this.batch = 1;
    this.guard(() => {
      if (this.phase === 'oack' && this.options.oack) {
        this.stats.retransmissions++;
        this.transmit(this.options.oack);
        this.arm(this.interval);
      } else if (this.phase === 'data' && this.sent > this.acked) {
        this.resend(this.acked + 1, this.sent);
        this.resentFrom = this.acked + 1;
        this.resentThrough = this.sent;
        this.arm(this.interval);
      }
    });
    return true;
  }

  /** Ends the transfer from our side, telling the peer why when `notice` is given. */
  cancel(detail: string, notice?: string): void {
    if (this.phase === 'done') return;
    if (notice !== undefined) this.notify(notice);
    this.end({ ok: false, reason: 'cancelled', detail });
  }

  private ack(block: number): void {
    const acked = this.acked;
    const full = acked + ((block - (acked & 0xffff)) & 0xffff);
    if (full > this.sent) return; // older than the window (or never sent): a stale duplicate
    const echo = full < this.resentFrom || full === this.resentThrough;
    if (full === acked) {
      // A duplicate of the last ACK. Resending on it is the Sorcerer's Apprentice bug in lock-step; in a window
      // it is a gap report (the window's first block was lost) unless it may echo our own retransmission.
      if (this.window === 1 || echo || this.sent === acked) return;
    } else {
      this.acked = full;
      this.stats.delivered = Math.min(this.size, full * this.blksize);
      if (full === this.last) {
        this.end({ ok: true });
        return;
      }
      this.retriesUsed = 0;
      this.interval = this.options.timeoutMs;
      this.release();
    }
    if (full < this.sent && !echo) {
      // The client has everything up to `full` and missed the next block: go back to it (RFC 7440 §4).
      this.resend(full + 1, this.sent);
      this.fill();
      this.resentFrom = full + 1;
      this.resentThrough = this.sent;
    } else {
      this.fill();
    }
    this.arm(this.interval);
  }

  private timeout(): void {
    if (this.retriesUsed >= this.options.retries) {
      this.notify('timed out');
      this.end({ ok: false, reason: 'timeout', detail: `no answer after ${this.retriesUsed} retransmissions` });
      return;
    }
    this.retriesUsed++;
    this.interval = Math.min(this.interval * 2, this.options.timeoutMs * MAX_BACKOFF);
    if (this.phase === 'oack' && this.options.oack) {
      this.stats.retransmissions++;
      this.transmit(this.options.oack);
    } else if (this.sent > this.acked) {
      this.resend(this.acked + 1, this.sent);
      this.resentFrom = this.acked + 1;
      this.resentThrough = this.sent;
    }
    this.arm(this.interval);
  }

  /** Sends new blocks up to the end of the window, as far as the file has been read. */
  private fill(): void {
    const target = Math.min(this.acked + this.window, this.last);
    if (this.sent < target) {
      const readable = this.bufferedEnd >= this.size ? this.last : Math.floor(this.bufferedEnd / this.blksize);
      const upTo = Math.min(target, readable);
      if (upTo > this.sent && upTo < target) this.stats.readSplits++;
      if (upTo > this.sent) this.emit(this.sent + 1, upTo);
    }
    this.readAhead();
  }

  /** Sends blocks first..upTo, each as a fresh header and a view of the chunk holding its data. */
  private emit(first: number, upTo: number): void {
    const { blksize, size, chunkBytes } = this;
    if (this.sent === this.acked) this.arm(this.interval); // the timer runs from when something is outstanding
    const batched = this.batch > 1 && upTo > first;
    let parts: Buffer[] = [];
    let limit = 2 * Math.min(this.batch, this.options.leadBlocks ?? this.batch);
    for (let block = first; block <= upTo; block++) {
      const offset = (block - 1) * blksize;
      const length = block === this.last ? size - offset : blksize;
      // From the Buffer pool: cheap, and never shared with another datagram.
      const head = Buffer.allocUnsafe(4);
      writeDataHeader(head, 0, block);
      let payload = EMPTY;
      if (length > 0) {
        const index = Math.floor(offset / chunkBytes) - this.chunkBase;
        const chunk = this.chunks[index];
        if (!chunk) throw new Error(`block ${block} is not buffered`);
        const from = offset - (this.chunkBase + index) * chunkBytes;
        payload = chunk.subarray(from, from + length);
      }
      const slot = block % this.window;
      this.heads[slot] = head;
      this.payloads[slot] = payload;
      if (batched) {
        parts.push(head, payload);
        if (parts.length === limit) {
          parts = this.transmitBlocks(parts);
          limit = 2 * this.batch;
        }
      } else {
        this.transmit(head, payload);
      }
    }
    if (parts.length > 0) this.transmitBlocks(parts);
    this.sent = upTo;
  }

  private resend(first: number, upTo: number): void {
    const batched = this.batch > 1 && upTo > first;
    let parts: Buffer[] = [];
    for (let block = first; block <= upTo; block++) {
      const slot = block % this.window;
      const head = this.heads[slot];
      const payload = this.payloads[slot];
      if (!head || !payload) throw new Error(`block ${block} has no datagram to resend`);
      this.stats.retransmissions++;
      if (batched) {
        parts.push(head, payload);
        if (parts.length === 2 * this.batch) parts = this.transmitBlocks(parts);
      } else {
        this.transmit(head, payload);
      }
    }
    if (parts.length > 0) this.transmitBlocks(parts);
  }

  /** Sends the blocks in `parts` (header, data, ...) with one call; returns a fresh list for the next group. */
  private transmitBlocks(parts: Buffer[]): Buffer[] {
    const blocks = parts.length / 2;
    if (blocks === 1 || !this.options.sendBlocks) {
      for (let i = 0; i < parts.length; i += 2) {
        const head = parts[i];
        if (head) this.transmit(head, parts[i + 1]);
      }
      return [];
    }
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    this.stats.datagrams += blocks;
    this.stats.bytes += bytes;
    this.stats.batches++;
    this.options.sendBlocks(parts);
    return [];
  }

  private transmit(head: Buffer, payload?: Buffer): void {
    this.stats.datagrams++;
    this.stats.bytes += head.length + (payload ? payload.length : 0);
    this.options.send(head, payload);
  }

  /** Best effort: the peer learns why we stop (never in answer to its own ERROR). */
  private notify(message: string): void {
    try {
      this.transmit(errorPacket(ERR_UNDEFINED, message));
    } catch {
      // The transfer ends anyway.
    }
  }

  /** Keeps reads going until one chunk past the end of the current window is buffered or being read. */
  private readAhead(): void {
    if (this.reading || this.readAt >= this.size || this.phase === 'done') return;
    const want = Math.min(this.size, (this.acked + this.window) * this.blksize + this.chunkBytes);
    if (this.readAt >= want) return;
    const offset = this.readAt;
    const length = Math.min(this.chunkBytes, this.size - offset);
    this.readAt += length;
    this.reading = true;
    const failed = (error: unknown) => {
      this.reading = false;
      if (this.phase === 'done') return;
      this.notify('cannot read the file');
      this.end({ ok: false, reason: 'read-error', detail: error instanceof Error ? error.message : String(error) });
    };
    const { source } = this.options;
    try {
      if (source.readInto) {
        const slab = this.slab(length);
        const target = slab.length === length ? slab : slab.subarray(0, length);
        source.readInto(target, offset).then((filled) => {
          this.guard(() => {
            this.arrived(offset, length, filled >= length ? target : target.subarray(0, filled), slab);
          });
        }, failed);
      } else {
        source.read(offset, length).then((chunk) => {
          this.guard(() => {
            this.arrived(offset, length, chunk, undefined);
          });
        }, failed);
      }
    } catch (error) {
      // As if the read had rejected: the transfer ends after the current step, not in the middle of it.
      queueMicrotask(() => {
        failed(error);
      });
    }
  }

  /**
   * A buffer of at least `length` bytes (a chunk, or the rest of the file) to read into: a spare one when
   * nothing sent can still refer to it, else a new one.
   */
  private slab(length: number): Buffer {
    const spare = this.spare.pop();
    if (spare && spare.length >= length && this.options.sendsSettled?.() === true) return spare;
    if (spare) this.spare.push(spare);
    return Buffer.allocUnsafeSlow(length);
  }

  private arrived(offset: number, length: number, chunk: Buffer, slab: Buffer | undefined): void {
    this.reading = false;
    if (this.phase === 'done') return;
    if (chunk.length < length) {
      this.notify('cannot read the file');
      this.end({
        ok: false,
        reason: 'read-error',
        detail: `the file is shorter than its size: ${offset + chunk.length} of ${this.size} bytes`,
      });
      return;
    }
    if (this.chunks.length === 0) this.chunkBase = offset / this.chunkBytes;
    this.chunks.push(chunk.length > length ? chunk.subarray(0, length) : chunk);
    this.slabs.push(slab);
    this.bufferedEnd = offset + length;
    this.options.progress?.();
    if (this.phase === 'data') this.fill();
    else this.readAhead();
  }

  /** Drops chunks wholly before the first unacknowledged block. */
  private release(): void {
    const before = this.acked * this.blksize;
    while (this.chunks.length > 0 && (this.chunkBase + 1) * this.chunkBytes <= before) {
      this.chunks.shift();
      const slab = this.slabs.shift();
      if (slab && this.spare.length < MAX_SPARE) this.spare.push(slab);
      this.chunkBase++;
    }
  }

  /** Sets the retransmission deadline. One clock timer serves every deadline: it is moved only when too late. */
  private arm(ms: number): void {
    this.deadline = this.clock.now() + ms;
    if (this.timer !== undefined && this.timerAt <= this.deadline) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = this.deadline;
    this.timer = this.clock.setTimeout(this.fire, ms);
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.phase === 'done') return;
    this.guard(() => {
      const early = this.deadline - this.clock.now();
      if (early > 0) {
        this.timerAt = this.deadline;
        this.timer = this.clock.setTimeout(this.fire, early);
        return;
      }
      this.timeout();
    });
  };

  private end(end: TransferEnd): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.chunks.length = 0;
    this.slabs.length = 0;
    this.spare.length = 0;
    this.heads.fill(undefined);
    this.payloads.fill(undefined);
    this.options.done(end);
  }

  /** Nothing may escape into a socket handler, a timer or a promise: a bug ends this transfer, not the daemon. */
  private guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.fault(error);
    }
  }

  private fault(error: unknown): void {
    if (this.phase === 'done') throw error;
    this.end({ ok: false, reason: 'internal', detail: error instanceof Error ? error.message : String(error) });
  }
}
