import type { VolumeDescriptors } from './descriptors.ts';
import {
  FLAG_ASSOCIATED,
  FLAG_DIRECTORY,
  FLAG_MULTI_EXTENT,
  isSelfOrParent,
  isoName,
  parseDirectory,
  parseRecord,
  type DirectoryRecord,
} from './directory.ts';
import { IsoError } from './errors.ts';
import { readRange, type Image } from './image.ts';
import { jolietName } from './joliet.ts';
import {
  parseRockRidge,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  sharingProtocolSkip,
  type RockRidge,
  type RockRidgeOptions,
} from './rockridge.ts';

/**
 * Builds the directory index of an image once: the whole tree, walked from the root of the name space chosen
 * (Rock Ridge, else Joliet, else plain ISO 9660), into plain objects. Every pointer is bounds-checked through
 * readRange; every directory extent is read at most once (a second visit is a loop); depth, entries and bytes
 * are limited; so a hostile image costs a bounded number of reads and bytes and ends in an IsoError at worst.
 */

const BLOCK = 2048;

export interface IsoLimits {
  /** Directory nesting below the root. */
  maxDepth: number;
  /** Directory records in the whole image (each costs memory in the index). */
  maxEntries: number;
  /** Directory records in one directory. */
  maxEntriesPerDirectory: number;
  /** Size of one directory's extent. */
  maxDirectoryBytes: number;
  /** Rock Ridge continuation areas chained from one record. */
  maxContinuations: number;
  /** Longest Rock Ridge name and symlink target. */
  maxNameBytes: number;
  maxLinkBytes: number;
  /** Symlinks followed while resolving one path (Linux's MAXSYMLINKS). */
  maxSymlinkHops: number;
  /** Sectors examined for volume descriptors. */
  maxDescriptors: number;
}

export const defaultLimits: IsoLimits = {
  maxDepth: 64,
  maxEntries: 1_000_000,
  maxEntriesPerDirectory: 100_000,
  maxDirectoryBytes: 32 * 1024 * 1024,
  maxContinuations: 32,
  maxNameBytes: 1024,
  maxLinkBytes: 4096,
  maxSymlinkHops: 40,
  maxDescriptors: 64,
};

export type NameSource = 'rockridge' | 'joliet' | 'iso9660';

/** A byte range of the image holding (part of) a file's data. */
export interface Extent {
  offset: number;
  length: number;
}

interface NodeBase {
  name: string;
  parent: IsoDirectory | undefined;
}

export interface IsoDirectory extends NodeBase {
  kind: 'directory';
  children: Map<string, IsoNode>;
}

export interface IsoFileNode extends NodeBase {
  kind: 'file';
  size: number;
  extents: Extent[];
  /** zisofs (ZF/Z2): the extents hold compressed data; `size` is then the uncompressed size. */
  compressed?: string;
  /** Recorded in interleaved mode (file unit size non-zero): not supported. */
  interleaved?: boolean;
}

export interface IsoSymlink extends NodeBase {
  kind: 'symlink';
  target: string;
}

export type IsoNode = IsoDirectory | IsoFileNode | IsoSymlink;

export interface IsoIndex {
  root: IsoDirectory;
  names: NameSource;
  counts: { files: number; directories: number; symlinks: number; compressed: number };
}

/** What a record turned into, before it is named and placed. */
interface Pending {
  record: DirectoryRecord;
  rock?: RockRidge;
}

const RR_MOVED = new Set(['rr_moved', '.rr_moved']);

export async function buildIndex(image: Image, descriptors: VolumeDescriptors, limits: IsoLimits): Promise<IsoIndex> {
  const counts = { files: 0, directories: 1, symlinks: 0, compressed: 0 };
  let entries = 0;
  const visited = new Set<number>();
  // Continuation areas cluster in a few blocks: read each block once per index build (bounded cache).
  const blocks = new Map<number, Buffer>();

  async function continuation(lba: number, offset: number, length: number): Promise<Buffer> {
    let block = blocks.get(lba);
    if (!block) {
      const start = lba * BLOCK;
      const available = Math.min(BLOCK, image.size - start);
      block = await readRange(image, start, Math.max(available, offset + length), 'Rock Ridge continuation area');
      if (blocks.size >= 256) blocks.clear();
      blocks.set(lba, block);
    }
    return block.subarray(offset, offset + length);
  }

  async function readDirectory(lba: number, size: number | undefined, path: string): Promise<Buffer> {
    const what = `directory ${path}`;
    if (size === undefined) {
      // A relocated directory reached through CL: its size is in its own `.` record.
      const first = await readRange(image, lba * BLOCK, Math.min(BLOCK, Math.max(0, image.size - lba * BLOCK)), what);
      size = parseRecord(first, 0, what).dataLength;
    }
    if (size > limits.maxDirectoryBytes) {
      throw new IsoError('limit', `${what}: ${size} bytes, more than the ${limits.maxDirectoryBytes} allowed`);
    }
    return readRange(image, lba * BLOCK, size, what);
  }

  function extentOf(record: DirectoryRecord, path: string): Extent {
    const offset = (record.extentLba + record.extendedAttributeLength) * BLOCK;
    const length = record.dataLength;
    if (length > 0 && offset + length > image.size) {
      throw new IsoError(
        'malformed',
        `file ${path}: data at bytes ${offset}..${offset + length} lies beyond the end of the image (${image.size} bytes; truncated ISO?)`,
      );
    }
    return { offset: length > 0 ? offset : 0, length };
  }

  function rockOptions(what: string, skip: number): RockRidgeOptions {
    return {
      skip,
      maxContinuations: limits.maxContinuations,
      maxNameBytes: limits.maxNameBytes,
      maxLinkBytes: limits.maxLinkBytes,
      what,
      continuation,
    };
  }

  // Which name space: Rock Ridge when the root's `.` record opens with SP, else Joliet, else plain names.
  const primaryRoot = parseRecord(descriptors.primary.root, 0, 'root directory record');
  const primaryBuffer = await readDirectory(primaryRoot.extentLba, primaryRoot.dataLength, '/');
  const self = parseDirectory(primaryBuffer, 'directory /').next();
  const skip = self.done ? undefined : sharingProtocolSkip(self.value.systemUse);
  let names: NameSource;
  let rootRecord: DirectoryRecord;
  if (skip !== undefined) {
    names = 'rockridge';
    rootRecord = primaryRoot;
  } else if (descriptors.joliet) {
    names = 'joliet';
    rootRecord = parseRecord(descriptors.joliet.root, 0, 'Joliet root directory record');
  } else {
    names = 'iso9660';
    rootRecord = primaryRoot;
  }

  const root: IsoDirectory = { kind: 'directory', name: '', parent: undefined, children: new Map() };

  async function visit(
    directory: IsoDirectory,
    lba: number,
    size: number | undefined,
    path: string,
    depth: number,
  ): Promise<void> {
    if (depth > limits.maxDepth) {
      throw new IsoError('limit', `directory ${path}: nested deeper than ${limits.maxDepth} levels`);
    }
    if (visited.has(lba)) {
      throw new IsoError('loop', `directory ${path}: its extent (block ${lba}) is already part of the tree: a loop`);
    }
    visited.add(lba);
    const buffer =
      names === 'rockridge' && lba === primaryRoot.extentLba && depth === 0
        ? primaryBuffer
        : await readDirectory(lba, size, path || '/');
    const what = `directory ${path || '/'}`;

    const rockRidgeOptions = rockOptions(`${what} (Rock Ridge)`, skip ?? 0);
    const pending: Pending[] = [];
    let inDirectory = 0;
    let relocatedHere = 0;
    for (const record of parseDirectory(buffer, what)) {
      if (++inDirectory > limits.maxEntriesPerDirectory) {
        throw new IsoError('limit', `${what}: more than ${limits.maxEntriesPerDirectory} entries`);
      }
      if (++entries > limits.maxEntries) {
        throw new IsoError('limit', `the image has more than ${limits.maxEntries} directory entries`);
      }
      if (isSelfOrParent(record.identifier)) continue;
      if (record.flags & FLAG_ASSOCIATED) continue; // hidden by Linux too (its "showassoc" is off by default)
      let rock: RockRidge | undefined;
      if (names === 'rockridge') {
        const parsed = parseRockRidge(record.systemUse, rockRidgeOptions);
        rock = parsed instanceof Promise ? await parsed : parsed;
      }
      if (rock?.relocated) {
        relocatedHere++;
        continue;
      }
      pending.push(rock ? { record, rock } : { record });
    }

    const subdirectories: [IsoDirectory, number, number | undefined, string][] = [];
    let multiExtent: { file: IsoFileNode; identifier: Buffer } | undefined;
    for (const { record, rock } of pending) {
      // Parts of a multi-extent file: consecutive records with the same identifier, all but the last flagged.
      if (multiExtent && !(record.flags & FLAG_DIRECTORY) && record.identifier.equals(multiExtent.identifier)) {
        const file = multiExtent.file;
        const extent = extentOf(record, `${path}/${file.name}`);
        file.extents.push(extent);
        if (!file.compressed) file.size += extent.length;
        if (!(record.flags & FLAG_MULTI_EXTENT)) multiExtent = undefined;
        continue;
      }
      multiExtent = undefined;

      const name = rock?.name ?? (names === 'joliet' ? jolietName(record.identifier) : isoName(record.identifier));
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) continue;
      if (directory.children.has(name)) continue; // a duplicate: the first one wins
      const childPath = `${path}/${name}`;
      const type = rock?.mode === undefined ? undefined : rock.mode & S_IFMT;

      if (rock?.childLink !== undefined || record.flags & FLAG_DIRECTORY) {
        const child: IsoDirectory = { kind: 'directory', name, parent: directory, children: new Map() };
        directory.children.set(name, child);
        counts.directories++;
        if (rock?.childLink !== undefined) subdirectories.push([child, rock.childLink, undefined, childPath]);
        else subdirectories.push([child, record.extentLba, record.dataLength, childPath]);
      } else if (rock?.symlink !== undefined || type === S_IFLNK) {
        directory.children.set(name, { kind: 'symlink', name, parent: directory, target: rock?.symlink ?? '' });
        counts.symlinks++;
      } else if (type === undefined || type === S_IFREG || type === S_IFDIR) {
        const extent = extentOf(record, childPath);
        const file: IsoFileNode = { kind: 'file', name, parent: directory, size: extent.length, extents: [extent] };
        if (rock?.compressed) {
          file.compressed = rock.compressed.algorithm;
          file.size = rock.compressed.size;
          counts.compressed++;
        }
        if (record.fileUnitSize !== 0) file.interleaved = true;
        directory.children.set(name, file);
        counts.files++;
        if (record.flags & FLAG_MULTI_EXTENT) multiExtent = { file, identifier: record.identifier };
      }
      // Devices, FIFOs and sockets (PX types) have nothing to serve: left out.
    }

    for (const [child, childLba, childSize, childPath] of subdirectories) {
      await visit(child, childLba, childSize, childPath, depth + 1);
    }

    // mkisofs leaves its relocation directory behind, emptied of the RE-marked entries it held: hide it.
    // (xorriso marks its own with RE, so it never got this far.)
    if (depth === 1 && relocatedHere > 0 && directory.children.size === 0 && RR_MOVED.has(directory.name)) {
      root.children.delete(directory.name);
      counts.directories--;
    }
  }

  await visit(root, rootRecord.extentLba, rootRecord.dataLength, '', 0);
  return { root, names, counts };
}
