/**
 * The virtual file tree that TFTP and machine-facing HTTP both serve (DESIGN.md §6): iPXE binaries, configured
 * directories, files rendered per machine at request time, and files inside ISOs as byte ranges of the ISO.
 * A protocol server only ever asks `resolve(path, peer)` and reads what it gets back.
 */

/** Who is asking: per-MAC files are rendered for the machine behind this address. */
export interface Peer {
  address: string;
  port: number;
}

/** A run of a file's bytes as they lie in a file on disk: `length` bytes at `offset` of descriptor `fd`. */
export interface DiskExtent {
  fd: number;
  offset: number;
  length: number;
}

/** An open file: its size and positioned reads. Reads past the end return a shorter (possibly empty) buffer. */
export interface TreeFile {
  readonly size: number;
  /** When it last changed, for HTTP caching; absent for content rendered on the fly. */
  readonly mtime?: Date;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Fills `target` from `offset` (never past the size announced at open) and resolves how many bytes it wrote:
   * fewer than `target.length` only at the end. A server streaming a file reuses its buffers through this, so a
   * transfer costs no allocation per chunk.
   */
  readInto(target: Uint8Array, offset: number): Promise<number>;
  /**
   * Where bytes [from, to) lie on disk, in order, for sending them without reading them (sendfile(2)); absent for
   * content made in memory. The descriptors are the file's own: valid until close(), not to be closed by the caller.
   */
  diskExtents?(from: number, to: number): DiskExtent[];
  /** Releases what the file holds (a file descriptor); reads after close reject. */
  close(): Promise<void>;
}

/** A request for a path that may not be served: outside the tree, a traversal, a symlink that leaves its root. */
export class PathRefusedError extends Error {
  readonly path: string;
  /** Why, in a few words ("climbs out with \"..\""), for the log line and the protocol's error message. */
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(`refused "${path}": ${reason}`);
    this.name = 'PathRefusedError';
    this.path = path;
    this.reason = reason;
  }
}

/** One source of files under a mount point; `path` is relative to it, normalised, without a leading slash. */
export interface TreeSource {
  /** Resolves to undefined when the source has no such file; rejects with PathRefusedError for forbidden paths. */
  open(path: string, peer: Peer): Promise<TreeFile | undefined>;
}

export interface FileTree {
  /** Resolves to the file, undefined when nothing serves that path, or rejects with PathRefusedError. */
  resolve(path: string, peer: Peer): Promise<TreeFile | undefined>;
}
