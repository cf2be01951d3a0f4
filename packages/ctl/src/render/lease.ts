import type { Lease } from '@smelt/shared/lease';
import { formatAge } from './age.ts';
import { styleState } from './state.ts';
import type { Column } from './table.ts';

/** "in 59m" for a lease still running, "3h ago" for one that ended. */
function expiry(lease: Lease, now: Date): string {
  const ends = Date.parse(lease.expiresAt);
  // formatAge measures time since a moment; mirror a future end into the past to reuse its units.
  const mirrored = new Date(2 * now.getTime() - ends).toISOString();
  return ends > now.getTime()
    ? `in ${formatAge(mirrored, now) ?? '?'}`
    : `${formatAge(lease.expiresAt, now) ?? '?'} ago`;
}

export function leaseColumns(now: Date, wide: boolean): Column<Lease>[] {
  return [
    { header: 'ADDRESS', value: (lease) => lease.address },
    { header: 'MAC', value: (lease) => lease.mac },
    { header: 'STATE', value: (lease) => lease.state, style: styleState },
    { header: 'HOSTNAME', value: (lease) => lease.hostname },
    { header: 'EXPIRES', value: (lease) => expiry(lease, now) },
    ...(wide
      ? [
          { header: 'GRANTED', value: (lease: Lease) => formatAge(lease.grantedAt, now) },
          { header: 'RESERVED', value: (lease: Lease) => (lease.reserved ? 'yes' : 'no') },
        ]
      : []),
  ];
}
