import { Worker } from 'node:worker_threads';
import type { CheckpointerData } from './sqlite-checkpointer.ts';

/** The store's side of its checkpointer thread (sqlite-checkpointer.ts). */
export interface Checkpointer {
  /** After every commit: a checkpoint follows, one that starts after this call. */
  wrote(): void;
  /** Closes the thread's connection (before the store's own, which is then the last) and ends the thread. */
  close(): Promise<void>;
}

export interface CheckpointerOptions extends CheckpointerData {
  /** The thread could not start or died: the store must checkpoint on its own again. */
  onFailure: () => void;
}

/**
 * Starts the checkpointer. Commits are many (hundreds a second in a DHCP storm) and checkpoints few (gapMs apart):
 * the first commit after a notice arms a timer of gapMs, and the notice goes when it fires — after every commit made
 * meanwhile, so each of them is followed by a checkpoint that starts after it, while the thread is woken once per
 * gapMs instead of once per commit (each wake-up costs the event loop's CPU a context switch).
 */
export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const { onFailure, ...data } = options;
  let worker: Worker;
  try {
    worker = new Worker(new URL('./sqlite-checkpointer.ts', import.meta.url), {
      workerData: data satisfies CheckpointerData,
    });
  } catch {
    onFailure();
    return { wrote: () => undefined, close: () => Promise.resolve() };
  }
  let alive = true;
  let timer: NodeJS.Timeout | undefined;
  let closedNow: (() => void) | undefined;
  const fallBack = () => {
    if (!alive) return;
    alive = false;
    if (timer) clearTimeout(timer);
    onFailure();
    closedNow?.();
  };
  worker.on('message', (message: unknown) => {
    if (message === 'closed') closedNow?.();
  });
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  // It must not keep the process alive on its own.
  worker.unref();
  return {
    wrote() {
      if (!alive || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        if (alive) worker.postMessage('wrote');
      }, data.gapMs);
      timer.unref();
    },
    async close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!alive) return;
      // Unreferenced, the thread would let the process exit while the store waits for its answer.
      worker.ref();
      await new Promise<void>((resolve) => {
        closedNow = resolve;
        worker.postMessage('close');
      });
      alive = false;
      await worker.terminate();
    },
  };
}
