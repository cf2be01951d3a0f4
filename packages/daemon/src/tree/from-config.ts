import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { directorySource } from './directory.ts';
import { createFileTree, type Mount } from './mounts.ts';
import type { FileTree, TreeSource } from './tree.ts';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The tree every machine-facing server shares: each of `files.dirs` at the root, in order, then `ipxe.dir`, so an
 * operator's own undionly.kpxe wins over the packaged one. A directory that is missing is a warning, not a failure:
 * a fresh host may not have the ipxe package yet, and a directory that appears later (a mount) is served from
 * then on without a restart. Symlinks in ipxe.dir may lead out of it (Debian links ipxe.efi to /boot/ipxe.efi);
 * those in files.dirs may not.
 */
export function treeFromConfig(
  config: { files: Config['files']; ipxe: Pick<Config['ipxe'], 'dir'> },
  log: Logger,
  generated: readonly TreeSource[] = [],
): FileTree {
  const mounts: Mount[] = [];
  const directory = (setting: string, dir: string) => {
    if (!isDirectory(dir))
      log.warn({ [setting]: dir }, `${setting}: ${dir} is not a directory; nothing is served from it`);
    // The operator's directories keep their links inside; the iPXE package's links lead to /boot by design.
    const linksLeaving = setting === 'ipxe.dir' ? 'follow' : 'refuse';
    mounts.push({ prefix: '/', source: directorySource(dir, { linksLeaving }) });
  };
  for (const dir of config.files.dirs) directory('files.dirs', dir);
  // Boot files and per-MAC configs come after the operator's own files (theirs win) and before the packaged iPXE.
  for (const source of generated) mounts.push({ prefix: '/', source });
  directory('ipxe.dir', config.ipxe.dir);
  return createFileTree(mounts, log);
}
