/**
 * The libc calls behind HTTP's zero-copy file sending (http/sendfile-pool.ts, http/sendfile-worker.ts): sendfile(2)
 * moves file bytes into a socket inside the kernel, poll(2) waits for sockets that are full, an eventfd(2) wakes a
 * sending thread, and fcntl(F_DUPFD_CLOEXEC) gives that thread its own reference to a connection. Node exposes none
 * of them. Bound through net/libc.ts's libc once per thread that uses them: each worker thread has its own (close,
 * strerror and errno are net/libc.ts's).
 */
import { libcLibrary } from './libc.ts';

/** poll(2) events (asm-generic/poll.h). */
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
/** struct pollfd { int fd; short events; short revents; } */
export const POLLFD_SIZE = 8;

/** eventfd(2) flags. */
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

export const EAGAIN = 11;
export const EINTR = 4;

const F_DUPFD_CLOEXEC = 1030;

export interface SendfileLibc {
  /** Bytes moved, 0 at the end of the input, -1 with errno; `offset` is an 8-byte in/out file position. */
  sendfile(out: number, input: number, offset: Buffer, count: number): number;
  poll(fds: Buffer, count: number, timeoutMs: number): number;
  eventfd(initial: number, flags: number): number;
  read(fd: number, buffer: Buffer, length: number): number;
  write(fd: number, buffer: Buffer, length: number): number;
  /** A new descriptor for the same open file, closed on exec (children never inherit a client's connection). */
  dupCloexec(fd: number): number;
}

let loaded: SendfileLibc | undefined;

export function loadSendfileLibc(): SendfileLibc {
  if (loaded) return loaded;
  const lib = libcLibrary();
  const fcntl = lib.func('int fcntl(int, int, ...)') as (fd: number, cmd: number, type: string, arg: number) => number;
  loaded = {
    sendfile: lib.func('int64_t sendfile(int, int, void *, uint64_t)') as SendfileLibc['sendfile'],
    poll: lib.func('int poll(void *, uint64_t, int)') as SendfileLibc['poll'],
    eventfd: lib.func('int eventfd(unsigned int, int)') as SendfileLibc['eventfd'],
    read: lib.func('int64_t read(int, void *, uint64_t)') as SendfileLibc['read'],
    write: lib.func('int64_t write(int, const void *, uint64_t)') as SendfileLibc['write'],
    dupCloexec: (fd) => fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0),
  };
  return loaded;
}
