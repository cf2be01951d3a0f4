import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { magicPacket, parseSecureOn, sendWake } from './wol.ts';

test('the magic packet: 6 × 0xFF, the MAC 16 times, then the SecureOn password', () => {
  const packet = magicPacket('52-54-00-12-34-56');
  assert.equal(packet.length, 102);
  assert.deepEqual(packet.subarray(0, 6), Buffer.alloc(6, 0xff));
  for (let i = 0; i < 16; i++) assert.equal(packet.subarray(6 + i * 6, 12 + i * 6).toString('hex'), '525400123456');
  const secure = magicPacket('52:54:00:12:34:56', parseSecureOn('01:02:03:04:05:06'));
  assert.equal(secure.length, 108);
  assert.equal(secure.subarray(102).toString('hex'), '010203040506');
  assert.equal(parseSecureOn('a1b2c3d4').length, 4);
  assert.throws(() => parseSecureOn('01:02:03'), /4 or 6 bytes/);
  assert.throws(() => magicPacket('not-a-mac'));
});

test('it is sent to each address on ports 9 and 7', async () => {
  // Loopback stands in for a broadcast address: what matters here is the datagram and the ports.
  const received: string[] = [];
  const listeners = await Promise.all(
    [9, 7].map(
      (port) =>
        new Promise<ReturnType<typeof createSocket>>((resolve) => {
          const socket = createSocket({ type: 'udp4', reuseAddr: true });
          socket.on('message', (message) =>
            received.push(`${String(port)}:${message.subarray(6, 12).toString('hex')}`),
          );
          socket.bind(port, '127.0.0.1', () => {
            resolve(socket);
          });
        }),
    ),
  );
  try {
    const sent = await sendWake(magicPacket('52:54:00:ab:cd:ef'), ['127.0.0.1']);
    assert.deepEqual(sent, ['127.0.0.1:9', '127.0.0.1:7']);
    const deadline = Date.now() + 2000;
    while (received.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(received.sort(), ['7:525400abcdef', '9:525400abcdef']);
  } finally {
    for (const socket of listeners) socket.close();
  }
});
