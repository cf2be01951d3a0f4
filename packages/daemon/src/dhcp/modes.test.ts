import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ipv4ToNumber } from '@smelt/shared/net';
import { chooseFirstStage, isNetworkBoot } from '../boot/firmware.ts';
import { configSchema } from '../config/schema.ts';
import type { Decision } from './decision.ts';
import { clientFacts } from './facts.ts';
import { fixture } from './fixtures.ts';
import { createLeaseTable } from './lease-table.ts';
import {
  decodeEncapsulated,
  ipValue,
  MessageType,
  Option,
  parsePxeVendor,
  serverId,
  textValue,
  u8Value,
  vendorClass,
} from './options.ts';
import type { DhcpPacket } from './packet.ts';
import type { HostOverrides } from './reply.ts';
import { decideProxy } from './proxy-mode.ts';
import { decideServer } from './server-mode.ts';
import { subnetsFromConfig } from './subnets.ts';

const config = configSchema.parse({
  address: '10.77.0.1',
  interface: 'br0',
  dhcp: {
    mode: 'server',
    subnet: '10.77.0.0/24',
    pool: { start: '10.77.0.100', end: '10.77.0.199' },
    gateway: '10.77.0.254',
    dns: ['10.77.0.53'],
    leaseTime: 600,
  },
});
const subnets = subnetsFromConfig(config.dhcp);
const server = { serverId: '10.77.0.1', nextServer: '10.77.0.1' };
const ports = { server: 67, client: 68 };

function world() {
  const table = createLeaseTable(subnets, {
    now: () => 1_000_000,
    offerTimeoutMs: 60_000,
    declineTimeoutMs: 3_600_000,
    excluded: new Set([ipv4ToNumber('10.77.0.1') ?? 0]),
    reservations: { addressFor: () => undefined, macFor: () => undefined },
  });
  const serve = (request: DhcpPacket, host: HostOverrides = {}): Decision => {
    const facts = clientFacts(request);
    assert.ok(facts);
    const stage = isNetworkBoot(facts)
      ? chooseFirstStage(facts, {
          files: { bios: 'undionly.kpxe', efi64: 'ipxe.efi', arm64: 'arm64-efi/ipxe.efi' },
          httpBase: 'http://10.77.0.1',
          mac: facts.mac,
        })
      : undefined;
    return decideServer({ request, facts, table, server, subnet: subnets[0], stage, host, ports });
  };
  return { table, serve };
}

function replyOf(decision: Decision): Extract<Decision, { kind: 'reply' }> {
  if (decision.kind !== 'reply') assert.fail(`expected a reply, got ${JSON.stringify(decision)}`);
  return decision;
}

const ROOT_PATH = 'iscsi:san.example::3261:2:iqn.2026-11.example.san:web1';
const text = (packet: DhcpPacket, code: number) => packet.options.get(code)?.toString('latin1');

/** A captured REQUEST retargeted at our server id, as if the client had chosen our offer. */
function selecting(name: string, address: string): DhcpPacket {
  const request = fixture(name);
  request.options.set(Option.serverId, ipValue(server.serverId));
  request.options.set(Option.requestedAddress, ipValue(address));
  return request;
}

describe('server mode, fed the captured clients', () => {
  test('udhcpc: a plain lease with the subnet options and no boot file', () => {
    const { serve } = world();
    const offer = replyOf(serve(fixture('udhcpc-discover')));
    assert.equal(offer.reply.options.get(Option.messageType)?.[0], MessageType.offer);
    assert.equal(offer.reply.yiaddr, '10.77.0.100');
    assert.equal(serverId(offer.reply), '10.77.0.1');
    assert.deepEqual(offer.reply.options.get(Option.router), ipValue('10.77.0.254'));
    assert.deepEqual(offer.reply.options.get(Option.dns), ipValue('10.77.0.53'));
    assert.equal(offer.reply.options.get(Option.leaseTime)?.readUInt32BE(0), 600);
    assert.equal(offer.reply.options.get(Option.renewalTime)?.readUInt32BE(0), 300);
    assert.equal(offer.reply.options.get(Option.rebindingTime)?.readUInt32BE(0), 525);
    assert.equal(offer.reply.file, '');
    assert.equal(offer.reply.options.has(Option.bootfileName), false);
    assert.deepEqual(offer.to, { address: '255.255.255.255', port: 68 });
    assert.deepEqual(offer.persist, [], 'an offer is not persisted');

    const ack = replyOf(serve(selecting('udhcpc-request', '10.77.0.100')));
    assert.equal(ack.reply.options.get(Option.messageType)?.[0], MessageType.ack);
    assert.equal(ack.reply.yiaddr, '10.77.0.100');
    assert.deepEqual(
      ack.persist.map((e) => [e.state, e.mac]),
      [['bound', '52:54:00:aa:00:01']],
    );
  });

  test('a REQUEST naming another server is not answered and frees our offer', () => {
    const { serve, table } = world();
    serve(fixture('udhcpc-discover'));
    const request = fixture('udhcpc-request');
    request.options.set(Option.serverId, ipValue('10.77.0.99'));
    assert.deepEqual(serve(request), { kind: 'ignore', reason: 'other-server' });
    assert.equal(table.entryOf('52:54:00:aa:00:01', subnets[0] ?? assert.fail()), undefined);
  });

  test('a REQUEST for an address off this subnet gets a NAK by broadcast', () => {
    const { serve } = world();
    const nak = replyOf(serve(selecting('dhclient-request', '192.168.7.7')));
    assert.equal(nak.reply.options.get(Option.messageType)?.[0], MessageType.nak);
    assert.equal(nak.reply.yiaddr, '0.0.0.0');
    assert.equal(nak.nak, true);
    assert.deepEqual(nak.to, { address: '255.255.255.255', port: 68 });
  });

  test('the iPXE BIOS ROM gets its per-MAC script URL, PXEClient and 175.176 = 1', () => {
    const { serve } = world();
    const offer = replyOf(serve(fixture('ipxe-bios-discover')));
    const url = 'http://10.77.0.1/boot/52-54-00-12-34-56.ipxe';
    assert.equal(offer.reply.file, url);
    assert.equal(text(offer.reply, Option.bootfileName), url);
    assert.equal(vendorClass(offer.reply), 'PXEClient');
    assert.deepEqual(decodeEncapsulated(offer.reply.options.get(Option.ipxe) ?? Buffer.alloc(0))?.get(176), u8Value(1));
  });

  test('OVMF’s own PXE gets ipxe.efi by TFTP from siaddr, option 43 "file in offer", 97 echoed', () => {
    const { serve } = world();
    const request = fixture('ovmf-pxe-discover');
    const offer = replyOf(serve(request));
    assert.equal(offer.reply.siaddr, '10.77.0.1');
    assert.equal(offer.reply.file, 'ipxe.efi');
    assert.equal(text(offer.reply, Option.tftpServerName), '10.77.0.1');
    assert.equal(vendorClass(offer.reply), 'PXEClient');
    assert.deepEqual(parsePxeVendor(offer.reply.options.get(Option.vendorSpecific) ?? Buffer.alloc(0)), {
      discoveryControl: 8,
    });
    assert.deepEqual(offer.reply.options.get(Option.clientUuid), request.options.get(Option.clientUuid));
    assert.deepEqual(offer.reply.flags, request.flags, 'the broadcast bit OVMF sets is kept');
  });

  test('INFORM gets configuration without an address or a lease time, at its own address', () => {
    const { serve } = world();
    const inform = fixture('udhcpc-request');
    inform.options.set(Option.messageType, u8Value(MessageType.inform));
    inform.options.delete(Option.serverId);
    inform.options.delete(Option.requestedAddress);
    inform.ciaddr = '10.77.0.42';
    const ack = replyOf(serve(inform));
    assert.equal(ack.reply.yiaddr, '0.0.0.0');
    assert.equal(ack.reply.options.has(Option.leaseTime), false);
    assert.deepEqual(ack.to, { address: '10.77.0.42', port: 68 });
  });

  test('a diskless iSCSI machine gets its root path in option 17 (RFC 4173)', () => {
    const { serve } = world();
    const decision = serve(fixture('udhcpc-discover'), { rootPath: ROOT_PATH });
    assert.equal(text(replyOf(decision).reply, Option.rootPath), ROOT_PATH);
  });

  test('a client already running iPXE gets no option 17: its script names the target and the initiator', () => {
    const { serve } = world();
    const request = fixture('ipxe-bios-discover');
    assert.ok(clientFacts(request)?.ipxe);
    const reply = replyOf(serve(request, { rootPath: ROOT_PATH, hostname: 'web1' })).reply;
    assert.equal(reply.options.get(Option.rootPath), undefined);
    assert.equal(text(reply, Option.hostname), 'web1', 'the rest of the host settings still apply');
  });

  test('a relayed DISCOVER is answered to the relay on port 67, with option 82 echoed', () => {
    const { serve } = world();
    const request = fixture('udhcpc-discover');
    request.giaddr = '10.77.0.254';
    request.options.set(Option.relayAgentInfo, Buffer.from([1, 3, 0x65, 0x74, 0x30]));
    const offer = replyOf(serve(request));
    assert.deepEqual(offer.to, { address: '10.77.0.254', port: 67 });
    assert.equal(offer.reply.giaddr, '10.77.0.254');
    assert.deepEqual(offer.reply.options.get(Option.relayAgentInfo), Buffer.from([1, 3, 0x65, 0x74, 0x30]));
  });
});

describe('proxy mode, fed the captured clients', () => {
  const proxy = (request: DhcpPacket, arrivedOn: 'dhcp' | 'pxe' = 'dhcp') => {
    const facts = clientFacts(request);
    assert.ok(facts);
    const stage = chooseFirstStage(facts, {
      files: { bios: 'undionly.kpxe', efi64: 'ipxe.efi', arm64: 'arm64-efi/ipxe.efi' },
      httpBase: 'http://10.77.0.1',
      mac: facts.mac,
    });
    return decideProxy({
      request,
      facts,
      server,
      stage,
      arrivedOn,
      from: { address: '10.77.0.150', port: 68 },
      ports,
    });
  };

  test('a PXE DISCOVER gets boot information and never an address', () => {
    const offer = replyOf(proxy(fixture('ovmf-pxe-discover')));
    assert.equal(offer.reply.options.get(Option.messageType)?.[0], MessageType.offer);
    assert.equal(offer.reply.yiaddr, '0.0.0.0');
    assert.equal(offer.reply.file, 'ipxe.efi');
    assert.equal(offer.reply.options.has(Option.leaseTime), false);
    assert.equal(offer.reply.options.has(Option.subnetMask), false);
    assert.equal(serverId(offer.reply), '10.77.0.1');
  });

  test('iPXE’s boot-server REQUEST on 4011 is answered to where it came from', () => {
    const ack = replyOf(proxy(fixture('ipxe-bios-pxebs-request'), 'pxe'));
    assert.equal(ack.reply.siaddr, '10.77.0.1', 'iPXE ignores a ProxyDHCP answer without siaddr');
    assert.equal(ack.reply.options.get(Option.messageType)?.[0], MessageType.ack);
    assert.deepEqual(ack.to, { address: '10.77.0.150', port: 68 });
    assert.equal(ack.reply.yiaddr, '0.0.0.0');
    assert.match(ack.reply.file, /^http:\/\/10\.77\.0\.1\/boot\/52-54-00-12-34-56\.ipxe$/);
  });

  test('a client that is not network booting is left to the site’s server', () => {
    assert.deepEqual(proxy(fixture('udhcpc-discover')), { kind: 'ignore', reason: 'not-network-boot' });
    assert.deepEqual(proxy(fixture('dhclient-discover')), { kind: 'ignore', reason: 'not-network-boot' });
  });

  test('a REQUEST on 67 is answered only when it names us', () => {
    const request = fixture('ipxe-bios-request');
    request.options.set(Option.serverId, ipValue('10.77.0.2'));
    assert.deepEqual(proxy(request), { kind: 'ignore', reason: 'other-server' });
    request.options.set(Option.serverId, ipValue('10.77.0.1'));
    const ack = replyOf(proxy(request));
    assert.equal(ack.reply.options.get(Option.messageType)?.[0], MessageType.ack);
    assert.equal(ack.reply.yiaddr, '0.0.0.0');
  });

  test('an architecture without a first stage gets no offer', () => {
    const request = fixture('ovmf-pxe-discover');
    request.options.set(Option.clientArch, Buffer.from([0x10, 0x92]));
    request.options.set(Option.vendorClass, textValue('PXEClient:Arch:04242'));
    assert.deepEqual(proxy(request), { kind: 'ignore', reason: 'unsupported-arch' });
  });
});
