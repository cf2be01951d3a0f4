/**
 * The load generator's own minimal DHCPv4 codec (RFC 2131/2132): just what a client or a relay agent doing DORA
 * sends and reads. Deliberately independent of the daemon's codec (packages/daemon/src/dhcp), so that a bug there
 * cannot hide by being on both ends of the benchmark.
 */

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

export const messageTypeNames: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, value]) => [value, name]),
);

const BOOTREQUEST = 1;
const BOOTREPLY = 2;
const MAGIC = 0x63825363;
/** Fixed BOOTP header (236 bytes) + magic cookie. */
const HEADER = 240;
/** RFC 1542: a BOOTP message is at least 300 bytes; some servers drop shorter ones. */
const MIN_SIZE = 300;

const OPTION_PAD = 0;
const OPTION_REQUESTED_ADDRESS = 50;
const OPTION_LEASE_TIME = 51;
const OPTION_OVERLOAD = 52;
const OPTION_MESSAGE_TYPE = 53;
const OPTION_SERVER_ID = 54;
const OPTION_PARAMETER_LIST = 55;
const OPTION_MESSAGE = 56;
const OPTION_MAX_SIZE = 57;
const OPTION_CLIENT_ID = 61;
const OPTION_END = 255;

/** What a client (or a relay on its behalf) sends. Addresses are 32-bit unsigned numbers. */
export interface ClientMessage {
  type: MessageTypeValue;
  xid: number;
  /** 6 bytes. */
  mac: Uint8Array;
  /** The broadcast flag (0x8000): the server answers to 255.255.255.255:68 instead of unicast to yiaddr. */
  broadcast: boolean;
  /** Relay agent address (giaddr); 0 when sent directly. */
  giaddr: number;
  hops: number;
  secs: number;
  /** Option 50, for a REQUEST in SELECTING state. */
  requestedAddress?: number;
  /** Option 54, the server whose OFFER is taken. */
  serverId?: number;
}

/** Options every generated message carries after 53: a parameter request list as a small Linux client sends. */
const PARAMETERS = [1, 3, 6, 12, 15, 28, 42, 51, 54];

export function encodeClientMessage(m: ClientMessage): Buffer {
  const buffer = Buffer.alloc(MIN_SIZE);
  buffer[0] = BOOTREQUEST;
  buffer[1] = 1; // htype: Ethernet
  buffer[2] = 6; // hlen
  buffer[3] = m.hops;
  buffer.writeUInt32BE(m.xid >>> 0, 4);
  buffer.writeUInt16BE(m.secs, 8);
  buffer.writeUInt16BE(m.broadcast ? 0x8000 : 0, 10);
  // ciaddr (12), yiaddr (16), siaddr (20) stay 0
  buffer.writeUInt32BE(m.giaddr >>> 0, 24);
  buffer.set(m.mac.subarray(0, 6), 28);
  buffer.writeUInt32BE(MAGIC, 236);
  let at = HEADER;
  buffer[at++] = OPTION_MESSAGE_TYPE;
  buffer[at++] = 1;
  buffer[at++] = m.type;
  buffer[at++] = OPTION_CLIENT_ID;
  buffer[at++] = 7;
  buffer[at++] = 1; // hardware type Ethernet, then the MAC
  buffer.set(m.mac.subarray(0, 6), at);
  at += 6;
  if (m.requestedAddress !== undefined) {
    buffer[at++] = OPTION_REQUESTED_ADDRESS;
    buffer[at++] = 4;
    buffer.writeUInt32BE(m.requestedAddress >>> 0, at);
    at += 4;
  }
  if (m.serverId !== undefined) {
    buffer[at++] = OPTION_SERVER_ID;
    buffer[at++] = 4;
    buffer.writeUInt32BE(m.serverId >>> 0, at);
    at += 4;
  }
  buffer[at++] = OPTION_MAX_SIZE;
  buffer[at++] = 2;
  buffer.writeUInt16BE(1500, at);
  at += 2;
  buffer[at++] = OPTION_PARAMETER_LIST;
  buffer[at++] = PARAMETERS.length;
  for (const code of PARAMETERS) buffer[at++] = code;
  buffer[at] = OPTION_END;
  return buffer; // zero padding up to 300 bytes (0 is the pad option)
}

/** What the generator needs from a server's reply. */
export interface ServerReply {
  type: number;
  xid: number;
  /** The first 6 bytes of chaddr, as lower-case hex without separators. */
  macHex: string;
  yiaddr: number;
  giaddr: number;
  flags: number;
  serverId?: number;
  leaseTime?: number;
  /** Option 56: the server's explanation (in a NAK). */
  message?: string;
}

export class MalformedReply extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'MalformedReply';
  }
}

/**
 * Decodes a BOOTREPLY. Throws MalformedReply with a reason for anything a client must not accept: short, not a
 * reply, bad magic cookie, options running past the end, no message type.
 */
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
    giaddr: buffer.readUInt32BE(24),
    flags: buffer.readUInt16BE(10),
  };
  let overload = 0;
  const readOptions = (start: number, end: number, where: string) => {
    let at = start;
    while (at < end) {
      const code = buffer[at++] ?? OPTION_END;
      if (code === OPTION_PAD) continue;
      if (code === OPTION_END) return;
      if (at >= end) throw new MalformedReply(`option ${code} in ${where} has no length`);
      const length = buffer[at++] ?? 0;
      if (at + length > end) throw new MalformedReply(`option ${code} in ${where} runs past the end`);
      if (code === OPTION_MESSAGE_TYPE && length === 1) reply.type = buffer[at] ?? 0;
      else if (code === OPTION_SERVER_ID && length === 4) reply.serverId = buffer.readUInt32BE(at);
      else if (code === OPTION_LEASE_TIME && length === 4) reply.leaseTime = buffer.readUInt32BE(at);
      else if (code === OPTION_MESSAGE) reply.message = buffer.toString('latin1', at, at + length);
      else if (code === OPTION_OVERLOAD && length === 1 && where === 'options') overload = buffer[at] ?? 0;
      at += length;
    }
  };
  readOptions(HEADER, buffer.length, 'options');
  // RFC 2132 9.3: option 52 says the file (1) and/or sname (2) fields hold more options.
  if (overload & 1) readOptions(108, 236, 'file');
  if (overload & 2) readOptions(44, 108, 'sname');
  if (reply.type === 0) throw new MalformedReply('no message type (option 53)');
  return reply;
}

export function ipv4ToNumber(text: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${text}`);
  return parts.reduce((sum, p) => sum * 256 + p, 0);
}

export function numberToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}
