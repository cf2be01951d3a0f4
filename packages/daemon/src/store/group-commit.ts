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

/** The promise all writers of one batch share: one per batch, not one per writer (a burst has thousands). */
interface Waiting {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function waitingBatch(): Waiting {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

export function createGroupCommit(store: Store, maxOps = 5000, minGapMs = 2): GroupCommit {
  let queued: BatchOp[] = [];
  let waiting: Waiting | undefined;
  let scheduled = false;
  let running: Promise<void> = Promise.resolve();
  // Under load, commits at most every minGapMs: what arrives meanwhile shares the next one (one fsync for a burst,
  // not one per turn of the event loop). Idle, a write is committed on the next turn: no added latency.
  let lastCommit = 0;

  async function flush(): Promise<void> {
    scheduled = false;
    lastCommit = performance.now();
    while (queued.length > 0) {
      const ops = queued.length <= maxOps ? queued : queued.slice(0, maxOps);
      queued = ops === queued ? [] : queued.slice(ops.length);
      // Writers are settled when the batch holding their last op is written; all of a burst's writers ride on
      // the final batch, which is written after every earlier one.
      const settle = queued.length === 0 ? waiting : undefined;
      if (queued.length === 0) waiting = undefined;
      try {
        await store.batch(ops);
        settle?.resolve();
      } catch (error) {
        settle?.reject(error);
        waiting?.reject(error);
        waiting = undefined;
        queued = [];
      }
    }
  }

  return {
    write(ops) {
      if (ops.length === 0) return Promise.resolve();
      for (const op of ops) queued.push(op);
      waiting ??= waitingBatch();
      if (!scheduled) {
        scheduled = true;
        const start = () => {
          running = running.then(flush);
        };
        const wait = lastCommit + minGapMs - performance.now();
        if (wait > 0) setTimeout(start, wait);
        else setImmediate(start);
      }
      return waiting.promise;
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
