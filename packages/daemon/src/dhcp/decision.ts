import type { DhcpPacket } from './packet.ts';
import type { LeaseEntry } from './lease-table.ts';
import type { Destination } from './reply.ts';

/** Why a request got no reply; each is a metric label, so keep them few and stable. */
export type IgnoreReason =
  | 'other-server'
  | 'no-subnet'
  | 'pool-full'
  | 'not-network-boot'
  | 'unsupported-arch'
  | 'unexpected-message'
  | 'incomplete-request'
  | 'not-ours';

/** What a mode decided about one request; server.ts carries it out. */
export type Decision =
  | {
      kind: 'reply';
      reply: DhcpPacket;
      to: Destination;
      /** Leases that changed; the reply is sent only once they are durable. */
      persist: LeaseEntry[];
      nak?: boolean;
    }
  /** No reply, but leases changed (RELEASE, DECLINE). */
  | { kind: 'update'; persist: LeaseEntry[] }
  | { kind: 'ignore'; reason: IgnoreReason };
