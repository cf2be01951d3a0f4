/**
 * The load generator's codec (run by `pnpm test` with every bench test). The OFFER below was built with scapy, so the
 * codec is checked against a third implementation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeServerReply, encodeClientMessage, ipv4ToNumber, MalformedReply, MessageType } from './wire.ts';

// scapy: BOOTP(op=2, xid=0x01020304, flags=0x8000, yiaddr='10.64.1.7', siaddr='10.64.0.1',
//   chaddr=bytes.fromhex('027301000007')) / DHCP(options=[('message-type','offer'), ('server_id','10.64.0.1'),
//   ('lease_time',3600), ('subnet_mask','255.255.0.0'), 'end'])
const scapyOffer = Buffer.from(
  '020106000102030400008000000000000a4001070a40000100000000027301000007' +
    '0'.repeat(404) +
    '6382536335010236040a400001330400000e100104ffff0000ff',
  'hex',
);

describe('bench DHCP codec', () => {
  test('decodes an OFFER built by scapy', () => {
    const reply = decodeServerReply(scapyOffer);
    assert.equal(reply.type, MessageType.OFFER);
    assert.equal(reply.xid, 0x01020304);
    assert.equal(reply.macHex, '027301000007');
    assert.equal(reply.yiaddr, ipv4ToNumber('10.64.1.7'));
    assert.equal(reply.serverId, ipv4ToNumber('10.64.0.1'));
    assert.equal(reply.leaseTime, 3600);
    assert.equal(reply.flags, 0x8000);
  });

  test('encodes a relayed REQUEST with options 50 and 54, padded to 300 bytes', () => {
    const bytes = encodeClientMessage({
      type: MessageType.REQUEST,
      xid: 0xdeadbeef,
      mac: Uint8Array.of(2, 0x73, 1, 0, 0, 5),
      broadcast: true,
      giaddr: ipv4ToNumber('10.64.0.2'),
      hops: 1,
      secs: 3,
      requestedAddress: ipv4ToNumber('10.64.1.5'),
      serverId: ipv4ToNumber('10.64.0.1'),
    });
    assert.equal(bytes.length, 300);
    assert.equal(bytes[0], 1);
    assert.equal(bytes[3], 1);
    assert.equal(bytes.readUInt32BE(4), 0xdeadbeef);
    assert.equal(bytes.readUInt16BE(10), 0x8000);
    assert.equal(bytes.readUInt32BE(24), ipv4ToNumber('10.64.0.2'));
    assert.equal(bytes.toString('hex', 28, 34), '027301000005');
    assert.equal(bytes.readUInt32BE(236), 0x63825363);
    const options = bytes.subarray(240).toString('hex');
    assert.ok(options.startsWith('350103'), options); // 53 = REQUEST
    assert.ok(options.includes('32040a400105'), options); // 50 = 10.64.1.5
    assert.ok(options.includes('36040a400001'), options); // 54 = 10.64.0.1
  });

  test('reads options overloaded into file and sname (option 52)', () => {
    const reply = Buffer.from(scapyOffer);
    const end = reply.lastIndexOf(0xff);
    // Replace the options with 53 and 52=3 only; put 54 into file and 51 into sname.
    reply.fill(0, 240, end + 1);
    Buffer.from('350102340103ff', 'hex').copy(reply, 240);
    Buffer.from('36040a400009ff', 'hex').copy(reply, 108);
    Buffer.from('330400000078ff', 'hex').copy(reply, 44);
    const decoded = decodeServerReply(reply);
    assert.equal(decoded.serverId, ipv4ToNumber('10.64.0.9'));
    assert.equal(decoded.leaseTime, 120);
  });

  test('rejects what a client must not accept', () => {
    const cases: [string, Buffer][] = [
      ['short', scapyOffer.subarray(0, 100)],
      ['a request', Buffer.concat([Buffer.of(1), scapyOffer.subarray(1)])],
      ['no magic', Buffer.concat([scapyOffer.subarray(0, 236), Buffer.alloc(4), scapyOffer.subarray(240)])],
      ['option past the end', Buffer.concat([scapyOffer.subarray(0, 240), Buffer.from('3501023608', 'hex')])],
      ['no message type', Buffer.concat([scapyOffer.subarray(0, 240), Buffer.from('36040a400001ff', 'hex')])],
    ];
    for (const [what, bytes] of cases) assert.throws(() => decodeServerReply(bytes), MalformedReply, what);
  });
});
