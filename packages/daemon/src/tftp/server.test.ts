import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { configSchema } from '../config/schema.ts';
import type { Config } from '../config/schema.ts';
import { ListenError } from '../listen.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import type { Metrics } from '../metrics.ts';
import { PathRefusedError } from '../tree/tree.ts';
import type { FileTree, Peer, TreeFile } from '../tree/tree.ts';
import { manualClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { toNetascii } from './netascii.ts';
import { MalformedPacket, decode, encode } from './packet.ts';
import type { Packet } from './packet.ts';
import { setIntOption } from './gso-socket.ts';
import { gsoBlocks, interfaceMtuLookup, localAddresses, startTftpServer } from './server.ts';
import type { RunningTftpServer } from './server.ts';

// ---- fixtures ----

function pattern(size: number, seed = 1): Buffer {
  const content = Buffer.alloc(size);
  for (let i = 0; i < size; i++) content[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return content;
}

type Entry = Buffer | 'refuse' | 'throw';

interface MemoryTree extends FileTree {
  open: number;
  closed: number;
  peers: Peer[];
}

/** The virtual tree, in memory: a Buffer is a file, 'refuse' a forbidden path, 'throw' a broken source. */
function memoryTree(files: Record<string, Entry>): MemoryTree {
  const tree: MemoryTree = {
    open: 0,
    closed: 0,
    peers: [],
    resolve(path, peer) {
      tree.peers.push(peer);
      const entry = files[path];
      if (entry === undefined) return Promise.resolve(undefined);
      if (entry === 'refuse') return Promise.reject(new PathRefusedError(path, 'it leaves the tree'));
      if (entry === 'throw') return Promise.reject(new Error('the disk caught fire'));
      tree.open++;
      const file: TreeFile = {
        size: entry.length,
        read: (offset, length) => Promise.resolve(entry.subarray(offset, offset + length)),
        readInto: (target, offset) => Promise.resolve(entry.copy(target, 0, Math.min(offset, entry.length))),
        close: () => {
          tree.closed++;
          return Promise.resolve();
        },
      };
      return Promise.resolve(file);
    },
  };
  return tree;
}

const FILES = {
  'small.txt': Buffer.from('hello over tftp\n'),
  'one-meg.bin': pattern(1024 * 1024 + 333),
  'text.cfg': Buffer.from('default linux\nlabel linux\r\n  kernel vmlinuz\n'),
  'empty.bin': Buffer.alloc(0),
  'exact.bin': pattern(512 * 3),
  'secret/../../etc/passwd': 'refuse',
  'broken.bin': 'throw',
} satisfies Record<string, Entry>;

interface Running {
  server: RunningTftpServer;
  metrics: Metrics;
  tree: MemoryTree;
  logs: string[];
  to: { address: string; port: number };
}

const running: RunningTftpServer[] = [];
after(async () => {
  await Promise.all(running.map((server) => server.close()));
});

async function serve(
  tftp: Partial<Config['tftp']> = {},
  extra: {
    clock?: Clock;
    mtuFor?: (address: string) => number | undefined;
    files?: Record<string, Entry>;
    gso?: boolean;
    onGsoSocket?: (fd: number) => void;
  } = {},
): Promise<Running> {
  const config = configSchema.parse({
    address: '127.0.0.1',
    tftp: { listen: '127.0.0.1:0', ...tftp, ...(extra.gso === undefined ? {} : { gso: extra.gso }) },
  }).tftp;
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const metrics = createMetrics();
  const tree = memoryTree(extra.files ?? FILES);
  const server = await startTftpServer({
    config,
    tree,
    metrics,
    log: createLogger('debug', sink),
    mtuFor: extra.mtuFor ?? (() => undefined),
    ...(extra.clock ? { clock: extra.clock } : {}),
    ...(extra.onGsoSocket ? { onGsoSocket: extra.onGsoSocket } : {}),
  });
  running.push(server);
  const first = server.addresses[0];
  assert.ok(first);
  return { server, metrics, tree, logs, to: first };
}

// ---- a scriptable client ----

const show = (packet: Packet | MalformedPacket) => (packet instanceof MalformedPacket ? packet.reason : packet.op);

interface Received {
  packet: Packet | MalformedPacket;
  from: { address: string; port: number };
}

class Client {
  readonly socket: dgram.Socket;
  private readonly inbox: Received[] = [];
  /** The block number of every DATA `download` received from its transfer, in arrival order. */
  readonly dataBlocks: number[] = [];
  /** Called by `download` when the OACK arrives, before it answers with ACK 0. */
  onOack: (() => void) | undefined;
  private waiter: (() => void) | undefined;

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.inbox.push({ packet: decode(msg), from: { address: rinfo.address, port: rinfo.port } });
      this.waiter?.();
    });
  }

  static async open(address = '127.0.0.1'): Promise<Client> {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    const client = new Client(socket);
    clients.push(client);
    return client;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(datagram: Buffer | Packet, to: { address: string; port: number }): void {
    this.socket.send(Buffer.isBuffer(datagram) ? datagram : encode(datagram), to.port, to.address);
  }

  rrq(to: { address: string; port: number }, filename: string, options: [string, string][] = [], mode = 'octet') {
    this.send({ op: 'rrq', filename, mode, options: new Map(options) }, to);
  }

  /** The next datagram; the time limit only keeps a broken test from hanging. */
  async receive(): Promise<Received> {
    const deadline = Date.now() + 10_000;
    while (this.inbox.length === 0) {
      if (Date.now() > deadline) throw new Error(`client ${this.port}: nothing received`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const next = this.inbox.shift();
    assert.ok(next);
    return next;
  }

  async expectError(code: number): Promise<string> {
    const { packet } = await this.receive();
    if (packet instanceof MalformedPacket || packet.op !== 'error') assert.fail(`expected ERROR, got ${show(packet)}`);
    assert.equal(packet.code, code, packet.message);
    return packet.message;
  }

  /**
   * Reads a file the way a well-behaved client does: OACK → ACK 0, DATA in order, an ACK every `windowsize`
   * blocks and at the end. `hold` pauses before each ACK after `holdAfter` blocks.
   */
  async download(
    to: { address: string; port: number },
    filename: string,
    options: [string, string][] = [],
    mode = 'octet',
    beforeAck?: (block: number, tid: { address: string; port: number }) => Promise<void>,
  ): Promise<{ data: Buffer; oack?: ReadonlyMap<string, string>; tid: { address: string; port: number } }> {
    this.rrq(to, filename, options, mode);
    let tid: { address: string; port: number } | undefined;
    let oack: ReadonlyMap<string, string> | undefined;
    let blksize = 512;
    let windowsize = 1;
    const parts: Buffer[] = [];
    let expected = 1;
    let sinceAck = 0;
    for (;;) {
      const { packet, from } = await this.receive();
      if (tid && (from.port !== tid.port || from.address !== tid.address)) continue;
      if (packet instanceof MalformedPacket) assert.fail(packet.message);
      if (packet.op === 'error') throw new Error(`ERROR ${packet.code}: ${packet.message}`);
      if (packet.op === 'oack' && !tid) {
        tid = from;
        oack = packet.options;
        blksize = Number(packet.options.get('blksize') ?? 512);
        windowsize = Number(packet.options.get('windowsize') ?? 1);
        this.onOack?.();
        this.send({ op: 'ack', block: 0 }, tid);
        continue;
      }
      assert.equal(packet.op, 'data');
      tid ??= from;
      this.dataBlocks.push(packet.block);
      if (packet.block !== (expected & 0xffff)) continue;
      parts.push(Buffer.from(packet.data));
      expected++;
      sinceAck++;
      const final = packet.data.length < blksize;
      if (final || sinceAck === windowsize) {
        sinceAck = 0;
        await beforeAck?.(expected - 1, tid);
        this.send({ op: 'ack', block: (expected - 1) & 0xffff }, tid);
      }
      if (final) return { data: Buffer.concat(parts), tid, ...(oack ? { oack } : {}) };
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.close(() => {
        resolve();
      });
    });
  }
}

const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
});

/** Waits until a condition on the server's state holds (the time limit only keeps a broken test from hanging). */
async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const value = (r: Running, name: string, labels?: Record<string, string>) => r.metrics.value(name, labels);

// ---- tests ----

describe('tftp server: serving files', () => {
  test('a plain RRQ: lock-step from a fresh port on the address the request went to', async () => {
    const r = await serve();
    const client = await Client.open();
    const { data, tid, oack } = await client.download(r.to, 'one-meg.bin');
    assert.deepEqual(data, FILES['one-meg.bin']);
    assert.equal(oack, undefined);
    assert.equal(tid.address, '127.0.0.1');
    assert.notEqual(tid.port, r.to.port);
    await until('the transfer to end', () => value(r, 'smelt_tftp_transfers_completed_total') === 1);
    assert.equal(value(r, 'smelt_tftp_transfers_started_total'), 1);
    assert.ok(value(r, 'smelt_tftp_bytes_sent_total') > FILES['one-meg.bin'].length);
    assert.equal(value(r, 'smelt_tftp_transfers_active'), 0);
    assert.deepEqual(r.tree.peers, [{ address: '127.0.0.1', port: client.port }]);
    await until('the file to be closed', () => r.tree.closed === 1);
  });

  test('options: OACK with tsize, blksize, windowsize and timeout; a windowed transfer', async () => {
    const r = await serve();
    const client = await Client.open();
    const { data, oack } = await client.download(r.to, 'one-meg.bin', [
      ['tsize', '0'],
      ['blksize', '1468'],
      ['windowsize', '16'],
      ['timeout', '3'],
      ['multicast', ''],
    ]);
    assert.deepEqual(data, FILES['one-meg.bin']);
    assert.deepEqual(
      [...(oack ?? [])],
      [
        ['tsize', String(FILES['one-meg.bin'].length)],
        ['blksize', '1468'],
        ['windowsize', '16'],
        ['timeout', '3'],
      ],
    );
  });

  describe('windows in one syscall (UDP GSO)', () => {
    const file = FILES['one-meg.bin'];
    const blocks = Math.floor(file.length / 1468) + 1; // 715, the last short
    const options: [string, string][] = [
      ['blksize', '1468'],
      ['windowsize', '64'],
      // No retransmission on a slow machine: each block must arrive exactly once.
      ['timeout', '30'],
    ];
    const inOrder = Array.from({ length: blocks }, (_, i) => i + 1);

    test('a windowed transfer goes out in batched sends: every block exactly once, in order', async () => {
      const r = await serve({}, { gso: true });
      const client = await Client.open();
      const { data } = await client.download(r.to, 'one-meg.bin', options);
      assert.deepEqual(data, file);
      assert.deepEqual(client.dataBlocks, inOrder);
      await until('the transfer to end', () => value(r, 'smelt_tftp_transfers_completed_total') === 1);
      // Windows of 64 blocks: the first alone, then groups of 16, 16, 16 and 15 (GSO_MAX_GROUP); 11 full windows,
      // then 11 blocks: the first alone, 10 in one send.
      assert.equal(value(r, 'smelt_tftp_gso_sends_total'), 11 * 4 + 1);
      assert.equal(value(r, 'smelt_tftp_retransmissions_total'), 0);
      assert.equal(value(r, 'smelt_tftp_gso_fallbacks_total'), 0);
      assert.match(r.logs.join(''), /"gsoBlocks":16\b/);
    });

    test('turned off: the same transfer, one datagram per send', async () => {
      const r = await serve({}, { gso: false });
      const client = await Client.open();
      const { data } = await client.download(r.to, 'one-meg.bin', options);
      assert.deepEqual(data, file);
      assert.deepEqual(client.dataBlocks, inOrder);
      await until('the transfer to end', () => value(r, 'smelt_tftp_transfers_completed_total') === 1);
      assert.equal(value(r, 'smelt_tftp_gso_sends_total'), 0);
      assert.match(r.logs.join(''), /"gsoBlocks":0\b/);
    });

    test('lock-step and small blocks never batch', async () => {
      const r = await serve({}, { gso: true });
      for (const asked of [
        [['blksize', '1468']],
        [
          ['blksize', '256'],
          ['windowsize', '16'],
        ],
      ] as [string, string][][]) {
        const client = await Client.open();
        const { data } = await client.download(r.to, 'one-meg.bin', asked);
        assert.deepEqual(data, file);
      }
      await until('the transfers to end', () => value(r, 'smelt_tftp_transfers_completed_total') === 2);
      assert.equal(value(r, 'smelt_tftp_gso_sends_total'), 0);
    });

    // SO_NO_CHECK (no UDP checksum) makes the kernel refuse every send with EINVAL while UDP_SEGMENT is set.
    const SOL_SOCKET = 1;
    const SO_NO_CHECK = 11;

    test('the kernel refusing a window: one fallback, the window sent again block by block, the file intact', async () => {
      let fd = -1;
      const r = await serve({}, { gso: true, onGsoSocket: (d) => (fd = d) });
      const client = await Client.open();
      // Broken only after the OACK went out, so that the first window is what fails.
      client.onOack = () => {
        assert.equal(setIntOption(fd, SOL_SOCKET, SO_NO_CHECK, 1), undefined);
      };
      const { data } = await client.download(r.to, 'one-meg.bin', options);
      assert.deepEqual(data, file);
      assert.deepEqual(client.dataBlocks, inOrder, 'nothing of a refused send arrived; the resend did, once');
      await until('the transfer to end', () => value(r, 'smelt_tftp_transfers_completed_total') === 1);
      assert.equal(value(r, 'smelt_tftp_gso_fallbacks_total', { reason: 'send' }), 1);
      assert.equal(value(r, 'smelt_tftp_gso_sends_total'), 4, 'the first window (1, then 16 + 16 + 16 + 15), refused');
      assert.equal(value(r, 'smelt_tftp_retransmissions_total'), 64);
      const warnings = r.logs.filter((line) => line.includes('UDP GSO unavailable'));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /EINVAL/);
    });

    test('the kernel refusing even the OACK: it goes again at once, then every block once; warned once', async () => {
      const r = await serve(
        {},
        {
          gso: true,
          onGsoSocket: (fd) => {
            assert.equal(setIntOption(fd, SOL_SOCKET, SO_NO_CHECK, 1), undefined);
          },
        },
      );
      for (const done of [1, 2]) {
        const client = await Client.open();
        const { data } = await client.download(r.to, 'one-meg.bin', options);
        assert.deepEqual(data, file);
        assert.deepEqual(client.dataBlocks, inOrder);
        await until('the transfer to end', () => value(r, 'smelt_tftp_transfers_completed_total') === done);
        assert.equal(value(r, 'smelt_tftp_gso_fallbacks_total', { reason: 'send' }), done);
      }
      assert.equal(value(r, 'smelt_tftp_gso_sends_total'), 0);
      assert.equal(value(r, 'smelt_tftp_retransmissions_total'), 2, 'one OACK each');
      assert.equal(r.logs.filter((line) => line.includes('UDP GSO unavailable')).length, 1);
    });

    test('blocks per send: at most 16 (and 65507 bytes), none for lock-step, tiny or huge blocks', () => {
      assert.equal(gsoBlocks(1468, 16), 16);
      assert.equal(gsoBlocks(1468, 64), 16);
      assert.equal(gsoBlocks(1468, 8), 8);
      assert.equal(gsoBlocks(512, 64), 16);
      assert.equal(gsoBlocks(8192, 64), 7);
      assert.equal(gsoBlocks(32749, 64), 2);
      assert.equal(gsoBlocks(32750, 64), 0);
      assert.equal(gsoBlocks(65464, 64), 0);
      assert.equal(gsoBlocks(1468, 1), 0);
      assert.equal(gsoBlocks(511, 64), 0);
      assert.equal(gsoBlocks(512, 64, 517), 0, 'an OACK longer than a segment would be cut');
    });
  });

  test('small, empty and blksize-multiple files', async () => {
    const r = await serve();
    const client = await Client.open();
    for (const name of ['small.txt', 'empty.bin', 'exact.bin'] as const) {
      assert.deepEqual((await client.download(r.to, name)).data, FILES[name], name);
      assert.deepEqual((await client.download(r.to, name, [['windowsize', '2']])).data, FILES[name], name);
    }
  });

  test('netascii: the converted bytes, and tsize is their count', async () => {
    const r = await serve();
    const client = await Client.open();
    const { data, oack } = await client.download(r.to, 'text.cfg', [['tsize', '0']], 'NetASCII');
    const expected = toNetascii(FILES['text.cfg']);
    assert.deepEqual(data, expected);
    assert.equal(oack?.get('tsize'), String(expected.length));
  });

  test('blksize is capped by the MTU of the address the request arrived on', async () => {
    const asked: string[] = [];
    const r = await serve(
      {},
      {
        mtuFor: (address) => {
          asked.push(address);
          return 576;
        },
      },
    );
    const client = await Client.open();
    const { data, oack } = await client.download(r.to, 'one-meg.bin', [['blksize', '1468']]);
    assert.deepEqual(data, FILES['one-meg.bin']);
    assert.equal(oack?.get('blksize'), String(576 - 20 - 8 - 4));
    assert.deepEqual(asked, ['127.0.0.1']);
  });

  test("OVMF's pattern: a tsize probe aborted with ERROR, then a second RRQ that downloads", async () => {
    const r = await serve();
    const client = await Client.open();
    const options: [string, string][] = [
      ['tsize', '0'],
      ['blksize', '1468'],
      ['windowsize', '4'],
    ];
    client.rrq(r.to, 'one-meg.bin', options);
    const first = await client.receive();
    assert.ok(!(first.packet instanceof MalformedPacket) && first.packet.op === 'oack');
    assert.equal(first.packet.options.get('tsize'), String(FILES['one-meg.bin'].length));
    client.send({ op: 'error', code: 8, message: 'User aborted the transfer' }, first.from);
    await until(
      'the probe to end',
      () => value(r, 'smelt_tftp_transfers_failed_total', { reason: 'peer-error' }) === 1,
    );
    const second = await Client.open();
    assert.deepEqual((await second.download(r.to, 'one-meg.bin', options)).data, FILES['one-meg.bin']);
    assert.ok(r.logs.some((line) => line.includes('transfer ended by the client') && line.includes('User aborted')));
  });
});

describe('tftp server: refusals', () => {
  test('WRQ: ERROR 2, the server is read-only', async () => {
    const r = await serve();
    const client = await Client.open();
    client.send({ op: 'wrq', filename: 'upload.bin', mode: 'octet', options: new Map() }, r.to);
    assert.match(await client.expectError(2), /read-only/);
    assert.equal(value(r, 'smelt_tftp_requests_refused_total', { reason: 'write' }), 1);
  });

  test('a missing file: ERROR 1, logged with the peer', async () => {
    const r = await serve();
    const client = await Client.open();
    client.rrq(r.to, 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff');
    assert.equal(await client.expectError(1), 'file not found');
    await until('the log line', () => r.logs.some((line) => line.includes('file not found')));
    const line = r.logs.find((l) => l.includes('file not found')) ?? '';
    assert.match(line, new RegExp(`"peer":"127\\.0\\.0\\.1:${client.port}"`));
    assert.match(line, /"file":"pxelinux.cfg\/01-aa-bb-cc-dd-ee-ff"/);
  });

  test('a path the tree refuses: ERROR 2 access violation, logged as a warning with the peer and reason', async () => {
    const r = await serve();
    const client = await Client.open();
    client.rrq(r.to, 'secret/../../etc/passwd');
    assert.equal(await client.expectError(2), 'access violation: it leaves the tree');
    await until('the log line', () => r.logs.some((line) => line.includes('access violation')));
    const line = JSON.parse(r.logs.find((l) => l.includes('access violation')) ?? '{}') as Record<string, unknown>;
    assert.equal(line.level, 40);
    assert.equal(line.peer, `127.0.0.1:${client.port}`);
    assert.equal(line.reason, 'it leaves the tree');
    assert.equal(value(r, 'smelt_tftp_requests_refused_total', { reason: 'access' }), 1);
  });

  test('a tree that fails: ERROR 0, and the server goes on serving', async () => {
    const r = await serve();
    const client = await Client.open();
    client.rrq(r.to, 'broken.bin');
    await client.expectError(0);
    assert.deepEqual((await client.download(r.to, 'small.txt')).data, FILES['small.txt']);
  });

  test('an unsupported mode: ERROR 4', async () => {
    const r = await serve();
    const client = await Client.open();
    client.rrq(r.to, 'small.txt', [], 'mail');
    assert.match(await client.expectError(4), /mode/);
  });
});

describe('tftp server: hostile and broken datagrams', () => {
  test('garbage to the request port is counted by reason and dropped; the server still serves', async () => {
    const r = await serve();
    const client = await Client.open();
    const garbage: [Buffer, string][] = [
      [Buffer.alloc(0), 'truncated'],
      [Buffer.from([1]), 'truncated'],
      [Buffer.from([0, 9, 1, 2, 3]), 'opcode'],
      [Buffer.from('\0\x01no-terminator', 'latin1'), 'unterminated'],
      [Buffer.from(`\0\x01f\0octet\0${'a\0b\0'.repeat(5000)}`, 'latin1'), 'options'],
      [Buffer.from('\0\x01small.txt\0octet\0blksize\0lots\0', 'latin1'), 'option-value'],
      [Buffer.from('\0\x01small.txt\0octet\0tsize\0-1\0', 'latin1'), 'option-value'],
      [Buffer.from([0, 4, 0, 1]), 'unexpected-opcode'],
      [Buffer.from([0, 3, 0, 1, 65]), 'unexpected-opcode'],
      [Buffer.from('\0\x05\0\x01nope\0', 'latin1'), 'unexpected-opcode'],
    ];
    for (const [bytes] of garbage) client.send(bytes, r.to);
    const counts = new Map<string, number>();
    for (const [, reason] of garbage) counts.set(reason, (counts.get(reason) ?? 0) + 1);
    await until('every datagram to be counted', () =>
      [...counts].every(([reason, count]) => value(r, 'smelt_tftp_packets_dropped_total', { reason }) === count),
    );
    assert.deepEqual((await client.download(r.to, 'small.txt')).data, FILES['small.txt']);
    assert.equal(value(r, 'smelt_tftp_internal_errors_total'), 0);
  });

  test("a foreign TID gets ERROR 5 and the transfer completes intact; garbage from the peer doesn't disturb it", async () => {
    const r = await serve();
    const client = await Client.open();
    const stranger = await Client.open();
    let poked = false;
    const { data } = await client.download(r.to, 'one-meg.bin', [['windowsize', '4']], 'octet', async (block, tid) => {
      if (block !== 8 || poked) return;
      poked = true;
      // Someone else acknowledges blocks of our transfer.
      stranger.send({ op: 'ack', block: 12 }, tid);
      assert.equal(await stranger.expectError(5), 'Unknown transfer ID');
      // An ERROR from a stranger is never answered and ends nothing.
      stranger.send({ op: 'error', code: 0, message: 'go away' }, tid);
      // The peer itself sends nonsense.
      for (const bytes of [Buffer.alloc(0), Buffer.from([7]), Buffer.from([0, 3, 0, 1, 1]), Buffer.from([0, 99, 0])]) {
        client.send(bytes, tid);
      }
      await until(
        'the nonsense to be counted',
        () => value(r, 'smelt_tftp_packets_dropped_total', { reason: 'truncated' }) === 2,
      );
    });
    assert.ok(poked);
    assert.deepEqual(data, FILES['one-meg.bin']);
    assert.equal(value(r, 'smelt_tftp_packets_dropped_total', { reason: 'unknown-tid' }), 2);
    assert.equal(value(r, 'smelt_tftp_packets_dropped_total', { reason: 'unexpected-opcode' }), 1);
    assert.equal(value(r, 'smelt_tftp_packets_dropped_total', { reason: 'opcode' }), 1);
    await until('completion', () => value(r, 'smelt_tftp_transfers_completed_total') === 1);
  });

  test('a repeated RRQ while its transfer waits for the first answer does not start a second transfer', async () => {
    const r = await serve();
    const client = await Client.open();
    client.rrq(r.to, 'small.txt', [['tsize', '0']]);
    const first = await client.receive();
    client.rrq(r.to, 'small.txt', [['tsize', '0']]);
    await until(
      'the repeat to be dropped',
      () => value(r, 'smelt_tftp_packets_dropped_total', { reason: 'duplicate-request' }) === 1,
    );
    assert.equal(value(r, 'smelt_tftp_transfers_started_total'), 1);
    client.send({ op: 'ack', block: 0 }, first.from);
    const data = await client.receive();
    assert.ok(!(data.packet instanceof MalformedPacket) && data.packet.op === 'data');
    assert.deepEqual(data.from, first.from);
  });
});

describe('tftp server: admission', () => {
  test('per-peer cap: a second transfer from the same address waits, then completes; its repeats are deduplicated', async () => {
    const r = await serve({ maxPerPeer: 1 });
    const first = await Client.open();
    const second = await Client.open();
    let released: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      released = resolve;
    });
    const firstDone = first.download(r.to, 'one-meg.bin', [], 'octet', async (block) => {
      if (block === 1) await gate;
    });
    await until('the first transfer', () => value(r, 'smelt_tftp_transfers_started_total') === 1);
    second.rrq(r.to, 'small.txt');
    await until('the second request to queue', () => value(r, 'smelt_tftp_transfers_queued') === 1);
    second.rrq(r.to, 'small.txt');
    second.rrq(r.to, 'small.txt');
    await until(
      'the repeats to be dropped',
      () => value(r, 'smelt_tftp_packets_dropped_total', { reason: 'duplicate-request' }) === 2,
    );
    assert.equal(value(r, 'smelt_tftp_transfers_queued'), 1);
    assert.equal(value(r, 'smelt_tftp_transfers_started_total'), 1);
    released();
    assert.deepEqual((await firstDone).data, FILES['one-meg.bin']);
    // The queued request starts on its own: the client only has to listen.
    const { packet } = await second.receive();
    assert.ok(!(packet instanceof MalformedPacket) && packet.op === 'data');
    assert.deepEqual(packet.data, FILES['small.txt']);
    await until('two transfers', () => value(r, 'smelt_tftp_transfers_started_total') === 2);
    assert.equal(value(r, 'smelt_tftp_transfers_queued'), 0);
  });

  test('maxTransfers: requests from other clients queue in arrival order', async () => {
    const r = await serve({ maxTransfers: 1 });
    const holder = await Client.open('127.0.0.1');
    const b = await Client.open('127.0.0.2');
    const c = await Client.open('127.0.0.3');
    let released: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      released = resolve;
    });
    const held = holder.download(r.to, 'small.txt', [['tsize', '0']], 'octet', () => gate);
    await until('the first transfer', () => value(r, 'smelt_tftp_transfers_started_total') === 1);
    b.rrq(r.to, 'exact.bin');
    await until('b to queue', () => value(r, 'smelt_tftp_transfers_queued') === 1);
    c.rrq(r.to, 'small.txt');
    await until('c to queue', () => value(r, 'smelt_tftp_transfers_queued') === 2);
    released();
    await held;
    const first = await b.receive();
    assert.ok(!(first.packet instanceof MalformedPacket) && first.packet.op === 'data');
    assert.equal(value(r, 'smelt_tftp_transfers_queued'), 1, 'c still waits while b runs');
    // b finishes lock-step: ACK each block.
    let packet = first.packet;
    for (;;) {
      b.send({ op: 'ack', block: packet.block }, first.from);
      if (packet.data.length < 512) break;
      const next = await b.receive();
      assert.ok(!(next.packet instanceof MalformedPacket) && next.packet.op === 'data');
      packet = next.packet;
    }
    const forC = await c.receive();
    assert.ok(!(forC.packet instanceof MalformedPacket) && forC.packet.op === 'data');
    assert.deepEqual(forC.packet.data, FILES['small.txt']);
    assert.deepEqual(
      r.tree.peers.map((peer) => peer.address),
      ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
    );
  });

  test('a full queue: ERROR 0 "server busy"', async () => {
    const r = await serve({ maxTransfers: 1, maxQueue: 0 });
    const holder = await Client.open();
    holder.rrq(r.to, 'small.txt', [['tsize', '0']]);
    await holder.receive(); // the OACK: the transfer holds the only slot
    const late = await Client.open();
    late.rrq(r.to, 'small.txt');
    assert.match(await late.expectError(0), /busy/);
    assert.equal(value(r, 'smelt_tftp_requests_refused_total', { reason: 'busy' }), 1);
    const line = r.logs.find((l) => l.includes('queue is full'));
    assert.ok(line);
    assert.equal((JSON.parse(line) as { peer?: string }).peer, `127.0.0.1:${late.port}`);
  });

  test('a client that stops answering: retransmissions with backoff, then the slot is freed', async () => {
    const clock = manualClock();
    const r = await serve({ timeout: 1, retries: 3 }, { clock });
    const client = await Client.open();
    client.rrq(r.to, 'small.txt');
    const first = await client.receive();
    assert.ok(!(first.packet instanceof MalformedPacket) && first.packet.op === 'data');
    for (const wait of [1000, 2000, 4000]) {
      clock.advance(wait);
      const again = await client.receive();
      assert.ok(!(again.packet instanceof MalformedPacket) && again.packet.op === 'data' && again.packet.block === 1);
    }
    clock.advance(4000);
    assert.match(await client.expectError(0), /timed out/);
    await until('the slot to be freed', () => value(r, 'smelt_tftp_transfers_active') === 0);
    assert.equal(value(r, 'smelt_tftp_transfers_failed_total', { reason: 'timeout' }), 1);
    assert.equal(value(r, 'smelt_tftp_retransmissions_total'), 3);
    assert.equal(clock.pending(), 0);
    await until('the file to be closed', () => r.tree.closed === 1);
  });
});

describe('tftp server: sockets and lifecycle', () => {
  test('close() ends transfers with an ERROR and closes every socket, timer and file', async () => {
    const clock = manualClock();
    const r = await serve({}, { clock });
    const client = await Client.open();
    client.rrq(r.to, 'one-meg.bin', [['windowsize', '4']]);
    const oack = await client.receive();
    assert.ok(!(oack.packet instanceof MalformedPacket) && oack.packet.op === 'oack');
    const waiting = await Client.open();
    assert.ok(clock.pending() > 0);
    await r.server.close();
    assert.match(await client.expectError(0), /shutting down/);
    assert.equal(clock.pending(), 0);
    assert.equal(r.tree.open, 1);
    assert.equal(r.tree.closed, 1);
    assert.equal(value(r, 'smelt_tftp_transfers_active'), 0);
    // Both ports are free again: the listener's and the transfer's.
    for (const port of [r.to.port, oack.from.port]) {
      const probe = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.bind({ port, address: '127.0.0.1', exclusive: true }, resolve);
      });
      await new Promise<void>((resolve) => probe.close(resolve));
    }
    await r.server.close(); // twice is harmless
    waiting.rrq(r.to, 'small.txt');
  });

  test('after close() a process exits by itself: no handle is left open', async () => {
    const server = new URL('./server.ts', import.meta.url).href;
    const support = {
      config: new URL('../config/schema.ts', import.meta.url).href,
      log: new URL('../log.ts', import.meta.url).href,
      metrics: new URL('../metrics.ts', import.meta.url).href,
    };
    // Starts a server, lets a client begin a windowed transfer, closes both, and then just returns.
    const script = `
      import dgram from 'node:dgram';
      import { startTftpServer } from ${JSON.stringify(server)};
      import { configSchema } from ${JSON.stringify(support.config)};
      import { createLogger } from ${JSON.stringify(support.log)};
      import { createMetrics } from ${JSON.stringify(support.metrics)};
      const content = Buffer.alloc(1 << 20, 7);
      const tree = { resolve: async () => ({ size: content.length, read: async (o, l) => content.subarray(o, o + l), close: async () => {} }) };
      const config = configSchema.parse({ address: '127.0.0.1', tftp: { listen: '127.0.0.1:0' } }).tftp;
      const tftp = await startTftpServer({ config, tree, log: createLogger('silent'), metrics: createMetrics() });
      const client = dgram.createSocket('udp4');
      await new Promise((resolve) => client.bind(0, '127.0.0.1', resolve));
      const got = new Promise((resolve) => client.once('message', resolve));
      client.send(Buffer.from(${JSON.stringify(encode({ op: 'rrq', filename: 'f', mode: 'octet', options: new Map([['windowsize', '8']]) }).toString('hex'))}, 'hex'), tftp.addresses[0].port, '127.0.0.1');
      await got;
      await tftp.close();
      client.close();
      console.log('closed');
    `;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const guard = setTimeout(() => {
        child.kill();
        resolve(null);
      }, 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(guard);
        resolve(exitCode);
      });
    });
    assert.equal(code, 0, `the process did not exit by itself: ${output}`);
    assert.match(output, /closed/);
  });

  test('a wildcard listen binds every local IPv4 address, on one port', async () => {
    const r = await serve({ listen: '0.0.0.0:0' });
    const expected = localAddresses(4);
    assert.deepEqual(
      r.server.addresses.map((a) => a.address),
      expected,
    );
    assert.ok(expected.includes('127.0.0.1'));
    const ports = new Set(r.server.addresses.map((a) => a.port));
    assert.equal(ports.size, 1);
    const loopback = r.server.addresses.find((a) => a.address === '127.0.0.1');
    assert.ok(loopback);
    const client = await Client.open();
    const { data, tid } = await client.download(loopback, 'small.txt');
    assert.deepEqual(data, FILES['small.txt']);
    assert.equal(tid.address, '127.0.0.1');
  });

  const hasIpv6Loopback = Object.values(networkInterfaces()).some((infos) =>
    (infos ?? []).some((info) => info.address === '::1'),
  );
  test('IPv6', { skip: hasIpv6Loopback ? false : 'no ::1 here' }, async () => {
    const r = await serve({ listen: '[::1]:0' });
    assert.equal(r.to.address, '::1');
    const client = await Client.open('::1');
    const { data, tid } = await client.download(r.to, 'one-meg.bin', [
      ['blksize', '1428'],
      ['windowsize', '8'],
    ]);
    assert.deepEqual(data, FILES['one-meg.bin']);
    assert.equal(tid.address, '::1');
    await until('the log line', () => r.logs.some((line) => line.includes(`"peer":"[::1]:${client.port}"`)));
  });

  test('a port in use: a ListenError naming it', async () => {
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    const port = taken.address().port;
    try {
      await assert.rejects(
        serve({ listen: `127.0.0.1:${port}` }),
        (error: unknown) =>
          error instanceof ListenError &&
          error.message ===
            `cannot listen on 127.0.0.1:${port} for the TFTP server: the port is in use by another program`,
      );
    } finally {
      taken.close();
    }
  });

  test('interface MTUs come from the interface holding the address', () => {
    const lookup = interfaceMtuLookup({
      interfaces: () => ({
        lo: [
          { address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '', cidr: null },
          { address: '::1', family: 'IPv6', internal: true, netmask: '', mac: '', cidr: null, scopeid: 0 },
        ],
        eth0: [
          { address: '10.0.0.2', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '', cidr: null },
          { address: 'fe80::1', family: 'IPv6', internal: false, netmask: '', mac: '', cidr: null, scopeid: 2 },
        ],
      }),
      readMtu: (name) => (name === 'lo' ? 65536 : name === 'eth0' ? 1500 : undefined),
    });
    assert.equal(lookup('10.0.0.2'), 1500);
    assert.equal(lookup('fe80::1%eth0'), 1500);
    assert.equal(lookup('127.0.0.1'), 65536);
    assert.equal(lookup('192.0.2.1'), undefined);
  });

  test('interfaceMtuLookup: a stale table answers once more and is rebuilt after that call, not during it', async () => {
    let mtu = 1500;
    let builds = 0;
    const lookup = interfaceMtuLookup({
      ttlMs: 0,
      interfaces: () => {
        builds++;
        return {
          eth0: [
            { address: '10.0.0.2', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '', cidr: null },
          ],
        };
      },
      readMtu: () => mtu,
    });
    assert.equal(lookup('10.0.0.2'), 1500);
    assert.equal(builds, 1);
    mtu = 1400;
    await new Promise((resolve) => setTimeout(resolve, 2));
    assert.equal(lookup('10.0.0.2'), 1500, 'the stale table answers');
    assert.equal(builds, 1, 'no rebuild on the way to the answer');
    assert.equal(lookup('10.0.0.2'), 1500, 'one rebuild scheduled, not one per call');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(builds, 2);
    assert.equal(lookup('10.0.0.2'), 1400);
  });
});
