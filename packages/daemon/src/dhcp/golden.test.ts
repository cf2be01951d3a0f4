/**
 * Golden tests: DHCP messages captured on the wire from real clients and dnsmasq (testdata/README.md says where each
 * came from; testdata/capture.sh regenerates them). Every value asserted here was read off the capture.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  MessageType,
  Option,
  clientArchs,
  clientId,
  clientNdi,
  clientUuid,
  decodeEncapsulated,
  hostname,
  ipxeSettings,
  isIpxe,
  maxMessageSize,
  messageType,
  parameterList,
  parsePxeVendor,
  relayAgentInfo,
  requestedAddress,
  serverId,
  userClasses,
  vendorClass,
  wireText,
} from './options.ts';
import { MalformedPacket, decode, encode, macOf } from './packet.ts';
import type { DhcpPacket } from './packet.ts';

const testdata = join(import.meta.dirname, 'testdata');

/** A fixture: `#` comment lines saying where it came from, then the UDP payload in hex. */
function load(name: string): Buffer {
  const hex = readFileSync(join(testdata, name), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('')
    .trim();
  assert.match(hex, /^(?:[0-9a-f]{2})+$/, `${name}: lower-case hex bytes`);
  return Buffer.from(hex, 'hex');
}

function decoded(name: string): DhcpPacket {
  const packet = decode(load(name));
  if (packet instanceof MalformedPacket) assert.fail(`${name}: expected a packet, got ${packet.reason}`);
  return packet;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function u32(packet: DhcpPacket, code: number): number | undefined {
  const value = packet.options.get(code);
  return value?.length === 4 ? value.readUInt32BE(0) : undefined;
}

/** `-uuid` given to QEMU; SMBIOS puts the first three fields little-endian, and so do iPXE and OVMF in option 97. */
const VM_UUID = '00112233-4455-6677-8899-aabbccddeeff';
const VM_UUID_WIRE = '0033221100554477668899aabbccddeeff';

const BIOS_MAC = '52:54:00:12:34:56';
const UEFI_MAC = '52:54:00:12:34:57';
const VIRTIO_MAC = '52:54:00:12:34:58';

const IPXE_PRL = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, ...range(128, 135), 175, 203];
const OVMF_PRL = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97];
const UDHCPC_PRL = [1, 3, 6, 12, 15, 28, 42];
const DHCLIENT_PRL = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42];

/** Option 175 as each iPXE build sent it: the setting codes in order, bus id 177 = PCI 8086:100e (e1000), 1.0.0. */
const IPXE_BIOS_SETTINGS = [177, 235, 23, 34, 19, 17, 39, 25, 41, 16, 33, 21, 24, 18];
const IPXE_EFI_ROM_SETTINGS = [177, 235, 23, 36, 19, 17, 39, 41, 21, 18];
const IPXE_EFI_SETTINGS = [177, 235, 23, 36, 19, 17, 39, 41, 21, 27, 18];

interface ClientCase {
  type: number;
  mac: string;
  flags: number;
  ciaddr?: string;
  /** Option codes in wire order. */
  order: number[];
  vendorClass?: string;
  archs: number[];
  userClasses: string[];
  ndi?: { type: number; major: number; minor: number };
  uuid?: string;
  prl: number[];
  maxSize?: number;
  /** Hex of option 61. */
  clientId?: string;
  hostname?: string;
  serverId?: string;
  requested?: string;
  /** Option 175 setting codes in order; absent = not iPXE. */
  ipxe?: number[];
  /** The fixture whose xid this one shares (same transaction). */
  sameXidAs?: string;
}

const ipxeCommon: Pick<ClientCase, 'userClasses' | 'uuid' | 'prl' | 'maxSize'> = {
  userClasses: ['iPXE'],
  uuid: VM_UUID,
  prl: IPXE_PRL,
  maxSize: 1472,
};

const IPXE_DISCOVER_ORDER = [53, 57, 93, 94, 60, 77, 55, 175, 61, 97];
const IPXE_REQUEST_ORDER = [...IPXE_DISCOVER_ORDER, 54, 50];
const OVMF_DISCOVER_ORDER = [53, 57, 55, 97, 94, 93, 60];
const OVMF_REQUEST_ORDER = [53, 54, 50, 57, 55, 97, 94, 93, 60];

const ipxeBios: Omit<ClientCase, 'type' | 'order'> = {
  ...ipxeCommon,
  mac: BIOS_MAC,
  flags: 0,
  vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
  archs: [0],
  ndi: { type: 1, major: 2, minor: 1 },
  clientId: '01525400123456',
  ipxe: IPXE_BIOS_SETTINGS,
};

const ovmf: Omit<ClientCase, 'type' | 'order'> = {
  mac: UEFI_MAC,
  // OVMF sets the broadcast bit.
  flags: 0x8000,
  vendorClass: 'PXEClient:Arch:00007:UNDI:003001',
  archs: [7],
  userClasses: [],
  // UNDI 3.1: the NII under OVMF's PXE is the one iPXE's e1000 option ROM installs.
  ndi: { type: 1, major: 3, minor: 1 },
  uuid: VM_UUID,
  prl: [...OVMF_PRL, ...range(128, 135)],
  maxSize: 1472,
};

const clients: Record<string, ClientCase> = {
  'ipxe-bios-discover.hex': { ...ipxeBios, type: MessageType.discover, order: IPXE_DISCOVER_ORDER },
  'ipxe-bios-request.hex': {
    ...ipxeBios,
    type: MessageType.request,
    order: IPXE_REQUEST_ORDER,
    serverId: '10.77.0.1',
    requested: '10.77.0.158',
    sameXidAs: 'ipxe-bios-discover.hex',
  },
  'ipxe-bios-proxy-discover.hex': { ...ipxeBios, type: MessageType.discover, order: IPXE_DISCOVER_ORDER },
  'ipxe-bios-proxy-request.hex': {
    ...ipxeBios,
    type: MessageType.request,
    order: IPXE_REQUEST_ORDER,
    // The plain address server beside the proxy.
    serverId: '10.77.0.2',
    requested: '10.77.0.158',
    sameXidAs: 'ipxe-bios-proxy-discover.hex',
  },
  // PXE boot-server discovery, unicast to the proxy's port 4011: xid 0, broadcast bit, ciaddr set, plain
  // "PXEClient", and option 43 asking for boot item 0x8000 layer 0 (sub-option 71).
  'ipxe-bios-pxebs-request.hex': {
    ...ipxeBios,
    type: MessageType.request,
    flags: 0x8000,
    ciaddr: '10.77.0.158',
    vendorClass: 'PXEClient',
    order: [...IPXE_DISCOVER_ORDER, 43],
  },
  // undionly.kpxe chainloaded by the ROM: plain "PXEClient", broadcast bit, still arch 0, UNDI 2.1, iPXE.
  'undionly-discover.hex': {
    ...ipxeBios,
    type: MessageType.discover,
    flags: 0x8000,
    vendorClass: 'PXEClient',
    order: IPXE_DISCOVER_ORDER,
  },
  'undionly-request.hex': {
    ...ipxeBios,
    type: MessageType.request,
    flags: 0x8000,
    vendorClass: 'PXEClient',
    order: IPXE_REQUEST_ORDER,
    serverId: '10.77.0.2',
    requested: '10.77.0.158',
    sameXidAs: 'undionly-discover.hex',
  },
  // QEMU's e1000 option ROM under OVMF is iPXE's EFI driver, which boots before OVMF's own PXE.
  'ipxe-efi-rom-discover.hex': {
    ...ipxeCommon,
    type: MessageType.discover,
    mac: UEFI_MAC,
    flags: 0,
    order: IPXE_DISCOVER_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    archs: [7],
    ndi: { type: 1, major: 3, minor: 10 },
    clientId: '01525400123457',
    ipxe: IPXE_EFI_ROM_SETTINGS,
  },
  'ipxe-efi-rom-request.hex': {
    ...ipxeCommon,
    type: MessageType.request,
    mac: UEFI_MAC,
    flags: 0,
    order: IPXE_REQUEST_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    archs: [7],
    ndi: { type: 1, major: 3, minor: 10 },
    clientId: '01525400123457',
    ipxe: IPXE_EFI_ROM_SETTINGS,
    serverId: '10.77.0.1',
    requested: '10.77.0.159',
    sameXidAs: 'ipxe-efi-rom-discover.hex',
  },
  'ovmf-pxe-discover.hex': { ...ovmf, type: MessageType.discover, order: OVMF_DISCOVER_ORDER },
  'ovmf-pxe-request.hex': {
    ...ovmf,
    type: MessageType.request,
    order: OVMF_REQUEST_ORDER,
    // OVMF's REQUEST says 0xff00 where its DISCOVER said 1472.
    maxSize: 65280,
    serverId: '10.77.0.1',
    requested: '10.77.0.159',
    sameXidAs: 'ovmf-pxe-discover.hex',
  },
  // virtio-net without an option ROM: OVMF's own driver, UNDI 3.0 as FIELD-NOTES has it.
  'ovmf-pxe-virtio-discover.hex': {
    ...ovmf,
    type: MessageType.discover,
    mac: VIRTIO_MAC,
    order: OVMF_DISCOVER_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
    ndi: { type: 1, major: 3, minor: 0 },
  },
  'ovmf-pxe-virtio-request.hex': {
    ...ovmf,
    type: MessageType.request,
    mac: VIRTIO_MAC,
    order: OVMF_REQUEST_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
    ndi: { type: 1, major: 3, minor: 0 },
    maxSize: 65280,
    serverId: '10.77.0.1',
    requested: '10.77.0.160',
    sameXidAs: 'ovmf-pxe-virtio-discover.hex',
  },
  // ipxe.efi as OVMF chainloaded it over TFTP.
  'ipxe-efi-discover.hex': {
    ...ipxeCommon,
    type: MessageType.discover,
    mac: UEFI_MAC,
    flags: 0,
    order: IPXE_DISCOVER_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    archs: [7],
    ndi: { type: 1, major: 3, minor: 10 },
    clientId: '01525400123457',
    ipxe: IPXE_EFI_SETTINGS,
  },
  'ipxe-efi-request.hex': {
    ...ipxeCommon,
    type: MessageType.request,
    mac: UEFI_MAC,
    flags: 0,
    order: IPXE_REQUEST_ORDER,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003010',
    archs: [7],
    ndi: { type: 1, major: 3, minor: 10 },
    clientId: '01525400123457',
    ipxe: IPXE_EFI_SETTINGS,
    serverId: '10.77.0.1',
    requested: '10.77.0.159',
    sameXidAs: 'ipxe-efi-discover.hex',
  },
  'udhcpc-discover.hex': {
    type: MessageType.discover,
    mac: '52:54:00:aa:00:01',
    flags: 0,
    order: [53, 57, 55, 60, 61],
    vendorClass: 'udhcp 1.35.0',
    archs: [],
    userClasses: [],
    prl: UDHCPC_PRL,
    maxSize: 576,
    clientId: '01525400aa0001',
  },
  'udhcpc-request.hex': {
    type: MessageType.request,
    mac: '52:54:00:aa:00:01',
    flags: 0,
    order: [53, 50, 54, 57, 55, 60, 61],
    vendorClass: 'udhcp 1.35.0',
    archs: [],
    userClasses: [],
    prl: UDHCPC_PRL,
    maxSize: 576,
    clientId: '01525400aa0001',
    serverId: '10.77.0.1',
    requested: '10.77.0.185',
    sameXidAs: 'udhcpc-discover.hex',
  },
  // Debian's default dhclient.conf: `send host-name = gethostname()` (capture.sh fixes the name), no 57, 60, 61.
  'dhclient-discover.hex': {
    type: MessageType.discover,
    mac: '52:54:00:aa:00:02',
    flags: 0,
    order: [53, 12, 55],
    archs: [],
    userClasses: [],
    prl: DHCLIENT_PRL,
    hostname: 'smelt-capture',
  },
  'dhclient-request.hex': {
    type: MessageType.request,
    mac: '52:54:00:aa:00:02',
    flags: 0,
    order: [53, 54, 50, 12, 55],
    archs: [],
    userClasses: [],
    prl: DHCLIENT_PRL,
    hostname: 'smelt-capture',
    serverId: '10.77.0.1',
    requested: '10.77.0.186',
    sameXidAs: 'dhclient-discover.hex',
  },
};

interface ServerCase {
  type: number;
  /** The client message it answers (same xid, same chaddr). */
  answers: string;
  flags: number;
  yiaddr: string;
  siaddr: string;
  serverId: string;
  order: number[];
  leaseTime?: number;
  /** Option 67 as text (dnsmasq NUL-terminates it); the BOOTP `file` field stays empty. */
  bootfileOption?: string;
  /** The BOOTP `file` field. */
  file: string;
}

const DNSMASQ_LEASE_ORDER = [53, 54, 51, 67, 58, 59, 1, 28, 3];

const servers: Record<string, ServerCase> = {
  'dnsmasq-offer.hex': {
    type: MessageType.offer,
    answers: 'ipxe-bios-discover.hex',
    flags: 0,
    yiaddr: '10.77.0.158',
    siaddr: '10.77.0.1',
    serverId: '10.77.0.1',
    order: DNSMASQ_LEASE_ORDER,
    leaseTime: 3600,
    bootfileOption: 'http://10.77.0.1/boot.ipxe',
    file: '',
  },
  'dnsmasq-ack.hex': {
    type: MessageType.ack,
    answers: 'ipxe-bios-request.hex',
    flags: 0,
    yiaddr: '10.77.0.158',
    siaddr: '10.77.0.1',
    serverId: '10.77.0.1',
    order: DNSMASQ_LEASE_ORDER,
    leaseTime: 3600,
    bootfileOption: 'http://10.77.0.1/boot.ipxe',
    file: '',
  },
  'dnsmasq-offer-ovmf.hex': {
    type: MessageType.offer,
    answers: 'ovmf-pxe-discover.hex',
    flags: 0x8000,
    yiaddr: '10.77.0.159',
    siaddr: '10.77.0.1',
    serverId: '10.77.0.1',
    order: DNSMASQ_LEASE_ORDER,
    leaseTime: 3600,
    bootfileOption: 'ipxe.efi',
    file: '',
  },
  'dnsmasq-ack-ovmf.hex': {
    type: MessageType.ack,
    answers: 'ovmf-pxe-request.hex',
    flags: 0x8000,
    yiaddr: '10.77.0.159',
    siaddr: '10.77.0.1',
    serverId: '10.77.0.1',
    order: DNSMASQ_LEASE_ORDER,
    leaseTime: 3600,
    bootfileOption: 'ipxe.efi',
    file: '',
  },
  // ProxyDHCP: no address, no lease, "PXEClient", the client's UUID echoed, a PXE menu in option 43.
  'dnsmasq-proxy-offer.hex': {
    type: MessageType.offer,
    answers: 'ipxe-bios-proxy-discover.hex',
    flags: 0x8000,
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    serverId: '10.77.0.1',
    order: [53, 54, 60, 97, 43],
    file: '',
  },
  // The boot server's answer on 4011: the boot file in the BOOTP header, not in option 67.
  'dnsmasq-proxy-pxebs-ack.hex': {
    type: MessageType.ack,
    answers: 'ipxe-bios-pxebs-request.hex',
    flags: 0x8000,
    yiaddr: '10.77.0.158',
    siaddr: '10.77.0.1',
    serverId: '10.77.0.1',
    order: [53, 54, 60, 97, 43],
    file: 'undionly.0',
  },
};

const fixtures = readdirSync(testdata)
  .filter((name) => name.endsWith('.hex'))
  .sort();

describe('dhcp golden fixtures', () => {
  test('every fixture in testdata has expectations here, and every expectation a fixture', () => {
    assert.deepEqual(fixtures, [...Object.keys(clients), ...Object.keys(servers)].sort());
  });

  test('every fixture decodes as a BOOTP/DHCP message of Ethernet type, hops 0, no relay', () => {
    for (const name of fixtures) {
      const packet = decoded(name);
      assert.equal(packet.htype, 1, name);
      assert.equal(packet.hlen, 6, name);
      assert.equal(packet.hops, 0, name);
      assert.equal(packet.giaddr, '0.0.0.0', name);
      assert.equal(packet.sname, '', name);
      assert.equal(relayAgentInfo(packet), undefined, name);
      assert.deepEqual([...packet.chaddr.subarray(6)], Array<number>(10).fill(0), name);
    }
  });
});

describe('dhcp golden fixtures: clients', () => {
  for (const [name, want] of Object.entries(clients)) {
    test(name, () => {
      const packet = decoded(name);
      assert.equal(packet.op, 1);
      assert.equal(messageType(packet), want.type);
      assert.equal(macOf(packet), want.mac);
      assert.equal(packet.flags, want.flags);
      assert.equal(packet.ciaddr, want.ciaddr ?? '0.0.0.0');
      assert.equal(packet.yiaddr, '0.0.0.0');
      assert.equal(packet.siaddr, '0.0.0.0');
      assert.equal(packet.file, '');
      assert.deepEqual([...packet.options.keys()], want.order);
      assert.equal(vendorClass(packet), want.vendorClass);
      assert.deepEqual(clientArchs(packet), want.archs);
      assert.deepEqual(userClasses(packet), want.userClasses);
      assert.deepEqual(clientNdi(packet), want.ndi);
      assert.equal(clientUuid(packet), want.uuid);
      if (want.uuid !== undefined) assert.equal(packet.options.get(Option.clientUuid)?.toString('hex'), VM_UUID_WIRE);
      assert.deepEqual(parameterList(packet), want.prl);
      assert.equal(maxMessageSize(packet), want.maxSize);
      assert.equal(clientId(packet)?.toString('hex'), want.clientId);
      assert.equal(hostname(packet), want.hostname);
      assert.equal(serverId(packet), want.serverId);
      assert.equal(requestedAddress(packet), want.requested);

      assert.equal(isIpxe(packet), want.ipxe !== undefined);
      const settings = ipxeSettings(packet);
      assert.deepEqual([...settings.keys()], want.ipxe ?? []);
      if (want.ipxe) {
        // Bus id: PCI (1), vendor 0x8086, device 0x100e (QEMU's e1000); version 1.0.0; DNS and HTTP available.
        assert.equal(settings.get(177)?.toString('hex'), '018086100e');
        assert.equal(settings.get(235)?.toString('hex'), '010000');
        assert.equal(settings.get(0x17)?.toString('hex'), '01');
        assert.equal(settings.get(0x13)?.toString('hex'), '01');
      }

      if (want.type === MessageType.discover) {
        assert.equal(packet.options.has(Option.serverId), false);
        assert.equal(packet.options.has(Option.requestedAddress), false);
      }
      if (name === 'ipxe-bios-pxebs-request.hex') {
        assert.equal(packet.xid, 0);
        assert.equal(
          decodeEncapsulated(packet.options.get(Option.vendorSpecific) ?? Buffer.alloc(0))
            ?.get(71)
            ?.toString('hex'),
          '80000000',
        );
      } else {
        assert.notEqual(packet.xid, 0);
      }
      if (want.sameXidAs) {
        const first = decoded(want.sameXidAs);
        assert.equal(packet.xid, first.xid, `same transaction as ${want.sameXidAs}`);
        assert.ok(packet.secs >= first.secs, 'secs does not go backwards');
      }
    });
  }
});

describe('dhcp golden fixtures: dnsmasq 2.90', () => {
  for (const [name, want] of Object.entries(servers)) {
    test(name, () => {
      const packet = decoded(name);
      const request = decoded(want.answers);
      assert.equal(packet.op, 2);
      assert.equal(messageType(packet), want.type);
      assert.equal(packet.xid, request.xid);
      assert.deepEqual(packet.chaddr, request.chaddr);
      assert.equal(packet.flags, want.flags);
      assert.equal(packet.ciaddr, '0.0.0.0');
      assert.equal(packet.yiaddr, want.yiaddr);
      assert.equal(packet.siaddr, want.siaddr);
      assert.equal(packet.file, want.file);
      assert.equal(serverId(packet), want.serverId);
      assert.deepEqual([...packet.options.keys()], want.order);
      assert.equal(u32(packet, Option.leaseTime), want.leaseTime);
      const bootfile = packet.options.get(Option.bootfileName);
      assert.equal(bootfile && wireText(bootfile), want.bootfileOption);
      if (bootfile) assert.equal(bootfile.at(-1), 0, 'dnsmasq NUL-terminates option 67');
      if (want.leaseTime !== undefined) {
        assert.equal(u32(packet, 58), 1800);
        assert.equal(u32(packet, 59), 3150);
        assert.equal(packet.options.get(Option.subnetMask)?.toString('hex'), 'ffffff00');
        assert.equal(packet.options.get(Option.router)?.toString('hex'), '0a4d0001');
        assert.equal(packet.options.get(Option.broadcastAddress)?.toString('hex'), '0a4d00ff');
      }
    });
  }

  test('the ProxyDHCP offer: "PXEClient", the UUID echoed, a menu that boots item 0x8000 at once', () => {
    const packet = decoded('dnsmasq-proxy-offer.hex');
    assert.equal(vendorClass(packet), 'PXEClient');
    assert.equal(clientUuid(packet), VM_UUID);
    assert.equal(packet.options.has(Option.leaseTime), false);
    assert.deepEqual(parsePxeVendor(packet.options.get(Option.vendorSpecific) ?? Buffer.alloc(0)), {
      discoveryControl: 3,
      bootServers: [{ type: 0x8000, addresses: ['10.77.0.1'] }],
      menu: [{ type: 0x8000, description: 'Boot undionly.kpxe' }],
      prompt: { timeout: 0, text: 'Smelt capture' },
    });
  });

  test('the boot server ACK on 4011 echoes the boot item and the prompt', () => {
    const packet = decoded('dnsmasq-proxy-pxebs-ack.hex');
    assert.equal(vendorClass(packet), 'PXEClient');
    assert.equal(clientUuid(packet), VM_UUID);
    const vendor = packet.options.get(Option.vendorSpecific) ?? Buffer.alloc(0);
    assert.equal(decodeEncapsulated(vendor)?.get(71)?.toString('hex'), '80000000');
    assert.deepEqual(parsePxeVendor(vendor), { prompt: { timeout: 0, text: 'Smelt capture' } });
  });
});

describe('dhcp golden fixtures: round trips and truncation', () => {
  for (const name of fixtures) {
    test(`${name}: decode(encode(decode(x))) equals decode(x), and encode gives back the captured bytes`, () => {
      const bytes = load(name);
      const packet = decoded(name);
      const again = decode(encode(packet, { maxSize: 1500 }));
      if (again instanceof MalformedPacket) assert.fail(again.reason);
      assert.deepEqual(again, packet);
      assert.deepEqual([...again.options.keys()], [...packet.options.keys()]);
      // Every capture is canonical (options in one field, END, zero padding to 300), so re-encoding is exact.
      assert.deepEqual(encode(packet, { maxSize: 1500 }), bytes);
    });

    test(`${name}: every truncation decodes to a packet or a MalformedPacket, without throwing`, () => {
      const bytes = load(name);
      // Option boundaries, read independently of the codec: where a cut leaves whole options only.
      const boundaries = new Set<number>([240]);
      const codesBefore = new Map<number, number[]>([[240, []]]);
      let endAt = bytes.length;
      for (let at = 240, codes: number[] = []; at < bytes.length;) {
        const code = bytes[at] ?? 255;
        if (code === 255) {
          endAt = at;
          break;
        }
        at += code === 0 ? 1 : 2 + (bytes[at + 1] ?? 0);
        if (code !== 0) codes = [...codes, code];
        boundaries.add(at);
        codesBefore.set(at, codes);
      }
      for (let length = 0; length <= bytes.length; length++) {
        const cut = Buffer.from(bytes.subarray(0, length));
        let result: DhcpPacket | MalformedPacket;
        try {
          result = decode(cut);
        } catch (error) {
          assert.fail(`decode threw at length ${length}: ${String(error)}`);
        }
        if (length < 240) {
          assert.ok(result instanceof MalformedPacket, `length ${length}`);
          assert.equal(result.kind, 'short');
          assert.equal(result.length, length);
        } else if (length > endAt) {
          // END survived: the whole message.
          if (result instanceof MalformedPacket) assert.fail(`length ${length}: ${result.reason}`);
          assert.deepEqual([...result.options.keys()], [...decoded(name).options.keys()]);
        } else if (boundaries.has(length)) {
          // A cut between options: the options before it, no END (clients send that too).
          if (result instanceof MalformedPacket) assert.fail(`length ${length}: ${result.reason}`);
          assert.deepEqual([...result.options.keys()], codesBefore.get(length));
        } else {
          assert.ok(result instanceof MalformedPacket, `length ${length}`);
          assert.equal(result.kind, 'option', `length ${length}: ${result.reason}`);
          assert.equal(result.length, length);
        }
      }
    });
  }
});
