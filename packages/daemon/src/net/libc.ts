/**
 * The few libc socket calls the daemon makes itself, through koffi (a prebuilt FFI; its install script is ignored in
 * pnpm-workspace.yaml): node:dgram sets neither SO_BINDTODEVICE (dhcp/device-socket.ts) nor UDP_SEGMENT
 * (tftp/gso-socket.ts). A socket made here is bound and handed to dgram with bind({fd}); dgram owns it from then on.
 * Loaded on first use, once per process.
 */
import koffi from 'koffi';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  bind(fd: number, address: Buffer, length: number): number;
  close(fd: number): number;
  strerror(errno: number): string;
  inet_pton(family: number, text: string, out: Buffer): number;
  if_nametoindex(name: string): number;
}

let library: ReturnType<typeof koffi.load> | undefined;

/**
 * libc itself, loaded once per thread (a worker thread has its own module instance), for the modules that bind
 * their own few calls to it (net/libc-sendfile.ts, data-dir-lock.ts).
 */
export function libcLibrary(): ReturnType<typeof koffi.load> {
  library ??= koffi.load('libc.so.6');
  return library;
}

let libc: Libc | undefined;

export function loadLibc(): Libc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    socket: lib.func('int socket(int, int, int)') as Libc['socket'],
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)') as Libc['setsockopt'],
    bind: lib.func('int bind(int, const void *, uint32_t)') as Libc['bind'],
    close: lib.func('int close(int)') as Libc['close'],
    strerror: lib.func('const char *strerror(int)') as Libc['strerror'],
    inet_pton: lib.func('int inet_pton(int, const char *, void *)') as Libc['inet_pton'],
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *)') as Libc['if_nametoindex'],
  };
  return libc;
}

/** errno of the last libc call made through koffi on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

const errnoNames: Record<number, string> = {
  1: 'EPERM',
  5: 'EIO',
  9: 'EBADF',
  11: 'EAGAIN',
  13: 'EACCES',
  19: 'ENODEV',
  22: 'EINVAL',
  32: 'EPIPE',
  92: 'ENOPROTOOPT',
  95: 'EOPNOTSUPP',
  97: 'EAFNOSUPPORT',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  104: 'ECONNRESET',
  110: 'ETIMEDOUT',
};

/** The errno's name as Node's own socket errors carry it in `code` ("EADDRINUSE"), or "errno N". */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `errno ${errno}`;
}

/** A C int option value for setsockopt. */
export function intValue(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return buffer;
}

/** recv(2) flags for `peekReady`. */
const MSG_PEEK = 0x2;
const MSG_DONTWAIT = 0x40;

type RecvCall = (fd: number, buffer: Buffer, length: number, flags: number) => number;
let recvCall: RecvCall | undefined;
const peekByte = Buffer.alloc(1);

/**
 * True when a datagram waits on the socket, without taking it (recv with MSG_PEEK | MSG_DONTWAIT): a poll that
 * never sleeps, for the TFTP server's bounded wait for an ACK (tftp/ack-spin.ts).
 */
export function peekReady(fd: number): boolean {
  recvCall ??= libcLibrary().func('long recv(int, void *, size_t, int)') as RecvCall;
  return recvCall(fd, peekByte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
}
