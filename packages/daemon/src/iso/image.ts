import { open, type FileHandle } from 'node:fs/promises';
import { IsoError } from './errors.ts';

/**
 * The bytes of an image, read by position. One implementation wraps ONE open file handle (every read is a
 * pread on it, so concurrent readers never disturb each other); another wraps a Buffer for codec tests.
 */
export interface Image {
  /** The image's size in bytes, fixed when it was opened. */
  readonly size: number;
  /** When the image file last changed (absent for in-memory images). */
  readonly mtime?: Date;
  /** The open file's descriptor, for zero-copy sending of byte ranges (absent for in-memory images). */
  readonly fd?: number;
  /** Fills `target` from `position`; returns how many bytes were read (fewer only at the end of the file). */
  readInto(target: Uint8Array, position: number): Promise<number>;
  /** Reads and positioned-read bytes so far: tests bound them to prove nothing loops. */
  readonly stats: { reads: number; bytes: number };
  close(): Promise<void>;
}

function ioError(what: string, error: unknown): IsoError {
  const reason = error instanceof Error ? error.message : String(error);
  return new IsoError('io', `${what}: ${reason}`, { cause: error });
}

/** Opens the image file read-only. Rejects with IsoError('io') when it cannot be opened or is not a file. */
export async function openImageFile(path: string): Promise<Image> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw ioError(`cannot open ISO ${path}`, error);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new IsoError('io', `cannot open ISO ${path}: not a regular file`);
    return fileImage(handle, path, info.size, info.mtime);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error instanceof IsoError ? error : ioError(`cannot open ISO ${path}`, error);
  }
}

function fileImage(handle: FileHandle, path: string, size: number, mtime: Date): Image {
  let closed = false;
  const stats = { reads: 0, bytes: 0 };
  return {
    size,
    mtime,
    fd: handle.fd,
    stats,
    async readInto(target, position) {
      if (closed) throw new IsoError('io', `ISO ${path} is closed`);
      let filled = 0;
      while (filled < target.length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(target, filled, target.length - filled, position + filled));
        } catch (error) {
          throw ioError(`reading ISO ${path} at byte ${position + filled}`, error);
        }
        stats.reads++;
        stats.bytes += bytesRead;
        if (bytesRead === 0) break; // shrank since it was opened: a short read
        filled += bytesRead;
      }
      return filled;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** An image held in memory: for tests, and for the fuzz test's thousands of mutated images. */
export function bufferImage(bytes: Uint8Array): Image {
  let closed = false;
  const stats = { reads: 0, bytes: 0 };
  return {
    size: bytes.length,
    stats,
    readInto(target, position) {
      if (closed) return Promise.reject(new IsoError('io', 'image is closed'));
      const available = Math.max(0, Math.min(target.length, bytes.length - position));
      target.set(bytes.subarray(position, position + available));
      stats.reads++;
      stats.bytes += available;
      return Promise.resolve(available);
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

/**
 * Reads exactly `length` bytes at `offset`, refusing (IsoError 'malformed') a range that lies outside the image:
 * every on-disk pointer passes through here, so no field can make us read elsewhere or allocate unboundedly.
 */
export async function readRange(image: Image, offset: number, length: number, what: string): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new IsoError('malformed', `${what}: bad range (offset ${offset}, length ${length})`);
  }
  if (offset + length > image.size) {
    throw new IsoError(
      'malformed',
      `${what} at bytes ${offset}..${offset + length} lies beyond the end of the image (${image.size} bytes; truncated ISO?)`,
    );
  }
  // Uninitialised is safe: a short read is an error, so every byte handed out was read from the image.
  const buffer = Buffer.allocUnsafe(length);
  const got = await image.readInto(buffer, offset);
  if (got !== length) throw new IsoError('io', `${what}: short read (${got} of ${length} bytes)`);
  return buffer;
}
