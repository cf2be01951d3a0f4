import { findSubnet, subnetContains, type Subnet } from './subnets.ts';

/**
 * The server's leases in memory: every decision reads and changes this table synchronously, so two packets can
 * never be given one address; persistence (lease-store.ts) follows behind, and an ACK waits for it.
 *
 * - offered: held for the client we offered it to until expiresAt (dhcp.offerTimeout); never persisted.
 * - bound: leased until expiresAt.
 * - released: given back (RFC 2131 §4.4.6); kept so the same client gets it again, reusable by others last.
 * - declined: the client found it in use (§4.4.4, DHCPDECLINE); out of the pool until expiresAt.
 */
export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';

export interface LeaseEntry {
  address: number;
  mac: string;
  state: LeaseState;
  grantedAt: number;
  /** Milliseconds since the epoch; see LeaseState for what it means per state. */
  expiresAt: number;
  hostname?: string;
}

/** Addresses deployments reserve for their machines (a view kept current from the store). */
export interface Reservations {
  addressFor(mac: string): number | undefined;
  macFor(address: number): string | undefined;
}

export interface LeaseTableOptions {
  now: () => number;
  offerTimeoutMs: number;
  declineTimeoutMs: number;
  /** Never handed out: our own addresses, gateways. */
  excluded: ReadonlySet<number>;
  reservations: Reservations;
}

export type OfferResult = { address: number } | { full: true };

interface PoolCursor {
  /** Next never-used candidate; past pool.end once the pool has been handed out once. */
  next: number;
  /** While now < fullUntil nothing can be reclaimed: a full pool costs one comparison per DISCOVER, not a scan. */
  fullUntil: number;
  /** Addresses whose offer was withdrawn: back in the pool with no entry left to find them by. */
  freed: number[];
}

export function createLeaseTable(subnets: readonly Subnet[], options: LeaseTableOptions) {
  const { now, reservations, excluded } = options;
  const byAddress = new Map<number, LeaseEntry>();
  const byMac = new Map<string, LeaseEntry[]>();
  const cursors = new Map<Subnet, PoolCursor>(
    subnets.filter((s) => s.pool).map((s) => [s, { next: s.pool?.start ?? 0, fullUntil: 0, freed: [] }]),
  );

  function link(entry: LeaseEntry): void {
    const previous = byAddress.get(entry.address);
    if (previous && previous !== entry) unlinkMac(previous);
    byAddress.set(entry.address, entry);
    const list = byMac.get(entry.mac);
    if (!list) byMac.set(entry.mac, [entry]);
    else if (!list.includes(entry)) list.push(entry);
  }

  function unlinkMac(entry: LeaseEntry): void {
    const list = byMac.get(entry.mac);
    if (!list) return;
    const remaining = list.filter((e) => e !== entry);
    if (remaining.length === 0) byMac.delete(entry.mac);
    else byMac.set(entry.mac, remaining);
  }

  /** Forgets an offer that was never bound: its address goes straight back to the pool. */
  function drop(entry: LeaseEntry): void {
    if (byAddress.get(entry.address) === entry) byAddress.delete(entry.address);
    unlinkMac(entry);
    for (const [subnet, cursor] of cursors) {
      if (subnetContains(subnet, entry.address)) {
        cursor.freed.push(entry.address);
        cursor.fullUntil = 0;
      }
    }
  }

  /**
   * The client's current entry in this subnet (a client that moved subnets keeps one per subnet): its unexpired
   * binding first, then an offer, then a released or expired one. A declined address is never "its" address:
   * the client said someone else uses it (RFC 2131 §4.3.3).
   */
  function entryOf(mac: string, subnet: Subnet): LeaseEntry | undefined {
    const at = now();
    let best: LeaseEntry | undefined;
    let bestRank = 0;
    for (const entry of byMac.get(mac) ?? []) {
      if (entry.state === 'declined' || !subnetContains(subnet, entry.address)) continue;
      const live = entry.expiresAt > at;
      const rank = entry.state === 'bound' && live ? 3 : entry.state === 'offered' && live ? 2 : 1;
      if (rank > bestRank) {
        best = entry;
        bestRank = rank;
      }
    }
    return best;
  }

  function inPool(subnet: Subnet, address: number): boolean {
    return subnet.pool !== undefined && address >= subnet.pool.start && address <= subnet.pool.end;
  }

  function usable(subnet: Subnet, address: number): boolean {
    return (
      subnetContains(subnet, address) &&
      address !== subnet.network &&
      address !== subnet.broadcast &&
      !excluded.has(address)
    );
  }

  /** Whether `mac` may be given `address` now: the one rule DISCOVER, REQUEST and renewals all follow. */
  function available(mac: string, subnet: Subnet, address: number): boolean {
    if (!usable(subnet, address)) return false;
    const reservedFor = reservations.macFor(address);
    if (reservedFor !== undefined) return reservedFor === mac;
    if (!inPool(subnet, address)) return false;
    const entry = byAddress.get(address);
    if (!entry) return true;
    if (entry.mac === mac) return entry.state !== 'declined' || entry.expiresAt <= now();
    return entry.state === 'released' || entry.expiresAt <= now();
  }

  function reclaimable(entry: LeaseEntry, at: number): boolean {
    return entry.state === 'released' || entry.expiresAt <= at;
  }

  /** A never-used address first; then the one reclaimable longest ago (so recent clients keep theirs longest). */
  function freshAddress(mac: string, subnet: Subnet, cursor: PoolCursor): number | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    while (cursor.next <= pool.end) {
      const candidate = cursor.next++;
      if (!byAddress.has(candidate) && available(mac, subnet, candidate)) return candidate;
    }
    for (let candidate = cursor.freed.pop(); candidate !== undefined; candidate = cursor.freed.pop()) {
      if (!byAddress.has(candidate) && available(mac, subnet, candidate)) return candidate;
    }
    const at = now();
    if (at < cursor.fullUntil) return undefined;
    let best: LeaseEntry | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    for (const entry of byAddress.values()) {
      if (!inPool(subnet, entry.address)) continue;
      if (reclaimable(entry, at)) {
        if (reservations.macFor(entry.address) !== undefined || excluded.has(entry.address)) continue;
        if (!best || entry.expiresAt < best.expiresAt) best = entry;
      } else if (entry.expiresAt < soonest) soonest = entry.expiresAt;
    }
    if (best) return best.address;
    cursor.fullUntil = soonest;
    return undefined;
  }

  function put(entry: LeaseEntry): LeaseEntry {
    link(entry);
    return entry;
  }

  return {
    /** Entries read back from the store at start-up. */
    load(entries: Iterable<LeaseEntry>): void {
      for (const entry of entries) link({ ...entry });
    },

    get: (address: number): LeaseEntry | undefined => byAddress.get(address),
    entryOf,
    available,
    subnetFor: (address: number) => findSubnet(subnets, address),

    /**
     * DISCOVER (RFC 2131 §4.3.1): the client's reservation, else its current or previous address, else the
     * address it asks for, else a fresh one. The address is held for it until the offer times out.
     */
    offer(mac: string, subnet: Subnet, requested?: number): OfferResult {
      const reserved = reservations.addressFor(mac);
      const own = entryOf(mac, subnet);
      let address: number | undefined;
      if (reserved !== undefined && usable(subnet, reserved)) address = reserved;
      else if (own && available(mac, subnet, own.address)) address = own.address;
      else if (requested !== undefined && available(mac, subnet, requested)) address = requested;
      else {
        const cursor = cursors.get(subnet);
        address = cursor && freshAddress(mac, subnet, cursor);
      }
      if (address === undefined) return { full: true };
      const current = byAddress.get(address);
      if (!(current?.mac === mac && current.state === 'bound' && current.expiresAt > now())) {
        if (own && own.address !== address && own.state === 'offered') drop(own);
        put({ address, mac, state: 'offered', grantedAt: now(), expiresAt: now() + options.offerTimeoutMs });
      }
      return { address };
    },

    /**
     * REQUEST accepted (§4.3.2): the address is bound to the client. Returns the entries that changed, for the
     * store: the new binding, and the client's previous address in this subnet, now released.
     */
    bind(mac: string, subnet: Subnet, address: number, leaseSeconds: number, hostname?: string): LeaseEntry[] {
      const changed: LeaseEntry[] = [];
      const previous = entryOf(mac, subnet);
      if (previous && previous.address !== address) {
        if (previous.state === 'offered') drop(previous);
        else {
          previous.state = 'released';
          previous.expiresAt = now();
          changed.push(previous);
        }
      }
      const at = now();
      const existing = byAddress.get(address);
      const grantedAt = existing?.mac === mac && existing.state === 'bound' ? existing.grantedAt : at;
      changed.push(
        put({
          address,
          mac,
          state: 'bound',
          grantedAt,
          expiresAt: at + leaseSeconds * 1000,
          ...(hostname !== undefined && { hostname }),
        }),
      );
      return changed;
    },

    /** DHCPRELEASE (§4.4.6): only the holder can release. Returns the changed entry. */
    release(mac: string, address: number): LeaseEntry | undefined {
      const entry = byAddress.get(address);
      if (entry?.mac !== mac || entry.state !== 'bound') return undefined;
      entry.state = 'released';
      entry.expiresAt = now();
      for (const cursor of cursors.values()) cursor.fullUntil = 0;
      return entry;
    },

    /**
     * DHCPDECLINE (§4.3.3): the address we gave this client is in use by someone we do not know; keep it out of
     * the pool. Only an address offered or bound to this very client can be declined, so a DECLINE cannot write
     * arbitrary addresses into the store.
     */
    decline(mac: string, address: number): LeaseEntry | undefined {
      const entry = byAddress.get(address);
      if (entry?.mac !== mac || (entry.state !== 'offered' && entry.state !== 'bound')) return undefined;
      return put({
        address,
        mac,
        state: 'declined',
        grantedAt: now(),
        expiresAt: now() + options.declineTimeoutMs,
      });
    },

    /** The client took another server's offer (a REQUEST naming another server id): free our hold. */
    forgetOffer(mac: string): void {
      for (const entry of byMac.get(mac) ?? []) if (entry.state === 'offered') drop(entry);
    },

    /** Counts for metrics: per subnet, how many addresses are in each state and how big the pool is. */
    stats(subnet: Subnet): { pool: number; bound: number; offered: number; declined: number } {
      const at = now();
      let bound = 0;
      let offered = 0;
      let declined = 0;
      for (const entry of byAddress.values()) {
        if (!subnetContains(subnet, entry.address) || entry.expiresAt <= at) continue;
        if (entry.state === 'bound') bound++;
        else if (entry.state === 'offered') offered++;
        else if (entry.state === 'declined') declined++;
      }
      const pool = subnet.pool ? subnet.pool.end - subnet.pool.start + 1 : 0;
      return { pool, bound, offered, declined };
    },
  };
}
export type LeaseTable = ReturnType<typeof createLeaseTable>;
