import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { manualClock } from './clock.ts';
import type { ByteSource } from './netascii.ts';
import { MalformedPacket, decode, encode } from './packet.ts';
import { Transfer, defaultChunkBytes } from './transfer.ts';
import type { TransferEnd } from './transfer.ts';

/** What the transfer sent, one short word per datagram: D<block>, OACK, E<code>. */
type Word = string;

interface Harness {
  transfer: Transfer;
  clock: ReturnType<typeof manualClock>;
  content: Buffer;
  ends: TransferEnd[];
  reads: { offset: number; length: number; target?: Uint8Array }[];
  /** Datagrams sent since the last call. */
  take: () => Buffer[];
  /** The same, as words. */
  words: () => Word[];
  /** Blocks carried by each `sendBlocks` call, in order. */
  batches: number[];
}

interface Setup {
  size: number;
  blksize?: number;
  windowsize?: number;
  oack?: boolean;
  timeoutMs?: number;
  retries?: number;
  chunkBytes?: number;
  source?: ByteSource;
  /** Read through `readInto` (into buffers the transfer may reuse) rather than `read`. */
  readInto?: boolean;
  /**
   * Whether the socket cannot take the `n`th datagram at once: then it and those after it wait in a send queue,
   * with their buffers (not copied), and go out a `take` later (a `take` sends what was queued before the one
   * before it). `sendsSettled` says whether any is waiting.
   */
  congested?: (n: number) => boolean;
  /**
   * Batched sends (UDP GSO) of up to this many blocks: `sendBlocks` checks the layout the kernel needs and cuts
   * the send into one datagram per blksize + 4 bytes, as the kernel does; each call's block count is recorded.
   */
  gso?: number;
  /** Blocks of the first send of each new run of blocks (TransferOptions.leadBlocks). */
  lead?: number;
}

function word(datagram: Buffer): Word {
  const packet = decode(datagram);
  if (packet instanceof MalformedPacket) return `?${packet.reason}`;
  switch (packet.op) {
    case 'data':
      return `D${packet.block}`;
    case 'oack':
      return 'OACK';
    case 'error':
      return `E${packet.code}`;
    default:
      return packet.op;
  }
}

function pattern(size: number): Buffer {
  const content = Buffer.alloc(size);
  for (let i = 0; i < size; i++) content[i] = (i * 7 + (i >> 8)) & 0xff;
  return content;
}

function harness(setup: Setup): Harness {
  const content = pattern(setup.size);
  const clock = manualClock();
  const ends: TransferEnd[] = [];
  const reads: { offset: number; length: number; target?: Uint8Array }[] = [];
  let outbox: Buffer[] = [];
  const queued: { parts: Buffer[]; since: number; segment?: number }[] = [];
  const batches: number[] = [];
  const blksize = setup.blksize ?? 512;
  /** What leaves the socket for one send: one datagram, or one per segment of a GSO send. */
  const datagrams = (parts: Buffer[], segment?: number): Buffer[] => {
    const whole = Buffer.concat(parts);
    if (segment === undefined) return [whole];
    const out: Buffer[] = [];
    for (let at = 0; at < whole.length; at += segment) out.push(whole.subarray(at, at + segment));
    return out;
  };
  let sends = 0;
  let takes = 0;
  const source: ByteSource = setup.source ?? {
    size: content.length,
    read(offset, length) {
      reads.push({ offset, length });
      return Promise.resolve(content.subarray(offset, offset + length));
    },
    ...(setup.readInto
      ? {
          readInto(target: Uint8Array, offset: number) {
            reads.push({ offset, length: target.length, target });
            const part = content.subarray(offset, offset + target.length);
            target.set(part);
            return Promise.resolve(part.length);
          },
        }
      : {}),
  };
  const transfer = new Transfer({
    source,
    blksize,
    windowsize: setup.windowsize ?? 1,
    ...(setup.oack ? { oack: encode({ op: 'oack', options: new Map([['tsize', String(setup.size)]]) }) } : {}),
    timeoutMs: setup.timeoutMs ?? 1000,
    retries: setup.retries ?? 5,
    clock,
    send: (head, payload) => {
      if (queued.length > 0 || setup.congested?.(sends) === true) {
        queued.push({ parts: payload ? [head, payload] : [head], since: takes });
      } else outbox.push(payload ? Buffer.concat([head, payload]) : head);
      sends++;
    },
    sendsSettled: () => queued.length === 0,
    ...(setup.gso === undefined
      ? {}
      : {
          blocksPerSend: setup.gso,
          sendBlocks: (parts: Buffer[]) => {
            assert.ok(parts.length >= 4 && parts.length % 2 === 0, `${parts.length} parts`);
            assert.ok(parts.length / 2 <= (setup.gso ?? 0), `${parts.length / 2} blocks in one send`);
            for (let i = 0; i < parts.length; i += 2) {
              const length = (parts[i]?.length ?? 0) + (parts[i + 1]?.length ?? 0);
              if (i + 2 < parts.length) assert.equal(length, blksize + 4, 'a block before the last of a send');
              else assert.ok(length <= blksize + 4, 'the last block of a send');
            }
            batches.push(parts.length / 2);
            const copy = [...parts];
            if (queued.length > 0 || setup.congested?.(sends) === true) {
              queued.push({ parts: copy, since: takes, segment: blksize + 4 });
            } else outbox.push(...datagrams(copy, blksize + 4));
            sends++;
          },
        }),
    done: (end) => {
      ends.push(end);
    },
    ...(setup.chunkBytes === undefined ? {} : { chunkBytes: setup.chunkBytes }),
    ...(setup.lead === undefined ? {} : { leadBlocks: setup.lead }),
  });
  const take = () => {
    while (queued[0] && queued[0].since < takes) {
      const send = queued.shift();
      if (send) outbox.push(...datagrams(send.parts, send.segment));
    }
    takes++;
    const taken = outbox;
    outbox = [];
    return taken;
  };
  return { transfer, clock, content, ends, reads, take, words: () => take().map(word), batches };
}

const ended = (h: Harness) => h.ends.length > 0;
/** Why the transfer failed, if it did. */
const failure = (h: Harness) => {
  const end = h.ends[0];
  return end && !end.ok ? end.reason : undefined;
};

/** Lets pending reads complete. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function started(setup: Setup): Promise<Harness> {
  const h = harness(setup);
  h.transfer.start();
  await settle();
  return h;
}

/**
 * A well-behaved client: takes DATA in order, ACKs every `windowsize` blocks in order and the final one; on a
 * gap it ACKs the last block it has, once (like atftp), and waits. `lose(block, attempt)` drops datagrams.
 * Returns the file as received and every datagram the transfer sent.
 */
async function download(
  h: Harness,
  options: { windowsize: number; blksize: number; lose?: (block: number, copy: number) => boolean },
): Promise<{ file: Buffer; datagrams: number; timeouts: number }> {
  const parts: Buffer[] = [];
  const copies = new Map<number, number>();
  let expected = 1;
  let sinceAck = 0;
  let extraAckSent = false;
  let datagrams = 0;
  let timeouts = 0;
  for (let rounds = 0; h.ends.length === 0; rounds++) {
    assert.ok(rounds < 10_000_000, 'the transfer never ended');
    let batch = h.take();
    if (batch.length === 0) {
      await settle();
      batch = h.take();
    }
    if (batch.length === 0) {
      // Nothing in flight: only the server's timer can move things on.
      timeouts++;
      for (let waited = 0; waited < 60_000 && !ended(h); waited += 100) {
        h.clock.advance(100);
        batch = h.take();
        if (batch.length > 0) break;
      }
      if (batch.length === 0) continue;
    }
    for (const datagram of batch) {
      datagrams++;
      const packet = decode(datagram);
      assert.ok(!(packet instanceof MalformedPacket) && packet.op === 'data', `expected DATA, got ${word(datagram)}`);
      const copy = (copies.get(packet.block) ?? 0) + 1;
      copies.set(packet.block, copy);
      if (options.lose?.(packet.block, copy)) continue;
      if (packet.block !== (expected & 0xffff)) {
        if (!extraAckSent) {
          extraAckSent = true;
          h.transfer.onAck((expected - 1) & 0xffff);
        }
        continue;
      }
      parts.push(Buffer.from(packet.data));
      extraAckSent = false;
      expected++;
      sinceAck++;
      const final = packet.data.length < options.blksize;
      if (final || sinceAck === options.windowsize) {
        sinceAck = 0;
        h.transfer.onAck((expected - 1) & 0xffff);
      }
      if (final) break;
    }
  }
  return { file: Buffer.concat(parts), datagrams, timeouts };
}

describe('tftp transfer: complete transfers', () => {
  for (const windowsize of [1, 4]) {
    for (const size of [0, 1, 511, 512, 513, 2048, 5000]) {
      test(`windowsize ${windowsize}, ${size} bytes: the file exactly, one datagram per block, no timeouts`, async () => {
        const h = await started({ size, windowsize });
        const result = await download(h, { windowsize, blksize: 512 });
        assert.deepEqual(result.file, h.content);
        assert.deepEqual(h.ends, [{ ok: true }]);
        assert.equal(result.datagrams, Math.floor(size / 512) + 1);
        assert.equal(result.timeouts, 0);
        assert.equal(h.transfer.stats.retransmissions, 0);
        assert.equal(h.transfer.stats.delivered, size);
        assert.equal(h.clock.pending(), 0, 'a timer is left behind');
      });
    }
  }

  test('a file whose size is a multiple of the window and the block ends with an empty block', async () => {
    const h = await started({ size: 4096, windowsize: 4 });
    assert.deepEqual(h.words(), ['D1', 'D2', 'D3', 'D4']);
    h.transfer.onAck(4);
    assert.deepEqual(h.words(), ['D5', 'D6', 'D7', 'D8']);
    h.transfer.onAck(8);
    const last = h.take();
    assert.deepEqual(last.map(word), ['D9']);
    assert.equal(last[0]?.length, 4);
    h.transfer.onAck(9);
    assert.deepEqual(h.ends, [{ ok: true }]);
  });

  test('block numbers roll over to 0 after 65535 (blksize 8), lock-step and windowed', async () => {
    for (const windowsize of [1, 16]) {
      const size = 65536 * 8 + 100; // 65549 blocks
      const h = await started({ size, blksize: 8, windowsize });
      const seen: number[] = [];
      const original = h.take;
      h.take = () => {
        const batch = original();
        for (const datagram of batch) seen.push(datagram.readUInt16BE(2));
        return batch;
      };
      const result = await download(h, { windowsize, blksize: 8 });
      assert.deepEqual(result.file, h.content, `windowsize ${windowsize}`);
      assert.deepEqual(h.ends, [{ ok: true }]);
      assert.equal(result.datagrams, 65549);
      assert.deepEqual(seen.slice(65533, 65539), [65534, 65535, 0, 1, 2, 3]);
      assert.equal(seen.at(-1), 65549 - 65536);
    }
  });

  test('an OACK goes first; DATA only after ACK 0', async () => {
    const h = await started({ size: 1000, oack: true, windowsize: 2 });
    assert.deepEqual(h.words(), ['OACK']);
    h.transfer.onAck(1); // not an answer to an OACK
    assert.deepEqual(h.words(), []);
    h.transfer.onAck(0);
    assert.deepEqual(h.words(), ['D1', 'D2']);
    h.transfer.onAck(2);
    assert.deepEqual(h.ends, [{ ok: true }]);
  });

  test('data is read ahead in large chunks, a whole number of blocks each', async () => {
    assert.equal(defaultChunkBytes(512, 1), 262144);
    assert.equal(defaultChunkBytes(1468, 1) % 1468, 0);
    assert.equal(defaultChunkBytes(65464, 64), Math.ceil((4 * 1024 * 1024) / 65464) * 65464);
    const h = await started({ size: 1_000_000, blksize: 1468, windowsize: 16 });
    const result = await download(h, { windowsize: 16, blksize: 1468 });
    assert.deepEqual(result.file, h.content);
    const chunk = defaultChunkBytes(1468, 16);
    assert.equal(h.reads.length, Math.ceil(1_000_000 / chunk));
    assert.ok(h.reads.every((read, i) => read.offset === i * chunk));
  });

  test('with readInto, a few read buffers serve the whole file', async () => {
    for (const windowsize of [1, 4]) {
      const h = await started({ size: 512 * 400 + 3, windowsize, chunkBytes: 512 * 8, readInto: true });
      const result = await download(h, { windowsize, blksize: 512 });
      assert.deepEqual(result.file, h.content);
      assert.equal(h.reads.length, 51);
      const buffers = new Set(h.reads.map((read) => read.target?.buffer));
      assert.ok(buffers.size <= 3, `${buffers.size} buffers for ${h.reads.length} reads at windowsize ${windowsize}`);
    }
  });

  test('a read buffer is not written again while a datagram sent from it may still be queued', async () => {
    for (const windowsize of [1, 3, 8]) {
      // Now and then the socket queues datagrams, so that buffers come free (their blocks acknowledged) while
      // retransmitted copies of their blocks are still waiting to go out.
      const h = await started({
        size: 256 * 300 + 11,
        blksize: 256,
        windowsize,
        chunkBytes: 256 * 4,
        readInto: true,
        congested: (n) => n % 11 < 4,
      });
      const sent: Buffer[] = [];
      const take = h.take;
      h.take = () => {
        const taken = take();
        sent.push(...taken);
        return taken;
      };
      const result = await download(h, {
        windowsize,
        blksize: 256,
        lose: (block, copy) => copy === 1 && block % 5 === 0,
      });
      assert.deepEqual(result.file, h.content, `windowsize ${windowsize}`);
      assert.ok(h.transfer.stats.retransmissions > 0);
      // Every DATA that went out, duplicates and late copies included, carries its own block's bytes.
      for (const datagram of sent) {
        const packet = decode(datagram);
        assert.ok(!(packet instanceof MalformedPacket) && packet.op === 'data');
        const offset = (packet.block - 1) * 256;
        assert.deepEqual(packet.data, h.content.subarray(offset, offset + 256), `block ${packet.block}`);
      }
      assert.ok(new Set(h.reads.map((read) => read.target?.buffer)).size < h.reads.length);
    }
  });
});

/** Records the 16-bit block number of every datagram the transfer sends, in order. */
function recordBlocks(h: Harness): number[] {
  const seen: number[] = [];
  const original = h.take;
  h.take = () => {
    const batch = original();
    for (const datagram of batch) seen.push(datagram.readUInt16BE(2));
    return batch;
  };
  return seen;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('tftp transfer: batched sends (UDP GSO)', () => {
  for (const [windowsize, gso] of [
    [4, 4],
    [16, 16],
    [16, 5],
    [64, 44],
  ] as const) {
    for (const size of [0, 513, 512 * 64, 512 * 200 + 77]) {
      test(`windowsize ${windowsize}, ${gso} blocks per send, ${size} bytes: every block once, in order`, async () => {
        const h = await started({ size, windowsize, gso });
        const seen = recordBlocks(h);
        const result = await download(h, { windowsize, blksize: 512 });
        const blocks = Math.floor(size / 512) + 1;
        assert.deepEqual(result.file, h.content);
        assert.deepEqual(h.ends, [{ ok: true }]);
        assert.deepEqual(seen, range(1, blocks));
        assert.equal(result.timeouts, 0);
        assert.equal(h.transfer.stats.retransmissions, 0);
        assert.equal(h.transfer.stats.datagrams, blocks);
        assert.equal(h.transfer.stats.batches, h.batches.length);
        assert.equal(h.transfer.stats.readSplits, 0, 'no window was cut short by a read');
        assert.ok(
          h.batches.every((n) => n >= 2 && n <= gso),
          `batches ${h.batches.join(',')}`,
        );
        // A window of w blocks is floor(w / gso) full sends and one of the rest; a lone block goes through send().
        const sendsFor = (w: number) => Math.floor(w / gso) + (w % gso >= 2 ? 1 : 0);
        const full = Math.floor(blocks / windowsize);
        assert.equal(h.batches.length, full * sendsFor(windowsize) + sendsFor(blocks - full * windowsize));
        assert.equal(h.clock.pending(), 0, 'a timer is left behind');
      });
    }
  }

  test('with a lead block, each new window starts with one block alone, then full sends', async () => {
    const size = 512 * 100 + 3; // blocks 1-101
    const h = await started({ size, windowsize: 64, gso: 44, lead: 1 });
    assert.deepEqual(
      h.words(),
      range(1, 64).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [44, 19], 'D1 went through send, alone');
    h.transfer.onAck(64);
    assert.deepEqual(
      h.words(),
      range(65, 101).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [44, 19, 36]);
    h.transfer.onAck(101);
    assert.deepEqual(h.ends, [{ ok: true }]);
  });

  test('a window whose data is still being read goes out in two sends, and counts one split', async () => {
    const content = pattern(512 * 16);
    const pending: (() => void)[] = [];
    const h = harness({
      size: 0,
      windowsize: 16,
      gso: 16,
      chunkBytes: 512 * 8,
      source: {
        size: content.length,
        read: (offset, length) =>
          new Promise((resolve) => {
            pending.push(() => {
              resolve(content.subarray(offset, offset + length));
            });
          }),
      },
    });
    h.transfer.start();
    pending.shift()?.(); // blocks 1-8 arrive; 9-16 are still being read
    await settle();
    assert.deepEqual(h.batches, [8]);
    assert.equal(h.transfer.stats.readSplits, 1);
    pending.shift()?.();
    await settle();
    assert.deepEqual(h.batches, [8, 8], 'the rest of the window, in a send of its own');
    assert.deepEqual(
      h.words(),
      range(1, 16).map((b) => `D${b}`),
    );
  });

  test('a window of 64 at 44 blocks per send: 44 then 20; the short last block ends its send', async () => {
    const size = 512 * 100 + 3; // blocks 1-101, the last of 3 bytes
    const h = await started({ size, windowsize: 64, gso: 44 });
    assert.deepEqual(
      h.words(),
      range(1, 64).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [44, 20]);
    h.transfer.onAck(64);
    const last = h.take();
    assert.deepEqual(
      last.map(word),
      range(65, 101).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [44, 20, 37]);
    assert.equal(last.at(-1)?.length, 7);
    h.transfer.onAck(101);
    assert.deepEqual(h.ends, [{ ok: true }]);
  });

  test('block numbers roll over inside one batched send', async () => {
    const size = 65540 * 8; // blocks 1-65541, the last empty
    const h = await started({ size, blksize: 8, windowsize: 16, gso: 16 });
    const seen = recordBlocks(h);
    const result = await download(h, { windowsize: 16, blksize: 8 });
    assert.deepEqual(result.file, h.content);
    assert.equal(seen.length, 65541);
    assert.deepEqual(seen.slice(65533, 65539), [65534, 65535, 0, 1, 2, 3]);
    assert.ok(h.batches.length > 4000);
  });

  test('losses everywhere: resent windows are batched too, and the file arrives intact', async () => {
    for (const [windowsize, gso] of [
      [16, 16],
      [64, 44],
    ] as const) {
      const size = 512 * 700 + 77;
      const h = await started({ size, windowsize, gso });
      const result = await download(h, {
        windowsize,
        blksize: 512,
        lose: (block, copy) => copy === 1 && block % 7 === 0,
      });
      assert.deepEqual(result.file, h.content, `windowsize ${windowsize}`);
      assert.deepEqual(h.ends, [{ ok: true }]);
      assert.ok(h.transfer.stats.retransmissions > 0);
      assert.ok(result.timeouts < 20, `${result.timeouts} timeouts`);
      assert.ok(h.batches.every((n) => n <= gso));
    }
  });

  test('a gap ACK resends from the gap in one send; duplicate ACKs still send at most one extra window', async () => {
    const h = await started({ size: 512 * 40, windowsize: 8, gso: 8 });
    assert.deepEqual(
      h.words(),
      range(1, 8).map((b) => `D${b}`),
    );
    h.transfer.onAck(3); // D4 lost
    assert.deepEqual(
      h.words(),
      range(4, 11).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [8, 5, 3]); // the resent D4-D8, then the new D9-D11
    for (let i = 0; i < 20; i++) h.transfer.onAck(3);
    assert.deepEqual(h.words(), []);
  });

  test('sendSeparately: what is in flight goes again at once, one block per send, and later windows too', async () => {
    const h = await started({ size: 512 * 40, windowsize: 8, gso: 8 });
    assert.deepEqual(
      h.words(),
      range(1, 8).map((b) => `D${b}`),
    );
    assert.equal(h.transfer.sendSeparately(), true);
    assert.deepEqual(
      h.words(),
      range(1, 8).map((b) => `D${b}`),
    );
    assert.equal(h.transfer.stats.retransmissions, 8);
    assert.equal(h.transfer.sendSeparately(), false);
    h.transfer.onAck(8);
    assert.deepEqual(
      h.words(),
      range(9, 16).map((b) => `D${b}`),
    );
    h.transfer.onAck(8); // the echo of the resent copy: nothing
    assert.deepEqual(h.words(), []);
    assert.deepEqual(h.batches, [8]);
    h.clock.advance(1000); // a timeout resends separately as well
    assert.deepEqual(
      h.words(),
      range(9, 16).map((b) => `D${b}`),
    );
    assert.deepEqual(h.batches, [8]);
  });

  test('a batched send that waits in the queue keeps its buffers: no read buffer is written under it', async () => {
    const size = 512 * 64 * 6 + 5;
    let n = 0;
    const h = await started({
      size,
      windowsize: 32,
      gso: 16,
      readInto: true,
      chunkBytes: 512 * 32,
      congested: () => n++ % 3 === 0,
    });
    const seen = recordBlocks(h);
    const result = await download(h, { windowsize: 32, blksize: 512 });
    assert.deepEqual(result.file, h.content);
    assert.deepEqual(seen, range(1, Math.floor(size / 512) + 1));
  });
});

describe('tftp transfer: loss and duplicates', () => {
  test('a DATA lost inside a window: the ACK of the last block in order resends from the next one', async () => {
    const h = await started({ size: 512 * 12 + 10, windowsize: 4 });
    assert.deepEqual(h.words(), ['D1', 'D2', 'D3', 'D4']);
    h.transfer.onAck(2); // D3 lost; the client has 1 and 2
    assert.deepEqual(h.words(), ['D3', 'D4', 'D5', 'D6']);
    h.transfer.onAck(6);
    assert.deepEqual(h.words(), ['D7', 'D8', 'D9', 'D10']);
    assert.equal(h.transfer.stats.retransmissions, 2);
  });

  test("the first block of a window lost: the client's repeated ACK resends the window once, not again", async () => {
    const h = await started({ size: 512 * 12 + 10, windowsize: 4 });
    h.take();
    h.transfer.onAck(4);
    assert.deepEqual(h.words(), ['D5', 'D6', 'D7', 'D8']);
    h.transfer.onAck(4); // D5 lost, the client got D6 and reports the gap
    assert.deepEqual(h.words(), ['D5', 'D6', 'D7', 'D8']);
    for (let i = 0; i < 10; i++) h.transfer.onAck(4);
    assert.deepEqual(h.words(), []);
    h.transfer.onAck(8);
    assert.deepEqual(h.words(), ['D9', 'D10', 'D11', 'D12']);
  });

  test('losses everywhere: the file still arrives intact, each lost block costing at most a round trip', async () => {
    for (const windowsize of [1, 4, 16]) {
      const size = 512 * 300 + 77;
      const h = await started({ size, windowsize });
      // Every 7th block is lost on its first transmission.
      const result = await download(h, {
        windowsize,
        blksize: 512,
        lose: (block, copy) => copy === 1 && block % 7 === 0,
      });
      assert.deepEqual(result.file, h.content, `windowsize ${windowsize}`);
      assert.deepEqual(h.ends, [{ ok: true }]);
      if (windowsize > 1) assert.ok(result.timeouts < 20, `${result.timeouts} timeouts at windowsize ${windowsize}`);
    }
  });

  test('lock-step: duplicate and stale ACKs never resend (Sorcerer\u2019s Apprentice, RFC 1123 §4.2.3.1)', async () => {
    const h = await started({ size: 5000 });
    assert.deepEqual(h.words(), ['D1']);
    h.transfer.onAck(1);
    assert.deepEqual(h.words(), ['D2']);
    for (let i = 0; i < 10; i++) h.transfer.onAck(1);
    h.transfer.onAck(0);
    h.transfer.onAck(60000);
    assert.deepEqual(h.words(), []);
    h.transfer.onAck(2);
    assert.deepEqual(h.words(), ['D3']);
  });

  test('lock-step: a delayed ACK after a timeout does not make every later block go out twice', async () => {
    const h = await started({ size: 5000 });
    assert.deepEqual(h.words(), ['D1']);
    h.clock.advance(1000);
    assert.deepEqual(h.words(), ['D1']); // the ACK was only late
    h.transfer.onAck(1);
    h.transfer.onAck(1); // the client's answer to the second D1
    assert.deepEqual(h.words(), ['D2']);
    h.transfer.onAck(2);
    assert.deepEqual(h.words(), ['D3']);
  });

  test('windowed: the echo of a retransmitted window starts the next window once', async () => {
    const h = await started({ size: 512 * 20, windowsize: 4 });
    assert.deepEqual(h.words(), ['D1', 'D2', 'D3', 'D4']);
    h.clock.advance(1000);
    assert.deepEqual(h.words(), ['D1', 'D2', 'D3', 'D4']);
    h.transfer.onAck(4); // the late ACK of the first copy
    assert.deepEqual(h.words(), ['D5', 'D6', 'D7', 'D8']);
    h.transfer.onAck(4); // the client answering the old blocks of the second copy
    assert.deepEqual(h.words(), []);
    h.transfer.onAck(8);
    assert.deepEqual(h.words(), ['D9', 'D10', 'D11', 'D12']);
  });

  test('windowed: a second loss inside a resent window is answered at once, not after a timeout', async () => {
    const h = await started({ size: 512 * 20, windowsize: 4 });
    assert.deepEqual(h.words(), ['D1', 'D2', 'D3', 'D4']);
    h.transfer.onAck(1); // D2 lost
    assert.deepEqual(h.words(), ['D2', 'D3', 'D4', 'D5']);
    h.transfer.onAck(2); // the resent D3 lost too
    assert.deepEqual(h.words(), ['D3', 'D4', 'D5', 'D6']);
    h.transfer.onAck(2); // the client discarding stale copies re-ACKs the gap we already answered
    h.transfer.onAck(2);
    assert.deepEqual(h.words(), []);
    h.transfer.onAck(6);
    assert.deepEqual(h.words(), ['D7', 'D8', 'D9', 'D10']);
  });

  test('windowed: many copies of one ACK send at most one extra window', async () => {
    const h = await started({ size: 512 * 20, windowsize: 4 });
    h.take();
    for (let i = 0; i < 50; i++) h.transfer.onAck(4);
    assert.deepEqual(h.words(), ['D5', 'D6', 'D7', 'D8', 'D5', 'D6', 'D7', 'D8']);
  });

  test('an ACK of a block never sent, or older than the window, is ignored', async () => {
    const h = await started({ size: 512 * 20, windowsize: 4 });
    h.take();
    h.transfer.onAck(5);
    h.transfer.onAck(65535);
    assert.deepEqual(h.words(), []);
    assert.equal(h.ends.length, 0);
  });
});

describe('tftp transfer: timeouts', () => {
  test('a lost ACK: retransmission after the timeout, doubling up to 4x, then the transfer gives up', async () => {
    const h = await started({ size: 5000, timeoutMs: 1000, retries: 5 });
    assert.deepEqual(h.words(), ['D1']);
    for (const wait of [1000, 2000, 4000, 4000, 4000]) {
      h.clock.advance(wait - 1);
      assert.deepEqual(h.words(), [], `before ${wait} ms`);
      h.clock.advance(1);
      assert.deepEqual(h.words(), ['D1'], `after ${wait} ms`);
    }
    h.clock.advance(3999);
    assert.equal(h.ends.length, 0);
    h.clock.advance(1);
    assert.deepEqual(h.words(), ['E0']);
    assert.equal(h.ends.length, 1);
    assert.equal(failure(h), 'timeout');
    assert.equal(h.transfer.stats.retransmissions, 5);
    assert.equal(h.clock.pending(), 0);
  });

  test('progress resets the backoff', async () => {
    const h = await started({ size: 5000, timeoutMs: 1000 });
    h.take();
    h.clock.advance(1000);
    h.clock.advance(1500);
    assert.deepEqual(h.words(), ['D1']);
    h.transfer.onAck(1);
    assert.deepEqual(h.words(), ['D2']);
    h.clock.advance(999);
    assert.deepEqual(h.words(), []);
    h.clock.advance(1);
    assert.deepEqual(h.words(), ['D2']);
  });

  test('ACKs keep the transfer alive however long it lasts', async () => {
    const h = await started({ size: 512 * 50, timeoutMs: 1000, retries: 1 });
    for (let block = 1; block < 50; block++) {
      h.clock.advance(900);
      assert.deepEqual(h.words(), [`D${block}`]);
      h.transfer.onAck(block);
    }
    assert.equal(h.ends.length, 0);
  });

  test('windowed: a timeout resends only the unacknowledged part of the window', async () => {
    const h = await started({ size: 512 * 20, windowsize: 4 });
    h.take();
    h.transfer.onAck(4);
    h.take();
    h.transfer.onAck(6); // mid-window ACK beyond the last retransmission: a gap report
    assert.deepEqual(h.words(), ['D7', 'D8', 'D9', 'D10']);
    h.clock.advance(1000);
    assert.deepEqual(h.words(), ['D7', 'D8', 'D9', 'D10']);
  });

  test('the OACK is retransmitted on timeout, and a silent client is given up on', async () => {
    const h = await started({ size: 100, oack: true, retries: 2 });
    assert.deepEqual(h.words(), ['OACK']);
    h.clock.advance(1000);
    assert.deepEqual(h.words(), ['OACK']);
    h.clock.advance(2000);
    assert.deepEqual(h.words(), ['OACK']);
    h.clock.advance(4000);
    assert.deepEqual(h.words(), ['E0']);
    assert.equal(failure(h), 'timeout');
    assert.equal(h.clock.pending(), 0);
  });
});

describe('tftp transfer: endings', () => {
  test("the client's ERROR after the OACK (option refusal, OVMF's tsize probe) ends it without an answer", async () => {
    const h = await started({ size: 100_000, oack: true, windowsize: 4 });
    assert.deepEqual(h.words(), ['OACK']);
    h.transfer.onError(8, 'option refused');
    assert.deepEqual(h.ends, [{ ok: false, reason: 'peer-error', detail: 'ERROR 8: option refused' }]);
    h.clock.advance(60_000);
    h.transfer.onAck(0);
    assert.deepEqual(h.words(), []);
    assert.equal(h.clock.pending(), 0);
  });

  test("the client's ERROR in the middle of the data ends it", async () => {
    const h = await started({ size: 100_000, windowsize: 4 });
    h.take();
    h.transfer.onAck(4);
    h.take();
    h.transfer.onError(3, 'disk full');
    h.transfer.onAck(8);
    h.clock.advance(60_000);
    assert.deepEqual(h.words(), []);
    assert.equal(h.ends.length, 1);
    assert.equal(h.transfer.finished, true);
  });

  test('cancel tells the client and stops everything', async () => {
    const h = await started({ size: 100_000, windowsize: 4 });
    h.take();
    h.transfer.cancel('the server is stopping', 'server shutting down');
    const [datagram] = h.take();
    assert.ok(datagram);
    assert.deepEqual(decode(datagram), { op: 'error', code: 0, message: 'server shutting down' });
    assert.equal(failure(h), 'cancelled');
    assert.equal(h.clock.pending(), 0);
    h.transfer.onAck(4);
    assert.deepEqual(h.words(), []);
  });

  test('a read that fails ends the transfer with ERROR 0', async () => {
    const h = await started({
      size: 0,
      source: { size: 1_000_000, read: () => Promise.reject(new Error('EIO: i/o error')) },
    });
    assert.deepEqual(h.words(), ['E0']);
    assert.deepEqual(h.ends, [{ ok: false, reason: 'read-error', detail: 'EIO: i/o error' }]);
    assert.equal(h.clock.pending(), 0);
  });

  test('a file shorter than its announced size ends the transfer with ERROR 0', async () => {
    const content = Buffer.alloc(1000, 1);
    const h = harness({
      size: 0,
      blksize: 512,
      source: { size: 5000, read: (offset, length) => Promise.resolve(content.subarray(offset, offset + length)) },
    });
    h.transfer.start();
    await settle();
    assert.deepEqual(h.words(), ['E0']);
    assert.equal(failure(h), 'read-error');
  });

  test('a slow read holds DATA back until it arrives; the timer runs from the first send', async () => {
    let release: (() => void) | undefined;
    const content = pattern(2000);
    const h = harness({
      size: 0,
      source: {
        size: content.length,
        read: (offset, length) =>
          new Promise((resolve) => {
            release = () => {
              resolve(content.subarray(offset, offset + length));
            };
          }),
      },
    });
    h.transfer.start();
    assert.deepEqual(h.words(), []);
    h.clock.advance(900);
    release?.();
    await settle();
    assert.deepEqual(h.words(), ['D1']);
    h.clock.advance(999);
    assert.deepEqual(h.words(), []);
    h.clock.advance(1);
    assert.deepEqual(h.words(), ['D1']);
  });
});
