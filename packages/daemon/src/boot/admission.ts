/**
 * Admission control for installs (issue "boot storm"): when a rack powers on at once, at most `maxActive`
 * machines download their kernel and initrd at a time; the others are told to wait a few seconds and ask again
 * (an iPXE back-off script), in the order they first asked, instead of all timing out together. A storm becomes a
 * queue. A slot is freed when the machine's last boot file has been sent, or after `slotSeconds` at the latest
 * (a machine that never fetches them cannot hold a slot forever).
 */
export interface AdmissionOptions {
  /** Machines downloading at once; 0 admits everyone. */
  maxActive: number;
  /** The longest a slot is held without its downloads finishing. */
  slotSeconds: number;
  now: () => number;
}

export type Admission = { admitted: true } | { admitted: false; position: number; waitSeconds: number };

interface Slot {
  ip: string;
  /** The path whose completed download frees the slot (the last initrd, else the kernel). */
  lastFile: string;
  until: number;
}

export interface AdmissionControl {
  /** A machine about to be told to download `lastFile` (and what comes before it) from `ip`. */
  admit(mac: string, ip: string, lastFile: string): Admission;
  /** A file was sent completely to `ip`: frees that machine's slot if it was its last one. */
  sent(ip: string, path: string): void;
  /** Where a MAC stands: downloading, queued at a position, or not in either. */
  status(mac: string): { state: 'downloading' } | { state: 'queued'; position: number } | undefined;
  counts(): { active: number; queued: number };
}

export function createAdmissionControl(options: AdmissionOptions): AdmissionControl {
  const active = new Map<string, Slot>();
  /** Waiting MACs in arrival order, with when each last asked (one that stops asking drops out). */
  const queue = new Map<string, number>();

  function expire(at: number): void {
    for (const [mac, slot] of active) if (slot.until <= at) active.delete(mac);
    for (const [mac, asked] of queue) if (at - asked > 120_000) queue.delete(mac);
  }

  function position(mac: string): number {
    let index = 0;
    for (const waiting of queue.keys()) {
      if (waiting === mac) return index;
      index++;
    }
    return -1;
  }

  return {
    admit(mac, ip, lastFile) {
      if (options.maxActive <= 0) return { admitted: true };
      const at = options.now();
      expire(at);
      const slot = { ip, lastFile, until: at + options.slotSeconds * 1000 };
      if (active.has(mac)) {
        active.set(mac, slot);
        return { admitted: true };
      }
      // A MAC keeps its place: Map order is insertion order, and set() on a present key does not move it.
      queue.set(mac, at);
      const place = position(mac);
      const free = options.maxActive - active.size;
      if (place < free) {
        queue.delete(mac);
        active.set(mac, slot);
        return { admitted: true };
      }
      // Ask again sooner when near the front; spread the rest so the server is not polled in lock-step.
      const ahead = place - free + 1;
      return {
        admitted: false,
        position: ahead,
        waitSeconds: Math.min(30, 2 + Math.ceil(ahead / Math.max(1, options.maxActive)) * 3),
      };
    },
    sent(ip, path) {
      for (const [mac, slot] of active) {
        if (slot.ip === ip && slot.lastFile === path) active.delete(mac);
      }
    },
    status(mac) {
      if (active.has(mac)) return { state: 'downloading' };
      const place = position(mac);
      return place < 0 ? undefined : { state: 'queued', position: place + 1 };
    },
    counts: () => ({ active: active.size, queued: queue.size }),
  };
}
