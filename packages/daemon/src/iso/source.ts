import { PathRefusedError, type DiskExtent, type TreeFile, type TreeSource } from '../tree/tree.ts';
import type { IsoCache, IsoLease } from './cache.ts';
import { IsoError } from './errors.ts';
import type { Extent, IsoFile } from './reader.ts';

/**
 * The files inside one ISO as a TreeSource, for HTTP and TFTP. A TreeFile maps file offsets onto the file's
 * extents and reads them with positioned reads on the ISO's one shared handle: nothing is buffered beyond the
 * range asked for, nothing is copied or mounted. The TreeFile holds a lease on the cached ISO until it is
 * closed, so replacing the ISO file never pulls the image out from under a transfer.
 *
 * - Missing paths and directories resolve to undefined.
 * - `..`, absolute paths and NUL bytes are refused (PathRefusedError), as are symlinks inside the ISO that
 *   climb above its root or loop.
 * - A zisofs-compressed or interleaved file rejects with IsoError (its bytes cannot be served by range), as
 *   does an ISO that cannot be opened.
 * - mtime is the ISO file's: it changes whenever the ISO does, so validators never outlive its contents.
 */
export function isoSource(isoPath: string, cache: IsoCache): TreeSource {
  return {
    async open(path) {
      if (path.includes('\0')) throw new PathRefusedError(path, 'contains a NUL byte');
      if (path.startsWith('/') || path.includes('\\')) throw new PathRefusedError(path, 'not a relative path');
      if (path.split('/').includes('..')) throw new PathRefusedError(path, 'climbs out with ".."');
      const lease = await cache.acquire(isoPath);
      let file: IsoFile | undefined;
      try {
        file = lease.iso.lookup(path);
      } catch (error) {
        lease.release();
        if (error instanceof IsoError && (error.code === 'escape' || error.code === 'loop')) {
          throw new PathRefusedError(path, error.code === 'escape' ? 'a symlink leads out of the ISO' : 'symlink loop');
        }
        throw error;
      }
      if (!file) {
        lease.release();
        return undefined;
      }
      return isoFile(lease, file);
    },
  };
}

/** Start offset of each extent within the file, for a binary search. */
function starts(extents: readonly Extent[]): number[] {
  const result: number[] = [];
  let at = 0;
  for (const extent of extents) {
    result.push(at);
    at += extent.length;
  }
  return result;
}

export function isoFile(lease: IsoLease, file: IsoFile): TreeFile {
  const { iso } = lease;
  const extents = file.extents;
  const offsets = starts(extents);
  let closed = false;
  /** The last extent that starts at or before `offset` (a binary search). */
  const extentAt = (offset: number): number => {
    let low = 0;
    let high = offsets.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((offsets[middle] ?? 0) <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  };
  return {
    size: file.size,
    ...(iso.mtime ? { mtime: iso.mtime } : {}),
    async readInto(target, offset) {
      if (closed) throw new IsoError('io', 'read after close');
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad read offset ${offset}`);
      const wanted = Math.max(0, Math.min(target.length, file.size - offset));
      let filled = 0;
      for (let index = extentAt(offset); filled < wanted && index < extents.length; index++) {
        const extent = extents[index];
        if (!extent) break;
        const within = offset + filled - (offsets[index] ?? 0);
        const take = Math.min(wanted - filled, extent.length - within);
        if (take <= 0) continue;
        const got = await iso.readInto(target.subarray(filled, filled + take), extent.offset + within);
        filled += got;
        if (got < take) break; // the image shrank since it was indexed: a short read
      }
      return filled;
    },
    ...(iso.fd === undefined
      ? {}
      : {
          diskExtents(from: number, to: number) {
            if (closed) throw new IsoError('io', 'read after close');
            const fd = iso.fd ?? -1;
            const end = Math.min(to, file.size);
            const runs: DiskExtent[] = [];
            for (let index = extentAt(from), at = from; at < end && index < extents.length; index++) {
              const extent = extents[index];
              if (!extent) break;
              const within = at - (offsets[index] ?? 0);
              const take = Math.min(end - at, extent.length - within);
              if (take <= 0) continue;
              runs.push({ fd, offset: extent.offset + within, length: take });
              at += take;
            }
            return runs;
          },
        }),
    async read(offset, length) {
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RangeError(`bad read range: offset ${offset}, length ${length}`);
      }
      const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, file.size - offset)));
      const filled = await this.readInto(buffer, offset);
      return filled === buffer.length ? buffer : buffer.subarray(0, filled);
    },
    close() {
      if (!closed) {
        closed = true;
        lease.release();
      }
      return Promise.resolve();
    },
  };
}
