/**
 * A short, bounded busy-wait for a transfer's next ACK, instead of letting the process sleep in epoll.
 *
 * Why. With a window in flight the server has nothing to do until the client's ACK. Sleeping costs more than the
 * wait itself on a fast path: the CPU goes idle (on a VM, the vCPU halts), and the ACK has to wake it (an
 * interrupt to another CPU, the scheduler, epoll, libuv) before the next window can leave. Measured here on
 * loopback (perf syscall tracepoints, blksize 1468, windowsize 16, atftp on the other CPU): 56-77 µs from the
 * client's sendto of the ACK to our recvmsg, per window of ~270 µs. Polling the socket (recv with MSG_PEEK |
 * MSG_DONTWAIT, which never sleeps nor takes the datagram) until the ACK is there, then returning to the event
 * loop, lets libuv read it at once: its read loop calls recvmsg again right after our callback.
 *
 * Bounds. It only runs when at most `maxActive` transfers are running (under load there is other work, and the
 * CPU is better spent on it), for at most `budgetMs` per window, and it learns: a wait that ends without an ACK
 * (a slow client, a link with delay) turns it off for the next 1, 2, 4 ... up to 64 windows of that transfer,
 * so over a 1 ms link it costs ~one budget every 64 windows. After `maxStreak` windows in a row it lets the
 * event loop go round once without waiting, so timers and other sockets are served at least every few ms.
 */
export interface AckSpinOptions {
  /** True when a datagram waits on the socket (net/libc.ts peekReady); never blocks. */
  ready: () => boolean;
  /** Real time in ms (performance.now): the wait is real CPU time, whatever clock the transfers run on. */
  now: () => number;
  /** Longest wait per window, ms. */
  budgetMs: number;
  /** Windows in a row that may wait before one that does not. */
  maxStreak: number;
}

export interface AckSpinStats {
  /** Waits that saw the ACK arrive, and those that gave up. */
  hits: number;
  misses: number;
  /** Time spent waiting, ms. */
  spentMs: number;
}

/** Longest pause after misses, in windows. */
const MAX_SKIP = 64;

export class AckSpin {
  readonly stats: AckSpinStats = { hits: 0, misses: 0, spentMs: 0 };
  private readonly options: AckSpinOptions;
  /** Windows still to go without waiting, after a miss. */
  private skip = 0;
  /** The pause the next miss sets. */
  private nextSkip = 1;
  private streak = 0;

  constructor(options: AckSpinOptions) {
    this.options = options;
  }

  /** Called after a window (or block) went out and an ACK is awaited; returns once one is there or after the budget. */
  wait(): void {
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    if (this.streak >= this.options.maxStreak) {
      this.streak = 0;
      return;
    }
    const { now: time, ready, budgetMs } = this.options;
    const start = time();
    let now = start;
    let seen = ready();
    while (!seen && now - start < budgetMs) {
      seen = ready();
      now = time();
    }
    this.stats.spentMs += now - start;
    if (seen) {
      this.stats.hits++;
      this.streak++;
      this.nextSkip = 1;
      return;
    }
    this.stats.misses++;
    this.streak = 0;
    this.skip = this.nextSkip;
    this.nextSkip = Math.min(MAX_SKIP, this.nextSkip * 2);
  }
}
