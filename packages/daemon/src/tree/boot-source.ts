import type { Boot } from '@smelt/shared/boot';
import type { IsoCache } from '../iso/cache.ts';
import { isoSource } from '../iso/source.ts';
import type { StateView } from '../view/state-view.ts';
import { directorySource } from './directory.ts';
import type { TreeFile, TreeSource } from './tree.ts';

/**
 * Every boot's files in the shared tree, so HTTP and TFTP serve them alike (DESIGN.md §6, §9):
 *
 *   boots/<boot>/kernel/<name>, boots/<boot>/initrd/<n>/<name>   a boot's kernel and initrds, wherever they live
 *   iso/<boot>.iso                                               a boot's whole ISO
 *   iso/<boot>/<path>, <isoPrefix>/<path>                         a file inside a boot's ISO, by byte range
 *
 * Boots come from the in-memory view, so a boot made through the API is served at once. Anything else is
 * "not here", and the tree goes on to the configured directories.
 */
export function bootSource(view: StateView, isos: IsoCache): TreeSource {
  function byIsoPrefix(prefix: string): Boot | undefined {
    for (const boot of view.boots()) if (boot.isoPrefix === prefix) return boot;
    return undefined;
  }

  /** A file the operator named by absolute path: its directory is the root, links may lead out (they chose it). */
  function localFile(path: string, peer: Parameters<TreeSource['open']>[1]): Promise<TreeFile | undefined> {
    const slash = path.lastIndexOf('/');
    return directorySource(path.slice(0, slash) || '/', { linksLeaving: 'follow' }).open(path.slice(slash + 1), peer);
  }

  return {
    async open(path, peer) {
      const [first, second, ...rest] = path.split('/');
      if (first === undefined || second === undefined) return undefined;
      if (first === 'boots') {
        const boot = view.boot(second);
        const [role, ...more] = rest;
        const file = role === 'kernel' ? boot?.kernel : role === 'initrd' ? boot?.initrd[Number(more[0])] : undefined;
        if (!boot || file === undefined || /^https?:\/\//.test(file)) return undefined;
        if (boot.isoPath !== undefined) return isoSource(boot.isoPath, isos).open(file.replace(/^\/+/, ''), peer);
        return localFile(file, peer);
      }
      if (first === 'iso') {
        if (rest.length === 0 && second.endsWith('.iso')) {
          const isoPath = view.boot(second.slice(0, -'.iso'.length))?.isoPath;
          return isoPath === undefined ? undefined : localFile(isoPath, peer);
        }
        const isoPath = view.boot(second)?.isoPath;
        return isoPath === undefined || rest.length === 0
          ? undefined
          : isoSource(isoPath, isos).open(rest.join('/'), peer);
      }
      const boot = byIsoPrefix(first);
      if (boot?.isoPath === undefined) return undefined;
      return isoSource(boot.isoPath, isos).open([second, ...rest].join('/'), peer);
    },
  };
}
