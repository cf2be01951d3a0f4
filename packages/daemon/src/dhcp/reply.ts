import type { FirstStage } from '../boot/firmware.ts';
import {
  domainSearchValue,
  encodeEncapsulated,
  ipNumberValue,
  ipValue,
  ipsValue,
  Option,
  pxeVendorValue,
  relayAgentInfo,
  textValue,
  u32Value,
  u8Value,
  clientUuid,
} from './options.ts';
import { BROADCAST_FLAG, emptyPacket, OptionList, type DhcpPacket } from './packet.ts';
import type { Subnet } from './subnets.ts';

/** Pure builders of reply packets: no sockets, no state. The modes decide, these spell it out. */

/** Our side of one exchange: the address the client reaches us at on its segment. */
export interface ServerFacts {
  /** Option 54 (RFC 2132 §9.7): our address on the client's subnet, or the one the relay reached. */
  serverId: string;
  /** siaddr (RFC 2131 §2): where the client fetches its first stage by TFTP. */
  nextServer: string;
}

/** Per-machine settings from its deployment that take precedence over the subnet's. */
export interface HostOverrides {
  hostname?: string | undefined;
  gateway?: string | undefined;
  dns?: readonly string[] | undefined;
  domain?: string | undefined;
  /** Option 17 (RFC 2132 §3.19, RFC 4173): a diskless machine's iSCSI root, for firmware initiators. */
  rootPath?: string | undefined;
}

const emptyHeader = emptyPacket();

/**
 * Option values every reply carries, encoded once and shared between replies like SubnetValues below: option 53 by
 * message type, option 54 by our address (a handful: one per interface address and the configured one).
 */
const messageTypeValues = Array.from({ length: 9 }, (_, type) => u8Value(type));
const serverIdValues = new Map<string, Buffer>();

function serverIdValue(address: string): Buffer {
  let value = serverIdValues.get(address);
  if (!value) {
    value = ipValue(address);
    if (serverIdValues.size < 64) serverIdValues.set(address, value);
  }
  return value;
}

/**
 * A reply to `request` of message type `type`: the header fields RFC 2131 §4.3.1 Table 3 copies. chaddr is the
 * request's own (decode gave the packet its own copy of the datagram, and nothing writes into a header field).
 */
export function replyTo(request: DhcpPacket, type: number, server: ServerFacts): DhcpPacket {
  const reply: DhcpPacket = {
    ...emptyHeader,
    htype: request.htype,
    hlen: request.hlen,
    xid: request.xid,
    flags: request.flags,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    options: new OptionList(),
  };
  reply.options.set(Option.messageType, messageTypeValues[type] ?? u8Value(type));
  reply.options.set(Option.serverId, serverIdValue(server.serverId));
  return reply;
}

/**
 * A subnet's option values, encoded once: every reply on the subnet carries the same bytes. Shared between
 * replies, so never written to (nothing writes into an option value after it is set).
 */
interface SubnetValues {
  mask: Buffer;
  broadcast: Buffer;
  gateway: Buffer | undefined;
  dns: Buffer | undefined;
  ntp: Buffer | undefined;
  domain: { name: Buffer; search: Buffer } | undefined;
  /** Options 51, 58, 59 by lease time in seconds. */
  leaseTimes: Map<number, [Buffer, Buffer, Buffer]>;
}

const subnetValues = new WeakMap<Subnet, SubnetValues>();

function valuesOf(subnet: Subnet): SubnetValues {
  let values = subnetValues.get(subnet);
  if (!values) {
    values = {
      mask: ipNumberValue(subnet.mask),
      broadcast: ipNumberValue(subnet.broadcast),
      gateway: subnet.gateway === undefined ? undefined : ipValue(subnet.gateway),
      dns: subnet.dns.length > 0 ? ipsValue(subnet.dns) : undefined,
      ntp: subnet.ntp.length > 0 ? ipsValue(subnet.ntp) : undefined,
      domain:
        subnet.domain === undefined
          ? undefined
          : { name: textValue(subnet.domain), search: domainSearchValue([subnet.domain]) },
      leaseTimes: new Map(),
    };
    subnetValues.set(subnet, values);
  }
  return values;
}

function leaseTimeValues(values: SubnetValues, leaseSeconds: number): [Buffer, Buffer, Buffer] {
  let times = values.leaseTimes.get(leaseSeconds);
  if (!times) {
    // T1 = 0.5 and T2 = 0.875 of the lease, the defaults of RFC 2131 §4.4.5.
    times = [
      u32Value(leaseSeconds),
      u32Value(Math.floor(leaseSeconds / 2)),
      u32Value(Math.floor((leaseSeconds * 7) / 8)),
    ];
    if (values.leaseTimes.size < 16) values.leaseTimes.set(leaseSeconds, times);
  }
  return times;
}

/** Options 1, 3, 6, 15, 42, 12, 28 and the lease times 51/58/59 (RFC 2132 §3, §9.2, §9.11–9.12). */
export function addNetworkOptions(
  reply: DhcpPacket,
  subnet: Subnet,
  host: HostOverrides,
  leaseSeconds: number | undefined,
): void {
  const values = valuesOf(subnet);
  if (leaseSeconds !== undefined) {
    const [lease, renewal, rebinding] = leaseTimeValues(values, leaseSeconds);
    reply.options.set(Option.leaseTime, lease);
    reply.options.set(Option.renewalTime, renewal);
    reply.options.set(Option.rebindingTime, rebinding);
  }
  reply.options.set(Option.subnetMask, values.mask);
  const gateway = host.gateway === undefined ? values.gateway : ipValue(host.gateway);
  if (gateway !== undefined) reply.options.set(Option.router, gateway);
  const dns = host.dns === undefined ? values.dns : host.dns.length > 0 ? ipsValue(host.dns) : undefined;
  if (dns !== undefined) reply.options.set(Option.dns, dns);
  if (host.hostname !== undefined) reply.options.set(Option.hostname, textValue(host.hostname));
  const domain =
    host.domain === undefined
      ? values.domain
      : { name: textValue(host.domain), search: domainSearchValue([host.domain]) };
  if (domain !== undefined) {
    reply.options.set(Option.domainName, domain.name);
    reply.options.set(Option.domainSearch, domain.search);
  }
  reply.options.set(Option.broadcastAddress, values.broadcast);
  if (host.rootPath !== undefined) reply.options.set(Option.rootPath, textValue(host.rootPath));
  if (values.ntp !== undefined) reply.options.set(Option.ntpServers, values.ntp);
}

/** iPXE's encapsulated option 175.176 ("no ProxyDHCP"): iPXE stops waiting ~3 s for a ProxyDHCP offer. */
const IPXE_NO_PXEDHCP = 176;

/** PXE 2.1 §2.4.1 option 43.6 bit 3: the boot file is in this packet; download it, no boot server discovery. */
const PXE_BOOTFILE_IN_OFFER = 0x08;

/** The first stage, spelled for the firmware that asked (see boot/firmware.ts for the choice itself). */
export function addBootOptions(
  reply: DhcpPacket,
  request: DhcpPacket,
  stage: FirstStage,
  server: ServerFacts,
  client: { pxe: boolean; ipxe: boolean },
): void {
  if (stage.kind === 'unsupported') return;
  // siaddr on every boot offer: iPXE takes a ProxyDHCP offer only with both siaddr and a file name (iPXE
  // dhcp_has_pxeopts), even when the file is an http:// URL.
  reply.siaddr = server.nextServer;
  switch (stage.kind) {
    case 'tftp':
      setBootfile(reply, stage.file);
      reply.options.set(Option.tftpServerName, textValue(server.nextServer));
      break;
    case 'script':
    case 'http':
      setBootfile(reply, stage.url);
      break;
  }
  if (stage.kind === 'http') {
    // UEFI 2.5 §24.7.2: an HTTP Boot offer must carry option 60 "HTTPClient".
    reply.options.set(Option.vendorClass, textValue('HTTPClient'));
  } else if (client.pxe) {
    // PXE 2.1 §2.2: a PXE offer names itself PXEClient and carries option 43; iPXE also takes it as the sign
    // that no separate ProxyDHCP offer will come.
    reply.options.set(Option.vendorClass, textValue('PXEClient'));
    reply.options.set(Option.vendorSpecific, pxeVendorValue({ discoveryControl: PXE_BOOTFILE_IN_OFFER }));
  }
  if (client.ipxe) reply.options.set(Option.ipxe, encodeEncapsulated([[IPXE_NO_PXEDHCP, u8Value(1)]]));
  // PXE 2.1 §2.2.5: echo the client machine identifier (option 97).
  const uuid = request.options.get(Option.clientUuid);
  if (uuid && clientUuid(request) !== undefined) reply.options.set(Option.clientUuid, Buffer.from(uuid));
}

/** The 128-byte file field holds names up to 127 bytes; option 67 carries longer ones (RFC 2132 §9.5). */
function setBootfile(reply: DhcpPacket, name: string): void {
  reply.file = Buffer.byteLength(name) < 128 ? name : '';
  reply.options.set(Option.bootfileName, textValue(name));
}

/** RFC 3046 §2.2: a server echoes the relay agent information option, unchanged, last. */
export function echoRelayAgentInfo(reply: DhcpPacket, request: DhcpPacket): void {
  const info = request.options.get(Option.relayAgentInfo);
  if (info && relayAgentInfo(request) !== undefined) reply.options.set(Option.relayAgentInfo, Buffer.from(info));
}

export interface Destination {
  address: string;
  port: number;
}

/**
 * Where a reply goes (RFC 2131 §4.1): to the relay on the server port; a NAK without relay by broadcast; to
 * ciaddr when the client has an address; otherwise by broadcast. (The RFC prefers a unicast to yiaddr at the
 * client's hardware address, which needs a raw socket or an ARP-table write; every client accepts broadcast.)
 */
export function destinationOf(request: DhcpPacket, nak: boolean, ports: { server: number; client: number }) {
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: ports.server };
  if (!nak && request.ciaddr !== '0.0.0.0') return { address: request.ciaddr, port: ports.client };
  return { address: '255.255.255.255', port: ports.client };
}

/** A NAK through a relay carries the broadcast bit, so the relay broadcasts it on (RFC 2131 §4.3.2). */
export function markBroadcast(reply: DhcpPacket): void {
  reply.flags |= BROADCAST_FLAG;
}
