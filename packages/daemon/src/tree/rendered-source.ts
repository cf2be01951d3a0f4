import { tryParseMac } from '@smelt/shared/mac';
import type { BootDecider } from '../boot/decider.ts';
import { renderGrub } from '../render/grub.ts';
import { renderPxelinux } from '../render/pxelinux.ts';
import type { TreeFile, TreeSource } from './tree.ts';

/**
 * Per-MAC boot-loader configs, rendered from the machine's current state at each request (no mtime: never
 * cached): pxelinux.cfg/01-<mac> and grub/grub.cfg-01-<mac>, MAC in lower-case dash form as both loaders ask.
 */
export function renderedSource(decide: BootDecider, baseUrl: () => string): TreeSource {
  return {
    open(path) {
      const pxelinux = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i.exec(path);
      const grub = /^grub\/grub\.cfg-01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i.exec(path);
      const macText = pxelinux?.[1] ?? grub?.[1];
      const mac = macText === undefined ? undefined : tryParseMac(macText);
      if (!mac) return Promise.resolve(undefined);
      const spec = decide(mac);
      const text = pxelinux ? renderPxelinux(spec, baseUrl()) : renderGrub(spec, baseUrl());
      return Promise.resolve(bufferFile(Buffer.from(text)));
    },
  };
}

/** Content rendered in memory, served as a file. */
export function bufferFile(content: Buffer): TreeFile {
  let closed = false;
  return {
    size: content.length,
    read(offset, length) {
      if (closed) return Promise.reject(new Error('read after close'));
      if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
        return Promise.reject(new RangeError(`bad read ${String(offset)}+${String(length)}`));
      }
      return Promise.resolve(content.subarray(offset, offset + length));
    },
    readInto(target, offset) {
      if (closed) return Promise.reject(new Error('read after close'));
      if (!Number.isSafeInteger(offset) || offset < 0)
        return Promise.reject(new RangeError(`bad read offset ${offset}`));
      return Promise.resolve(content.copy(target, 0, Math.min(offset, content.length)));
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
