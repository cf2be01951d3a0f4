import type { Logger } from 'pino';
import type { Sighting } from '../inventory/machines.ts';
import type { EventJournal } from '../events/journal.ts';
import type { OuiLookup } from './oui.ts';

/** What DHCP knows about a client when it speaks to us. */
export interface Observation {
  mac: string;
  arch?: string | undefined;
  vendorClass?: string | undefined;
  userClasses: readonly string[];
  uuid?: string | undefined;
  relay?: string | undefined;
  lease?: string | undefined;
}

export interface Discovery {
  seen(observation: Observation): void;
  /** Writes what is pending now (tests, shutdown). */
  flush(): Promise<void>;
  /** Machines waiting to be written (a storm's backlog: /metrics smelt_discovery_pending). */
  pending(): number;
  close(): Promise<void>;
}

/** What was last written for a machine (what it said about itself, and when): a sighting that repeats it is not. */
interface Written {
  mac: string;
  at: number;
  arch: string | undefined;
  vendorClass: string | undefined;
  userClass: string | undefined;
  uuid: string | undefined;
  relay: string | undefined;
  lease: string | undefined;
  /** The OUI's owner, looked up once per machine. */
  vendor: string | undefined;
  /** In the queue of machines to write (at most once: a sighting while it waits updates it in place). */
  queued: boolean;
}

function sightingOf(seen: Written): Sighting {
  return {
    mac: seen.mac,
    at: new Date(seen.at).toISOString(),
    arch: seen.arch,
    vendorClass: seen.vendorClass?.slice(0, 255),
    userClass: seen.userClass,
    uuid: seen.uuid,
    relay: seen.relay,
    lastLease: seen.lease,
    vendor: seen.vendor,
  };
}

export interface DiscoveryOptions {
  observe(sightings: readonly Sighting[]): Promise<string[]>;
  /**
   * Sightings written at most this many at a time: one batch per flushMs while sightings keep coming, a batch per
   * turn in a quiet time (each waits for the commit it rides on: GroupCommit's rideMs when nothing else is
   * written). Bigger batches would drain a backlog sooner, but one still being written when the next storm starts
   * holds its first exchanges (500 against 100: p99 32 against 20 ms at 10,000 clients, 8 interleaved rounds).
   */
  maxBatch?: number;
  events: EventJournal;
  oui: OuiLookup | undefined;
  now: () => number;
  log: Logger;
  /** How long a sighting may wait to be written with the ones that follow it. */
  flushMs?: number;
  /** A machine whose facts have not changed is written at most this often (its lastSeen). */
  refreshMs?: number;
  /** Pending sightings beyond this are dropped until the next flush (a flood cannot grow memory). */
  maxPending?: number;
  /**
   * Sightings keep coming (a storm): at most one batch per flushMs, not one per turn, until none has come for
   * this long; then the rest, a batch per turn.
   */
  quietMs?: number;
}

/**
 * Every client that speaks to us becomes or updates a Machine (DESIGN.md §2). Sightings are coalesced per MAC
 * and written in batches off the DHCP path: a reply never waits for discovery, and a storm of known machines
 * costs a map lookup each, not a write each.
 *
 * While sightings keep coming, the machines are written one batch per flushMs (maxBatch / flushMs: 400 a second by
 * default), and the backlog once the storm is over: a new machine costs its row, its event and their share of a
 * commit (~12 µs of the event loop's time, BENCHMARKS.md DHCP), work that in the storm would delay the replies
 * that the clients are waiting for, on the same CPU. A machine waits longer to appear in the inventory, about as
 * long as the storm lasts, with what it said last. Only beyond maxPending new machines waiting is one not queued;
 * it is when it next speaks (a DHCP client does again, to renew or to boot).
 */
export function createDiscovery(options: DiscoveryOptions): Discovery {
  const { now, log } = options;
  const flushMs = options.flushMs ?? 250;
  const refreshMs = options.refreshMs ?? 60_000;
  const maxPending = options.maxPending ?? 100_000;
  const quietMs = options.quietMs ?? 100;
  // When the last sighting came (any, repeated ones too): how discovery tells a storm from a quiet time.
  let lastSightingAt = Number.NEGATIVE_INFINITY;
  const written = new Map<string, Written>();
  // The machines to write, oldest first, from `head` on; made Sightings only when written. An array and a cursor,
  // not a map from MAC: a storm queues thousands a second and takes them 100 at a time, and the deletes made a
  // map rebuild its table over and over (garbage that lived long enough to reach the old generation).
  const queue: Written[] = [];
  let head = 0;
  let flushing: Promise<void> = Promise.resolve();

  const maxBatch = options.maxBatch ?? 100;
  const stormy = () => now() - lastSightingAt < quietMs;
  const pendingCount = () => queue.length - head;

  async function flushNow(): Promise<void> {
    if (pendingCount() === 0) return;
    // A bounded batch: a storm of new machines must not stall the event loop (and every DHCP reply) in one go.
    const batch: Sighting[] = [];
    const end = Math.min(queue.length, head + maxBatch);
    for (let at = head; at < end; at++) {
      const seen = queue[at];
      if (!seen) continue;
      seen.queued = false;
      batch.push(sightingOf(seen));
    }
    head = end;
    // The array is reused once drained, and cut back when most of it has been taken.
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head >= 4096 && head * 2 >= queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    if (pendingCount() > 0) {
      // In a quiet time the next batch follows in the next turn; in a storm, after flushMs.
      if (stormy()) schedule();
      else {
        setImmediate(() => {
          flushing = flushing.then(flushNow);
        });
      }
    }
    try {
      const created = new Set(await options.observe(batch));
      for (const sighting of batch) {
        if (!created.has(sighting.mac)) {
          // At most once a minute per machine (refreshMs), or when what it says about itself changes.
          options.events.record('machine.seen', {
            mac: sighting.mac,
            message: `seen${sighting.lastLease ? ` with ${sighting.lastLease}` : ''}${sighting.relay ? ` via relay ${sighting.relay}` : ''}`,
          });
        } else {
          options.events.record('machine.discovered', {
            mac: sighting.mac,
            message: `new machine ${sighting.mac}${sighting.arch ? ` (${sighting.arch})` : ''}${
              sighting.vendor ? `, ${sighting.vendor}` : ''
            }`,
          });
        }
      }
    } catch (error) {
      // Forget what we wrote, so the next sighting of these machines tries again (one queued again meanwhile will).
      for (const sighting of batch) if (written.get(sighting.mac)?.queued === false) written.delete(sighting.mac);
      log.error({ err: error, machines: batch.length }, 'could not record discovered machines');
    }
  }

  // Armed by the first sighting pending, not a standing interval: an idle daemon wakes for nothing (it shares the
  // CPUs with whatever it boots — software-emulated VMs in bench/vms).
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      flushing = flushing.then(flushNow);
    }, flushMs);
    timer.unref();
  };

  return {
    seen(observation) {
      const t = now();
      lastSightingAt = t;
      // The machine schema bounds these (a client can send up to 255 bytes per option, more when split).
      const classes = observation.userClasses;
      const userClass =
        classes.length === 0
          ? undefined
          : (classes.length === 1 ? (classes[0] ?? '') : classes.join(',')).slice(0, 255) || undefined;
      const last = written.get(observation.mac);
      if (
        last &&
        t - last.at < refreshMs &&
        last.arch === observation.arch &&
        last.vendorClass === observation.vendorClass &&
        last.userClass === userClass &&
        last.uuid === observation.uuid &&
        last.relay === observation.relay &&
        last.lease === observation.lease
      ) {
        return;
      }
      if (!last?.queued && pendingCount() >= maxPending) return;
      if (last) {
        // Updated in place: the machine's one record, whether it waits in the queue or was written already.
        last.at = t;
        last.arch = observation.arch;
        last.vendorClass = observation.vendorClass;
        last.userClass = userClass;
        last.uuid = observation.uuid;
        last.relay = observation.relay;
        last.lease = observation.lease;
      }
      const seen: Written = last ?? {
        mac: observation.mac,
        at: t,
        arch: observation.arch,
        vendorClass: observation.vendorClass,
        userClass,
        uuid: observation.uuid,
        relay: observation.relay,
        lease: observation.lease,
        vendor: options.oui?.(observation.mac),
        queued: false,
      };
      if (!last) written.set(observation.mac, seen);
      if (!seen.queued) {
        seen.queued = true;
        queue.push(seen);
      }
      schedule();
    },
    flush() {
      flushing = flushing.then(flushNow);
      return flushing;
    },
    pending: pendingCount,
    async close() {
      clearTimeout(timer);
      timer = undefined;
      // A flush writes one bounded batch and queues the next for a later turn; closing waits for all of them, or
      // the store would be closed under the rest (every machine seen in the last moments before a stop, lost).
      do {
        flushing = flushing.then(flushNow);
        await flushing;
      } while (pendingCount() > 0);
    },
  };
}
