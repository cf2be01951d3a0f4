import type { BatchOp, Store } from './store.ts';

/**
 * Group commit: writes queued in the same turn of the event loop go to the store as one batch (one transaction,
 * one fsync), and every writer's promise settles when that batch is durable. This is how a burst of DHCP ACKs
 * costs one disk flush instead of one each, while no ACK is sent before its lease is on disk.
 *
 * Writes nobody is waiting on to answer a client (events, discovered machines) ride along instead: they go into
 * the next commit a write() causes, so they cost rows in it but never a commit (an fsync) of their own while
 * there is traffic. A commit takes at most `maxRiders` of them, or `ridersPerWrite` per op written when that is
 * more: a DHCP ACK brings three (its machine and two events), so under a storm the riders keep pace with the
 * writes instead of piling up, and a large batch of them is spread over several commits instead of holding up
 * one group of ACKs. With no write() to ride on, they are committed on their own after `rideMs`, again a bounded
 * batch per commit, so that ACKs queued meanwhile go in the next one rather than after all of them.
 */
export interface GroupCommit {
  write(ops: readonly BatchOp[]): Promise<void>;
  /**
   * Ops that need not be durable soon; resolves once they are. The ops of one call are committed together and
   * in order, after those of earlier ride() calls (in the same commit or an earlier one). They may be committed
   * after write()s made later: a key is written through one or the other, not both.
   */
  ride(ops: readonly BatchOp[]): Promise<void>;
  /** Resolves once everything queued so far (riders included) has been written (or has failed). */
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

/** One ride() call: committed whole, settled when its batch is. */
interface Rider {
  ops: readonly BatchOp[];
  waiting: Waiting;
  /** When it was queued (performance.now()). */
  at: number;
}

export interface GroupCommitOptions {
  /** Ops in one batch at most (a rider call is never split, so one may exceed it alone). */
  maxOps?: number;
  /** Under load, commits are at least this far apart. */
  minGapMs?: number;
  /** Rider ops taken into one commit caused by write() (whole calls; at least one call). */
  maxRiders?: number;
  /** ...or this many per op written, when that is more. */
  ridersPerWrite?: number;
  /** Riders with no write() to ride on are committed on their own after this long. */
  rideMs?: number;
}

export function createGroupCommit(store: Store, options: GroupCommitOptions = {}): GroupCommit {
  const maxOps = options.maxOps ?? 5000;
  const minGapMs = options.minGapMs ?? 2;
  const maxRiders = options.maxRiders ?? 128;
  const ridersPerWrite = options.ridersPerWrite ?? 4;
  const rideMs = options.rideMs ?? 25;
  let queued: BatchOp[] = [];
  let waiting: Waiting | undefined;
  const riders: Rider[] = [];
  let scheduled = false;
  let rideTimer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  // Under load, commits at most every minGapMs: what arrives meanwhile shares the next one (one fsync for a burst,
  // not one per turn of the event loop). Idle, a write is committed on the next turn: no added latency.
  let lastCommit = 0;

  /** Takes whole rider calls, oldest first, up to `budget` ops (and at least one call). */
  function takeRiders(budget: number): { ops: BatchOp[]; taken: Rider[] } {
    const ops: BatchOp[] = [];
    const taken: Rider[] = [];
    while (riders.length > 0) {
      const next = riders[0];
      if (!next || (taken.length > 0 && ops.length + next.ops.length > budget)) break;
      riders.shift();
      taken.push(next);
      for (const op of next.ops) ops.push(op);
    }
    return { ops, taken };
  }

  /** Commits what write() queued, with riders on board; with `allRiders`, every rider too (deadline, drain). */
  async function flush(allRiders = false): Promise<void> {
    scheduled = false;
    lastCommit = performance.now();
    while (queued.length > 0 || (allRiders && riders.length > 0)) {
      const own = queued.length <= maxOps ? queued : queued.slice(0, maxOps);
      queued = own === queued ? [] : queued.slice(own.length);
      // Writers are settled when the batch holding their last op is written; all of a burst's writers ride on
      // the final batch, which is written after every earlier one.
      const settle = queued.length === 0 ? waiting : undefined;
      if (queued.length === 0) waiting = undefined;
      // Riders go first: they were mostly queued earlier, and whole calls keep each one's order.
      // Riders alone (their deadline, a drain) go in commits of a few maxRiders each: a write queued meanwhile joins
      // the next of them instead of waiting for thousands of rider rows.
      const { ops, taken } = takeRiders(
        own.length > 0 ? Math.max(maxRiders, ridersPerWrite * own.length) : Math.min(maxOps, 4 * maxRiders),
      );
      for (const op of own) ops.push(op);
      try {
        await store.batch(ops);
        settle?.resolve();
        for (const rider of taken) rider.waiting.resolve();
      } catch (error) {
        settle?.reject(error);
        for (const rider of taken) rider.waiting.reject(error);
        waiting?.reject(error);
        waiting = undefined;
        queued = [];
      }
    }
    if (riders.length > 0) armRideTimer();
    else if (rideTimer) {
      // Nothing left to wait for: a pending deadline must not keep the process alive.
      clearTimeout(rideTimer);
      rideTimer = undefined;
    }
  }

  /** Commits the riders on their own once the oldest has waited rideMs (under load, write()s take them first). */
  function armRideTimer(): void {
    const oldest = riders[0];
    if (rideTimer || !oldest) return;
    rideTimer = setTimeout(
      () => {
        rideTimer = undefined;
        const first = riders[0];
        if (first && performance.now() - first.at >= rideMs - 1) running = running.then(() => flush(true));
        else armRideTimer();
      },
      Math.max(0, oldest.at + rideMs - performance.now()),
    );
  }

  return {
    write(ops) {
      if (ops.length === 0) return Promise.resolve();
      for (const op of ops) queued.push(op);
      waiting ??= waitingBatch();
      if (!scheduled) {
        scheduled = true;
        const start = () => {
          running = running.then(() => flush());
        };
        const wait = lastCommit + minGapMs - performance.now();
        if (wait > 0) setTimeout(start, wait);
        else setImmediate(start);
      }
      return waiting.promise;
    },
    ride(ops) {
      if (ops.length === 0) return Promise.resolve();
      const rider = { ops, waiting: waitingBatch(), at: performance.now() };
      riders.push(rider);
      armRideTimer();
      return rider.waiting.promise;
    },
    async drain() {
      // One turn first: writers that batch per turn themselves (the event journal) hand their writes over then.
      await new Promise((resolve) => setImmediate(resolve));
      while (scheduled || queued.length > 0 || riders.length > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (riders.length > 0) running = running.then(() => flush(true));
        await running;
      }
      await running;
      if (rideTimer) clearTimeout(rideTimer);
      rideTimer = undefined;
    },
  };
}
