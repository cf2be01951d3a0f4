import { libcLibrary } from './net/libc.ts';

let mallocTrim: ((pad: number) => number) | undefined;

/**
 * One full, compacting garbage collection (when node-options exposes `gc`, as bin/smeltd's does) and then glibc's
 * malloc_trim(0), which hands free pages of every malloc arena back to the kernel. Costs the event loop a few
 * milliseconds after HTTP bursts and 20-80 ms after a 10,000-client DHCP storm (measured here): call it only when
 * nothing is being served (http/quiet-reclaim.ts after a burst of connections, idle-reclaim.ts after a burst of
 * DHCP requests).
 */
export function reclaimMemory(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  mallocTrim ??= libcLibrary().func('int malloc_trim(size_t)') as (pad: number) => number;
  mallocTrim(0);
}
