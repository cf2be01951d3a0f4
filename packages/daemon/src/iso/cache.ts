import { stat } from 'node:fs/promises';
import { IsoError } from './errors.ts';
import { openIso, type Iso, type IsoOptions } from './reader.ts';

/**
 * Open ISOs, each indexed once and shared by every request. An entry is keyed by the file's identity (device,
 * inode, size, mtime): a request that finds the file changed (replaced, rewritten, touched) gets a freshly
 * opened and indexed one. A stat per acquire is the price, a few microseconds, and it needs no watcher.
 *
 * At most `maxOpen` ISOs stay open: the least recently used is retired beyond that. A retired or replaced ISO is
 * closed once its last lease is released, so a transfer in flight keeps reading the image it started on (for a
 * file replaced by rename, its old bytes). Until then it still holds its descriptor: the bound is on ISOs kept
 * open for reuse, not on transfers in flight.
 *
 * A failed open is remembered for the same file identity too, so a broken ISO is not re-indexed per request.
 */

export interface IsoLease {
  readonly iso: Iso;
  /** Gives the ISO back; the last release of a retired ISO closes it. Idempotent. */
  release(): void;
}

export interface IsoCache {
  /** The ISO at `path`, opened and indexed if needed. Rejects with IsoError. Release the lease when done. */
  acquire(path: string): Promise<IsoLease>;
  /** Runs `use` with the ISO and releases it afterwards. */
  with<T>(path: string, use: (iso: Iso) => T | Promise<T>): Promise<T>;
  /** ISOs currently kept open for reuse (not counting retired ones still in use). */
  readonly open: number;
  /** Retires every ISO; each closes when its leases are released. */
  close(): Promise<void>;
}

export interface IsoCacheOptions extends IsoOptions {
  /** How many ISOs stay open for reuse (default 8). */
  maxOpen?: number;
}

interface Entry {
  identity: string;
  opening: Promise<Iso>;
  leases: number;
  retired: boolean;
}

export function createIsoCache(options: IsoCacheOptions = {}): IsoCache {
  const maxOpen = Math.max(1, options.maxOpen ?? 8);
  // Insertion order is recency order: an entry is re-inserted on every use.
  const entries = new Map<string, Entry>();
  const closing = new Set<Promise<void>>();

  function closeWhenIdle(entry: Entry): void {
    if (!entry.retired || entry.leases > 0) return;
    const done = entry.opening
      .then((iso) => iso.close())
      .catch(() => undefined)
      .finally(() => closing.delete(done));
    closing.add(done);
  }

  function retire(path: string, entry: Entry): void {
    if (entries.get(path) === entry) entries.delete(path);
    entry.retired = true;
    closeWhenIdle(entry);
  }

  /** Retires entries beyond maxOpen, never `keep` (the one being acquired). */
  function evict(keep: Entry): void {
    while (entries.size > maxOpen) {
      // The least recently used idle ISO goes first; if all are in use, the least recently used anyway.
      let victim: [string, Entry] | undefined;
      let busy: [string, Entry] | undefined;
      for (const candidate of entries) {
        if (candidate[1] === keep) continue;
        if (candidate[1].leases === 0) {
          victim = candidate;
          break;
        }
        busy ??= candidate;
      }
      victim ??= busy;
      if (!victim) return;
      retire(...victim);
    }
  }

  async function identityOf(path: string): Promise<string> {
    try {
      const info = await stat(path, { bigint: true });
      if (!info.isFile()) throw new IsoError('io', `cannot open ISO ${path}: not a regular file`);
      return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}`;
    } catch (error) {
      if (error instanceof IsoError) throw error;
      throw new IsoError('io', `cannot open ISO ${path}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
  }

  async function acquire(path: string): Promise<IsoLease> {
    const identity = await identityOf(path);
    let entry = entries.get(path);
    if (entry?.identity !== identity) {
      if (entry) retire(path, entry);
      const opening = openIso(path, options);
      entry = { identity, opening, leases: 0, retired: false };
      const created = entry;
      opening.catch((error: unknown) => {
        // Host trouble (EMFILE, EIO) may pass: only a verdict on the image itself is remembered.
        if (!(error instanceof IsoError) || error.code === 'io') retire(path, created);
      });
    } else {
      entries.delete(path);
    }
    const leased = entry;
    leased.leases++;
    entries.set(path, leased);
    evict(leased);
    let iso: Iso;
    try {
      iso = await leased.opening;
    } catch (error) {
      leased.leases--;
      closeWhenIdle(leased);
      throw error;
    }
    let released = false;
    return {
      iso,
      release() {
        if (released) return;
        released = true;
        leased.leases--;
        closeWhenIdle(leased);
      },
    };
  }

  return {
    acquire,
    async with(path, use) {
      const lease = await acquire(path);
      try {
        return await use(lease.iso);
      } finally {
        lease.release();
      }
    },
    get open() {
      return entries.size;
    },
    async close() {
      for (const [path, entry] of [...entries]) retire(path, entry);
      await Promise.all([...closing]);
    },
  };
}
