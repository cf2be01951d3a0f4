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
 *
 * Far peers (delayed waits, given `later`). The ACK delay after each window is remembered (the last 8); once it
 * is longer than the budget and at most 20 ms, the wait starts from a timer instead, set to a whole number of ms
 * (the event loop's resolution: setTimeout(1) fires after 1.10-1.17 ms here) at least 0.25 ms before the
 * smallest recent delay, and polls until a little after the largest one (at most 1 ms). So the process is awake
 * when the ACK comes, and the wake-up is paid ahead of it. Over the benchmark's 1 ms link (ACK ~1.3 ms after a
 * window) that is ~0.2-0.4 ms of polling per window of ~1.5 ms. The same pauses after misses apply, but only
 * once DELAYED_MISSES delayed waits in a row have missed.
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
  /**
   * Runs `run` after `ms` (a whole number of milliseconds, at least 1) from the event loop and returns what cancels
   * it: for the delayed waits (see `wait`). Without it, a far peer's ACK is never waited for.
   */
  later?: (ms: number, run: () => void) => () => void;
  /**
   * Called when a delayed wait (see `later`) saw the datagram, before its timer callback returns: the caller may
   * read and handle it there (ack-reader.ts) rather than from the event loop. A wait made by `wait` itself says
   * so by returning true instead.
   */
  arrived?: () => void;
}

export interface AckSpinStats {
  /** Waits that saw the ACK arrive, and those that gave up. */
  hits: number;
  misses: number;
  /** Time spent waiting, ms. */
  spentMs: number;
  /** Waits started by a timer shortly before a far peer's ACK was due (they count in hits and misses too). */
  delayed: number;
}

/** Longest pause after misses, in windows. */
const MAX_SKIP = 64;
/**
 * Delayed waits that may miss in a row before the misses pause the waits as above. One that misses costs at most
 * MAX_DELAYED_BUDGET_MS, started shortly before its ACK was due, and it misses only when the ACK comes later than
 * every recent one (a late release on a jittery path): pausing after each of those left ~80-95% of windows
 * unwaited over the benchmark's 1 ms link at windowsize 16 (7-300 waits that saw the ACK in ~1340 windows).
 */
const DELAYED_MISSES = 3;
/** ACK delays remembered; the expected delay is the smallest of them, once there are at least MIN_SAMPLES. */
const SAMPLES = 8;
const MIN_SAMPLES = 4;
/**
 * A delayed wait starts this long before the expected ACK, at the earliest: event-loop timers count whole
 * milliseconds and fire ~0.1-0.2 ms late here (setTimeout(1) measured at 1.10-1.17 ms).
 */
const EARLY_MS = 0.25;
/**
 * An ACK expected at least this late gets a delayed wait of at least 1 ms (setTimeout(1) fires after 1.10-1.17 ms
 * here), even when that starts less than EARLY_MS before it: over the 1 ms link the smallest of 8 recent delays
 * was often just under 1.25 ms, and the wait at once (with `budgetMs`) then missed every time and paused the
 * waits. A timer that fires after the ACK came costs nothing: the event loop reads the ACK first and cancels it.
 */
const MIN_DELAYED_MS = 1.15;
/** A delayed wait lasts until this long after the latest of the recent ACK delays (at most MAX_DELAYED_BUDGET_MS). */
const LATE_MS = 0.1;
/** Longest delayed wait; and ACKs expected later than DELAYED_UP_TO_MS after their window are not waited for. */
const MAX_DELAYED_BUDGET_MS = 1;
const DELAYED_UP_TO_MS = 20;

export class AckSpin {
  readonly stats: AckSpinStats = { hits: 0, misses: 0, spentMs: 0, delayed: 0 };
  private readonly options: AckSpinOptions;
  /** Windows still to go without waiting, after a miss. */
  private skip = 0;
  /** The pause the next miss sets. */
  private nextSkip = 1;
  private streak = 0;
  /** Delayed waits that missed since the last wait that saw its ACK. */
  private delayedMisses = 0;
  /** When the last window awaiting an ACK went out (NaN once its ACK came); recent ACK delays, ms. */
  private sentAt = Number.NaN;
  private readonly delays: number[] = [];
  private cancelDelayed: (() => void) | undefined;

  constructor(options: AckSpinOptions) {
    this.options = options;
  }

  /**
   * A datagram from the peer arrived (before it is handled): learns how long after its window the ACK came, and
   * drops a delayed wait that is no longer needed.
   */
  heard(): void {
    this.stop();
    if (Number.isNaN(this.sentAt)) return;
    if (this.delays.length === SAMPLES) this.delays.shift();
    this.delays.push(this.options.now() - this.sentAt);
    this.sentAt = Number.NaN;
  }

  /** Drops a pending delayed wait (the transfer ended: its socket is about to close). */
  stop(): void {
    if (!this.cancelDelayed) return;
    this.cancelDelayed();
    this.cancelDelayed = undefined;
  }

  /** The ACK delay to expect (the smallest recent one), ms; undefined until enough are known. */
  get expectedMs(): number | undefined {
    return this.delays.length < MIN_SAMPLES ? undefined : Math.min(...this.delays);
  }

  /**
   * Called after a window (or block) went out and an ACK is awaited; returns once one is there or after the budget.
   * True when this call saw a datagram arrive (false: it gave up, did not wait, or left the wait to a timer).
   */
  wait(): boolean {
    this.stop();
    this.sentAt = this.options.now();
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    if (this.streak >= this.options.maxStreak) {
      this.streak = 0;
      return false;
    }
    const { budgetMs, later } = this.options;
    const expected = this.expectedMs;
    if (later && expected !== undefined && expected > budgetMs) {
      // A far peer: waiting now would only burn the budget. Wait from shortly before its ACK is due instead, so
      // that the process is awake when it comes (the wake-up of a sleeping CPU is the cost this saves).
      if (expected > DELAYED_UP_TO_MS) return false;
      if (expected < MIN_DELAYED_MS) return this.spin(budgetMs);
      const ms = Math.max(1, Math.floor(expected - EARLY_MS));
      const sentAt = this.sentAt;
      // Until a little after the latest recent ACK delay: the delay varies from window to window.
      const until = Math.max(...this.delays) + LATE_MS;
      this.cancelDelayed = later(ms, () => {
        this.cancelDelayed = undefined;
        this.stats.delayed++;
        const left = until - (this.options.now() - sentAt);
        if (this.spin(Math.min(MAX_DELAYED_BUDGET_MS, Math.max(budgetMs, left)), true)) this.options.arrived?.();
      });
      return false;
    }
    return this.spin(budgetMs);
  }

  /**
   * Polls until the ACK is there or `budgetMs` is over, and learns from the outcome; true if it came. A `delayed`
   * wait's miss pauses the waits only after DELAYED_MISSES in a row.
   */
  private spin(budgetMs: number, delayed = false): boolean {
    const { now: time, ready } = this.options;
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
      this.delayedMisses = 0;
      return true;
    }
    this.stats.misses++;
    this.streak = 0;
    if (delayed && ++this.delayedMisses < DELAYED_MISSES) return false;
    this.delayedMisses = 0;
    this.skip = this.nextSkip;
    this.nextSkip = Math.min(MAX_SKIP, this.nextSkip * 2);
    return false;
  }
}
