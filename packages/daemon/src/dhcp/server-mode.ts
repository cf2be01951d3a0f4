import type { FirstStage } from '../boot/firmware.ts';
import type { Decision } from './decision.ts';
import type { ClientFacts } from './facts.ts';
import type { LeaseEntry, LeaseTable } from './lease-table.ts';
import { ipv4Text, parseIpv4Number } from './header.ts';
import { addressNumber, MessageType, Option, serverId, textValue } from './options.ts';
import type { DhcpPacket } from './packet.ts';
import {
  addBootOptions,
  addNetworkOptions,
  destinationOf,
  echoRelayAgentInfo,
  markBroadcast,
  replyTo,
  type HostOverrides,
  type ServerFacts,
} from './reply.ts';
import { subnetContains, type Subnet } from './subnets.ts';

/** Everything the server mode needs to decide, gathered by server.ts for one request. */
export interface ServerModeInput {
  request: DhcpPacket;
  facts: ClientFacts;
  table: LeaseTable;
  server: ServerFacts;
  /** The subnet the client is on: by giaddr, by ciaddr, or by the interface it arrived on (server.ts). */
  subnet: Subnet | undefined;
  /** The first stage for a network boot; undefined for a client that is not booting from the network. */
  stage: FirstStage | undefined;
  host: HostOverrides;
  ports: { server: number; client: number };
}

/** The full DHCP server (RFC 2131 §4.3): one pure decision per request, over the in-memory lease table. */
export function decideServer(input: ServerModeInput): Decision {
  const { request, facts, table, server, subnet } = input;
  const ours = serverId(request);
  switch (facts.messageType) {
    case MessageType.discover: {
      if (!subnet) return { kind: 'ignore', reason: 'no-subnet' };
      const result = table.offer(facts.mac, subnet, requestedNumber(request));
      if (!('address' in result)) return { kind: 'ignore', reason: 'pool-full' };
      return lease(input, subnet, MessageType.offer, result.address, []);
    }
    case MessageType.request: {
      // SELECTING names the chosen server (§4.3.2); a REQUEST naming another one means it chose that offer.
      if (ours !== undefined && ours !== server.serverId) {
        table.forgetOffer(facts.mac);
        return { kind: 'ignore', reason: 'other-server' };
      }
      // INIT-REBOOT from a client we have no record of: RFC 2131 §4.3.2 says remain silent. Smelt is authoritative
      // for its subnets (it is configured as their server), so it ACKs an address that is free for the client and
      // NAKs one that is not, as dnsmasq and Kea do when authoritative; a restarted client then keeps its address.
      const address =
        ours !== undefined ? requestedNumber(request) : (requestedNumber(request) ?? numeric(ciaddrOf(request)));
      if (address === undefined) return { kind: 'ignore', reason: 'incomplete-request' };
      if (!subnet) return { kind: 'ignore', reason: 'no-subnet' };
      if (!subnetContains(subnet, address) || !table.available(facts.mac, subnet, address)) return nak(input);
      const leaseSeconds = subnet.leaseTime;
      const persist = table.bind(facts.mac, subnet, address, leaseSeconds, input.host.hostname ?? facts.hostname);
      return lease(input, subnet, MessageType.ack, address, persist);
    }
    case MessageType.decline: {
      const address = requestedNumber(request);
      if (ours !== server.serverId || address === undefined) return { kind: 'ignore', reason: 'not-ours' };
      const entry = table.decline(facts.mac, address);
      return entry ? { kind: 'update', persist: [entry] } : { kind: 'ignore', reason: 'not-ours' };
    }
    case MessageType.release: {
      const address = numeric(ciaddrOf(request));
      if ((ours !== undefined && ours !== server.serverId) || address === undefined) {
        return { kind: 'ignore', reason: 'not-ours' };
      }
      const entry = table.release(facts.mac, address);
      return entry ? { kind: 'update', persist: [entry] } : { kind: 'ignore', reason: 'not-ours' };
    }
    case MessageType.inform: {
      // §3.4 / §4.3.5: configuration only — no yiaddr, no lease time — to the address the client already has.
      if (!subnet) return { kind: 'ignore', reason: 'no-subnet' };
      const reply = replyTo(request, MessageType.ack, server);
      reply.ciaddr = request.ciaddr;
      addNetworkOptions(reply, subnet, hostOptions(input), undefined);
      if (input.stage) addBootOptions(reply, request, input.stage, server, facts);
      echoRelayAgentInfo(reply, request);
      return { kind: 'reply', reply, to: destinationOf(request, false, input.ports), persist: [] };
    }
    default:
      return { kind: 'ignore', reason: 'unexpected-message' };
  }
}

/**
 * The host's own settings, but no root path (option 17) for a client already running iPXE: its per-MAC script
 * names the iSCSI target and sets the initiator name the target admits, and iPXE's autoboot would otherwise try a
 * DHCP root path first, under its default initiator name, before it fetches the script.
 */
function hostOptions(input: ServerModeInput): ServerModeInput['host'] {
  return input.facts.ipxe && input.host.rootPath !== undefined ? { ...input.host, rootPath: undefined } : input.host;
}

function lease(input: ServerModeInput, subnet: Subnet, type: number, address: number, persist: LeaseEntry[]): Decision {
  const { request, server, facts } = input;
  const reply = replyTo(request, type, server);
  if (type === MessageType.ack) reply.ciaddr = request.ciaddr;
  reply.yiaddr = ipv4Text(address);
  addNetworkOptions(reply, subnet, hostOptions(input), subnet.leaseTime);
  if (input.stage) addBootOptions(reply, request, input.stage, server, facts);
  echoRelayAgentInfo(reply, request);
  return { kind: 'reply', reply, to: destinationOf(request, false, input.ports), persist };
}

/** DHCPNAK (§4.3.2): the address is wrong for this network or belongs to someone else. */
function nak(input: ServerModeInput): Decision {
  const { request, server } = input;
  const reply = replyTo(request, MessageType.nak, server);
  reply.options.set(Option.message, textValue('requested address is not available'));
  if (request.giaddr !== '0.0.0.0') markBroadcast(reply);
  echoRelayAgentInfo(reply, request);
  return { kind: 'reply', reply, to: destinationOf(request, true, input.ports), persist: [], nak: true };
}

function ciaddrOf(request: DhcpPacket): string | undefined {
  return request.ciaddr === '0.0.0.0' ? undefined : request.ciaddr;
}

function numeric(address: string | undefined): number | undefined {
  return address === undefined ? undefined : parseIpv4Number(address);
}

/** Option 50 (RFC 2132 §9.1) as a number. */
function requestedNumber(request: DhcpPacket): number | undefined {
  return addressNumber(request, Option.requestedAddress);
}
