import type { BatchOp, Store } from './store.ts';

/**
 * Group commit: writes queued in the same turn of the event loop go to the store as one batch (one transaction,
 * one fsync), and every writer's promise settles when that batch is durable. This is how a burst of DHCP ACKs
 * costs one disk flush instead of one each, while no ACK is sent before its lease is on disk.
 */
export interface GroupCommit {
  write(ops: readonly BatchOp[]): Promise<void>;
  /** Resolves once everything queued so far has been written (or has failed). */
  drain(): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

export function createGroupCommit(store: Store, maxOps = 5000, minGapMs = 2): GroupCommit {
  let queued: BatchOp[] = [];
  let waiters: Waiter[] = [];
  let scheduled = false;
  let running: Promise<void> = Promise.resolve();
  // Under load, commits at most every minGapMs: what arrives meanwhile shares the next one (one fsync for a burst,
  // not one per turn of the event loop). Idle, a write is committed on the next turn: no added latency.
  let lastCommit = 0;

  async function flush(): Promise<void> {
    scheduled = false;
    lastCommit = performance.now();
    while (queued.length > 0) {
      const ops = queued.slice(0, maxOps);
      queued = queued.slice(ops.length);
      // Waiters are settled when the batch holding their last op is written; all of a burst's waiters ride on
      // the final batch, which is written after every earlier one.
      const settle = queued.length === 0 ? waiters : [];
      if (queued.length === 0) waiters = [];
      try {
        await store.batch(ops);
        for (const waiter of settle) waiter.resolve();
      } catch (error) {
        for (const waiter of settle) waiter.reject(error);
        for (const waiter of waiters) waiter.reject(error);
        waiters = [];
        queued = [];
      }
    }
  }

  return {
    write(ops) {
      if (ops.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queued.push(...ops);
        waiters.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          const start = () => {
            running = running.then(flush);
          };
          const wait = lastCommit + minGapMs - performance.now();
          if (wait > 0) setTimeout(start, wait);
          else setImmediate(start);
        }
      });
    },
    async drain() {
      // One turn first: writers that batch per turn themselves (the event journal) hand their writes over then.
      await new Promise((resolve) => setImmediate(resolve));
      while (scheduled || queued.length > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        await running;
      }
      await running;
    },
  };
}
