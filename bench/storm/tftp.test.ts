/**
 * The simulator's TFTP client against a scripted server on loopback (node --test bench/storm/*.test.ts): option
 * negotiation, a lost DATA block (the client's retransmitted ACK brings it back), a duplicated block, an ERROR, a
 * corrupt byte, silence.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { after, describe, test } from 'node:test';
import { decodeServerPacket, encodeError, OP_ACK, tftpGet } from './tftp.ts';

interface Script {
  /** Block numbers whose first sending is dropped, and those sent twice. */
  drop?: number[];
  duplicate?: number[];
  error?: [number, string];
  corruptBlock?: number;
}

const sockets: Socket[] = [];
after(() => {
  for (const socket of sockets) socket.close();
});

/** A one-transfer server: OACK from a new port, then lock-step DATA as scripted. Resolves with its port. */
async function server(
  file: Buffer,
  script: Script,
): Promise<{ port: number; rrqs: () => number; finalAck: () => boolean }> {
  const listener = createSocket('udp4');
  sockets.push(listener);
  let rrqs = 0;
  let finalAck = false;
  listener.on('message', (bytes, from) => {
    rrqs++;
    if (rrqs > 1) return; // a retransmitted RRQ: the transfer already runs
    const text = bytes.toString('latin1', 2).split('\0');
    const blksize = Number(text[text.indexOf('blksize') + 1]);
    const transfer = createSocket('udp4');
    sockets.push(transfer);
    const error = script.error;
    if (error) {
      transfer.bind(0, '127.0.0.1', () => {
        transfer.send(encodeError(error[0], error[1]), from.port, from.address);
      });
      return;
    }
    const dropped = new Set<number>();
    const block = (n: number) => {
      const data = Buffer.from(file.subarray((n - 1) * blksize, n * blksize));
      if (n === script.corruptBlock) data[0] = (data[0] ?? 0) ^ 0xff;
      return Buffer.concat([Uint8Array.of(0, 3, n >> 8, n & 255), data]);
    };
    const lost = new Set<number>();
    const send = (n: number) => {
      if (script.drop?.includes(n) && !lost.has(n)) {
        lost.add(n);
        dropped.add(n);
        return;
      }
      transfer.send(block(n), from.port, from.address);
      if (script.duplicate?.includes(n)) transfer.send(block(n), from.port, from.address);
    };
    let acked = -1;
    transfer.on('message', (ack) => {
      const packet = ack.readUInt16BE(0);
      if (packet !== OP_ACK) return;
      const n = ack.readUInt16BE(2);
      if (n === Math.floor(file.length / blksize) + 1) finalAck = true;
      // A repeated ACK brings back only a block that was lost (no Sorcerer's Apprentice on this side either).
      if (n <= acked && !dropped.has(n + 1)) return;
      if (n <= acked) dropped.delete(n + 1);
      acked = Math.max(acked, n);
      if (n * blksize <= file.length) send(n + 1);
    });
    transfer.bind(0, '127.0.0.1', () => {
      const oack = Buffer.from(`\0\x06tsize\0${file.length}\0blksize\0${blksize}\0`, 'latin1');
      transfer.send(oack, from.port, from.address);
    });
  });
  await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
  return { port: listener.address().port, rrqs: () => rrqs, finalAck: () => finalAck };
}

const schedule = [100, 200, 400];
const file = randomBytes(10 * 1468 + 77);

describe('bench storm TFTP client', () => {
  test('decodes an OACK', () => {
    const packet = decodeServerPacket(Buffer.from('\0\x06TSIZE\x005\0blksize\x001468\0', 'latin1'));
    assert.deepEqual(packet, { op: 6, options: { tsize: '5', blksize: '1468' } });
  });

  test('downloads through a lost block and a duplicated one', async () => {
    const s = await server(file, { drop: [3], duplicate: [5] });
    const result = await tftpGet({
      local: '127.0.0.1',
      server: '127.0.0.1',
      port: s.port,
      file: 'undionly.kpxe',
      blksize: 1468,
      expected: file,
      schedule,
    });
    assert.equal(result.reason, undefined);
    assert.equal(result.ok, true);
    assert.equal(result.bytes, file.length);
    assert.equal(result.blksize, 1468);
    assert.equal(result.retries, 1); // ACK 2 sent again
    assert.equal(result.duplicates, 1); // block 5 twice
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(s.finalAck(), true, 'the last block was acknowledged before the socket closed');
  });

  test('an ERROR ends the transfer', async () => {
    const s = await server(file, { error: [1, 'File not found'] });
    const result = await tftpGet({
      local: '127.0.0.1',
      server: '127.0.0.1',
      port: s.port,
      file: 'nothing',
      blksize: 1468,
      expected: file,
      schedule,
    });
    assert.equal(result.ok, false);
    assert.equal(result.reason, 'ERROR 1: File not found');
  });

  test('a wrong byte fails it', async () => {
    const s = await server(file, { corruptBlock: 4 });
    const result = await tftpGet({
      local: '127.0.0.1',
      server: '127.0.0.1',
      port: s.port,
      file: 'undionly.kpxe',
      blksize: 1468,
      expected: file,
      schedule,
    });
    assert.equal(result.reason, 'content differs from the file');
  });

  test('silence: the RRQ is sent as often as the schedule says, then it gives up', async () => {
    const silent = createSocket('udp4');
    sockets.push(silent);
    let rrqs = 0;
    silent.on('message', () => rrqs++);
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    const result = await tftpGet({
      local: '127.0.0.1',
      server: '127.0.0.1',
      port: silent.address().port,
      file: 'undionly.kpxe',
      blksize: 1468,
      expected: file,
      schedule,
    });
    assert.equal(result.reason, 'no answer to the RRQ (3 transmissions)');
    assert.equal(result.retries, 2);
    assert.equal(rrqs, 3);
  });
});
