/**
 * The boot-storm simulator's DHCPv4 codec: what a BIOS PXE ROM and, after the chainload, iPXE put in a DISCOVER and
 * a REQUEST (FIELD-NOTES.md "What the clients send"), and what they read back from an OFFER or ACK: the address,
 * the next server, the boot file (file field or option 67, with option overload), option 60 and iPXE's 175.176.
 * Its own codec, like bench/dhcp/wire.ts (whose encoder carries none of the PXE options): a bug in the daemon's codec
 * cannot hide by being on both ends. The address helpers and message types are bench/dhcp/wire.ts's.
 */
import type { MessageType } from '../dhcp/wire.ts';

export { ipv4ToNumber, MessageType, numberToIpv4 } from '../dhcp/wire.ts';

const BOOTREQUEST = 1;
const BOOTREPLY = 2;
const MAGIC = 0x63825363;
const HEADER = 240;
/** RFC 1542: at least 300 bytes on the wire. */
const MIN_SIZE = 300;
const BROADCAST_FLAG = 0x8000;

/** Who is asking: the firmware's PXE ROM (first DHCP) or iPXE, once undionly.kpxe runs (second DHCP). */
export type ClientKind = 'pxe' | 'ipxe';

/** Option 60 of a BIOS UNDI 2.1 PXE ROM, which iPXE also sends (FIELD-NOTES.md). */
export const PXE_VENDOR_CLASS = 'PXEClient:Arch:00000:UNDI:002001';

/**
 * Parameter request lists (option 55). iPXE's is the one captured in FIELD-NOTES.md; for the PXE ROM, the list a
 * firmware PXE stack sends there (OVMF's: the only non-iPXE PXE client on record).
 */
export const PARAMETERS: Record<ClientKind, readonly number[]> = {
  ipxe: [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203],
  pxe: [
    1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130,
    131, 132, 133, 134, 135,
  ],
};

/**
 * iPXE's option 175 (its "encapsulated options"): the features a 1.0.0 build with HTTP announces — PXE extensions
 * (16), HTTP (19), TFTP (21), DNS (23), bzImage (24), PXE (33) — and its version (235: 1.0.0).
 */
const IPXE_FEATURES = Buffer.from([16, 1, 1, 19, 1, 1, 21, 1, 1, 23, 1, 1, 24, 1, 1, 33, 1, 1, 235, 3, 1, 0, 0]);

export interface ClientRequest {
  type: typeof MessageType.DISCOVER | typeof MessageType.REQUEST;
  kind: ClientKind;
  xid: number;
  /** 6 bytes. */
  mac: Uint8Array;
  /** 16 bytes: the SMBIOS UUID (option 97). */
  uuid: Uint8Array;
  secs: number;
  /** Option 50 and 54, for a REQUEST in SELECTING state. */
  requestedAddress?: number;
  serverId?: number;
}

/**
 * A DISCOVER or REQUEST as the firmware sends it, from 0.0.0.0:68 to 255.255.255.255:67 — with the broadcast flag
 * set (a real ROM sends flags 0; here all simulated machines share one socket, so every reply must be a broadcast).
 */
export function encodeClientRequest(m: ClientRequest): Buffer {
  const options: [number, Uint8Array][] = [[53, Uint8Array.of(m.type)]];
  const u16 = (value: number) => Uint8Array.of(value >>> 8, value & 255);
  const u32 = (value: number) => Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
  options.push([57, u16(m.kind === 'ipxe' ? 1472 : 1260)]);
  options.push([93, u16(0)]); // x86 BIOS
  options.push([94, Uint8Array.of(1, 2, 1)]); // UNDI 2.1
  options.push([60, Buffer.from(PXE_VENDOR_CLASS)]);
  if (m.kind === 'ipxe') {
    options.push([77, Buffer.from('iPXE')]);
    options.push([175, IPXE_FEATURES]);
    options.push([61, Uint8Array.of(1, ...m.mac.subarray(0, 6))]);
  }
  options.push([97, Uint8Array.of(0, ...m.uuid.subarray(0, 16))]);
  options.push([55, Uint8Array.from(PARAMETERS[m.kind])]);
  if (m.requestedAddress !== undefined) options.push([50, u32(m.requestedAddress)]);
  if (m.serverId !== undefined) options.push([54, u32(m.serverId)]);
  const optionBytes = options.reduce((sum, [, value]) => sum + 2 + value.length, 0) + 1;
  const buffer = Buffer.alloc(Math.max(MIN_SIZE, HEADER + optionBytes));
  buffer[0] = BOOTREQUEST;
  buffer[1] = 1; // Ethernet
  buffer[2] = 6;
  buffer.writeUInt32BE(m.xid >>> 0, 4);
  buffer.writeUInt16BE(Math.min(65535, m.secs), 8);
  buffer.writeUInt16BE(BROADCAST_FLAG, 10);
  buffer.set(m.mac.subarray(0, 6), 28);
  buffer.writeUInt32BE(MAGIC, 236);
  let at = HEADER;
  for (const [code, value] of options) {
    buffer[at++] = code;
    buffer[at++] = value.length;
    buffer.set(value, at);
    at += value.length;
  }
  buffer[at] = 255;
  return buffer;
}

/** What the simulated firmware needs from an OFFER, ACK or NAK. */
export interface ServerReply {
  type: number;
  xid: number;
  macHex: string;
  yiaddr: number;
  /** siaddr: the next server (TFTP). */
  siaddr: number;
  serverId?: number;
  /** Option 67 if present, else the file field (RFC 2132 §9.5); '' when neither names a file. */
  bootFile: string;
  /** Option 66 (TFTP server name), if any. */
  tftpServer?: string;
  /** Option 60. */
  vendorClass?: string;
  /** iPXE's 175.176 = 1 ("no ProxyDHCP"): iPXE requests at once instead of waiting for ProxyDHCP offers. */
  noProxyDhcp: boolean;
}

export class MalformedReply extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MalformedReply';
  }
}

/** A zero-terminated string field (sname, file). */
function cString(buffer: Buffer, start: number, end: number): string {
  const zero = buffer.indexOf(0, start);
  return buffer.toString('latin1', start, zero === -1 || zero > end ? end : zero);
}

/** Whether encapsulated option bytes (175) carry sub-option 176 with a non-zero value. */
function hasNoProxyDhcp(value: Buffer): boolean {
  let at = 0;
  while (at + 1 < value.length) {
    const code = value[at] ?? 0;
    const length = value[at + 1] ?? 0;
    if (code === 176 && length >= 1 && (value[at + 2] ?? 0) !== 0) return true;
    at += 2 + length;
  }
  return false;
}

export function decodeServerReply(bytes: Uint8Array): ServerReply {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < HEADER + 1) throw new MalformedReply(`too short (${buffer.length} bytes)`);
  if (buffer[0] !== BOOTREPLY) throw new MalformedReply(`op ${buffer[0] ?? '?'} is not BOOTREPLY`);
  if (buffer[1] !== 1 || buffer[2] !== 6) throw new MalformedReply('not Ethernet (htype 1, hlen 6)');
  if (buffer.readUInt32BE(236) !== MAGIC) throw new MalformedReply('no DHCP magic cookie');
  const reply: ServerReply = {
    type: 0,
    xid: buffer.readUInt32BE(4),
    macHex: buffer.toString('hex', 28, 34),
    yiaddr: buffer.readUInt32BE(16),
    siaddr: buffer.readUInt32BE(20),
    bootFile: '',
    noProxyDhcp: false,
  };
  let overload = 0;
  let option67: string | undefined;
  const readOptions = (start: number, end: number, where: string) => {
    let at = start;
    while (at < end) {
      const code = buffer[at++] ?? 255;
      if (code === 0) continue;
      if (code === 255) return;
      if (at >= end) throw new MalformedReply(`option ${code} in ${where} has no length`);
      const length = buffer[at++] ?? 0;
      if (at + length > end) throw new MalformedReply(`option ${code} in ${where} runs past the end`);
      const value = buffer.subarray(at, at + length);
      if (code === 53 && length === 1) reply.type = value[0] ?? 0;
      else if (code === 54 && length === 4) reply.serverId = value.readUInt32BE(0);
      else if (code === 52 && length === 1 && where === 'options') overload = value[0] ?? 0;
      else if (code === 67) option67 = value.toString('latin1').replace(/\0+$/, '');
      else if (code === 66) reply.tftpServer = value.toString('latin1').replace(/\0+$/, '');
      else if (code === 60) reply.vendorClass = value.toString('latin1');
      else if (code === 175) reply.noProxyDhcp = hasNoProxyDhcp(value);
      at += length;
    }
  };
  readOptions(HEADER, buffer.length, 'options');
  if (overload & 1) readOptions(108, 236, 'file');
  if (overload & 2) readOptions(44, 108, 'sname');
  if (reply.type === 0) throw new MalformedReply('no message type (option 53)');
  reply.bootFile = option67 ?? (overload & 1 ? '' : cString(buffer, 108, 236));
  return reply;
}
