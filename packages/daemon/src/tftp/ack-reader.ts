/**
 * Reads a transfer's next ACK straight from its socket, during the bounded wait for it (ack-spin.ts), instead of
 * returning to the event loop and letting libuv and node:dgram read it.
 *
 * Why. Over the benchmark's 1 ms link (blksize 1468, windowsize 16) smeltd took ~50-60 µs per window from the
 * ACK's recvmsg to its first send, atftpd ~8 µs, and ~38 µs of it was the path from libuv's recvmsg to our
 * handler: back to the event loop from the wait's timer, epoll, a 64 KiB buffer per recvmsg, the JS callback
 * with its rinfo object. The wait has already seen the datagram (its poll is this peek); reading it here is one
 * more syscall, and the handler runs at once.
 *
 * Only the expected case is taken: a datagram of exactly 4 bytes, opcode ACK (RFC 1350 §5), from the transfer's
 * peer, its address and port (the TID, RFC 1350 §4) compared byte for byte with those of the peer. Anything
 * else, a datagram from a stranger (answered with ERROR 5 by the normal path), an ERROR, something malformed, is
 * left on the socket, untouched (the poll only peeks), for node:dgram to read and handle as always. The datagram
 * taken is the one peeked: it is at the head of the socket's queue and only this thread reads the socket, so
 * nothing can come before it in between. So no datagram is lost or handled twice.
 */
import { lastErrno, libcLibrary, loadLibc } from '../net/libc.ts';
import { socketAddress } from './gso-socket.ts';

/** recv(2) flags. MSG_TRUNC: the datagram's real length, even when longer than the buffer (udp(7)). */
const MSG_PEEK = 0x2;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

const OP_ACK = 4;
const ACK_BYTES = 4;

type RecvFrom = (fd: number, buffer: Buffer, length: number, flags: number, from: Buffer, fromLength: Buffer) => number;
type Recv = (fd: number, buffer: Buffer, length: number, flags: number) => number;
let recvFromCall: RecvFrom | undefined;
let recvCall: Recv | undefined;

export interface AckReaderStats {
  /** ACKs read here, and datagrams seen by the wait but left to node:dgram (not an ACK from the peer). */
  taken: number;
  left: number;
}

export class AckReader {
  readonly stats: AckReaderStats = { taken: 0, left: 0 };
  private readonly fd: number;
  /** The peer's sockaddr as the kernel reports a sender (sockaddr_in or sockaddr_in6), and its length. */
  private readonly peer: Buffer;
  /** The last peek: the head datagram's first bytes, its length (-1: none), and its sender. */
  private readonly head = Buffer.alloc(ACK_BYTES);
  private headLength = -1;
  private readonly from: Buffer;
  private readonly fromLength = Buffer.alloc(4);
  private readonly sink = Buffer.alloc(ACK_BYTES);
  private readonly recvFrom: RecvFrom;
  private readonly recv: Recv;

  /** For a socket (`fd`) of `family`, whose transfer's peer is ADDRESS:port; throws when libc is unusable. */
  constructor(fd: number, family: 4 | 6, address: string, port: number) {
    const lib = libcLibrary();
    recvFromCall ??= lib.func('long recvfrom(int, void *, size_t, int, void *, void *)') as RecvFrom;
    recvCall ??= lib.func('long recv(int, void *, size_t, int)') as Recv;
    this.recvFrom = recvFromCall;
    this.recv = recvCall;
    this.fd = fd;
    this.peer = socketAddress(loadLibc(), family, address, port);
    this.from = Buffer.alloc(this.peer.length);
  }

  /**
   * True when a datagram waits on the socket (never blocks, never takes it): the wait's poll. It remembers what
   * it saw for `take`.
   */
  peek(): boolean {
    this.fromLength.writeUInt32LE(this.from.length, 0);
    const n = this.recvFrom(
      this.fd,
      this.head,
      ACK_BYTES,
      MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC,
      this.from,
      this.fromLength,
    );
    this.headLength = n;
    return n >= 0;
  }

  /**
   * Right after a `peek` that saw a datagram: when it is an ACK from the peer, reads it off the socket and returns
   * its block number; otherwise leaves it there for node:dgram and returns undefined.
   */
  take(): number | undefined {
    const n = this.headLength;
    this.headLength = -1;
    if (n < 0) return undefined;
    if (n !== ACK_BYTES || this.head.readUInt16BE(0) !== OP_ACK || !this.fromPeer()) {
      this.stats.left++;
      return undefined;
    }
    const read = this.recv(this.fd, this.sink, ACK_BYTES, MSG_DONTWAIT);
    if (read !== ACK_BYTES) {
      // Cannot happen (the datagram peeked is still first); if it did, nothing was taken unless 4 bytes were read.
      if (read < 0 && lastErrno() === EAGAIN) return undefined;
      throw new Error(`reading a peeked ACK returned ${read}`);
    }
    this.stats.taken++;
    return this.sink.readUInt16BE(2);
  }

  /** The sender of the peeked datagram is the peer: family, port, address (and for IPv6 the scope), byte for byte. */
  private fromPeer(): boolean {
    const { from, peer } = this;
    if (this.fromLength.readUInt32LE(0) !== peer.length) return false;
    // sockaddr_in: family, port, address at 0-8; sockaddr_in6: family and port at 0-4, address at 8-24, scope
    // at 24 (flow information at 4-8 is not part of the address).
    if (from.readUInt32LE(0) !== peer.readUInt32LE(0)) return false;
    if (peer.length === 16) return from.readUInt32LE(4) === peer.readUInt32LE(4);
    for (let i = 8; i < 28; i += 4) if (from.readUInt32LE(i) !== peer.readUInt32LE(i)) return false;
    return true;
  }
}
