import { libcLibrary } from '../net/libc.ts';

let mallocTrim: ((pad: number) => number) | undefined;

/**
 * One full, compacting garbage collection (when node-options exposes `gc`, as bin/smeltd's does) and then glibc's
 * malloc_trim(0), which hands free pages of every malloc arena back to the kernel. Costs a few milliseconds of
 * event loop: call it only when nothing is being served (http/quiet-reclaim.ts).
 */
export function reclaimMemory(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  mallocTrim ??= libcLibrary().func('int malloc_trim(size_t)') as (pad: number) => number;
  mallocTrim(0);
}
