import { createSocket, type Socket } from 'node:dgram';
import koffi from 'koffi';
import {
  AF_INET,
  errnoName,
  intValue,
  lastErrno,
  loadLibc,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCKADDR_IN_SIZE,
  SOL_SOCKET,
  type Libc,
} from '../net/libc.ts';

/**
 * A UDP socket on 0.0.0.0:PORT bound to one network interface (SO_BINDTODEVICE, socket(7)).
 *
 * Why: a DHCP server must know which interface a broadcast arrived on (to pick the subnet and answer with the
 * right server id), and its broadcast reply must leave by that interface. node:dgram offers neither IP_PKTINFO
 * nor SO_BINDTODEVICE, so the socket is made here through libc (net/libc.ts: koffi, a prebuilt FFI) and handed
 * to dgram with bind({fd}); from then on it is an ordinary dgram socket driven by libuv. Linux delivers a broadcast to every
 * socket whose bound device matches (and to unbound ones), so one socket per served interface sees exactly
 * that interface's traffic, and a send on it routes out of it, even to 255.255.255.255 without a route.
 */

const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_BINDTODEVICE = 25;

/** A failure to open a device socket, with the errno name an operator can look up. */
export class DeviceSocketError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'DeviceSocketError';
    this.code = code;
  }
}

function fail(c: Libc, what: string, fd: number | undefined): never {
  const errno = lastErrno();
  if (fd !== undefined && fd >= 0) c.close(fd);
  throw new DeviceSocketError(`${what}: ${c.strerror(errno)}`, errnoName(errno));
}

/**
 * dgram's `lookup`: every address the DHCP server sends to is an IPv4 literal (a relay, a client, the broadcast
 * address), so the send goes out in the same turn instead of through dns.lookup and a deferred callback.
 */
function literalAddress(
  address: string,
  _options: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, 4);
}

/** A device-bound socket: dgram's, for receiving (and sending when the kernel's buffer is full), and its fd. */
export interface DeviceSocket {
  socket: Socket;
  /**
   * Sends one datagram now with sendto(2) (MSG_DONTWAIT), in this turn: true when the kernel took it. False when
   * its send buffer is full (EAGAIN, ENOBUFS): the caller then sends through dgram, which queues. Any other
   * failure is thrown as a DeviceSocketError. Why not dgram's send: each one allocates a send request, goes
   * through libuv's queue and calls back in a later turn, work repeated for every reply at thousands a second
   * (2 per DORA); a reply has nothing to wait for once the kernel has it.
   */
  sendNow: (bytes: Buffer, port: number, address: string) => boolean;
}

const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const ENOBUFS = 105;

type SendTo = (fd: number, data: Buffer, length: number, flags: number, to: Buffer, toLength: number) => number;
let sendtoCall: SendTo | undefined;

/** sendto(2) through koffi (net/libc.ts binds only what opening a socket needs), bound on first use. */
function sendto(): SendTo {
  sendtoCall ??= koffi
    .load('libc.so.6')
    .func('long sendto(int, const void *, size_t, int, const void *, uint32_t)') as SendTo;
  return sendtoCall;
}

/** sockaddr_in of an IPv4 literal, or undefined when it is not one. */
function socketAddress(address: string, port: number): Buffer | undefined {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
  const buffer = Buffer.alloc(SOCKADDR_IN_SIZE);
  buffer.writeUInt16LE(AF_INET, 0);
  buffer.writeUInt16BE(port, 2);
  Buffer.from(octets).copy(buffer, 4);
  return buffer;
}

/**
 * Opens ADDRESS:port (0.0.0.0 unless given) bound to `device` with SO_REUSEADDR and SO_BROADCAST, as a dgram
 * socket. Bound to 255.255.255.255 it receives only limited broadcasts, and sends with the device's address as
 * source (Linux inet_bind: a broadcast bind leaves the source address to routing).
 */
export function openDeviceSocket(device: string, port: number, bindAddress = '0.0.0.0'): Promise<DeviceSocket> {
  const c = loadLibc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(c, 'socket()', undefined);
  const one = intValue(1);
  if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail(c, 'SO_REUSEADDR', fd);
  if (c.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, one, 4) !== 0) fail(c, 'SO_BROADCAST', fd);
  const name = Buffer.from(`${device}\0`);
  if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) !== 0) {
    fail(c, `SO_BINDTODEVICE ${device}`, fd);
  }
  const address = socketAddress(bindAddress, port);
  if (!address) {
    c.close(fd);
    throw new DeviceSocketError(`not an IPv4 address: ${bindAddress}`, 'EINVAL');
  }
  if (c.bind(fd, address, SOCKADDR_IN_SIZE) !== 0) fail(c, `bind ${bindAddress}:${port} on ${device}`, fd);
  const socket = createSocket({ type: 'udp4', lookup: literalAddress });
  // Destinations are few (the broadcast address, relays): their sockaddr is built once each.
  const destinations = new Map<string, Buffer>();
  const send = sendto();
  let closed = false;
  socket.once('close', () => (closed = true));
  const sendNow = (bytes: Buffer, toPort: number, toAddress: string): boolean => {
    if (closed) return false;
    const key = toPort === 68 || toPort === 67 ? toAddress : `${toAddress}:${String(toPort)}`;
    let to = destinations.get(key);
    if (to?.readUInt16BE(2) !== toPort) {
      to = socketAddress(toAddress, toPort);
      if (!to) throw new DeviceSocketError(`not an IPv4 address: ${toAddress}`, 'EINVAL');
      if (destinations.size >= 4096) destinations.clear();
      destinations.set(key, to);
    }
    if (send(fd, bytes, bytes.length, MSG_DONTWAIT, to, SOCKADDR_IN_SIZE) >= 0) return true;
    const errno = lastErrno();
    if (errno === EAGAIN || errno === ENOBUFS) return false;
    throw new DeviceSocketError(`sendto ${toAddress}:${String(toPort)}: ${c.strerror(errno)}`, errnoName(errno));
  };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ fd }, () => {
      socket.off('error', reject);
      resolve({ socket, sendNow });
    });
  });
}
