/**
 * The storm's DHCP codec and script parser (node --test bench/storm/*.test.ts; not part of `pnpm test`, which covers
 * packages/ and test/). The replies below were built with scapy, and scapy parsed a REQUEST of this encoder into
 * exactly the options asserted here, so the codec is checked against a third implementation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseScript } from './client.ts';
import {
  decodeServerReply,
  encodeClientRequest,
  ipv4ToNumber,
  MalformedReply,
  MessageType,
  PARAMETERS,
} from './wire.ts';

// scapy: BOOTP(op=2, xid=0x0a0b0c0d, flags=0x8000, yiaddr='10.66.1.7', siaddr='10.66.0.1',
//   chaddr=bytes.fromhex('025301000007'), file=b'undionly.kpxe') / DHCP(options=[('message-type','offer'),
//   ('server_id','10.66.0.1'), ('lease_time',3600), ('vendor_class_id', b'PXEClient'), (175, b'\xb0\x01\x01'), 'end'])
const scapyOffer = Buffer.from(
  '020106000a0b0c0d00008000000000000a4201070a420001000000000253010000070000' +
    '0'.repeat(144) +
    '756e64696f6e6c792e6b707865' +
    '0'.repeat(230) +
    '6382536335010236040a420001330400000e103c09505845436c69656e74af03b00101ff',
  'hex',
);

// scapy: an ACK with option overload 52 = 1: the file field holds option 67 (the script URL), siaddr 0.
const url = 'http://10.66.0.1/boot/02-53-01-00-00-08.ipxe';
const scapyAck = Buffer.concat([
  Buffer.from('020106000102030400008000000000000a42010800000000000000000253010000080000', 'hex'),
  Buffer.alloc(72),
  Buffer.from([67, url.length]),
  Buffer.from(url),
  Buffer.from([0xff]),
  Buffer.alloc(128 - 3 - url.length),
  Buffer.from('6382536335010536040a420001340101ff', 'hex'),
]);

function options(bytes: Buffer): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  for (let at = 240; at < bytes.length;) {
    const code = bytes[at++] ?? 255;
    if (code === 0) continue;
    if (code === 255) break;
    const length = bytes[at++] ?? 0;
    found.set(code, bytes.subarray(at, at + length));
    at += length;
  }
  return found;
}

describe('bench storm DHCP codec', () => {
  test('reads an OFFER built by scapy: file field, siaddr, option 60, 175.176', () => {
    assert.equal(scapyOffer.length, 272);
    const reply = decodeServerReply(scapyOffer);
    assert.equal(reply.type, MessageType.OFFER);
    assert.equal(reply.xid, 0x0a0b0c0d);
    assert.equal(reply.macHex, '025301000007');
    assert.equal(reply.yiaddr, ipv4ToNumber('10.66.1.7'));
    assert.equal(reply.siaddr, ipv4ToNumber('10.66.0.1'));
    assert.equal(reply.serverId, ipv4ToNumber('10.66.0.1'));
    assert.equal(reply.bootFile, 'undionly.kpxe');
    assert.equal(reply.vendorClass, 'PXEClient');
    assert.equal(reply.noProxyDhcp, true);
  });

  test('reads option 67 from an overloaded file field', () => {
    const reply = decodeServerReply(scapyAck);
    assert.equal(reply.type, MessageType.ACK);
    assert.equal(reply.bootFile, url);
    assert.equal(reply.siaddr, 0);
    assert.equal(reply.noProxyDhcp, false);
  });

  test('a PXE ROM DISCOVER carries 60, 93, 94, 97 and its 55, no user class; the broadcast flag is set', () => {
    const mac = Uint8Array.of(2, 0x53, 1, 0, 0, 7);
    const uuid = new Uint8Array(16).fill(0xab);
    const bytes = encodeClientRequest({ type: MessageType.DISCOVER, kind: 'pxe', xid: 7, mac, uuid, secs: 2 });
    assert.ok(bytes.length >= 300);
    assert.equal(bytes.readUInt16BE(10), 0x8000);
    assert.equal(bytes.readUInt16BE(8), 2);
    assert.deepEqual(bytes.subarray(28, 34), Buffer.from(mac));
    const o = options(bytes);
    assert.deepEqual(o.get(53), Buffer.from([1]));
    assert.equal(o.get(60)?.toString(), 'PXEClient:Arch:00000:UNDI:002001');
    assert.deepEqual(o.get(93), Buffer.from([0, 0]));
    assert.deepEqual(o.get(94), Buffer.from([1, 2, 1]));
    assert.deepEqual(o.get(97), Buffer.from([0, ...uuid]));
    assert.deepEqual([...(o.get(55) ?? [])], PARAMETERS.pxe);
    assert.equal(o.has(77), false);
    assert.equal(o.has(175), false);
  });

  test('an iPXE REQUEST adds 77 iPXE, 175, 61, 50 and 54', () => {
    const mac = Uint8Array.of(2, 0x53, 1, 0, 0, 7);
    const bytes = encodeClientRequest({
      type: MessageType.REQUEST,
      kind: 'ipxe',
      xid: 0x11223344,
      mac,
      uuid: new Uint8Array(16),
      secs: 3,
      requestedAddress: ipv4ToNumber('10.66.1.7'),
      serverId: ipv4ToNumber('10.66.0.1'),
    });
    const o = options(bytes);
    assert.deepEqual(o.get(53), Buffer.from([3]));
    assert.equal(o.get(77)?.toString(), 'iPXE');
    assert.ok((o.get(175)?.length ?? 0) > 0);
    assert.deepEqual(o.get(61), Buffer.from([1, ...mac]));
    assert.deepEqual(o.get(50), Buffer.from([10, 66, 1, 7]));
    assert.deepEqual(o.get(54), Buffer.from([10, 66, 0, 1]));
    assert.deepEqual([...(o.get(55) ?? [])], PARAMETERS.ipxe);
  });

  test('refuses what a client must not accept', () => {
    assert.throws(() => decodeServerReply(scapyOffer.subarray(0, 200)), MalformedReply);
    const request = Buffer.from(scapyOffer);
    request[0] = 1;
    assert.throws(() => decodeServerReply(request), MalformedReply);
    const runaway = Buffer.from(scapyOffer);
    runaway[runaway.length - 5] = 40; // option 175's length past the end
    assert.throws(() => decodeServerReply(runaway), MalformedReply);
  });
});

describe('iPXE script parsing', () => {
  test("takes smeltd's installer script's kernel and initrd URLs", () => {
    const script = [
      '#!ipxe',
      'echo Smelt: installing x on 02:53:01:00:00:07: storm',
      'kernel http://10.66.0.1/boots/storm/kernel/vmlinuz initrd=initrd.img auto=true url=http://10.66.0.1/a/',
      'initrd http://10.66.0.1/boots/storm/initrd/0/initrd.img',
      'boot || goto failed',
      ':failed',
      'echo Smelt: the installer did not boot; trying again in 30 s',
      'sleep 30',
      'chain --replace --autofree http://10.66.0.1/boot/02-53-01-00-00-07.ipxe',
    ].join('\n');
    const parsed = parseScript(script, 'http://10.66.0.1/boot/x.ipxe');
    assert.equal(parsed.kernel, 'http://10.66.0.1/boots/storm/kernel/vmlinuz');
    assert.deepEqual(parsed.initrds, ['http://10.66.0.1/boots/storm/initrd/0/initrd.img']);
    assert.equal(parsed.says, 'Smelt: installing x on 02:53:01:00:00:07: storm');
  });

  test('skips options and resolves relative URLs', () => {
    const parsed = parseScript('kernel --name k vmlinuz a=b\ninitrd --name=i initrd.img\n', 'http://s/boot/x.ipxe');
    assert.equal(parsed.kernel, 'http://s/boot/vmlinuz');
    assert.deepEqual(parsed.initrds, ['http://s/boot/initrd.img']);
  });

  test('a hold or busy script has no kernel: it sleeps and chains to itself', () => {
    const hold = [
      '#!ipxe',
      'echo Smelt: busy installing other machines; 3 ahead of 02:53:01:00:00:be, asking again in 5 s',
      ':wait',
      'sleep 5',
      'chain --replace --autofree http://10.66.0.1/boot/02-53-01-00-00-be.ipxe || goto wait',
    ].join('\n');
    const parsed = parseScript(hold, 'http://10.66.0.1/');
    assert.equal(parsed.kernel, undefined);
    assert.equal(parsed.chain, 'http://10.66.0.1/boot/02-53-01-00-00-be.ipxe');
    assert.equal(parsed.sleepS, 5);
    assert.match(parsed.says, /^Smelt: busy installing/);
  });
});
