import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientArchs, clientNdi, clientUuid, ipxeSettings, isIpxe, messageType, userClasses } from './options.ts';
import { BOOTREPLY, MalformedPacket, decode, emptyPacket, encode, encodeDetailed, macOf } from './packet.ts';
import type { DhcpPacket } from './packet.ts';

/** One option on the wire: code, length, value. */
function tlv(code: number, value: Buffer | string | number[]): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  return Buffer.concat([Buffer.of(code, bytes.length), bytes]);
}

const MAC = Buffer.from('525400123456', 'hex');

/** A BOOTREQUEST assembled byte by byte, independently of encode(). */
function raw(options: Buffer, fields: { op?: number; hlen?: number; sname?: Buffer; file?: Buffer } = {}): Buffer {
  const out = Buffer.alloc(240 + options.length);
  out[0] = fields.op ?? 1;
  out[1] = 1;
  out[2] = fields.hlen ?? 6;
  out.writeUInt32BE(0x1234abcd, 4);
  out.writeUInt16BE(4, 8);
  MAC.copy(out, 28);
  fields.sname?.copy(out, 44);
  fields.file?.copy(out, 108);
  out.set([99, 130, 83, 99], 236);
  options.copy(out, 240);
  return out;
}

function decoded(bytes: Uint8Array): DhcpPacket {
  const packet = decode(bytes);
  if (packet instanceof MalformedPacket) assert.fail(`expected a packet, got ${packet.reason}`);
  return packet;
}

function malformed(bytes: Uint8Array): MalformedPacket {
  const packet = decode(bytes);
  assert.ok(packet instanceof MalformedPacket, 'expected MalformedPacket');
  return packet;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function withOptions(entries: [number, Buffer][], fields: Partial<DhcpPacket> = {}): DhcpPacket {
  return { ...emptyPacket(), ...fields, options: new Map(entries) };
}

function assertRoundTrip(packet: DhcpPacket, maxSize = 1500): void {
  const again = decoded(encode(packet, { maxSize }));
  // Options compared as Maps: a decoded packet holds an OptionList, these tests build theirs with a Map.
  assert.deepEqual({ ...again, options: new Map(again.options) }, { ...packet, options: new Map(packet.options) });
  assert.deepEqual([...again.options.keys()], [...packet.options.keys()]);
}

// SMBIOS UUID 4c4c4544-0042-4e10-8051-b8c04f4b4d31 as clients put it on the wire (first three fields swapped).
const UUID_WIRE = Buffer.from('0044454c4c4200104e8051b8c04f4b4d31', 'hex');
const OVMF_PRL = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97];
const IPXE_PRL = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, ...range(128, 135), 175, 203];

describe('dhcp packet: hand-built client packets', () => {
  const ovmf = raw(
    Buffer.concat([
      tlv(53, [1]),
      tlv(57, [0x05, 0xc0]),
      tlv(55, [...OVMF_PRL, ...range(128, 135)]),
      tlv(97, UUID_WIRE),
      tlv(94, [1, 3, 0]),
      tlv(93, [0, 7]),
      tlv(60, 'PXEClient:Arch:00007:UNDI:003000'),
      Buffer.of(255),
    ]),
  );

  test('an OVMF DISCOVER decodes field by field', () => {
    const packet = decoded(ovmf);
    assert.equal(packet.op, 1);
    assert.equal(packet.htype, 1);
    assert.equal(packet.hlen, 6);
    assert.equal(packet.xid, 0x1234abcd);
    assert.equal(packet.secs, 4);
    assert.equal(packet.flags, 0);
    assert.equal(packet.ciaddr, '0.0.0.0');
    assert.equal(packet.giaddr, '0.0.0.0');
    assert.equal(packet.chaddr.length, 16);
    assert.equal(macOf(packet), '52:54:00:12:34:56');
    assert.equal(packet.sname, '');
    assert.equal(packet.file, '');
    assert.deepEqual([...packet.options.keys()], [53, 57, 55, 97, 94, 93, 60]);
    assert.deepEqual([...(packet.options.get(55) ?? [])], [...OVMF_PRL, ...range(128, 135)]);
    assert.equal(messageType(packet), 1);
    assert.deepEqual(clientArchs(packet), [7]);
    assert.deepEqual(clientNdi(packet), { type: 1, major: 3, minor: 0 });
    assert.equal(clientUuid(packet), '4c4c4544-0042-4e10-8051-b8c04f4b4d31');
    assert.equal(packet.options.get(60)?.toString(), 'PXEClient:Arch:00007:UNDI:003000');
    assert.equal(isIpxe(packet), false);
  });

  test('re-encoding it gives back the same bytes', () => {
    assert.deepEqual(encode(decoded(ovmf), { maxSize: 1500 }), ovmf);
  });

  const ipxe = raw(
    Buffer.concat([
      tlv(53, [1]),
      tlv(57, [0x05, 0xc0]),
      tlv(93, [0, 0]),
      tlv(94, [1, 2, 1]),
      tlv(60, 'PXEClient:Arch:00000:UNDI:002001'),
      tlv(77, 'iPXE'),
      tlv(55, IPXE_PRL),
      tlv(
        175,
        Buffer.concat([tlv(177, [1, 0x80, 0x86, 0x10, 0x0e]), tlv(235, [1, 21, 0]), tlv(19, [1]), tlv(16, [1])]),
      ),
      tlv(61, Buffer.concat([Buffer.of(1), MAC])),
      tlv(97, UUID_WIRE),
      Buffer.of(255),
    ]),
  );

  test('an iPXE DISCOVER: user class iPXE and option 175', () => {
    const packet = decoded(ipxe);
    assert.equal(isIpxe(packet), true);
    assert.deepEqual(userClasses(packet), ['iPXE']);
    assert.deepEqual(clientArchs(packet), [0]);
    const settings = ipxeSettings(packet);
    assert.deepEqual([...settings.keys()], [177, 235, 19, 16]);
    assert.deepEqual([...(settings.get(235) ?? [])], [1, 21, 0]);
    assert.deepEqual([...(packet.options.get(55) ?? [])], IPXE_PRL);
    assert.deepEqual(encode(packet, { maxSize: 1500 }), ipxe);
  });

  test('PAD anywhere, a missing END, and whatever follows END', () => {
    const padded = decoded(raw(Buffer.from([0, 0, 53, 1, 3, 0, 12, 2, 0x61, 0x62])));
    assert.deepEqual(
      [...padded.options],
      [
        [53, Buffer.of(3)],
        [12, Buffer.from('ab')],
      ],
    );
    // After END, even bytes that would be a truncated option are ignored.
    const trailing = decoded(raw(Buffer.from([53, 1, 3, 255, 55, 200, 1])));
    assert.deepEqual([...trailing.options.keys()], [53]);
  });

  test('decode accepts any Uint8Array view and copies what it keeps', () => {
    const framed = Buffer.concat([Buffer.from('junk'), ovmf]);
    const view = new Uint8Array(framed.buffer, framed.byteOffset + 4, ovmf.length);
    const packet = decoded(view);
    assert.equal(clientUuid(packet), '4c4c4544-0042-4e10-8051-b8c04f4b4d31');
    framed.fill(0xee);
    assert.deepEqual([...(packet.options.get(93) ?? [])], [0, 7]);
    assert.equal(macOf(packet), '52:54:00:12:34:56');
  });
});

describe('dhcp packet: round trips', () => {
  test('every header field survives encode and decode', () => {
    const packet: DhcpPacket = {
      op: 2,
      htype: 6,
      hlen: 16,
      hops: 3,
      xid: 0xffffffff,
      secs: 65535,
      flags: 0x8000,
      ciaddr: '10.0.0.9',
      yiaddr: '10.0.0.100',
      siaddr: '10.0.0.2',
      giaddr: '192.168.255.254',
      chaddr: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
      sname: 'smelt.example',
      file: 'http://10.0.0.2/boot/52-54-00-12-34-56.ipxe',
      options: new Map([
        [53, Buffer.of(2)],
        [54, Buffer.of(10, 0, 0, 2)],
        [80, Buffer.alloc(0)],
        [224, Buffer.from('é latin1 ÿ', 'latin1')],
      ]),
    };
    assertRoundTrip(packet);
    assert.equal(macOf(packet), undefined);
  });

  test('emptyPacket is an Ethernet BOOTREPLY of 300 zero-padded bytes', () => {
    const packet = emptyPacket();
    assert.equal(packet.op, BOOTREPLY);
    assert.equal(macOf(packet), '00:00:00:00:00:00');
    const bytes = encode(packet);
    assert.equal(bytes.length, 300);
    assert.deepEqual([...bytes.subarray(236, 241)], [99, 130, 83, 99, 255]);
    assert.ok(bytes.subarray(241).every((octet) => octet === 0));
    assertRoundTrip(packet);
  });

  test('a short chaddr is zero-padded to 16 bytes', () => {
    const packet = decoded(encode({ ...emptyPacket(), chaddr: MAC }));
    assert.deepEqual(packet.chaddr, Buffer.concat([MAC, Buffer.alloc(10)]));
  });
});

describe('dhcp packet: option overload (RFC 2132 §9.3)', () => {
  test('decode reads the options field, then file, then sname, and joins split values in that order', () => {
    const packet = decoded(
      raw(Buffer.concat([tlv(52, [3]), tlv(53, [5]), tlv(200, 'abc'), Buffer.of(255)]), {
        file: Buffer.concat([tlv(200, 'def'), tlv(66, 'tftp'), Buffer.of(255)]),
        sname: Buffer.concat([tlv(200, 'ghi'), tlv(12, 'x')]), // no END: ends with the field
      }),
    );
    assert.equal(packet.sname, '');
    assert.equal(packet.file, '');
    assert.deepEqual([...packet.options.keys()], [53, 200, 66, 12]);
    assert.equal(packet.options.get(200)?.toString(), 'abcdefghi');
  });

  test('overload 1 leaves sname as text; an option 52 inside file is ignored', () => {
    const packet = decoded(
      raw(Buffer.concat([tlv(52, [1]), tlv(53, [1])]), {
        sname: Buffer.from('next-server'),
        file: Buffer.concat([tlv(52, [2]), tlv(67, 'pxelinux.0'), Buffer.of(255)]),
      }),
    );
    assert.equal(packet.sname, 'next-server');
    assert.equal(packet.file, '');
    assert.deepEqual([...packet.options.keys()], [53, 67]);
  });

  test('without overload, bytes in file after its NUL are not options', () => {
    const packet = decoded(raw(tlv(53, [1]), { file: Buffer.concat([Buffer.from('a\0'), tlv(67, 'x')]) }));
    assert.equal(packet.file, 'a');
    assert.deepEqual([...packet.options.keys()], [53]);
  });

  const big = (code: number, size: number): [number, Buffer] => [code, Buffer.alloc(size, code)];

  test('encode overflows into file when the options field is full', () => {
    const packet = withOptions([[53, Buffer.of(2)], [54, Buffer.of(10, 0, 0, 2)], big(43, 250), big(67, 100)]);
    const { bytes, overload, dropped } = encodeDetailed(packet);
    assert.equal(overload, 1);
    assert.deepEqual(dropped, []);
    assert.ok(bytes.length <= 548);
    assert.deepEqual([...bytes.subarray(240, 243)], [52, 1, 1]);
    assert.deepEqual([...bytes.subarray(108, 110)], [67, 100]);
    assert.equal(bytes[108 + 102], 255);
    assertRoundTrip(packet, 576);
  });

  test('then into sname', () => {
    const packet = withOptions([[53, Buffer.of(2)], big(43, 250), big(67, 100), big(66, 60)]);
    const { bytes, overload } = encodeDetailed(packet);
    assert.equal(overload, 3);
    assert.deepEqual([...bytes.subarray(44, 46)], [66, 60]);
    assert.equal(bytes[44 + 62], 255);
    assertRoundTrip(packet, 576);
  });

  test('never over a field the packet uses: file set means sname only', () => {
    const packet = withOptions([[53, Buffer.of(2)], big(43, 250), big(66, 60)], { file: 'undionly.kpxe' });
    const { bytes, overload } = encodeDetailed(packet);
    assert.equal(overload, 2);
    assert.equal(bytes.toString('latin1', 108, 121), 'undionly.kpxe');
    assertRoundTrip(packet, 576);
  });
});

describe('dhcp packet: RFC 3396 long options', () => {
  const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i % 251));

  test('a 600-byte value is written as 255 + 255 + 90 consecutive instances and joined again', () => {
    const packet = withOptions([
      [53, Buffer.of(5)],
      [120, long],
      [54, Buffer.of(10, 0, 0, 2)],
    ]);
    const bytes = encode(packet, { maxSize: 1500 });
    assert.deepEqual([...bytes.subarray(243, 245)], [120, 255]);
    assert.deepEqual([...bytes.subarray(243 + 257, 243 + 259)], [120, 255]);
    assert.deepEqual([...bytes.subarray(243 + 514, 243 + 516)], [120, 90]);
    assert.deepEqual([...bytes.subarray(243 + 606, 243 + 608)], [54, 4]);
    assertRoundTrip(packet);
  });

  test('instances of one code are concatenated even when other options sit between them', () => {
    const packet = decoded(raw(Buffer.concat([tlv(55, [1, 3]), tlv(53, [1]), tlv(55, [6]), tlv(55, [])])));
    assert.deepEqual([...packet.options.keys()], [55, 53]);
    assert.deepEqual([...(packet.options.get(55) ?? [])], [1, 3, 6]);
  });

  test('a value too long for the packet is dropped rather than cut', () => {
    const packet = withOptions([
      [53, Buffer.of(5)],
      [120, long],
    ]);
    const { bytes, dropped } = encodeDetailed(packet);
    assert.deepEqual(dropped, [120]);
    assert.deepEqual([...decoded(bytes).options.keys()], [53]);
  });
});

describe('dhcp packet: maxSize and minSize', () => {
  const sized = (size: number, code: number): [number, Buffer] => [code, Buffer.alloc(size, 1)];
  const full = withOptions(
    [
      [1, Buffer.of(255, 255, 255, 0)],
      [53, Buffer.of(2)],
      [3, Buffer.of(10, 0, 0, 1)],
      sized(250, 200),
      [51, Buffer.of(0, 0, 14, 16)],
      sized(10, 201),
      sized(250, 202),
      [54, Buffer.of(10, 0, 0, 2)],
    ],
    { sname: 'server', file: 'bootfile' },
  );

  test('maxSize counts the IP and UDP headers: 576 leaves 548 bytes of payload', () => {
    const big = withOptions([sized(250, 200), sized(250, 201), sized(250, 202)]);
    for (const maxSize of [576, 600, 1000]) {
      const bytes = encode({ ...big, sname: 'x', file: 'y' }, { maxSize });
      assert.ok(bytes.length <= maxSize - 28, `${bytes.length} bytes for maxSize ${maxSize}`);
    }
    assert.equal(encode(big, { maxSize: 1500 }).length, 240 + 3 * 252 + 1);
  });

  test('drops the latest inserted options first, never 53, 54, 1 or 51', () => {
    const { bytes, dropped } = encodeDetailed(full);
    assert.deepEqual(dropped, [202]);
    assert.ok(bytes.length <= 548);
    const packet = decoded(bytes);
    assert.deepEqual([...packet.options.keys()], [1, 53, 3, 200, 51, 201, 54]);
    assert.equal(packet.sname, 'server');
    assert.equal(packet.file, 'bootfile');
  });

  test('a smaller maxSize drops more, down to the protected options alone', () => {
    assert.deepEqual(encodeDetailed(full, { maxSize: 300 }).dropped, [202, 201, 200]);
    const { bytes, dropped } = encodeDetailed(full, { maxSize: 290 });
    assert.deepEqual(dropped, [202, 201, 200, 3]);
    assert.equal(bytes.length, 262);
    assert.deepEqual([...decoded(bytes).options.keys()], [1, 53, 51, 54]);
  });

  test('fits everything when the client allows it', () => {
    assert.deepEqual(encodeDetailed(full, { maxSize: 1500 }).dropped, []);
    assertRoundTrip(full);
  });

  test('throws when not even the protected options fit, or maxSize is absurd', () => {
    assert.throws(() => encode(withOptions([[53, Buffer.of(1)]]), { maxSize: 269 }), RangeError);
    assert.equal(encode(emptyPacket(), { maxSize: 269 }).length, 241);
    assert.throws(() => encode(emptyPacket(), { maxSize: 268 }), RangeError);
    assert.throws(() => encode(emptyPacket(), { maxSize: 576.5 }), RangeError);
  });

  test('pads to minSize, but never past maxSize', () => {
    assert.equal(encode(emptyPacket(), { minSize: 0 }).length, 241);
    assert.equal(encode(emptyPacket(), { minSize: 400 }).length, 400);
    assert.equal(encode(emptyPacket(), { minSize: 4000 }).length, 548);
  });
});

describe('dhcp packet: encode refuses what it cannot represent', () => {
  const cases: [string, Partial<DhcpPacket>][] = [
    ['a bad address', { yiaddr: '10.0.0.256' }],
    ['an address with leading zeros', { siaddr: '10.0.0.01' }],
    ['hlen over 16', { hlen: 17 }],
    ['chaddr over 16 bytes', { chaddr: Buffer.alloc(17) }],
    ['an xid over 32 bits', { xid: 2 ** 32 }],
    ['sname over 64 bytes', { sname: 'x'.repeat(65) }],
    ['file over 128 bytes', { file: 'x'.repeat(129) }],
    ['non-latin1 file', { file: 'boot€' }],
    ['NUL in sname', { sname: 'a\0b' }],
    ['option 52 in the map', { options: new Map([[52, Buffer.of(1)]]) }],
    ['option 0', { options: new Map([[0, Buffer.alloc(0)]]) }],
    ['option 255', { options: new Map([[255, Buffer.alloc(0)]]) }],
  ];
  for (const [name, fields] of cases) {
    test(name, () => {
      assert.throws(() => encode({ ...emptyPacket(), ...fields }), RangeError);
    });
  }
  test('a 64-byte sname and a 128-byte file fill their fields without NUL', () => {
    assertRoundTrip({ ...emptyPacket(), sname: 's'.repeat(64), file: 'f'.repeat(128) });
  });
});

describe('dhcp packet: malformed input', () => {
  const cases: [string, Buffer, string, MalformedPacket['kind']][] = [
    ['empty', Buffer.alloc(0), 'truncated: 0 bytes, fewer than the 240 of fixed header and magic cookie', 'short'],
    ['one byte short', raw(Buffer.alloc(0)).subarray(0, 239), 'truncated: 239 bytes, fewer than the 240', 'short'],
    ['no cookie', Buffer.alloc(300), 'bad magic cookie 0.0.0.0 (expected 99.130.83.99)', 'cookie'],
    ['op 0', raw(Buffer.alloc(0), { op: 0 }), 'op 0 is neither BOOTREQUEST (1) nor BOOTREPLY (2)', 'op'],
    ['op 3', raw(Buffer.alloc(0), { op: 3 }), 'op 3 is neither', 'op'],
    ['hlen 17', raw(Buffer.alloc(0), { hlen: 17 }), 'hlen 17 exceeds the 16-byte chaddr field', 'hlen'],
    [
      'an option past the end',
      raw(Buffer.from([53, 1, 1, 55, 20, 1, 2, 3, 4, 5])),
      'truncated option 55 at offset 243: length 20, 5 bytes left',
      'option',
    ],
    ['no length byte', raw(Buffer.from([53, 1, 1, 55])), 'truncated option 55 at offset 243: no length byte', 'option'],
    [
      'an option past the end of file',
      raw(tlv(52, [1]), { file: Buffer.from([12, 200]) }),
      'truncated option 12 at offset 108 (file field): length 200, 126 bytes left',
      'option',
    ],
    [
      'an option past the end of sname',
      raw(tlv(52, [3]), { file: Buffer.of(255), sname: Buffer.concat([Buffer.alloc(63), Buffer.of(12)]) }),
      'truncated option 12 at offset 107 (sname field): no length byte',
      'option',
    ],
    [
      'overload of two bytes',
      raw(tlv(52, [1, 1])),
      'invalid option overload (52): length 2, expected 1, 2 or 3',
      'overload',
    ],
    [
      'overload twice',
      raw(Buffer.concat([tlv(52, [1]), tlv(52, [1])])),
      'invalid option overload (52): length 2',
      'overload',
    ],
    ['empty overload', raw(tlv(52, [])), 'invalid option overload (52): length 0', 'overload'],
    ['overload 0', raw(tlv(52, [0])), 'invalid option overload (52): value 0, expected 1, 2 or 3', 'overload'],
    ['overload 4', raw(tlv(52, [4])), 'invalid option overload (52): value 4', 'overload'],
  ];
  for (const [name, bytes, reason, kind] of cases) {
    test(name, () => {
      const result = malformed(bytes);
      assert.ok(result.reason.startsWith(reason), result.reason);
      assert.equal(result.kind, kind);
      assert.equal(result.length, bytes.length);
    });
  }

  test('MalformedPacket is a value, not an Error', () => {
    const result = malformed(Buffer.alloc(10));
    assert.ok(!(result instanceof Error));
    assert.equal(String(result), 'malformed DHCP packet (10 bytes): ' + result.reason);
    assert.equal(new MalformedPacket('odd', 3).kind, 'other');
  });
});
