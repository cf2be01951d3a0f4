import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { AckReader } from './ack-reader.ts';
import { openUdpSocket } from './gso-socket.ts';

const lookupFor =
  (family: 4 | 6): NonNullable<dgram.SocketOptions['lookup']> =>
  (host, _options, callback) => {
    (callback as (error: null, address: string, family: number) => void)(null, host, family);
  };
const lookup = lookupFor(4);
const hasIpv6Loopback = Object.values(networkInterfaces()).some((infos) =>
  (infos ?? []).some((info) => info.address === '::1'),
);

/**
 * Sockets opened through libc, as the server's transfer sockets are: their sends leave at once (the lookup
 * answers synchronously), and dgram reads the receiving socket only when the event loop polls it, which cannot
 * happen while a test polls synchronously, as the server does.
 */
let server: { socket: dgram.Socket; fd: number };
let peer: { socket: dgram.Socket; fd: number };
let stranger: { socket: dgram.Socket; fd: number };
/** What dgram delivered on the server socket, in order. */
const delivered: { bytes: number[]; port: number }[] = [];

before(async () => {
  server = await openUdpSocket(4, '127.0.0.1', lookup);
  peer = await openUdpSocket(4, '127.0.0.1', lookup);
  stranger = await openUdpSocket(4, '127.0.0.1', lookup);
  server.socket.on('message', (msg, rinfo) => {
    delivered.push({ bytes: [...msg], port: rinfo.port });
  });
});

after(() => {
  for (const s of [server, peer, stranger]) s.socket.close();
});

function send(from: { socket: dgram.Socket }, bytes: number[]): void {
  from.socket.send(Buffer.from(bytes), server.socket.address().port, '127.0.0.1');
}

/** Polls like the wait does until a datagram is there (at most 1 s). */
function waitFor(reader: AckReader): boolean {
  const start = performance.now();
  while (performance.now() - start < 1000) if (reader.peek()) return true;
  return false;
}

/** Lets the event loop run until dgram has delivered `count` datagrams in all (at most 1 s). */
async function deliveredCount(count: number): Promise<void> {
  const start = performance.now();
  while (delivered.length < count && performance.now() - start < 1000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('tftp ACK reader', () => {
  test("reads the peer's ACK off the socket, which dgram then never sees; nothing waiting: no datagram", async () => {
    const reader = new AckReader(server.fd, 4, '127.0.0.1', peer.socket.address().port);
    assert.equal(reader.peek(), false);
    assert.equal(reader.take(), undefined, 'nothing peeked, nothing taken');
    const before = delivered.length;
    send(peer, [0, 4, 0x12, 0x34]);
    assert.ok(waitFor(reader));
    assert.equal(reader.take(), 0x1234);
    assert.equal(reader.peek(), false, 'taken off the socket');
    // The next one too, and an ACK that follows: each once, in order.
    send(peer, [0, 4, 0, 7]);
    send(peer, [0, 4, 0, 8]);
    assert.ok(waitFor(reader));
    assert.equal(reader.take(), 7);
    assert.ok(waitFor(reader));
    assert.equal(reader.take(), 8);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(delivered.length, before, 'dgram saw none of them');
    assert.deepEqual(reader.stats, { taken: 3, left: 0 });
  });

  test('a stranger (another TID), an ERROR, a long ACK, DATA: left on the socket for dgram, in order', async () => {
    const reader = new AckReader(server.fd, 4, '127.0.0.1', peer.socket.address().port);
    const before = delivered.length;
    const cases: [typeof peer, number[]][] = [
      [stranger, [0, 4, 0, 1]], // an ACK, but not from the transfer's peer (RFC 1350 §4: ERROR 5 for it)
      [peer, [0, 5, 0, 0, 0x68, 0x69, 0]], // the peer's ERROR
      [peer, [0, 4, 0, 2, 0]], // 5 bytes: not the plain ACK this path takes
      [peer, [0, 3, 0, 1]], // DATA
    ];
    for (const [from, bytes] of cases) {
      send(from, bytes);
      assert.ok(waitFor(reader));
      assert.equal(reader.take(), undefined, `${JSON.stringify(bytes)} left`);
      // Left for dgram: the event loop delivers it, exactly once, before the next case is sent.
      await deliveredCount(delivered.length + 1);
    }
    assert.deepEqual(
      delivered.slice(before),
      cases.map(([from, bytes]) => ({ bytes, port: from.socket.address().port })),
    );
    assert.deepEqual(reader.stats, { taken: 0, left: 4 });
  });

  test('IPv6: the same, with sockaddr_in6', { skip: hasIpv6Loopback ? false : 'no ::1 here' }, async () => {
    const v6server = await openUdpSocket(6, '::1', lookupFor(6));
    const v6peer = await openUdpSocket(6, '::1', lookupFor(6));
    const v6stranger = await openUdpSocket(6, '::1', lookupFor(6));
    const got: number[][] = [];
    v6server.socket.on('message', (msg) => got.push([...msg]));
    try {
      const reader = new AckReader(v6server.fd, 6, '::1', v6peer.socket.address().port);
      const to = v6server.socket.address().port;
      v6peer.socket.send(Buffer.from([0, 4, 1, 2]), to, '::1');
      assert.ok(waitFor(reader));
      assert.equal(reader.take(), 0x0102);
      v6stranger.socket.send(Buffer.from([0, 4, 0, 3]), to, '::1');
      assert.ok(waitFor(reader));
      assert.equal(reader.take(), undefined, 'another port: left');
      const start = performance.now();
      while (got.length === 0 && performance.now() - start < 1000) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(got, [[0, 4, 0, 3]]);
    } finally {
      for (const s of [v6server, v6peer, v6stranger]) s.socket.close();
    }
  });

  test('a reader for another peer address takes nothing from this one', async () => {
    const reader = new AckReader(server.fd, 4, '127.0.0.2', peer.socket.address().port);
    const before = delivered.length;
    send(peer, [0, 4, 0, 9]);
    assert.ok(waitFor(reader));
    assert.equal(reader.take(), undefined);
    await deliveredCount(before + 1);
    assert.deepEqual(delivered.slice(before), [{ bytes: [0, 4, 0, 9], port: peer.socket.address().port }]);
  });
});
