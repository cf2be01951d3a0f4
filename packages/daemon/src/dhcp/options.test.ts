import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Option,
  clientArchs,
  clientId,
  clientNdi,
  clientUuid,
  decodeEncapsulated,
  domainSearchValue,
  encodeEncapsulated,
  hostname,
  ipValue,
  ipsValue,
  ipxeSettings,
  isIpxe,
  maxMessageSize,
  messageType,
  messageTypeName,
  parameterList,
  parseDomainSearchValue,
  parsePxeVendor,
  pxeVendorValue,
  relayAgentInfo,
  requestedAddress,
  serverId,
  textValue,
  u16Value,
  u32Value,
  u8Value,
  userClasses,
  vendorClass,
} from './options.ts';
import { MalformedPacket, decode, emptyPacket, encode } from './packet.ts';
import type { DhcpPacket } from './packet.ts';

type Value = Buffer | number[] | string;

function bytes(value: Value): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
}

function packet(...entries: [number, Value][]): DhcpPacket {
  return { ...emptyPacket(), options: new Map(entries.map(([code, value]) => [code, bytes(value)])) };
}

const hex = (value: Buffer): string => value.toString('hex');

describe('dhcp options: readers', () => {
  test('messageType: one octet', () => {
    assert.equal(messageType(packet([53, [5]])), 5);
    assert.equal(messageType(packet([53, [1, 2]])), undefined);
    assert.equal(messageType(packet([53, []])), undefined);
    assert.equal(messageType(packet()), undefined);
    assert.equal(messageTypeName(3), 'request');
    assert.equal(messageTypeName(9), undefined);
  });

  test('requestedAddress and serverId: four octets', () => {
    assert.equal(requestedAddress(packet([50, [10, 0, 0, 5]])), '10.0.0.5');
    assert.equal(requestedAddress(packet([50, [10, 0, 0]])), undefined);
    assert.equal(serverId(packet([54, [192, 168, 1, 254]])), '192.168.1.254');
    assert.equal(serverId(packet([54, [1, 2, 3, 4, 5]])), undefined);
    assert.equal(serverId(packet()), undefined);
  });

  test('parameterList: the codes in order, [] when absent', () => {
    assert.deepEqual(parameterList(packet([55, [1, 3, 6, 175]])), [1, 3, 6, 175]);
    assert.deepEqual(parameterList(packet([55, []])), []);
    assert.deepEqual(parameterList(packet()), []);
  });

  test('maxMessageSize: uint16, never below 576', () => {
    assert.equal(maxMessageSize(packet([57, [0x05, 0xc0]])), 1472);
    assert.equal(maxMessageSize(packet([57, [0x01, 0x00]])), 576);
    assert.equal(maxMessageSize(packet([57, [0x05, 0xc0, 0]])), undefined);
    assert.equal(maxMessageSize(packet()), undefined);
  });

  test('vendorClass and hostname: latin1 text, trailing NULs dropped, control characters neutralised', () => {
    assert.equal(vendorClass(packet([60, 'PXEClient:Arch:00007:UNDI:003000'])), 'PXEClient:Arch:00007:UNDI:003000');
    assert.equal(vendorClass(packet([60, 'udhcp 1.35.0\0'])), 'udhcp 1.35.0');
    assert.equal(vendorClass(packet([60, [0]])), undefined);
    assert.equal(vendorClass(packet([60, []])), undefined);
    assert.equal(vendorClass(packet()), undefined);
    assert.equal(hostname(packet([12, 'node\x1b[2J\x07-1\x85é'])), 'node?[2J?-1?é');
    assert.equal(hostname(packet([12, 'web01'])), 'web01');
    assert.equal(hostname(packet()), undefined);
  });

  test('userClasses: RFC 3004 list when it parses exactly, else one raw string', () => {
    assert.deepEqual(userClasses(packet([77, 'iPXE'])), ['iPXE']);
    assert.deepEqual(userClasses(packet([77, '\x04iPXE\x03foo'])), ['iPXE', 'foo']);
    assert.deepEqual(userClasses(packet([77, '\x05iPXE'])), ['?iPXE']); // length 5 overruns: raw
    assert.deepEqual(userClasses(packet([77, '\x04iPXE\x00'])), ['?iPXE']); // a zero-length class is not RFC 3004
    assert.deepEqual(userClasses(packet([77, []])), []);
    assert.deepEqual(userClasses(packet()), []);
  });

  test('isIpxe: user class iPXE (either form) or option 175', () => {
    assert.equal(isIpxe(packet([77, 'iPXE'])), true);
    assert.equal(isIpxe(packet([77, '\x03foo\x04iPXE'])), true);
    assert.equal(isIpxe(packet([175, [19, 1, 1]])), true);
    assert.equal(isIpxe(packet([77, 'ipxe'])), false);
    assert.equal(isIpxe(packet([60, 'PXEClient:Arch:00000:UNDI:002001'])), false);
  });

  test('clientId: at least type and one octet', () => {
    assert.equal(
      hex(clientId(packet([61, [1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]])) ?? Buffer.alloc(0)),
      '01525400123456',
    );
    assert.equal(clientId(packet([61, [1]])), undefined);
    assert.equal(clientId(packet()), undefined);
  });

  test('clientArchs: a list of uint16', () => {
    assert.deepEqual(clientArchs(packet([93, [0, 7]])), [7]);
    assert.deepEqual(clientArchs(packet([93, [0, 0, 0, 0x0b, 0x01, 0x02]])), [0, 11, 0x102]);
    assert.deepEqual(clientArchs(packet([93, [0, 7, 1]])), []);
    assert.deepEqual(clientArchs(packet([93, []])), []);
    assert.deepEqual(clientArchs(packet()), []);
  });

  test('clientNdi: type, major, minor', () => {
    assert.deepEqual(clientNdi(packet([94, [1, 3, 16]])), { type: 1, major: 3, minor: 16 });
    assert.equal(clientNdi(packet([94, [1, 3]])), undefined);
    assert.equal(clientNdi(packet()), undefined);
  });

  test('clientUuid: first three fields little-endian on the wire (SMBIOS 2.6+ / EFI order)', () => {
    const sequential = [0, ...Array.from({ length: 16 }, (_, i) => i)];
    assert.equal(clientUuid(packet([97, sequential])), '03020100-0504-0706-0809-0a0b0c0d0e0f');
    // dmidecode prints 4C4C4544-0042-4E10-8051-B8C04F4B4D31 for these wire bytes (a Dell service-tag UUID).
    const dell = Buffer.from('0044454c4c4200104e8051b8c04f4b4d31', 'hex');
    assert.equal(clientUuid(packet([97, dell])), '4c4c4544-0042-4e10-8051-b8c04f4b4d31');
    assert.equal(clientUuid(packet([97, [1, ...sequential.slice(1)]])), undefined); // type 1
    assert.equal(clientUuid(packet([97, sequential.slice(0, 16)])), undefined); // 15-byte UUID
    assert.equal(clientUuid(packet([97, [...sequential, 0]])), undefined);
    assert.equal(clientUuid(packet()), undefined);
  });

  test('ipxeSettings: option 175 as sub-options, empty when absent or malformed', () => {
    const settings = ipxeSettings(packet([175, [235, 3, 1, 21, 0, 19, 1, 1]]));
    assert.deepEqual(
      [...settings].map(([code, value]) => [code, hex(value)]),
      [
        [235, '011500'],
        [19, '01'],
      ],
    );
    assert.equal(ipxeSettings(packet([175, [235, 3, 1]])).size, 0);
    assert.equal(ipxeSettings(packet()).size, 0);
  });

  test('relayAgentInfo: option 82 sub-options, undefined when absent or malformed', () => {
    const info = relayAgentInfo(packet([82, [1, 4, ...Buffer.from('eth0'), 2, 3, 0xaa, 0xbb, 0xcc]]));
    assert.equal(info?.get(1)?.toString(), 'eth0');
    assert.equal(hex(info.get(2) ?? Buffer.alloc(0)), 'aabbcc');
    assert.equal(relayAgentInfo(packet([82, [1, 4, 0x65]])), undefined);
    assert.equal(relayAgentInfo(packet()), undefined);
  });
});

describe('dhcp options: encapsulated options', () => {
  test('decode tolerates PAD and END, ignores what follows END, joins repeated codes', () => {
    const map = decodeEncapsulated(Buffer.from([0, 1, 2, 0xa, 0xb, 0, 1, 1, 0xc, 255, 7, 99]));
    assert.deepEqual(
      [...(map ?? [])].map(([code, value]) => [code, hex(value)]),
      [[1, '0a0b0c']],
    );
    assert.deepEqual(decodeEncapsulated(Buffer.alloc(0)), new Map());
    assert.equal(decodeEncapsulated(Buffer.from([1])), undefined);
    assert.equal(decodeEncapsulated(Buffer.from([1, 2, 0])), undefined);
  });

  test('encode writes code/length/value in order and splits values over 255 bytes', () => {
    const entries: [number, Buffer][] = [
      [177, Buffer.of(1)],
      [16, Buffer.alloc(0)],
    ];
    assert.equal(hex(encodeEncapsulated(entries)), 'b1010110' + '00');
    const long = Buffer.alloc(300, 7);
    const encoded = encodeEncapsulated([[9, long]]);
    assert.equal(encoded.length, 2 + 255 + 2 + 45);
    assert.deepEqual([encoded[0], encoded[1], encoded[257], encoded[258]], [9, 255, 9, 45]);
    assert.deepEqual(decodeEncapsulated(encoded)?.get(9), long);
    assert.throws(() => encodeEncapsulated([[0, Buffer.alloc(1)]]), RangeError);
    assert.throws(() => encodeEncapsulated([[255, Buffer.alloc(1)]]), RangeError);
  });
});

describe('dhcp options: PXE vendor options (43)', () => {
  const full = {
    discoveryControl: 3,
    bootServers: [{ type: 0x8000, addresses: ['192.168.1.100'] }],
    menu: [{ type: 0x8000, description: 'My Menu' }],
    prompt: { timeout: 10, text: 'Boot' },
  };
  const fullHex = '060103' + '08078000' + '01c0a80164' + '090a800007' + '4d79204d656e75' + '0a050a426f6f74' + 'ff';

  test('pxeVendorValue writes sub-options 6, 8, 9, 10 and END', () => {
    assert.equal(hex(pxeVendorValue(full)), fullHex);
    assert.equal(hex(pxeVendorValue({ discoveryControl: 8 })), '060108ff');
    assert.equal(hex(pxeVendorValue({})), 'ff');
  });

  test('parsePxeVendor reads them back', () => {
    assert.deepEqual(parsePxeVendor(Buffer.from(fullHex, 'hex')), full);
    // As a Raspberry Pi's proxyDHCP server sends it (dissected by Wireshark).
    const pi = Buffer.concat([
      Buffer.from('0601030a0400505845091400001152', 'hex'),
      Buffer.from('aspberry Pi Boot\xff', 'latin1'),
    ]);
    assert.deepEqual(parsePxeVendor(pi), {
      discoveryControl: 3,
      prompt: { timeout: 0, text: 'PXE' },
      menu: [{ type: 0, description: 'Raspberry Pi Boot' }],
    });
  });

  test('several servers and menu items; unknown sub-options are ignored', () => {
    const options = {
      bootServers: [
        { type: 0, addresses: ['10.0.0.2', '10.0.0.3'] },
        { type: 7, addresses: [] },
      ],
      menu: [
        { type: 0, description: 'local' },
        { type: 7, description: 'install' },
      ],
    };
    const value = Buffer.concat([Buffer.from([71, 4, 0, 0, 0, 0]), pxeVendorValue(options)]);
    assert.deepEqual(parsePxeVendor(value), options);
  });

  test('malformed sub-options make the whole value undefined', () => {
    assert.equal(parsePxeVendor(Buffer.from('06020303ff', 'hex')), undefined);
    assert.equal(parsePxeVendor(Buffer.from('0807000002c0a80164ff', 'hex')), undefined); // two addresses promised
    assert.equal(parsePxeVendor(Buffer.from('090400000561ff', 'hex')), undefined); // description overruns
    assert.equal(parsePxeVendor(Buffer.from('0a00ff', 'hex')), undefined);
    assert.equal(parsePxeVendor(Buffer.from('0605', 'hex')), undefined);
  });

  test('refuses what clients could not read', () => {
    assert.throws(() => pxeVendorValue({ discoveryControl: 256 }), RangeError);
    assert.throws(() => pxeVendorValue({ menu: [{ type: 0, description: 'x'.repeat(256) }] }), RangeError);
    assert.throws(() => pxeVendorValue({ prompt: { timeout: 0, text: 'p'.repeat(255) } }), RangeError);
    assert.throws(() => pxeVendorValue({ bootServers: [{ type: 0, addresses: ['10.0.0.300'] }] }), RangeError);
  });
});

describe('dhcp options: writers', () => {
  test('addresses', () => {
    assert.equal(hex(ipValue('10.0.0.1')), '0a000001');
    assert.equal(hex(ipsValue(['10.0.0.1', '255.255.255.0'])), '0a000001ffffff00');
    assert.equal(hex(ipsValue([])), '');
    for (const bad of ['10.0.0', '10.0.0.1.2', '256.0.0.1', '010.0.0.1', ' 10.0.0.1', '::1', '']) {
      assert.throws(() => ipValue(bad), RangeError, bad);
    }
  });

  test('integers, range-checked', () => {
    assert.equal(hex(u32Value(3600)), '00000e10');
    assert.equal(hex(u32Value(0xffffffff)), 'ffffffff');
    assert.equal(hex(u16Value(1500)), '05dc');
    assert.equal(hex(u8Value(7)), '07');
    assert.throws(() => u32Value(-1), RangeError);
    assert.throws(() => u32Value(2 ** 32), RangeError);
    assert.throws(() => u16Value(65536), RangeError);
    assert.throws(() => u8Value(1.5), RangeError);
  });

  test('text without a terminating NUL', () => {
    assert.equal(hex(textValue('ipxe.efi')), Buffer.from('ipxe.efi').toString('hex'));
    assert.equal(textValue('').length, 0);
  });
});

describe('dhcp options: domain search (RFC 3397)', () => {
  test('the RFC 3397 §3 example, with its compression pointer', () => {
    const value = domainSearchValue(['eng.apple.com.', 'marketing.apple.com.']);
    assert.equal(hex(value), '03656e67056170706c6503636f6d00' + '096d61726b6574696e67c004');
    assert.equal(value.length, 27);
    assert.deepEqual(parseDomainSearchValue(value), ['eng.apple.com', 'marketing.apple.com']);
  });

  test('a repeated name is one pointer; unrelated names are written whole', () => {
    const value = domainSearchValue(['example.com', 'lab.internal', 'example.com']);
    assert.equal(hex(value.subarray(-2)), 'c000');
    assert.deepEqual(parseDomainSearchValue(value), ['example.com', 'lab.internal', 'example.com']);
    assert.equal(domainSearchValue([]).length, 0);
  });

  test('refuses names that are not DNS names', () => {
    for (const bad of ['', '.', 'a..b', 'x'.repeat(64) + '.com', 'ümlaut.de', 'has space.com', 'a.'.repeat(128)]) {
      assert.throws(() => domainSearchValue([bad]), RangeError, bad);
    }
  });

  test('a list over 255 bytes travels as several option 119 instances and comes back whole', () => {
    const domains = Array.from({ length: 40 }, (_, i) => `site${i}.region${i % 3}.corp.example`);
    const value = domainSearchValue(domains);
    assert.ok(value.length > 255, `${value.length} bytes`);
    const reply = { ...emptyPacket(), options: new Map([[Option.domainSearch, value]]) };
    const decoded = decode(encode(reply, { maxSize: 1500 }));
    assert.ok(!(decoded instanceof MalformedPacket));
    assert.deepEqual(parseDomainSearchValue(decoded.options.get(Option.domainSearch) ?? Buffer.alloc(0)), domains);
  });

  test('parse rejects forward pointers, loops and truncation', () => {
    assert.equal(parseDomainSearchValue(Buffer.from('c000', 'hex')), undefined); // points at itself
    assert.equal(parseDomainSearchValue(Buffer.from('01610003626262c003', 'hex')), undefined); // at its own name
    assert.equal(parseDomainSearchValue(Buffer.from('0161c00500016200', 'hex')), undefined); // points forward
    assert.equal(parseDomainSearchValue(Buffer.from('0561626300', 'hex')), undefined); // label overruns
    assert.equal(parseDomainSearchValue(Buffer.from('01610080', 'hex')), undefined); // reserved label type
    assert.equal(parseDomainSearchValue(Buffer.from('0161', 'hex')), undefined); // no terminating zero
  });
});
