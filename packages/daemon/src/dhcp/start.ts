import { ipv4ToNumber } from '@smelt/shared/net';
import type { Logger } from 'pino';
import { splitListen, type Config } from '../config/schema.ts';
import type { Discovery } from '../discovery/discovery.ts';
import type { EventJournal } from '../events/journal.ts';
import type { Metrics } from '../metrics.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { Store } from '../store/store.ts';
import { loadLeases } from './lease-store.ts';
import { createLeaseTable } from './lease-table.ts';
import { createDeploymentView } from './reservations.ts';
import type { StateView } from '../view/state-view.ts';
import { startDhcpServer, type DhcpServerDeps, type RunningDhcpServer } from './server.ts';
import { subnetsFromConfig } from './subnets.ts';

export interface DhcpDeps {
  config: Config;
  store: Store;
  view: StateView;
  commit: GroupCommit;
  /** The machine-facing HTTP base URL (iPXE script URLs, HTTP Boot). */
  httpBase: string;
  discovery: Discovery;
  events: EventJournal;
  metrics: Metrics;
  log: Logger;
  idle?: DhcpServerDeps['idle'];
}

/**
 * The machine-facing HTTP base URL from config (DESIGN.md §5.7: never from a request); with port 0 in the config
 * (tests), the port actually bound.
 */
export function httpBaseOf(config: Config, boundPort?: number): string {
  const { host, port: configured } = splitListen(config.http.listen);
  const port = configured === 0 && boundPort !== undefined ? boundPort : configured;
  const address = host === '0.0.0.0' || host === '::' || host === '' ? config.address : host;
  return port === 80 ? `http://${address}` : `http://${address}:${port}`;
}

/**
 * Starts DHCP as configured, or returns undefined when it is off. Proxy mode (the default) without an
 * interface is not an error, only a warning: a first run must not fail for want of a network decision.
 */
export async function startDhcp(deps: DhcpDeps): Promise<RunningDhcpServer | undefined> {
  const { config, log } = deps;
  if (config.dhcp.mode === 'off') return undefined;
  if (config.dhcp.interfaces.length === 0 && config.interface === undefined) {
    log.warn('DHCP is not served: set interface (or dhcp.interfaces), or dhcp.mode off to silence this');
    return undefined;
  }
  const subnets = subnetsFromConfig(config.dhcp);
  const deployments = createDeploymentView(deps.view);
  const excluded = new Set(
    [config.address, ...subnets.map((s) => s.gateway)]
      .map((a) => (a === undefined ? undefined : ipv4ToNumber(a)))
      .filter((a): a is number => a !== undefined),
  );
  const table = createLeaseTable(subnets, {
    now: Date.now,
    offerTimeoutMs: config.dhcp.offerTimeout * 1000,
    declineTimeoutMs: config.dhcp.declineTimeout * 1000,
    excluded,
    reservations: deployments,
  });
  const leases = await loadLeases(deps.store, log);
  table.load(leases);
  try {
    const server = await startDhcpServer({
      config,
      log,
      metrics: deps.metrics,
      commit: deps.commit,
      table,
      subnets,
      deployments,
      discovery: deps.discovery,
      events: deps.events,
      httpBase: deps.httpBase,
      ...(deps.idle && { idle: deps.idle }),
    });
    log.info({ leases: leases.length, subnets: subnets.map((s) => s.name) }, 'dhcp leases loaded');
    return {
      interfaces: server.interfaces,
      async close() {
        await server.close();
        deployments.close();
      },
    };
  } catch (error) {
    deployments.close();
    throw error;
  }
}
