/**
 * DHCP option codes and typed readers over a decoded packet (RFC 2132, RFC 3004, RFC 4578, RFC 3046, iPXE), plus
 * the value writers of option-values.ts and option-pxe.ts re-exported. Pure.
 *
 * Readers return undefined (or an empty list) when an option is absent OR malformed — a wrong length, a bad
 * structure — and never throw: a client's odd option must not cost it its boot. Text read from the wire is treated
 * as untrusted: see `wireText`.
 */
import { formatIpv4 } from './header.ts';
import type { DhcpPacket } from './packet.ts';
import { decodeEncapsulated } from './option-values.ts';

export {
  decodeEncapsulated,
  domainSearchValue,
  encodeEncapsulated,
  ipNumberValue,
  ipValue,
  ipsValue,
  latin1Value,
  parseDomainSearchValue,
  textValue,
  u16Value,
  u32Value,
  u8Value,
} from './option-values.ts';
export { PxeSubOption, parsePxeVendor, pxeVendorValue } from './option-pxe.ts';
export type { PxeVendorOptions } from './option-pxe.ts';

export const Option = {
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostname: 12,
  domainName: 15,
  rootPath: 17,
  broadcastAddress: 28,
  ntpServers: 42,
  vendorSpecific: 43,
  requestedAddress: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverId: 54,
  parameterList: 55,
  message: 56,
  maxMessageSize: 57,
  renewalTime: 58,
  rebindingTime: 59,
  vendorClass: 60,
  clientId: 61,
  tftpServerName: 66,
  bootfileName: 67,
  userClass: 77,
  relayAgentInfo: 82,
  clientArch: 93,
  clientNdi: 94,
  clientUuid: 97,
  domainSearch: 119,
  ipxe: 175,
} as const;

/** RFC 2132 §9.6. */
export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

/** 'discover', 'ack', ... for logs; undefined for codes outside RFC 2132 §9.6. */
export function messageTypeName(type: number): string | undefined {
  return Object.entries(MessageType).find(([, code]) => code === type)?.[0];
}

/** RFC 2132 §9.10: no client may ask for less than 576. */
const MIN_MAX_MESSAGE_SIZE = 576;

/**
 * Wire text as a string: latin1 (one character per byte), trailing NULs dropped (some clients terminate their
 * strings), and control characters (C0, DEL, C1) replaced by '?' so that a hostile client cannot put terminal
 * escapes into logs or `smeltctl` tables. Undefined when nothing is left. Raw bytes stay in `packet.options`.
 */
export function wireText(value: Buffer): string | undefined {
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  if (end === 0) return undefined;
  // eslint-disable-next-line no-control-regex
  return value.toString('latin1', 0, end).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

function sized(p: DhcpPacket, code: number, length: number): Buffer | undefined {
  const value = p.options.get(code);
  return value?.length === length ? value : undefined;
}

function address(p: DhcpPacket, code: number): string | undefined {
  const value = sized(p, code, 4);
  return value && formatIpv4(value, 0);
}

/** Option 53 (RFC 2132 §9.6); any one-octet value, including codes later RFCs added. */
export function messageType(p: DhcpPacket): number | undefined {
  return sized(p, Option.messageType, 1)?.[0];
}

/** An address-valued option as its 32-bit number (no text on the way); undefined when absent or malformed. */
export function addressNumber(p: DhcpPacket, code: number): number | undefined {
  return sized(p, code, 4)?.readUInt32BE(0);
}

/** Option 50 (RFC 2132 §9.1). */
export function requestedAddress(p: DhcpPacket): string | undefined {
  return address(p, Option.requestedAddress);
}

/** Option 54 (RFC 2132 §9.7). */
export function serverId(p: DhcpPacket): string | undefined {
  return address(p, Option.serverId);
}

/** Option 55 (RFC 2132 §9.8): the codes the client asks for, in its order of preference. */
export function parameterList(p: DhcpPacket): number[] {
  return [...(p.options.get(Option.parameterList) ?? [])];
}

/** Option 57 (RFC 2132 §9.10); a value below the legal minimum of 576 is read as 576. */
export function maxMessageSize(p: DhcpPacket): number | undefined {
  const value = sized(p, Option.maxMessageSize, 2);
  return value && Math.max(value.readUInt16BE(0), MIN_MAX_MESSAGE_SIZE);
}

/** Option 60 (RFC 2132 §9.13), e.g. 'PXEClient:Arch:00007:UNDI:003000'. */
export function vendorClass(p: DhcpPacket): string | undefined {
  const value = p.options.get(Option.vendorClass);
  return value && wireText(value);
}

/** Option 12 (RFC 2132 §3.14). */
export function hostname(p: DhcpPacket): string | undefined {
  const value = p.options.get(Option.hostname);
  return value && wireText(value);
}

/** RFC 3004 §4: one or more [length ≥ 1][data] entries consuming the value exactly; undefined otherwise. */
function rfc3004(value: Buffer): Buffer[] | undefined {
  const entries: Buffer[] = [];
  let at = 0;
  while (at < value.length) {
    const length = value[at] ?? 0;
    if (length === 0 || at + 1 + length > value.length) return undefined;
    entries.push(value.subarray(at + 1, at + 1 + length));
    at += 1 + length;
  }
  return entries;
}

/**
 * Option 77. RFC 3004 defines a list of length-prefixed classes, but iPXE and many others send one raw string
 * ("iPXE"): the value is read as RFC 3004 when it parses exactly as such, else as a single raw string. A raw string
 * is mistaken for RFC 3004 only when its first byte, read as a length (a printable one is ≥ 32), covers what follows
 * exactly: never for one shorter than 33 characters.
 */
export function userClasses(p: DhcpPacket): string[] {
  const value = p.options.get(Option.userClass);
  if (!value || value.length === 0) return [];
  const entries = rfc3004(value) ?? [value];
  return entries.map(wireText).filter((text) => text !== undefined);
}

/** Option 61 (RFC 2132 §9.14): type octet + identifier, at least 2 octets. */
export function clientId(p: DhcpPacket): Buffer | undefined {
  const value = p.options.get(Option.clientId);
  return value && value.length >= 2 ? value : undefined;
}

/** Option 93 (RFC 4578 §2.1): the client's architecture types, uint16 each; [] when absent or malformed. */
export function clientArchs(p: DhcpPacket): number[] {
  const value = p.options.get(Option.clientArch);
  if (!value || value.length === 0 || value.length % 2 !== 0) return [];
  return Array.from({ length: value.length / 2 }, (_, i) => value.readUInt16BE(2 * i));
}

/** Option 94 (RFC 4578 §2.2): network interface type (1 = UNDI) and its version. */
export function clientNdi(p: DhcpPacket): { type: number; major: number; minor: number } | undefined {
  const value = sized(p, Option.clientNdi, 3);
  if (!value) return undefined;
  return { type: value[0] ?? 0, major: value[1] ?? 0, minor: value[2] ?? 0 };
}

/**
 * Option 97 (RFC 4578 §2.5): type 0 followed by the 16-byte machine UUID, as lower-case 8-4-4-4-12.
 *
 * Byte order: the first three fields are little-endian on the wire — the SMBIOS 2.6+ / EFI GUID order that OVMF
 * and PXE ROMs copy from SMBIOS, and that iPXE restores on purpose before sending ("RFC4578 suggests that it
 * follows the EFI spec, in which the first three fields are little-endian", iPXE dhcp.c). Formatting them
 * byte-swapped gives the string `dmidecode -s system-uuid` prints on the same machine.
 */
export function clientUuid(p: DhcpPacket): string | undefined {
  const value = sized(p, Option.clientUuid, 17);
  if (value?.[0] !== 0) return undefined;
  const hex = (start: number, end: number, reverse: boolean): string => {
    const bytes = [...value.subarray(start, end)];
    return (reverse ? bytes.reverse() : bytes).map((octet) => octet.toString(16).padStart(2, '0')).join('');
  };
  return [hex(1, 5, true), hex(5, 7, true), hex(7, 9, true), hex(9, 11, false), hex(11, 17, false)].join('-');
}

/** Option 175: iPXE's encapsulated settings (feature flags 16-25, bus id 177, version 235, ...). */
export function ipxeSettings(p: DhcpPacket): Map<number, Buffer> {
  const value = p.options.get(Option.ipxe);
  return (value && decodeEncapsulated(value)) ?? new Map<number, Buffer>();
}

/** True for a client already running iPXE: user class "iPXE" or option 175 present (`classes`: userClasses(p)). */
export function isIpxe(p: DhcpPacket, classes: readonly string[] = userClasses(p)): boolean {
  return p.options.has(Option.ipxe) || classes.includes('iPXE');
}

/** Option 82 (RFC 3046 §2.0): sub-options (1 circuit id, 2 remote id, ...); undefined when absent or malformed. */
export function relayAgentInfo(p: DhcpPacket): Map<number, Buffer> | undefined {
  const value = p.options.get(Option.relayAgentInfo);
  return value && decodeEncapsulated(value);
}
