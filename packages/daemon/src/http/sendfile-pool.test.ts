import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSendfilePool, type SendfilePool } from './sendfile-pool.ts';

/**
 * The sendfile threads against real TCP connections on loopback: the bytes a client receives are exactly the
 * extents asked for, in order; a client that stops reading is given up (stall) or dropped on request (abort); a
 * client that goes away ends the transfer with the socket's error; closing the pool ends what is in flight.
 */
const dir = mkdtempSync(join(tmpdir(), 'smelt-sendfile-'));
const content = randomBytes(3 * 1024 * 1024 + 123);
let file: FileHandle;
let pool: SendfilePool;

before(async () => {
  writeFileSync(join(dir, 'content.bin'), content);
  file = await open(join(dir, 'content.bin'), 'r');
  pool = createSendfilePool({ threads: 2, stallMs: 300 });
});

after(async () => {
  await pool.close();
  await file.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A connected pair on loopback: the server's end (to send into) and the client's. */
async function connectedPair(): Promise<{ server: Socket; client: Socket; listener: Server }> {
  const listener = createServer();
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const address = listener.address();
  assert.ok(address && typeof address === 'object');
  const client = createConnection(address.port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  // Resets are what some tests do; as in the HTTP server, a socket error is the transfer's outcome, not a crash.
  server.on('error', () => undefined);
  return { server, client, listener };
}

function collect(client: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) resolve(Buffer.concat(chunks));
    });
    client.once('error', reject);
    client.once('close', () => {
      resolve(Buffer.concat(chunks));
    });
  });
}

test('the client receives exactly the extents, in order, and the connection stays usable', async () => {
  const { server, client, listener } = await connectedPair();
  const extents = [
    { fd: file.fd, offset: 2_000_000, length: 1_100_000 },
    { fd: file.fd, offset: 5, length: 70_000 },
    { fd: file.fd, offset: 0, length: 0 },
    { fd: file.fd, offset: content.length - 10, length: 10 },
  ];
  const expected = Buffer.concat(extents.map((e) => content.subarray(e.offset, e.offset + e.length)));
  const received = collect(client, expected.length + 5);
  const transfer = pool.send(server, extents);
  assert.ok(transfer, 'a TCP socket can be handed over');
  const outcome = await transfer.done;
  assert.deepEqual(outcome, { sent: expected.length });
  // The thread closed only its duplicate: the main thread's socket still writes, after the file's bytes.
  server.end('after');
  const bytes = await received;
  assert.equal(bytes.length, expected.length + 5);
  assert.ok(bytes.subarray(0, expected.length).equals(expected), 'the extents, byte for byte');
  assert.equal(bytes.subarray(expected.length).toString(), 'after');
  assert.equal(pool.active, 0);
  client.destroy();
  listener.close();
});

test('a file shorter than announced ends the transfer with an error, not a silent short body', async () => {
  const { server, client, listener } = await connectedPair();
  client.resume();
  const transfer = pool.send(server, [{ fd: file.fd, offset: content.length - 100, length: 1000 }]);
  assert.ok(transfer);
  assert.deepEqual(await transfer.done, { sent: 100, error: 'short file' });
  server.destroy();
  client.destroy();
  listener.close();
});

test('a client that stops reading is given up after the stall time; abort ends a transfer at once', async () => {
  const big = join(dir, 'sparse.bin');
  const handle = await open(big, 'w+');
  await handle.truncate(512 * 1024 * 1024); // far more than the sockets' buffers hold
  try {
    const stalled = await connectedPair();
    stalled.client.pause();
    const first = pool.send(stalled.server, [{ fd: handle.fd, offset: 0, length: 512 * 1024 * 1024 }]);
    assert.ok(first);
    const outcome = await first.done;
    assert.equal(outcome.error, 'stalled');
    assert.ok(outcome.sent > 0 && outcome.sent < 512 * 1024 * 1024, `sent ${String(outcome.sent)}`);

    const aborted = await connectedPair();
    aborted.client.pause();
    const second = pool.send(aborted.server, [{ fd: handle.fd, offset: 0, length: 512 * 1024 * 1024 }]);
    assert.ok(second);
    second.abort();
    assert.equal((await second.done).error, 'aborted');
    for (const pair of [stalled, aborted]) {
      pair.server.destroy();
      pair.client.destroy();
      pair.listener.close();
    }
  } finally {
    await handle.close();
    rmSync(big);
  }
});

test('a client that goes away ends the transfer with the socket error', async () => {
  const big = join(dir, 'sparse-gone.bin');
  const handle = await open(big, 'w+');
  await handle.truncate(512 * 1024 * 1024);
  try {
    const { server, client, listener } = await connectedPair();
    client.pause();
    const transfer = pool.send(server, [{ fd: handle.fd, offset: 0, length: 512 * 1024 * 1024 }]);
    assert.ok(transfer);
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.resetAndDestroy();
    const outcome = await transfer.done;
    assert.ok(outcome.error === 'ECONNRESET' || outcome.error === 'EPIPE', `error ${String(outcome.error)}`);
    server.destroy();
    listener.close();
  } finally {
    await handle.close();
    rmSync(big);
  }
});

test('closing a pool ends its transfers and threads; a closed pool hands nothing over', async () => {
  const own = createSendfilePool({ threads: 1 });
  const big = join(dir, 'sparse-close.bin');
  const handle = await open(big, 'w+');
  await handle.truncate(512 * 1024 * 1024);
  try {
    const { server, client, listener } = await connectedPair();
    client.pause();
    const transfer = own.send(server, [{ fd: handle.fd, offset: 0, length: 512 * 1024 * 1024 }]);
    assert.ok(transfer);
    await own.close();
    assert.equal((await transfer.done).error, 'stopped');
    assert.equal(own.send(server, [{ fd: handle.fd, offset: 0, length: 1 }]), undefined);
    server.destroy();
    client.destroy();
    listener.close();
  } finally {
    await handle.close();
    rmSync(big);
  }
});
