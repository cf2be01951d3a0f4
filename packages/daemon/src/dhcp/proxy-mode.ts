import type { FirstStage } from '../boot/firmware.ts';
import type { Decision } from './decision.ts';
import type { ClientFacts } from './facts.ts';
import { MessageType, serverId } from './options.ts';
import type { DhcpPacket } from './packet.ts';
import { addBootOptions, echoRelayAgentInfo, replyTo, type Destination, type ServerFacts } from './reply.ts';

export interface ProxyModeInput {
  request: DhcpPacket;
  facts: ClientFacts;
  server: ServerFacts;
  stage: FirstStage | undefined;
  /** Which of our ports the request came to: 67 (beside the site's server) or 4011 (PXE boot server). */
  arrivedOn: 'dhcp' | 'pxe';
  /** The sender's address and port, where a port-4011 reply goes. */
  from: Destination;
  ports: { server: number; client: number };
}

/**
 * ProxyDHCP (PXE 2.1 §2.2.1, §2.2.2): the site's DHCP server hands out addresses; we answer PXE clients only,
 * with boot information and never an address (yiaddr stays 0.0.0.0), on port 67 beside that server and on 4011
 * where PXE firmware and iPXE send their boot-server REQUEST afterwards.
 */
export function decideProxy(input: ProxyModeInput): Decision {
  const { request, facts, server, stage } = input;
  if (!facts.pxe && !facts.httpBoot && !facts.ipxe) return { kind: 'ignore', reason: 'not-network-boot' };
  if (!stage || stage.kind === 'unsupported') return { kind: 'ignore', reason: 'unsupported-arch' };
  let type: number;
  let to: Destination;
  if (input.arrivedOn === 'pxe') {
    if (facts.messageType !== MessageType.request && facts.messageType !== MessageType.inform) {
      return { kind: 'ignore', reason: 'unexpected-message' };
    }
    type = MessageType.ack;
    to = input.from;
  } else if (facts.messageType === MessageType.discover) {
    type = MessageType.offer;
    to = { address: request.giaddr === '0.0.0.0' ? '255.255.255.255' : request.giaddr, port: relayOrClient(input) };
  } else if (facts.messageType === MessageType.request) {
    // A REQUEST on 67 is for the site's server unless it names us.
    if (serverId(request) !== server.serverId) return { kind: 'ignore', reason: 'other-server' };
    type = MessageType.ack;
    to = { address: request.giaddr === '0.0.0.0' ? '255.255.255.255' : request.giaddr, port: relayOrClient(input) };
  } else {
    return { kind: 'ignore', reason: 'unexpected-message' };
  }
  const reply = replyTo(request, type, server);
  if (type === MessageType.ack) reply.ciaddr = request.ciaddr;
  addBootOptions(reply, request, stage, server, { pxe: true, ipxe: facts.ipxe });
  echoRelayAgentInfo(reply, request);
  return { kind: 'reply', reply, to, persist: [] };
}

function relayOrClient(input: ProxyModeInput): number {
  return input.request.giaddr === '0.0.0.0' ? input.ports.client : input.ports.server;
}
