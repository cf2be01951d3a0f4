import { leaseSchema, type Lease } from '@smelt/shared/lease';
import { ipv4ToNumber } from '@smelt/shared/net';
import type { InventoryContext } from './context.ts';
import { paginate } from './page.ts';

/** Leases as the DHCP server persisted them; read-only here (the DHCP server is their only writer). */
export function createLeaseInventory(ctx: InventoryContext) {
  // Addresses sort numerically through an 8-hex-digit key, which is also the page cursor.
  const keyOf = (lease: Lease) => (ipv4ToNumber(lease.address) ?? 0).toString(16).padStart(8, '0');
  return {
    async list(query: { limit: number; cursor?: string | undefined; mac?: string | undefined; state?: string }) {
      const rows = await ctx.store.list('leases');
      const leases = rows
        .map((row) => leaseSchema.safeParse(row.value))
        .filter((parsed) => parsed.success)
        .map((parsed) => parsed.data)
        .filter(
          (lease) =>
            (query.mac === undefined || lease.mac === query.mac) &&
            (query.state === undefined || lease.state === query.state),
        );
      return paginate(leases, keyOf, query);
    },
  };
}
