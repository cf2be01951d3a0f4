import { deploymentSchema, type Deployment } from '@smelt/shared/deployment';
import { ipv4ToNumber } from '@smelt/shared/net';
import type { Store } from '../store/store.ts';
import type { Reservations } from './lease-table.ts';
import type { HostOverrides } from './reply.ts';

/**
 * Deployments as DHCP sees them, in memory and kept current by the store's watch (DESIGN.md §5.3): a boot-time
 * request never waits on the store. A deployment's address is a reservation; its hostname, gateway, DNS and
 * domain override the subnet's.
 */
export interface DeploymentView extends Reservations {
  hostFor(mac: string): HostOverrides;
  deploymentOf(mac: string): Deployment | undefined;
  close(): void;
}

export async function createDeploymentView(store: Store): Promise<DeploymentView> {
  const byMac = new Map<string, Deployment>();
  const byAddress = new Map<number, string>();

  function remove(mac: string): void {
    const old = byMac.get(mac);
    if (!old) return;
    byMac.delete(mac);
    const address = old.address === undefined ? undefined : ipv4ToNumber(old.address);
    if (address !== undefined && byAddress.get(address) === mac) byAddress.delete(address);
  }

  function add(value: unknown): void {
    const parsed = deploymentSchema.safeParse(value);
    if (!parsed.success) return;
    const deployment = parsed.data;
    remove(deployment.mac);
    byMac.set(deployment.mac, deployment);
    const address = deployment.address === undefined ? undefined : ipv4ToNumber(deployment.address);
    if (address !== undefined) byAddress.set(address, deployment.mac);
  }

  // Subscribe first, so nothing written while the list is read is missed (a put seen twice is harmless).
  const stop = store.watch((event) => {
    if (event.collection !== 'deployments') return;
    if (event.kind === 'put') add(event.value);
    else remove(event.key);
  });
  for (const row of await store.list('deployments')) add(row.value);

  return {
    addressFor(mac) {
      const address = byMac.get(mac)?.address;
      return address === undefined ? undefined : ipv4ToNumber(address);
    },
    macFor: (address) => byAddress.get(address),
    hostFor(mac) {
      const d = byMac.get(mac);
      if (!d) return {};
      return { hostname: d.hostname, gateway: d.gateway, dns: d.dns, domain: d.domain };
    },
    deploymentOf: (mac) => byMac.get(mac),
    close: stop,
  };
}
