import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createApiApp } from './api/app.ts';
import { createIsoStore } from './api/iso-upload.ts';
import type { Config } from './config/schema.ts';
import { createInventory } from './inventory/inventory.ts';
import { createIsoCache } from './iso/cache.ts';
import { listenError, listenHttp } from './listen.ts';
import { createMetrics } from './metrics.ts';
import { openSqliteStore } from './store/sqlite.ts';
import type { Store } from './store/store.ts';
import { interfaceMtuLookup, startTftpServer, type RunningTftpServer } from './tftp/server.ts';
import { ensureToken } from './token.ts';
import { httpBaseOf, startDhcp } from './dhcp/start.ts';
import { subnetsFromConfig } from './dhcp/subnets.ts';
import { startHttpServer, type RunningHttpServer } from './http/server.ts';
import type { RunningDhcpServer } from './dhcp/server.ts';
import { createDiscovery } from './discovery/discovery.ts';
import { loadOuiTable, type OuiLookup } from './discovery/oui.ts';
import { createEventJournal } from './events/journal.ts';
import { createGroupCommit } from './store/group-commit.ts';
import { createStateView } from './view/state-view.ts';
import { treeFromConfig } from './tree/from-config.ts';
import { bootSource } from './tree/boot-source.ts';
import { renderedSource } from './tree/rendered-source.ts';
import { createBootDecider } from './boot/decider.ts';
import { createAdmissionControl } from './boot/admission.ts';
import { reclaimMemory } from './reclaim-memory.ts';
import { reclaimWhenIdle } from './idle-reclaim.ts';
import { createCowTargets, targetIqnOf, type CowTargets } from './iscsi/cow-targets.ts';
import { tgtAdmin } from './iscsi/tgt.ts';
import type { StateView } from './view/state-view.ts';

export interface RunningDaemon {
  api: { host: string; port: number };
  tftp: { address: string; port: number }[];
  http: { host: string; port: number };
  dhcp?: { name: string; addresses: string[] }[];
  close(): Promise<void>;
}

function openStore(config: Config): Store {
  switch (config.store.kind) {
    case 'sqlite':
      return openSqliteStore(config.dataDir, { sync: config.store.sync ?? 'disk' });
    case 'etcd':
      throw new Error('store.kind "etcd" is not available in this version; use "sqlite"');
  }
}

/**
 * Starts every configured service; close() stops them and closes the store. The API binds first and its
 * "api listening" line is logged last, once everything is up: it is the line that says the daemon is ready.
 * If a later server cannot start, what was started is closed again, so the process can exit with one line.
 */
export async function startDaemon(config: Config, log: Logger, version: string): Promise<RunningDaemon> {
  const { token, created, tightened } = ensureToken(config.dataDir);
  if (created) log.info({ dataDir: config.dataDir }, 'generated an API token; `smeltd token` prints it');
  if (tightened) log.warn({ dataDir: config.dataDir }, 'the API token file was readable by others; made it 0600');
  const store = openStore(config);
  // One cache of opened, indexed ISOs for the whole daemon: the API checks boots with it, HTTP and TFTP serve from it.
  const isos = createIsoCache();
  // One group commit for the hot write paths (leases, discovered machines, events): one fsync per burst.
  const commit = createGroupCommit(store);
  const events = await createEventJournal(store, commit, () => new Date());
  const iscsiPrefix = config.iscsi.iqn;
  const inventory = createInventory(
    store,
    isos,
    () => new Date(),
    events,
    config.iscsi.enabled
      ? {
          portal: config.iscsi.portal ?? `${config.address}:3260`,
          targetOf: (mac) => targetIqnOf(iscsiPrefix, mac),
        }
      : undefined,
  );
  const metrics = createMetrics();
  // What boot-time requests read (DHCP, iPXE scripts): memory kept current by the store's watch.
  const view = await createStateView(store);
  const discovery = createDiscovery({
    observe: (sightings) => inventory.machines.observe(sightings, (mac) => view.machine(mac)),
    events,
    oui: loadOui(log),
    now: Date.now,
    log: log.child({ subsystem: 'discovery' }),
  });
  const disks = config.iscsi.enabled ? startCowTargets(config, view, log) : undefined;
  const discoveryPending = metrics.gauge('smelt_discovery_pending', 'Machines seen and waiting to be written');
  metrics.onCollect(() => {
    discoveryPending.set(discovery.pending());
  });
  const closeState = async () => {
    await disks?.close();
    view.close();
    await discovery.close();
    await commit.drain();
    await isos.close();
    await store.close();
  };
  // Admission control for installs (boot/admission.ts): the HTTP server paces, the API shows the queue.
  const admission = createAdmissionControl({
    maxActive: config.http.maxInstalls,
    slotSeconds: config.http.slotSeconds,
    now: Date.now,
  });
  // The machine-facing base URL; final once the HTTP server is bound (its port may come from the OS).
  let baseUrl = httpBaseOf(config);
  const api = createApiApp({
    inventory,
    events,
    isos: createIsoStore(config.dataDir),
    subnets: subnetsFromConfig(config.dhcp),
    admission,
    machineBaseUrl: () => baseUrl,
    metrics,
    token,
    log: log.child({ subsystem: 'api' }),
    version,
    startedAt: Date.now(),
  });
  const handleApi = api.callback();
  const apiServer = createServer((request, response) => void handleApi(request, response));
  // Keep-alive clients (smeltctl, scripts) must not hold a shutdown open.
  apiServer.keepAliveTimeout = 5000;
  const closeApi = () =>
    new Promise<void>((resolve) => {
      apiServer.close(() => {
        resolve();
      });
      apiServer.closeIdleConnections();
    });
  let apiAddress;
  try {
    apiAddress = await listenHttp(apiServer, config.api.listen, 'API');
  } catch (error) {
    await closeState();
    throw error;
  }

  // One boot policy and one tree for HTTP and TFTP (DESIGN.md §6).
  const decide = createBootDecider(view, config.lifecycle, () => baseUrl);

  const tree = treeFromConfig(config, log.child({ subsystem: 'tree' }), [
    bootSource(view, isos),
    renderedSource(decide, () => baseUrl),
  ]);
  let http: RunningHttpServer;
  try {
    http = await startHttpServer({
      config,
      view,
      inventory,
      tree,
      decide,
      admission,
      events,
      subnets: subnetsFromConfig(config.dhcp),
      baseUrlFor: (port) => httpBaseOf(config, port),
      log: log.child({ subsystem: 'http' }),
      metrics,
    });
    baseUrl = http.baseUrl;
  } catch (error) {
    await closeApi();
    await closeState();
    throw error;
  }

  let tftp: RunningTftpServer;
  try {
    tftp = await startTftpServer({
      config: config.tftp,
      tree,
      log: log.child({ subsystem: 'tftp' }),
      metrics,
      mtuFor: interfaceMtuLookup(),
    });
  } catch (error) {
    await Promise.all([http.close(), closeApi()]);
    await closeState();
    throw listenError(config.tftp.listen, 'TFTP server', error);
  }
  // The TFTP server logs its own "tftp listening" line, with the addresses it bound.

  let dhcp: RunningDhcpServer | undefined;
  // A full collection in the quiet after a DHCP storm, so that the next one does not start with this one's debt
  // (idle-reclaim.ts): after 1,000 requests, once none has come for half a second.
  const dhcpIdle = reclaimWhenIdle({
    burst: 1000,
    quietMs: 500,
    reclaim: () => {
      const started = performance.now();
      reclaimMemory();
      log.debug({ ms: Math.round(performance.now() - started) }, 'collected garbage in the quiet after DHCP requests');
    },
  });
  try {
    dhcp = await startDhcp({
      idle: dhcpIdle,
      config,
      store,
      view,
      commit,
      httpBase: http.baseUrl,
      discovery,
      events,
      metrics,
      log: log.child({ subsystem: 'dhcp' }),
    });
  } catch (error) {
    dhcpIdle.close();
    await Promise.all([tftp.close(), closeApi(), http.close()]);
    await closeState();
    throw error;
  }

  // Provisioning that never phones home fails after lifecycle.provisionTimeout (checked every minute).
  const sweep = setInterval(() => {
    inventory.deployments.expire(config.lifecycle.provisionTimeout).catch((error: unknown) => {
      log.error({ err: error }, 'provisioning timeout sweep failed');
    });
  }, 60_000);
  sweep.unref();

  log.info(
    { listen: `${apiAddress.host}:${apiAddress.port}`, store: config.store.kind, dataDir: config.dataDir },
    'api listening',
  );
  return {
    api: apiAddress,
    tftp: tftp.addresses,
    http: http.address,
    ...(dhcp && { dhcp: dhcp.interfaces }),
    async close() {
      clearInterval(sweep);
      dhcpIdle.close();
      await Promise.all([tftp.close(), closeApi(), http.close(), dhcp?.close()]);
      await closeState();
    },
  };
}

/** The OUI vendor table; without it discovery still works, only without vendor names. */
function loadOui(log: Logger): OuiLookup | undefined {
  try {
    return loadOuiTable();
  } catch (error) {
    log.warn({ err: error }, 'could not load the OUI vendor table; machines will have no vendor names');
    return undefined;
  }
}

/** The daemon's copy-on-write iSCSI disks follow the deployments: one pass now, one after every change to them. */
function startCowTargets(config: Config, view: StateView, log: Logger): CowTargets {
  const disks = createCowTargets({
    dir: config.iscsi.overlays ?? join(config.dataDir, 'iscsi'),
    iqn: config.iscsi.iqn,
    firstTid: config.iscsi.firstTid,
    tgt: tgtAdmin({ control: config.iscsi.control }),
    wanted: function* () {
      for (const deployment of view.deployments()) {
        const base = deployment.type === 'live' ? deployment.live?.iscsi?.base : undefined;
        if (base !== undefined) yield { mac: deployment.mac, base };
      }
    },
    log: log.child({ subsystem: 'iscsi' }),
  });
  view.onChange((collection) => {
    if (collection === 'deployments') void disks.reconcile();
  });
  void disks.reconcile();
  return disks;
}
