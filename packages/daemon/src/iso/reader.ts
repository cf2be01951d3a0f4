import { readVolumeDescriptors, SECTOR } from './descriptors.ts';
import { foldCase } from './directory.ts';
import { IsoError, UDF_MESSAGE, ZISOFS_MESSAGE } from './errors.ts';
import { MAX_CATALOG_BYTES, parseBootCatalog, type BootCatalog } from './eltorito.ts';
import { bufferImage, openImageFile, readRange, type Image } from './image.ts';
import {
  buildIndex,
  defaultLimits,
  type Extent,
  type IsoDirectory,
  type IsoIndex,
  type IsoLimits,
  type IsoNode,
  type NameSource,
} from './walk.ts';

export type { Extent, IsoLimits, NameSource } from './walk.ts';
export type { BootCatalog, BootEntry } from './eltorito.ts';

/** A regular file inside the ISO: its size and where its bytes are in the image, in order. */
export interface IsoFile {
  size: number;
  extents: readonly Extent[];
}

export interface IsoStat {
  kind: 'file' | 'directory' | 'symlink';
  /** Bytes of a file (uncompressed size for a zisofs file); 0 otherwise. */
  size: number;
  /** A symlink's target (when the last component is not followed). */
  target?: string;
  /** A zisofs-compressed file: listed, but reading it is an IsoError. */
  compressed?: boolean;
}

export interface IsoDirent extends IsoStat {
  name: string;
}

export interface IsoListEntry extends IsoStat {
  /** Relative to the ISO's root, without a leading slash: `casper/vmlinuz`. */
  path: string;
}

export interface Iso {
  /** The image file, when opened from a path. */
  readonly path: string | undefined;
  /** Bytes in the image file. */
  readonly size: number;
  /** When the image file last changed. */
  readonly mtime: Date | undefined;
  /** The image file's descriptor while open, for zero-copy sending (undefined for in-memory images). */
  readonly fd: number | undefined;
  readonly volumeId: string;
  /** Which names the tree shows: Rock Ridge when present, else Joliet, else plain ISO 9660 (lower-cased). */
  readonly names: NameSource;
  /** The image also carries a UDF file system (a UDF bridge image). */
  readonly udf: boolean;
  readonly bootCatalog: BootCatalog | undefined;
  readonly counts: { files: number; directories: number; symlinks: number; compressed: number };
  /**
   * The regular file at `path` (relative to the ISO's root; symlinks followed within the ISO), or undefined when
   * there is none or it is a directory. Throws IsoError for a zisofs or interleaved file, a symlink loop, or a
   * symlink that climbs out of the ISO's root.
   */
  lookup(path: string): IsoFile | undefined;
  /** What is at `path`; follows a final symlink unless `follow` is false. Throws like lookup for bad symlinks. */
  stat(path: string, options?: { follow?: boolean }): IsoStat | undefined;
  /** The entries of the directory at `path`, sorted by name; undefined when it is not a directory. */
  readdir(path: string): IsoDirent[] | undefined;
  /** Every entry of the tree, depth first, sorted by name within each directory. */
  list(): Generator<IsoListEntry>;
  /** Bytes of the image itself, by position; shorter at the end of the image. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Fills `target` from image `position`; returns the bytes read (fewer at the end of the image). */
  readInto(target: Uint8Array, position: number): Promise<number>;
  /** Reads issued on the image so far (for tests and diagnostics). */
  readonly stats: { readonly reads: number; readonly bytes: number };
  /** Closes the image's one file handle; reads after close reject. */
  close(): Promise<void>;
}

export interface IsoOptions {
  limits?: Partial<IsoLimits>;
}

/** Opens the ISO at `path`, reads its descriptors and builds its whole directory index. Rejects with IsoError. */
export async function openIso(path: string, options: IsoOptions = {}): Promise<Iso> {
  return openIsoImage(await openImageFile(path), options, path);
}

/** As openIso, over bytes in memory. */
export function openIsoBuffer(bytes: Uint8Array, options: IsoOptions = {}): Promise<Iso> {
  return openIsoImage(bufferImage(bytes), options);
}

/** As openIso over any Image; the Iso owns the image (closed on failure too). */
export async function openIsoImage(image: Image, options: IsoOptions = {}, path?: string): Promise<Iso> {
  const limits = { ...defaultLimits, ...options.limits };
  try {
    const descriptors = await readVolumeDescriptors(image, limits.maxDescriptors);
    const index = await buildIndex(image, descriptors, limits);
    if (descriptors.udf && isUdfBridgeStub(index.root)) {
      throw new IsoError('udf', `${UDF_MESSAGE} (its ISO 9660 tree holds only a README)`);
    }
    const bootCatalog =
      descriptors.bootCatalogLba === undefined ? undefined : await readBootCatalog(image, descriptors.bootCatalogLba);
    if (bootCatalog) nameBootImages(bootCatalog, index);
    return createIso(image, path, descriptors.primary.volumeId, descriptors.udf, index, bootCatalog, limits);
  } catch (error) {
    await image.close().catch(() => undefined);
    if (error instanceof IsoError) throw error;
    // Not expected: every malformed structure is checked. Still, a bad image must never escape as anything else.
    throw new IsoError('malformed', `unreadable image: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** Windows media carry a UDF tree and an ISO 9660 tree holding just a README that says so. */
function isUdfBridgeStub(root: IsoDirectory): boolean {
  const children = [...root.children.values()];
  return children.length <= 1 && children.every((child) => child.kind === 'file' && /^readme\.txt$/i.test(child.name));
}

async function readBootCatalog(image: Image, lba: number): Promise<BootCatalog> {
  const offset = lba * SECTOR;
  if (offset + 64 > image.size) {
    return {
      lba,
      platform: 'unknown',
      platformId: -1,
      id: '',
      entries: [],
      problems: [`the boot catalog's block ${lba} lies beyond the end of the image`],
    };
  }
  const length = Math.min(MAX_CATALOG_BYTES, image.size - offset);
  return parseBootCatalog(await readRange(image, offset, length, 'El Torito boot catalog'), lba);
}

/** Names the file each boot entry loads, when one in the tree starts at its load block (one pass over the tree). */
function nameBootImages(catalog: BootCatalog, index: IsoIndex): void {
  if (catalog.entries.length === 0) return;
  for (const [path, node] of walk(index.root, '')) {
    if (node.kind !== 'file') continue;
    const first = node.extents[0];
    if (!first || first.length === 0) continue;
    for (const entry of catalog.entries) {
      if (entry.path === undefined && entry.loadRba * SECTOR === first.offset) {
        entry.path = path;
        entry.size = node.size;
      }
    }
  }
}

function* walk(directory: IsoDirectory, prefix: string): Generator<[string, IsoNode]> {
  const sorted = [...directory.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const node of sorted) {
    const path = prefix ? `${prefix}/${node.name}` : node.name;
    yield [path, node];
    if (node.kind === 'directory') yield* walk(node, path);
  }
}

function describe(node: IsoNode): IsoStat {
  switch (node.kind) {
    case 'directory':
      return { kind: 'directory', size: 0 };
    case 'symlink':
      return { kind: 'symlink', size: 0, target: node.target };
    case 'file':
      return node.compressed ? { kind: 'file', size: node.size, compressed: true } : { kind: 'file', size: node.size };
  }
}

function createIso(
  image: Image,
  path: string | undefined,
  volumeId: string,
  udf: boolean,
  index: IsoIndex,
  bootCatalog: BootCatalog | undefined,
  limits: IsoLimits,
): Iso {
  const caseFold = index.names === 'iso9660';
  const label = path ?? 'ISO';

  /**
   * Walks `path` from the root. Symlinks are followed with chroot semantics: an absolute target starts again at
   * the ISO's root (as a boot loader reading the ISO would), `..` moves to the logical parent (the real one for
   * relocated directories, so Rock Ridge PL is not needed), and climbing above the root is refused.
   */
  function resolve(requested: string, followLast: boolean): IsoNode | undefined {
    const pending = requested.split('/').reverse();
    let current: IsoDirectory = index.root;
    let hops = 0;
    for (;;) {
      const component = pending.pop();
      if (component === undefined) return current;
      if (component === '' || component === '.') continue;
      if (component === '..') {
        if (!current.parent) {
          throw new IsoError('escape', `${label}: "${requested}" climbs above the root of the ISO`);
        }
        current = current.parent;
        continue;
      }
      const child = current.children.get(caseFold ? foldCase(component) : component);
      if (!child) return undefined;
      const last = pending.every((rest) => rest === '' || rest === '.');
      if (child.kind === 'symlink' && (followLast || !last)) {
        if (++hops > limits.maxSymlinkHops) {
          throw new IsoError('loop', `${label}: "${requested}": more than ${limits.maxSymlinkHops} symlinks (a loop?)`);
        }
        if (child.target === '') return undefined;
        if (child.target.startsWith('/')) current = index.root;
        pending.push(...child.target.split('/').reverse());
        continue;
      }
      if (child.kind === 'directory') {
        current = child;
        continue;
      }
      return last ? child : undefined; // a file (or unfollowed symlink) in the middle of a path: no such path
    }
  }

  let closed = false;
  function readInto(target: Uint8Array, position: number): Promise<number> {
    if (closed) return Promise.reject(new IsoError('io', `${label} is closed`));
    return image.readInto(target, position);
  }

  return {
    path,
    size: image.size,
    mtime: image.mtime,
    fd: image.fd,
    volumeId,
    names: index.names,
    udf,
    bootCatalog,
    counts: index.counts,
    lookup(requested) {
      const node = resolve(requested, true);
      if (node?.kind !== 'file') return undefined;
      if (node.compressed) throw new IsoError('zisofs', `${requested}: ${ZISOFS_MESSAGE}`);
      if (node.interleaved) {
        throw new IsoError('unsupported', `${requested}: interleaved file: not supported; rebuild the ISO`);
      }
      return { size: node.size, extents: node.extents };
    },
    stat(requested, options = {}) {
      const node = resolve(requested, options.follow ?? true);
      return node && describe(node);
    },
    readdir(requested) {
      const node = resolve(requested, true);
      if (node?.kind !== 'directory') return undefined;
      return [...node.children.values()]
        .map((child) => ({ name: child.name, ...describe(child) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    *list() {
      for (const [entryPath, node] of walk(index.root, '')) yield { path: entryPath, ...describe(node) };
    },
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new RangeError(`bad read range: offset ${offset}, length ${length}`);
      }
      const wanted = Math.max(0, Math.min(length, image.size - offset));
      const buffer = Buffer.allocUnsafe(wanted);
      const got = await readInto(buffer, offset);
      return got === wanted ? buffer : buffer.subarray(0, got);
    },
    readInto,
    stats: image.stats,
    async close() {
      if (closed) return;
      closed = true;
      await image.close();
    },
  };
}
