import type { Config } from '../config/schema.ts';
import type { ScriptSpec } from '../render/ipxe.ts';
import type { StateView } from '../view/state-view.ts';
import { decideBoot } from './policy.ts';
import { machineUrls, type MachineUrls } from './urls.ts';

/** The boot policy bound to the daemon's state: what a MAC is told now. HTTP and the TFTP tree share it. */
export type BootDecider = (mac: string) => ScriptSpec;

/** `baseUrl` is read at each decision: the HTTP server learns its port only once it is bound. */
export function createBootDecider(view: StateView, lifecycle: Config['lifecycle'], baseUrl: () => string): BootDecider {
  let cached: { base: string; urls: MachineUrls } | undefined;
  const urls = () => {
    const base = baseUrl();
    if (cached?.base !== base) cached = { base, urls: machineUrls(base) };
    return cached.urls;
  };
  return (mac) => {
    const deployment = view.deployment(mac);
    return decideBoot({
      mac,
      deployment,
      boot: deployment && view.boot(deployment.boot),
      token: view.token(mac),
      wipeBoot: lifecycle.wipeBoot === undefined ? undefined : view.boot(lifecycle.wipeBoot),
      lifecycle,
      urls: urls(),
    });
  };
}
