import { ipv4ToNumber } from '@smelt/shared/net';
import type { StateView } from '../view/state-view.ts';
import { iscsiUri } from '../boot/policy.ts';
import type { Reservations } from './lease-table.ts';
import type { HostOverrides } from './reply.ts';

/**
 * Deployments as DHCP sees them, from the daemon's in-memory view: a deployment's address is a reservation for
 * its MAC; its hostname, gateway, DNS and domain override the subnet's. The address index is rebuilt lazily after
 * a change, so allocation loops stay O(1) per address.
 */
export interface DeploymentView extends Reservations {
  hostFor(mac: string): HostOverrides;
  close(): void;
}

export function createDeploymentView(view: StateView): DeploymentView {
  let byAddress: Map<number, string> | undefined;
  const stop = view.onChange((collection) => {
    if (collection === 'deployments') byAddress = undefined;
  });

  function index(): Map<number, string> {
    if (byAddress) return byAddress;
    byAddress = new Map();
    for (const deployment of view.deployments()) {
      const address = deployment.address === undefined ? undefined : ipv4ToNumber(deployment.address);
      if (address !== undefined) byAddress.set(address, deployment.mac);
    }
    return byAddress;
  }

  return {
    addressFor(mac) {
      const address = view.deployment(mac)?.address;
      return address === undefined ? undefined : ipv4ToNumber(address);
    },
    macFor: (address) => index().get(address),
    hostFor(mac) {
      const d = view.deployment(mac);
      if (!d) return {};
      const iscsi = d.type === 'live' ? d.live?.iscsi : undefined;
      const rootPath = iscsi && iscsiUri(iscsi);
      return {
        hostname: d.hostname,
        gateway: d.gateway,
        dns: d.dns,
        domain: d.domain,
        ...(rootPath && { rootPath }),
      };
    },
    close: stop,
  };
}
