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
  close(): Promise<void>;
}

export interface DiscoveryOptions {
  observe(sightings: readonly Sighting[]): Promise<string[]>;
  /** Sightings written at most this many at a time; the rest follow at once, a batch per turn. */
  maxBatch?: number;
  events: EventJournal;
  oui: OuiLookup | undefined;
  now: () => number;
  log: Logger;
  /** How often pending sightings are written. */
  flushMs?: number;
  /** A machine whose facts have not changed is written at most this often (its lastSeen). */
  refreshMs?: number;
  /** Pending sightings beyond this are dropped until the next flush (a flood cannot grow memory). */
  maxPending?: number;
}

/**
 * Every client that speaks to us becomes or updates a Machine (DESIGN.md §2). Sightings are coalesced per MAC
 * and written in batches off the DHCP path: a reply never waits for discovery, and a storm of known machines
 * costs a map lookup each, not a write each.
 */
export function createDiscovery(options: DiscoveryOptions): Discovery {
  const { now, log } = options;
  const flushMs = options.flushMs ?? 250;
  const refreshMs = options.refreshMs ?? 60_000;
  const maxPending = options.maxPending ?? 50_000;
  const written = new Map<string, { signature: string; at: number }>();
  const pending = new Map<string, Sighting>();
  let flushing: Promise<void> = Promise.resolve();

  const maxBatch = options.maxBatch ?? 500;

  async function flushNow(): Promise<void> {
    if (pending.size === 0) return;
    // A bounded batch: a storm of new machines must not stall the event loop (and every DHCP reply) in one go.
    const batch = [...pending.values()].slice(0, maxBatch);
    for (const sighting of batch) pending.delete(sighting.mac);
    if (pending.size > 0) {
      setImmediate(() => {
        flushing = flushing.then(flushNow);
      });
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
      // Forget what we wrote, so the next sighting of these machines tries again.
      for (const sighting of batch) written.delete(sighting.mac);
      log.error({ err: error, machines: batch.length }, 'could not record discovered machines');
    }
  }

  const timer = setInterval(() => {
    flushing = flushing.then(flushNow);
  }, flushMs);
  timer.unref();

  return {
    seen(observation) {
      const t = now();
      // The machine schema bounds these (a client can send up to 255 bytes per option, more when split).
      const userClass = observation.userClasses.join(',').slice(0, 255) || undefined;
      const signature = [
        observation.arch,
        observation.vendorClass,
        userClass,
        observation.uuid,
        observation.relay,
        observation.lease,
      ].join('|');
      const last = written.get(observation.mac);
      if (last?.signature === signature && t - last.at < refreshMs) return;
      if (!pending.has(observation.mac) && pending.size >= maxPending) return;
      written.set(observation.mac, { signature, at: t });
      pending.set(observation.mac, {
        mac: observation.mac,
        at: new Date(t).toISOString(),
        arch: observation.arch,
        vendorClass: observation.vendorClass?.slice(0, 255),
        userClass,
        uuid: observation.uuid,
        relay: observation.relay,
        lastLease: observation.lease,
        vendor: options.oui?.(observation.mac),
      });
    },
    flush() {
      flushing = flushing.then(flushNow);
      return flushing;
    },
    async close() {
      clearInterval(timer);
      flushing = flushing.then(flushNow);
      await flushing;
    },
  };
}
