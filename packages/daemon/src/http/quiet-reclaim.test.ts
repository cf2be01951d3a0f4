import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { reclaimWhenQuiet } from './quiet-reclaim.ts';

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((_request, response) => response.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Opens `count` connections and waits until the server has accepted them all (accepting lags the clients). */
async function open(server: Server, port: number, count: number): Promise<Socket[]> {
  const accepted = new Promise<void>((resolve) => {
    let seen = 0;
    const onConnection = (): void => {
      seen += 1;
      if (seen < count) return;
      server.off('connection', onConnection);
      resolve();
    };
    server.on('connection', onConnection);
  });
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      return socket;
    }),
  );
  await accepted;
  return sockets;
}

async function closeAll(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(async (socket) => {
      socket.destroy();
      await once(socket, 'close');
    }),
  );
}

/** Waits until `done()` holds; fails after `ms` (a generous bound, not a speed check). */
async function eventually(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) assert.fail('the condition never held');
    await sleep(10);
  }
}

test('reclaims once after a burst of connections has fully ended, never while one is open', async () => {
  const { server, port } = await listening();
  let reclaims = 0;
  const reclaimer = reclaimWhenQuiet(server, { burst: 4, quietMs: 50, reclaim: () => (reclaims += 1) });
  try {
    const burst = await open(server, port, 4);
    const straggler = await open(server, port, 1);
    await closeAll(burst);
    await sleep(200);
    assert.equal(reclaims, 0, 'a connection is still open');
    await closeAll(straggler);
    await eventually(() => reclaims === 1, 5000);
    await sleep(200);
    assert.equal(reclaims, 1, 'one reclaim per burst');
  } finally {
    reclaimer.close();
    server.close();
  }
});

test('no reclaim after fewer connections than a burst, and a new connection cancels a pending one', async () => {
  const { server, port } = await listening();
  let reclaims = 0;
  const reclaimer = reclaimWhenQuiet(server, { burst: 3, quietMs: 1500, reclaim: () => (reclaims += 1) });
  try {
    await closeAll(await open(server, port, 2));
    await sleep(500);
    assert.equal(reclaims, 0, 'two connections are not a burst');
    await closeAll(await open(server, port, 3));
    const late = await open(server, port, 1);
    await sleep(2000);
    assert.equal(reclaims, 0, 'the late connection cancelled the pending reclaim');
    await closeAll(late);
    await eventually(() => reclaims === 1, 10_000);
  } finally {
    reclaimer.close();
    server.close();
  }
});
