/**
 * UDP sockets for TFTP transfers that can send a window of DATA blocks with one syscall: Linux UDP generic
 * segmentation offload (UDP_SEGMENT, udp(7), Linux 4.18+).
 *
 * With UDP_SEGMENT set to S on a socket, one send of more than S bytes leaves as datagrams of S bytes each (the
 * last may be shorter), at most UDP_MAX_SEGMENTS of them and at most 65507 bytes in all; a send of S bytes or
 * fewer is an ordinary datagram. The kernel splits by bytes, not by the buffers handed to sendmsg, so a window
 * of DATA blocks goes out as one sendmsg whose iovecs are [header, data, header, data, ...], each block exactly
 * S = blksize + 4 bytes, the file's shorter last block (if in it) last. Segmentation is done in software when
 * the device cannot (loopback and veth do it late, in the driver path), and always before anything leaves.
 *
 * node:dgram cannot set the option, so the socket is made here through libc (net/libc.ts, as dhcp/device-socket.ts
 * does for SO_BINDTODEVICE), bound, and handed to dgram with bind({fd}); dgram owns and closes it from then on.
 * The option is read at each sendmsg, so it must never change while sends may wait in libuv's queue: a socket
 * keeps the size it was given, and giving up on GSO means only that later sends carry one block each.
 */
import dgram from 'node:dgram';
import {
  AF_INET,
  AF_INET6,
  errnoName,
  intValue,
  lastErrno,
  loadLibc,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  type Libc,
} from '../net/libc.ts';

const SOL_UDP = 17;
const UDP_SEGMENT = 103;

/** Most segments one GSO send may carry (UDP_MAX_SEGMENTS: 64 in Linux 4.18-6.x, 128 in newer kernels). */
export const MAX_SEGMENTS = 64;
/** Most bytes of UDP payload one send may carry over IPv4 (65535 - 20 - 8); IPv6 allows more, this is enough. */
export const MAX_GSO_BYTES = 65507;

/** A libc call that failed, with the errno name (`code`) as Node's own socket errors carry it. */
export class LibcSocketError extends Error {
  readonly code: string;
  constructor(what: string, errno: number, c: Libc) {
    super(`${what}: ${c.strerror(errno)}`);
    this.name = 'LibcSocketError';
    this.code = errnoName(errno);
  }
}

/** struct sockaddr_in or sockaddr_in6 for ADDRESS:port; an IPv6 address may carry a scope (fe80::1%eth0). */
export function socketAddress(c: Libc, family: 4 | 6, address: string, port: number): Buffer {
  if (family === 4) {
    const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    if (c.inet_pton(AF_INET, address, sa.subarray(4, 8)) !== 1) throw new TypeError(`not an IPv4 address: ${address}`);
    return sa;
  }
  const percent = address.indexOf('%');
  const host = percent < 0 ? address : address.slice(0, percent);
  const scope = percent < 0 ? '' : address.slice(percent + 1);
  const sa = Buffer.alloc(SOCKADDR_IN6_SIZE);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  if (c.inet_pton(AF_INET6, host, sa.subarray(8, 24)) !== 1) throw new TypeError(`not an IPv6 address: ${address}`);
  if (scope !== '') {
    const index = /^\d+$/.test(scope) ? Number(scope) : c.if_nametoindex(scope);
    if (!index) throw new TypeError(`no interface for the scope of ${address}`);
    sa.writeUInt32LE(index, 24);
  }
  return sa;
}

/**
 * A UDP socket bound to ADDRESS on an ephemeral port, opened through libc, as a dgram socket, with its file
 * descriptor (for `setSegmentSize`). Rejects with a LibcSocketError (`code` EADDRNOTAVAIL...) when it cannot.
 */
export function openUdpSocket(
  family: 4 | 6,
  address: string,
  lookup: NonNullable<dgram.SocketOptions['lookup']>,
): Promise<{ socket: dgram.Socket; fd: number }> {
  let c: Libc;
  try {
    c = loadLibc();
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  const fd = c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Promise.reject(new LibcSocketError('socket()', lastErrno(), c));
  try {
    const sa = socketAddress(c, family, address, 0);
    if (c.bind(fd, sa, sa.length) !== 0) throw new LibcSocketError(`bind ${address}`, lastErrno(), c);
  } catch (error) {
    c.close(fd);
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup });
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      try {
        socket.close(); // closes the fd, which dgram now owns
      } catch {
        c.close(fd);
      }
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ fd }, () => {
      socket.off('error', onError);
      resolve({ socket, fd });
    });
  });
}

/**
 * Sets UDP_SEGMENT on a socket this module opened: every later send longer than `size` bytes is split into
 * datagrams of `size` bytes. Returns undefined, or why the kernel refused (a kernel without UDP GSO answers
 * ENOPROTOOPT).
 */
export function setSegmentSize(fd: number, size: number): LibcSocketError | undefined {
  return setIntOption(fd, SOL_UDP, UDP_SEGMENT, size, `UDP_SEGMENT ${size}`);
}

/** setsockopt with an int value; returns the failure, if any. Exported for tests (SO_NO_CHECK breaks GSO). */
export function setIntOption(
  fd: number,
  level: number,
  name: number,
  value: number,
  what = `setsockopt(${level}, ${name})`,
): LibcSocketError | undefined {
  const c = loadLibc();
  if (c.setsockopt(fd, level, name, intValue(value), 4) === 0) return undefined;
  return new LibcSocketError(what, lastErrno(), c);
}
