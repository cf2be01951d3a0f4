import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MAX_OPTIONS, MalformedPacket, decode, encode, errorPacket, writeDataHeader } from './packet.ts';
import type { Packet, RequestPacket } from './packet.ts';

const testdata = join(import.meta.dirname, 'testdata');

/** A fixture: `#` comment lines saying where it came from, then the datagram in hex. */
function fixture(name: string): Buffer {
  const hex = readFileSync(join(testdata, name), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('')
    .trim();
  return Buffer.from(hex, 'hex');
}

function decoded(bytes: Buffer): Packet {
  const packet = decode(bytes);
  if (packet instanceof MalformedPacket) assert.fail(`expected a packet, got ${packet.message}`);
  return packet;
}

function request(bytes: Buffer): RequestPacket {
  const packet = decoded(bytes);
  assert.ok(packet.op === 'rrq' || packet.op === 'wrq', `expected a request, got ${packet.op}`);
  return packet;
}

function malformed(bytes: Buffer): MalformedPacket {
  const packet = decode(bytes);
  assert.ok(packet instanceof MalformedPacket, `expected MalformedPacket, got ${JSON.stringify(packet)}`);
  return packet;
}

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('tftp packet: golden datagrams from real clients', () => {
  const golden: [string, Omit<RequestPacket, 'options'> & { options: [string, string][] }][] = [
    [
      'rrq-curl-blksize.hex',
      {
        op: 'rrq',
        filename: 'file',
        mode: 'octet',
        options: [
          ['tsize', '0'],
          ['blksize', '1468'],
          ['timeout', '6'],
        ],
      },
    ],
    [
      'rrq-curl-default.hex',
      {
        op: 'rrq',
        filename: 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff',
        mode: 'octet',
        options: [
          ['tsize', '0'],
          ['blksize', '512'],
          ['timeout', '6'],
        ],
      },
    ],
    ['rrq-curl-no-options.hex', { op: 'rrq', filename: 'boot/vmlinuz', mode: 'octet', options: [] }],
    [
      'rrq-atftp-windowsize.hex',
      {
        op: 'rrq',
        filename: 'file',
        mode: 'octet',
        options: [
          ['tsize', '0'],
          ['blksize', '1468'],
          ['windowsize', '16'],
        ],
      },
    ],
    ['rrq-tftp-hpa-netascii.hex', { op: 'rrq', filename: 'file', mode: 'netascii', options: [] }],
    ['rrq-tftp-hpa-octet.hex', { op: 'rrq', filename: 'file', mode: 'octet', options: [] }],
    [
      'rrq-ovmf.hex',
      {
        op: 'rrq',
        filename: 'ipxe.efi',
        mode: 'octet',
        options: [
          ['tsize', '0'],
          ['blksize', '1468'],
          ['windowsize', '4'],
        ],
      },
    ],
  ];

  test('every fixture in testdata is covered', () => {
    const files = readdirSync(testdata).filter((name) => name.endsWith('.hex'));
    const covered = [...golden.map(([name]) => name), 'ack-curl.hex', 'ack-atftp.hex'];
    assert.deepEqual(files.sort(), covered.sort());
  });

  for (const [name, expected] of golden) {
    test(`${name} decodes and encodes back to the same bytes`, () => {
      const bytes = fixture(name);
      const packet = request(bytes);
      assert.deepEqual({ ...packet, options: [...packet.options] }, expected);
      assert.deepEqual(encode(packet), bytes);
    });
  }

  test('ACKs from curl and atftp', () => {
    for (const name of ['ack-curl.hex', 'ack-atftp.hex']) {
      const bytes = fixture(name);
      assert.deepEqual(decoded(bytes), { op: 'ack', block: 1 });
      assert.deepEqual(encode({ op: 'ack', block: 1 }), bytes);
    }
  });
});

describe('tftp packet: decoding', () => {
  test('option names and the mode are case-insensitive; values are kept as sent', () => {
    const packet = request(
      Buffer.from('\0\x01File.BIN\0OcTeT\0BLKSIZE\x001468\0WindowSize\x004\0TSize\x000\0', 'latin1'),
    );
    assert.equal(packet.filename, 'File.BIN');
    assert.equal(packet.mode, 'octet');
    assert.deepEqual(
      [...packet.options],
      [
        ['blksize', '1468'],
        ['windowsize', '4'],
        ['tsize', '0'],
      ],
    );
    assert.equal(request(Buffer.from('\0\x01f\0NETASCII\0', 'latin1')).mode, 'netascii');
  });

  test('a repeated option keeps its first value', () => {
    const packet = request(Buffer.from('\0\x01f\0octet\0blksize\x00512\0BlkSize\x001468\0', 'latin1'));
    assert.deepEqual([...packet.options], [['blksize', '512']]);
  });

  test('a WRQ decodes as a write request', () => {
    assert.equal(request(Buffer.from('\0\x02f\0octet\0', 'latin1')).op, 'wrq');
  });

  test('UTF-8 filenames', () => {
    const bytes = Buffer.concat([Buffer.from([0, 1]), Buffer.from('grüße/ファイル\0octet\0', 'utf8')]);
    assert.equal(request(bytes).filename, 'grüße/ファイル');
    assert.deepEqual(encode(request(bytes)), bytes);
  });

  test('DATA, ACK, ERROR and OACK', () => {
    assert.deepEqual(decoded(Buffer.from([0, 3, 0xff, 0xff, 1, 2, 3])), {
      op: 'data',
      block: 65535,
      data: Buffer.from([1, 2, 3]),
    });
    assert.deepEqual(decoded(Buffer.from([0, 3, 0, 0])), { op: 'data', block: 0, data: Buffer.alloc(0) });
    assert.deepEqual(decoded(Buffer.from([0, 4, 1, 2])), { op: 'ack', block: 258 });
    assert.deepEqual(decoded(Buffer.from('\0\x05\0\x08option refused\0', 'latin1')), {
      op: 'error',
      code: 8,
      message: 'option refused',
    });
    const oack = decoded(Buffer.from('\0\x06tsize\x00123\0blksize\x001468\0', 'latin1'));
    assert.equal(oack.op, 'oack');
    assert.deepEqual(
      [...oack.options],
      [
        ['tsize', '123'],
        ['blksize', '1468'],
      ],
    );
  });

  test('an ERROR without its terminating NUL is still an ERROR (it ends the transfer either way)', () => {
    assert.deepEqual(decoded(Buffer.from('\0\x05\0\x00abort', 'latin1')), { op: 'error', code: 0, message: 'abort' });
    assert.deepEqual(decoded(Buffer.from([0, 5, 0, 3])), { op: 'error', code: 3, message: '' });
  });

  test('an ACK with trailing bytes is an ACK', () => {
    assert.deepEqual(decoded(Buffer.from([0, 4, 0, 7, 0, 0])), { op: 'ack', block: 7 });
  });
});

describe('tftp packet: malformed and hostile datagrams', () => {
  const cases: [string, Buffer, MalformedPacket['reason']][] = [
    ['empty', Buffer.alloc(0), 'truncated'],
    ['one byte', Buffer.from([0]), 'truncated'],
    ['opcode 0', Buffer.from([0, 0, 1, 2]), 'opcode'],
    ['opcode 7', Buffer.from([0, 7, 1, 2]), 'opcode'],
    ['opcode 0xffff', Buffer.from([0xff, 0xff]), 'opcode'],
    ['RRQ with nothing after the opcode', Buffer.from([0, 1]), 'unterminated'],
    ['RRQ filename without NUL', Buffer.from('\0\x01file', 'latin1'), 'unterminated'],
    ['RRQ mode without NUL', Buffer.from('\0\x01file\0octet', 'latin1'), 'unterminated'],
    ['RRQ option without a value', Buffer.from('\0\x01f\0octet\0blksize\0', 'latin1'), 'options'],
    ['RRQ option value without NUL', Buffer.from('\0\x01f\0octet\0blksize\x00512', 'latin1'), 'unterminated'],
    ['RRQ option name without NUL', Buffer.from('\0\x01f\0octet\0blksize', 'latin1'), 'unterminated'],
    ['RRQ empty option name', Buffer.from('\0\x01f\0octet\0\x00512\0', 'latin1'), 'options'],
    ['DATA of 3 bytes', Buffer.from([0, 3, 0]), 'truncated'],
    ['ACK of 2 bytes', Buffer.from([0, 4]), 'truncated'],
    ['ACK of 3 bytes', Buffer.from([0, 4, 0]), 'truncated'],
    ['ERROR of 3 bytes', Buffer.from([0, 5, 0]), 'truncated'],
    ['OACK with a dangling name', Buffer.from('\0\x06tsize\0', 'latin1'), 'options'],
  ];
  for (const [what, bytes, reason] of cases) {
    test(`${what}: ${reason}`, () => {
      assert.equal(malformed(bytes).reason, reason);
    });
  }

  test(`more than ${MAX_OPTIONS} options are refused without parsing them all`, () => {
    const pairs = (count: number) => Array.from({ length: count }, (_, i) => `o${i}\0${i}\0`).join('');
    assert.equal(request(Buffer.from(`\0\x01f\0octet\0${pairs(MAX_OPTIONS)}`, 'latin1')).options.size, MAX_OPTIONS);
    assert.equal(malformed(Buffer.from(`\0\x01f\0octet\0${pairs(MAX_OPTIONS + 1)}`, 'latin1')).reason, 'options');
    // The largest datagram UDP carries, full of tiny options.
    assert.equal(malformed(Buffer.from(`\0\x01f\0octet\0${'a\0b\0'.repeat(16000)}`, 'latin1')).reason, 'options');
  });

  test('every prefix of every fixture decodes without throwing: malformed, or a request with fewer options', () => {
    for (const name of readdirSync(testdata).filter((file) => file.endsWith('.hex'))) {
      const bytes = fixture(name);
      for (let length = 0; length < bytes.length; length++) {
        const prefix = bytes.subarray(0, length);
        const packet = decode(prefix);
        if (packet instanceof MalformedPacket) continue;
        // Only a cut right after a NUL that ends the mode or an option value leaves a valid request.
        assert.ok(packet.op === 'rrq' && prefix[length - 1] === 0, `${name} cut at ${length}: ${packet.op}`);
        assert.deepEqual(encode(packet), prefix);
        assert.ok(packet.options.size < request(bytes).options.size);
      }
    }
  });

  test('random bytes and mutated fixtures: decode returns a packet or a MalformedPacket, never throws', () => {
    const next = random(0x7f7f);
    const seeds = readdirSync(testdata)
      .filter((file) => file.endsWith('.hex'))
      .map(fixture);
    const reasons = new Set<string>();
    let packets = 0;
    for (let i = 0; i < 20000; i++) {
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = Buffer.alloc(Math.floor(next() * 80));
        for (let j = 0; j < bytes.length; j++) bytes[j] = next() < 0.3 ? 0 : Math.floor(next() * 256);
        if (bytes.length >= 2 && next() < 0.8) bytes.writeUInt16BE(1 + Math.floor(next() * 6), 0);
      } else {
        const seed = seeds[Math.floor(next() * seeds.length)] ?? Buffer.alloc(0);
        bytes = Buffer.from(seed);
        const flips = 1 + Math.floor(next() * 4);
        for (let f = 0; f < flips && bytes.length > 0; f++) {
          bytes[Math.floor(next() * bytes.length)] = next() < 0.5 ? 0 : Math.floor(next() * 256);
        }
        bytes = bytes.subarray(0, Math.floor(next() * (bytes.length + 1)));
      }
      let packet: Packet | MalformedPacket;
      try {
        packet = decode(bytes);
      } catch (error) {
        assert.fail(`decode threw on ${bytes.toString('hex')}: ${String(error)}`);
      }
      if (packet instanceof MalformedPacket) reasons.add(packet.reason);
      else packets++;
    }
    // The generator reaches both outcomes and every kind of malformation.
    assert.ok(packets > 1000, `only ${packets} valid packets`);
    assert.deepEqual([...reasons].sort(), ['opcode', 'options', 'truncated', 'unterminated']);
  });
});

describe('tftp packet: encoding', () => {
  test('round trips', () => {
    const packets: Packet[] = [
      { op: 'rrq', filename: 'a/b', mode: 'octet', options: new Map([['blksize', '8']]) },
      { op: 'wrq', filename: 'x', mode: 'netascii', options: new Map() },
      { op: 'data', block: 65535, data: Buffer.from('hello') },
      { op: 'data', block: 0, data: Buffer.alloc(0) },
      { op: 'ack', block: 0 },
      { op: 'ack', block: 65535 },
      { op: 'error', code: 5, message: 'Unknown transfer ID' },
      {
        op: 'oack',
        options: new Map([
          ['tsize', '31457280'],
          ['blksize', '1468'],
        ]),
      },
    ];
    for (const packet of packets) assert.deepEqual(decode(encode(packet)), packet);
  });

  test('the exact bytes of an ERROR and an OACK', () => {
    assert.deepEqual(errorPacket(1, 'file not found'), Buffer.from('\0\x05\0\x01file not found\0', 'latin1'));
    assert.deepEqual(
      encode({ op: 'oack', options: new Map([['tsize', '42']]) }),
      Buffer.from('\0\x06tsize\x0042\0', 'latin1'),
    );
  });

  test('DATA headers carry the block number modulo 65536', () => {
    const out = Buffer.alloc(12);
    writeDataHeader(out, 0, 65535);
    writeDataHeader(out, 4, 65536);
    writeDataHeader(out, 8, 65536 * 3 + 258);
    assert.deepEqual([...out], [0, 3, 0xff, 0xff, 0, 3, 0, 0, 0, 3, 1, 2]);
  });
});
