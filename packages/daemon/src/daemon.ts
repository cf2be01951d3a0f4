import { createServer } from 'node:http';
import type { Logger } from 'pino';
import { createApiApp } from './api/app.ts';
import type { Config } from './config/schema.ts';
import { createInventory } from './inventory/inventory.ts';
import { listenHttp } from './listen.ts';
import { createMetrics } from './metrics.ts';
import { openSqliteStore } from './store/sqlite.ts';
import type { Store } from './store/store.ts';
import { ensureToken } from './token.ts';

export interface RunningDaemon {
  api: { host: string; port: number };
  close(): Promise<void>;
}

function openStore(config: Config): Store {
  switch (config.store.kind) {
    case 'sqlite':
      return openSqliteStore(config.dataDir);
    case 'etcd':
      throw new Error('store.kind "etcd" is not available in this version; use "sqlite"');
  }
}

/** Starts every configured service; close() stops them and closes the store. */
export async function startDaemon(config: Config, log: Logger, version: string): Promise<RunningDaemon> {
  const { token, created, tightened } = ensureToken(config.dataDir);
  if (created) log.info({ dataDir: config.dataDir }, 'generated an API token; `smeltd token` prints it');
  if (tightened) log.warn({ dataDir: config.dataDir }, 'the API token file was readable by others; made it 0600');
  const store = openStore(config);
  const inventory = createInventory(store);
  const metrics = createMetrics();
  const api = createApiApp({
    inventory,
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
  let apiAddress;
  try {
    apiAddress = await listenHttp(apiServer, config.api.listen, 'API');
  } catch (error) {
    await store.close();
    throw error;
  }
  log.info(
    { listen: `${apiAddress.host}:${apiAddress.port}`, store: config.store.kind, dataDir: config.dataDir },
    'api listening',
  );
  return {
    api: apiAddress,
    async close() {
      await new Promise<void>((resolve) => {
        apiServer.close(() => {
          resolve();
        });
        apiServer.closeIdleConnections();
      });
      await store.close();
    },
  };
}
