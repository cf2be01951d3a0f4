/**
 * Property tests of the DHCP codec over seeded random input: decode never throws, whatever it accepts re-encodes
 * to an equal packet, and encode keeps within maxSize while keeping the options it must. A failure prints the seed
 * and the input in hex so it can be replayed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTECTED_OPTIONS } from './option-layout.ts';
import { MalformedPacket, decode, encode, encodeDetailed } from './packet.ts';
import type { DhcpPacket } from './packet.ts';

/** xorshift32: small, fast and deterministic. */
function xorshift(seed: number): (bound: number) => number {
  let state = seed >>> 0 || 1;
  return (bound) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % bound;
  };
}
type Random = ReturnType<typeof xorshift>;

function randomBytes(random: Random, length: number): Buffer {
  const out = Buffer.allocUnsafe(length + 3);
  for (let i = 0; i < length; i += 4) out.writeUInt32LE(random(2 ** 32), i);
  return out.subarray(0, length);
}

/** Text of 1-255 latin1 codes, as sname/file may hold. */
function randomText(random: Random, max: number): string {
  if (random(2) === 0) return '';
  return String.fromCharCode(...Array.from({ length: 1 + random(max) }, () => 1 + random(255)));
}

function randomAddress(random: Random): string {
  return random(3) === 0 ? '0.0.0.0' : Array.from({ length: 4 }, () => random(256)).join('.');
}

function randomPacket(random: Random): DhcpPacket {
  const options = new Map<number, Buffer>();
  const count = random(25);
  for (let i = 0; i < count; i++) {
    const code = 1 + random(254);
    if (code === 52) continue;
    const size = PROTECTED_OPTIONS.includes(code) ? random(5) : random(10) === 0 ? random(700) : random(24);
    options.set(code, randomBytes(random, size));
  }
  if (random(2) === 0) options.set(53, Buffer.of(1 + random(8)));
  return {
    op: 1 + random(2),
    htype: random(256),
    hlen: random(17),
    hops: random(256),
    xid: random(2 ** 32),
    secs: random(65536),
    flags: random(2) * 0x8000,
    ciaddr: randomAddress(random),
    yiaddr: randomAddress(random),
    siaddr: randomAddress(random),
    giaddr: randomAddress(random),
    chaddr: randomBytes(random, 16),
    sname: randomText(random, 64),
    file: randomText(random, 128),
    options,
  };
}

/** Mostly well-formed options in bytes[start, end), with an occasional lie about a length. */
function fillOptions(random: Random, bytes: Buffer, start: number, end: number): void {
  let at = start;
  while (at < end) {
    const room = end - at - 2;
    // Option 52 rarely: a second one makes the packet malformed (plausible() writes the usual one).
    const code = random(200) === 0 ? 52 : random(256);
    if (room < 0 || code === 255) {
      bytes[at] = random(2) === 0 ? 255 : 0;
      break;
    }
    bytes[at] = code;
    if (code === 0) {
      at++;
      continue;
    }
    let length = code === 52 ? 1 : Math.min(random(16), room);
    if (random(60) === 0) length = random(256);
    bytes[at + 1] = length;
    if (code === 52) bytes[at + 2] = random(5);
    at += 2 + length;
  }
}

/** Bytes that get past the fixed-header checks, so that the option parser sees them. */
function plausible(random: Random): Buffer {
  const bytes = randomBytes(random, 240 + random(400));
  bytes[0] = 1 + random(2);
  bytes[2] = random(17);
  bytes.set([99, 130, 83, 99], 236);
  if (random(4) !== 0) {
    const overload = bytes.length >= 243 && random(3) === 0;
    if (overload) bytes.set([52, 1, random(5)], 240);
    fillOptions(random, bytes, overload ? 243 : 240, bytes.length);
    if (random(2) === 0) fillOptions(random, bytes, 108, 236);
    if (random(2) === 0) fillOptions(random, bytes, 44, 108);
  }
  return bytes;
}

function mutate(random: Random, original: Buffer): Buffer {
  const bytes = Buffer.from(original);
  const flips = random(3) === 0 ? 0 : 1 + random(8);
  for (let i = 0; i < flips; i++) {
    const at = random(bytes.length);
    bytes[at] = (bytes[at] ?? 0) ^ (1 << random(8));
  }
  if (flips === 0 || random(3) === 0) return bytes.subarray(0, random(bytes.length + 1));
  return bytes;
}

function same(actual: DhcpPacket, expected: DhcpPacket): void {
  assert.deepEqual(actual, expected);
  assert.deepEqual([...actual.options.keys()], [...expected.options.keys()]);
}

/** decode must not throw; a packet it returns must survive encode + decode unchanged. */
function check(bytes: Buffer, context: string): 'packet' | 'malformed' {
  let result: DhcpPacket | MalformedPacket;
  try {
    result = decode(bytes);
  } catch (error) {
    assert.fail(`decode threw ${String(error)} for ${context}: ${bytes.toString('hex')}`);
  }
  if (result instanceof MalformedPacket) {
    assert.equal(typeof result.reason, 'string');
    return 'malformed';
  }
  try {
    same(decode(encode(result, { maxSize: 65535 })) as DhcpPacket, result);
  } catch (error) {
    assert.fail(`round trip failed for ${context}: ${bytes.toString('hex')}\n${String(error)}`);
  }
  return 'packet';
}

test('random bytes: decode never throws, and what it accepts round-trips', () => {
  const random = xorshift(0x5eed1);
  const seen = { packet: 0, malformed: 0 };
  for (let i = 0; i < 20_000; i++) {
    const kind = i % 3;
    const bytes = kind === 0 ? randomBytes(random, random(700)) : plausible(random);
    seen[check(bytes, `seed 0x5eed1 iteration ${i}`)]++;
  }
  // Both outcomes must be exercised, or the property says nothing.
  assert.ok(seen.packet > 4000, `${seen.packet} packets`);
  assert.ok(seen.malformed > 2000, `${seen.malformed} malformed`);
});

test('truncated and bit-flipped valid packets: decode never throws, and what it accepts round-trips', () => {
  const random = xorshift(0xf1195);
  const seen = { packet: 0, malformed: 0 };
  for (let i = 0; i < 20_000; i++) {
    const encoded = encode(randomPacket(random), { maxSize: 576 + random(1000) });
    seen[check(mutate(random, encoded), `seed 0xf1195 iteration ${i}`)]++;
  }
  assert.ok(seen.packet > 2000, `${seen.packet} packets`);
  assert.ok(seen.malformed > 2000, `${seen.malformed} malformed`);
});

test('encode stays within maxSize, keeps the header and protected options, and keeps order', () => {
  const random = xorshift(0xc0de);
  for (let i = 0; i < 3000; i++) {
    const packet = randomPacket(random);
    for (const code of PROTECTED_OPTIONS) {
      if (packet.options.has(code) || random(2) === 0) packet.options.set(code, randomBytes(random, 1 + random(4)));
    }
    const maxSize = 300 + random(1300);
    const { bytes, dropped, overload } = encodeDetailed(packet, { maxSize });
    const context = `seed 0xc0de iteration ${i}, maxSize ${maxSize}`;
    assert.ok(bytes.length <= maxSize - 28, `${bytes.length} bytes, ${context}`);
    const decoded = decode(bytes);
    if (decoded instanceof MalformedPacket) assert.fail(`${decoded.reason}, ${context}`);
    const { options, ...header } = decoded;
    const { options: original, ...originalHeader } = packet;
    same({ ...header, options: new Map() }, { ...originalHeader, options: new Map() });
    const kept = [...original.keys()].filter((code) => !dropped.includes(code));
    assert.deepEqual([...options.keys()], kept, context);
    for (const code of kept) assert.deepEqual(options.get(code), original.get(code), context);
    assert.ok(
      dropped.every((code) => !PROTECTED_OPTIONS.includes(code)),
      context,
    );
    // Overload only into fields the packet left empty.
    if (overload & 1) assert.equal(packet.file, '', context);
    if (overload & 2) assert.equal(packet.sname, '', context);
  }
});
