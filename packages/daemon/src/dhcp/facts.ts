import { archName, isHttpClient, isPxeClient, type FirmwareFacts } from '../boot/firmware.ts';
import { clientArchs, clientUuid, hostname, isIpxe, messageType, userClasses, vendorClass } from './options.ts';
import { macOf, type DhcpPacket } from './packet.ts';

/** What one request tells us about the machine that sent it: the input to discovery and to the boot policy. */
export interface ClientFacts extends FirmwareFacts {
  mac: string;
  messageType: number;
  /** The name of option 93's first value ("x86_64-efi"), undefined when the client sent none. */
  arch?: string | undefined;
  userClasses: string[];
  uuid?: string | undefined;
  hostname?: string | undefined;
  /** giaddr, when a relay agent forwarded the request (RFC 2131 §4.1). */
  relay?: string | undefined;
  pxe: boolean;
  httpBoot: boolean;
}

/** Facts of a client request; undefined when it has no usable MAC or no message type (not DHCP: BOOTP). */
export function clientFacts(packet: DhcpPacket): ClientFacts | undefined {
  const mac = macOf(packet);
  const type = messageType(packet);
  if (mac === undefined || type === undefined) return undefined;
  const archs = clientArchs(packet);
  const vendor = vendorClass(packet);
  const classes = userClasses(packet);
  const first = archs[0];
  return {
    mac,
    messageType: type,
    archs,
    arch: first === undefined ? undefined : archName(first),
    vendorClass: vendor,
    userClasses: classes,
    // An all-zero UUID (QEMU without -uuid, unset SMBIOS) identifies nothing.
    uuid: meaningfulUuid(clientUuid(packet)),
    hostname: hostname(packet),
    ipxe: isIpxe(packet, classes),
    relay: packet.giaddr === '0.0.0.0' ? undefined : packet.giaddr,
    pxe: isPxeClient(vendor),
    httpBoot: isHttpClient(vendor),
  };
}

function meaningfulUuid(uuid: string | undefined): string | undefined {
  if (uuid === undefined) return undefined;
  return /^[0-]+$/.test(uuid) || /^[f-]+$/i.test(uuid) ? undefined : uuid;
}
