import type { Logger } from 'pino';
import { PathRefusedError, type FileTree, type Peer, type TreeFile, type TreeSource } from './tree.ts';

/** A source mounted at `prefix` ('/' for the root of the tree, or a directory such as '/pxelinux.cfg'). */
export interface Mount {
  prefix: string;
  source: TreeSource;
}

// Percent-encoded separators and dots: TFTP never decodes them, but an HTTP front end or a file name that a
// later layer decodes would turn them into a traversal, so they are refused wherever they appear.
const ENCODED_SEPARATOR = /%(2f|5c|00)/i;
const DRIVE = /^[A-Za-z]:$/;

/**
 * The canonical form of a requested path: separators are `/` (firmware from the Windows world sends `\`), no
 * leading, trailing or doubled separators, no `.` segments. Anything that could leave the tree is refused with
 * PathRefusedError: `..` (also percent-encoded), NUL bytes, encoded separators, a drive letter.
 */
export function normalisePath(requested: string): string {
  if (requested.includes('\0')) throw new PathRefusedError(requested, 'contains a NUL byte');
  if (ENCODED_SEPARATOR.test(requested)) throw new PathRefusedError(requested, 'contains an encoded separator');
  const segments: string[] = [];
  for (const segment of requested.replaceAll('\\', '/').split('/')) {
    const decodedDots = segment.replace(/%2e/gi, '.');
    if (decodedDots === '..') throw new PathRefusedError(requested, 'climbs out with ".."');
    if (segment === '' || segment === '.') continue;
    if (decodedDots === '.') throw new PathRefusedError(requested, 'contains an encoded "."');
    if (segments.length === 0 && DRIVE.test(segment)) throw new PathRefusedError(requested, 'names a drive');
    segments.push(segment);
  }
  return segments.join('/');
}

function normalisePrefix(prefix: string): string {
  return normalisePath(prefix);
}

/** The path relative to the mount, or undefined when the mount does not cover it. */
function underMount(prefix: string, path: string): string | undefined {
  if (prefix === '') return path;
  if (path === prefix) return '';
  return path.startsWith(prefix + '/') ? path.slice(prefix.length + 1) : undefined;
}

/**
 * The virtual tree: a request is normalised once, then offered to every mount covering it, the longest prefix
 * first and, among mounts with the same prefix, in the order given; the first source that has the file serves
 * it. A refusal from any source stops the search (a symlink leaving its root is not "try the next one"). Every
 * refusal is logged at warn with the peer, since it is either a misconfigured client or someone probing.
 */
export function createFileTree(mounts: readonly Mount[], log: Logger): FileTree {
  const table = mounts
    .map((mount, index) => ({ prefix: normalisePrefix(mount.prefix), source: mount.source, index }))
    .sort((a, b) => b.prefix.length - a.prefix.length || a.index - b.index);

  return {
    async resolve(requested: string, peer: Peer): Promise<TreeFile | undefined> {
      try {
        const path = normalisePath(requested);
        if (path === '') return undefined; // the root is a directory
        for (const { prefix, source } of table) {
          const relative = underMount(prefix, path);
          if (relative === undefined || relative === '') continue;
          const file = await source.open(relative, peer);
          if (file) return file;
        }
        return undefined;
      } catch (error) {
        if (error instanceof PathRefusedError) {
          const address = peer.address.includes(':') ? `[${peer.address}]` : peer.address;
          log.warn({ peer: `${address}:${peer.port}`, path: requested, reason: error.reason }, 'path refused');
        }
        throw error;
      }
    },
  };
}
