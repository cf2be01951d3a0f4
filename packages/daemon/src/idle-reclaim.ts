/**
 * One full garbage collection in the quiet after a burst of work, so that the next burst does not pay for this one.
 *
 * Why: a DHCP storm grows V8's old generation (leases, machines and what they carried), and V8 starts its next
 * major collection when the heap reaches a limit set at the last one — in the middle of the next storm, where its
 * marking takes the CPU from the event loop for tens of milliseconds and its pause holds every exchange in flight.
 * Measured (BENCHMARKS.md, DHCP, ninth session; 6 interleaved rounds): after 10,000 clients and a quiet second,
 * the next 1,000 ran at a median 2921 DORA/s without and 4318 with a collection in that second (p99 68 against
 * 38 ms). A collection here costs 20-80 ms of an event loop that has nothing else to do; a request arriving
 * meanwhile waits that long, once.
 *
 * The owner calls busy() for each unit of work (a DHCP request); after `burst` of them, once none has come for
 * `quietMs`, reclaim() runs once and the count starts again. busy() only counts and stamps: no timer per packet.
 */
export interface IdleReclaimOptions {
  /** Units of work since the last reclaim that make it worth one. */
  readonly burst: number;
  /** How long without work counts as quiet. */
  readonly quietMs: number;
  /** The reclaim itself: a full GC and malloc_trim in the daemon (reclaim-memory.ts). */
  readonly reclaim: () => void;
  readonly now?: () => number;
}

export interface IdleReclaimer {
  busy(): void;
  close(): void;
}

export function reclaimWhenIdle(options: IdleReclaimOptions): IdleReclaimer {
  const now = options.now ?? (() => performance.now());
  let count = 0;
  let lastAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const check = (): void => {
    timer = undefined;
    if (closed) return;
    const quietFor = now() - lastAt;
    if (quietFor < options.quietMs) {
      arm(options.quietMs - quietFor);
      return;
    }
    count = 0;
    options.reclaim();
  };
  const arm = (ms: number): void => {
    timer = setTimeout(check, Math.max(1, ms));
    // Never what keeps the daemon running.
    timer.unref();
  };

  return {
    busy() {
      lastAt = now();
      count += 1;
      if (count >= options.burst && timer === undefined && !closed) arm(options.quietMs);
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
