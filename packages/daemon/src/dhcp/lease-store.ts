import { leaseSchema, type Lease } from '@smelt/shared/lease';
import { hostnameSchema } from '@smelt/shared/net';
import { ipv4ToNumber } from '@smelt/shared/net';
import type { Logger } from 'pino';
import type { GroupCommit } from '../store/group-commit.ts';
import type { Store } from '../store/store.ts';
import { ipv4Text } from './header.ts';
import type { LeaseEntry, Reservations } from './lease-table.ts';

/** A lease as the store and the API keep it (packages/shared/lease.ts), keyed by address. */
export function toRecord(entry: LeaseEntry, reservations: Reservations): Lease {
  return {
    address: ipv4Text(entry.address),
    mac: entry.mac,
    state: entry.state,
    reserved: reservations.macFor(entry.address) === entry.mac,
    // A client's option 12 is free text ("My_Laptop 2", "ESP_1A2B3C"); only a valid host name is kept, so a
    // cosmetic field can never make the lease row unreadable.
    ...(entry.hostname !== undefined &&
      hostnameSchema.safeParse(entry.hostname).success && { hostname: entry.hostname }),
    grantedAt: new Date(entry.grantedAt).toISOString(),
    expiresAt: new Date(entry.expiresAt).toISOString(),
  };
}

function fromRecord(lease: Lease): LeaseEntry | undefined {
  const address = ipv4ToNumber(lease.address);
  if (address === undefined || lease.state === 'offered') return undefined;
  return {
    address,
    mac: lease.mac,
    state: lease.state,
    grantedAt: Date.parse(lease.grantedAt),
    expiresAt: Date.parse(lease.expiresAt),
    ...(lease.hostname !== undefined && { hostname: lease.hostname }),
  };
}

/** Reads every stored lease; a row that does not parse is logged and left alone, never fatal. */
export async function loadLeases(store: Store, log: Logger): Promise<LeaseEntry[]> {
  const entries: LeaseEntry[] = [];
  for (const row of await store.list('leases')) {
    // Rows written before host names were checked may carry one that does not parse: keep the lease without it.
    const value = row.value as Record<string, unknown> | null;
    const parsed = leaseSchema.safeParse(
      leaseSchema.safeParse(value).success || typeof value !== 'object' ? value : { ...value, hostname: undefined },
    );
    const entry = parsed.success ? fromRecord(parsed.data) : undefined;
    if (entry) entries.push(entry);
    else log.warn({ key: row.key }, 'ignoring a stored lease that does not parse');
  }
  return entries;
}

/** Persists changed leases through the group commit; resolves when they are durable. */
export function persistLeases(
  commit: GroupCommit,
  entries: readonly LeaseEntry[],
  reservations: Reservations,
): Promise<void> {
  return commit.write(
    entries.map((entry) => ({
      collection: 'leases' as const,
      key: ipv4Text(entry.address),
      value: toRecord(entry, reservations),
    })),
  );
}
