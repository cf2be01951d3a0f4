import { constants } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import { PathRefusedError, type TreeFile, type TreeSource } from './tree.ts';

/** Errors that mean "there is no such file here" rather than a fault worth reporting. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EISDIR']);

function errnoOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/**
 * The mount table hands over normalised paths, but a source must not depend on that: anything that could climb
 * out (`..`, an absolute path, a NUL) is refused here too.
 */
function checkRelative(path: string): void {
  if (path.includes('\0')) throw new PathRefusedError(path, 'contains a NUL byte');
  if (isAbsolute(path) || path.includes('\\')) throw new PathRefusedError(path, 'not a relative path');
  if (path.split('/').includes('..')) throw new PathRefusedError(path, 'climbs out with ".."');
}

/** The value of a settled promise, or its reason thrown. */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'fulfilled') return result.value;
  throw result.reason;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** An open regular file read with positioned reads on its own descriptor; its size is fixed when it is opened. */
function openFile(handle: FileHandle, size: number, mtime: Date): TreeFile {
  let closed = false;
  return {
    size,
    mtime,
    async readInto(target, offset) {
      if (closed) throw new Error('read after close');
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad read offset ${offset}`);
      // Never past the size announced at open (a tsize or Content-Length), even if the file has grown since.
      const wanted = Math.max(0, Math.min(target.length, size - offset));
      let filled = 0;
      while (filled < wanted) {
        const { bytesRead } = await handle.read(target, filled, wanted - filled, offset + filled);
        if (bytesRead === 0) break; // the file shrank under us: a short read, as past the end
        filled += bytesRead;
      }
      return filled;
    },
    async read(offset, length) {
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RangeError(`bad read range: offset ${offset}, length ${length}`);
      }
      const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, size - offset)));
      const filled = await this.readInto(buffer, offset);
      return filled === buffer.length ? buffer : buffer.subarray(0, filled);
    },
    diskExtents(from, to) {
      if (closed) throw new Error('read after close');
      const end = Math.min(to, size);
      return end > from ? [{ fd: handle.fd, offset: from, length: end - from }] : [];
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/**
 * Serves the regular files under `root`. Symlinks are followed only while they stay inside the root (by real
 * path); one that leads out is refused, so a stray link cannot publish /etc. Directories, devices, FIFOs and
 * sockets are "not found". The root need not exist yet: until it does, nothing is found.
 *
 * `linksLeaving: 'follow'` is for a directory a package manager owns, whose links point elsewhere by design
 * (Debian's /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi); request paths are still confined to the root.
 */
export function directorySource(root: string, options: { linksLeaving?: 'refuse' | 'follow' } = {}): TreeSource {
  const followOut = options.linksLeaving === 'follow';
  return {
    async open(path) {
      checkRelative(path);
      // The three lookups that only read metadata go to the thread pool at once, not one after another: each is a
      // round trip through libuv's pool (~0.15 ms on an idle machine, more under load), and a request waits for
      // them before its first answer. stat follows links as realpath does, so it describes the file `real` names.
      const full = join(root, path);
      const [rootResult, realResult, statResult] = await Promise.allSettled([
        realpath(root),
        realpath(full),
        stat(full),
      ]);
      let realRoot: string;
      let real: string;
      try {
        realRoot = settled(rootResult);
        real = settled(realResult);
      } catch (error) {
        const code = errnoOf(error);
        if (code !== undefined && ABSENT.has(code)) return undefined;
        if (code === 'EACCES') throw new PathRefusedError(path, 'permission denied');
        throw error;
      }
      if (!followOut && !inside(realRoot, real))
        throw new PathRefusedError(path, 'a symlink leads out of the served directory');
      let handle: FileHandle;
      try {
        // Checked before opening: opening a FIFO would block. O_NONBLOCK covers a swap between the two calls, and
        // O_NOFOLLOW a final component turned into a symlink since realpath.
        if (!settled(statResult).isFile()) return undefined;
        handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (error) {
        const code = errnoOf(error);
        if (code !== undefined && ABSENT.has(code)) return undefined;
        if (code === 'EACCES' || code === 'EPERM') throw new PathRefusedError(path, 'permission denied');
        throw error;
      }
      try {
        const info = await handle.stat();
        if (!info.isFile()) {
          await handle.close();
          return undefined;
        }
        return openFile(handle, info.size, info.mtime);
      } catch (error) {
        await handle.close();
        throw error;
      }
    },
  };
}
