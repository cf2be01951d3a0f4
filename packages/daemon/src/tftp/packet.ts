/**
 * TFTP packet codec (RFC 1350, option extension RFC 2347): pure, no sockets, no config.
 *
 * `decode` never throws: it returns a typed packet or a `MalformedPacket` whose `reason` is a short stable label
 * (used as the `reason` of `smelt_tftp_packets_dropped_total`). `encode` turns a packet back into bytes.
 */

export const OP_RRQ = 1;
export const OP_WRQ = 2;
export const OP_DATA = 3;
export const OP_ACK = 4;
export const OP_ERROR = 5;
export const OP_OACK = 6;

/** RFC 1350 §5 error codes, plus 8 from RFC 2347. */
export const ERR_UNDEFINED = 0;
export const ERR_NOT_FOUND = 1;
export const ERR_ACCESS = 2;
export const ERR_DISK_FULL = 3;
export const ERR_ILLEGAL = 4;
export const ERR_UNKNOWN_TID = 5;
export const ERR_EXISTS = 6;
export const ERR_NO_USER = 7;
export const ERR_OPTIONS = 8;

/**
 * More option pairs than any client sends (real ones send at most five: tsize, blksize, timeout, windowsize,
 * multicast). A request with more is hostile or broken, and is dropped rather than parsed at length.
 */
export const MAX_OPTIONS = 32;

/** Requests carry the mode lower-cased (RFC 1350: "netascii", "octet" or "mail", in any mix of cases). */
export interface RequestPacket {
  op: 'rrq' | 'wrq';
  filename: string;
  mode: string;
  /** Option names lower-cased (RFC 2347: case-insensitive), values as sent; the first of a repeated name wins. */
  options: ReadonlyMap<string, string>;
}
export interface DataPacket {
  op: 'data';
  block: number;
  data: Buffer;
}
export interface AckPacket {
  op: 'ack';
  block: number;
}
export interface ErrorPacket {
  op: 'error';
  code: number;
  message: string;
}
export interface OackPacket {
  op: 'oack';
  options: ReadonlyMap<string, string>;
}
export type Packet = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type MalformedReason =
  /** Shorter than the 2-byte opcode, or than the fixed fields of its opcode. */
  | 'truncated'
  /** An opcode outside 1-6. */
  | 'opcode'
  /** A filename, mode, option or message without its terminating NUL. */
  | 'unterminated'
  /** An option name without a value, an empty option name, or more than MAX_OPTIONS options. */
  | 'options'
  /** A numeric option (blksize, tsize, timeout, windowsize) whose value is not a decimal number (options.ts). */
  | 'option-value';

export class MalformedPacket extends Error {
  readonly reason: MalformedReason;
  constructor(reason: MalformedReason, detail: string) {
    super(`malformed TFTP packet (${reason}): ${detail}`);
    this.name = 'MalformedPacket';
    this.reason = reason;
  }
}

/** Reads NUL-terminated strings from `bytes` starting at `start`; -1 when there is no terminator. */
function nulAt(bytes: Uint8Array, start: number): number {
  return bytes.indexOf(0, start);
}

function decodeOptions(bytes: Buffer, start: number): Map<string, string> | MalformedPacket {
  const options = new Map<string, string>();
  let at = start;
  let count = 0;
  while (at < bytes.length) {
    if (++count > MAX_OPTIONS) return new MalformedPacket('options', `more than ${MAX_OPTIONS} options`);
    const nameEnd = nulAt(bytes, at);
    if (nameEnd < 0) return new MalformedPacket('unterminated', 'option name without NUL');
    if (nameEnd === at) return new MalformedPacket('options', 'empty option name');
    if (nameEnd + 1 >= bytes.length) return new MalformedPacket('options', 'option without a value');
    const valueEnd = nulAt(bytes, nameEnd + 1);
    if (valueEnd < 0) return new MalformedPacket('unterminated', 'option value without NUL');
    const name = bytes.toString('latin1', at, nameEnd).toLowerCase();
    if (!options.has(name)) options.set(name, bytes.toString('latin1', nameEnd + 1, valueEnd));
    at = valueEnd + 1;
  }
  return options;
}

/** Decodes one datagram. Never throws. */
export function decode(bytes: Buffer): Packet | MalformedPacket {
  if (bytes.length < 2) return new MalformedPacket('truncated', `${bytes.length} bytes`);
  const opcode = bytes.readUInt16BE(0);
  switch (opcode) {
    case OP_RRQ:
    case OP_WRQ: {
      const nameEnd = nulAt(bytes, 2);
      if (nameEnd < 0) return new MalformedPacket('unterminated', 'filename without NUL');
      const modeEnd = nulAt(bytes, nameEnd + 1);
      if (modeEnd < 0) return new MalformedPacket('unterminated', 'mode without NUL');
      const options = decodeOptions(bytes, modeEnd + 1);
      if (options instanceof MalformedPacket) return options;
      return {
        op: opcode === OP_RRQ ? 'rrq' : 'wrq',
        // Filenames are bytes to RFC 1350; UTF-8 is what every current client sends for non-ASCII names.
        filename: bytes.toString('utf8', 2, nameEnd),
        mode: bytes.toString('latin1', nameEnd + 1, modeEnd).toLowerCase(),
        options,
      };
    }
    case OP_DATA:
      if (bytes.length < 4) return new MalformedPacket('truncated', `DATA of ${bytes.length} bytes`);
      return { op: 'data', block: bytes.readUInt16BE(2), data: bytes.subarray(4) };
    case OP_ACK:
      // Anything after the block number is ignored: it carries nothing, and refusing it helps no one.
      if (bytes.length < 4) return new MalformedPacket('truncated', `ACK of ${bytes.length} bytes`);
      return { op: 'ack', block: bytes.readUInt16BE(2) };
    case OP_ERROR: {
      if (bytes.length < 4) return new MalformedPacket('truncated', `ERROR of ${bytes.length} bytes`);
      // A missing terminator is tolerated: an ERROR ends a transfer either way, and dropping one would leave
      // the transfer retransmitting to a client that has already given up.
      const end = nulAt(bytes, 4);
      return {
        op: 'error',
        code: bytes.readUInt16BE(2),
        message: bytes.toString('utf8', 4, end < 0 ? bytes.length : end),
      };
    }
    case OP_OACK: {
      const options = decodeOptions(bytes, 2);
      if (options instanceof MalformedPacket) return options;
      return { op: 'oack', options };
    }
    default:
      return new MalformedPacket('opcode', `opcode ${opcode}`);
  }
}

function optionBytes(options: ReadonlyMap<string, string>): Buffer[] {
  const parts: Buffer[] = [];
  for (const [name, value] of options) parts.push(Buffer.from(`${name}\0${value}\0`, 'latin1'));
  return parts;
}

/** Encodes a packet. Strings must not contain NUL (the caller's values never do). */
export function encode(packet: Packet): Buffer {
  switch (packet.op) {
    case 'rrq':
    case 'wrq': {
      const head = Buffer.alloc(2);
      head.writeUInt16BE(packet.op === 'rrq' ? OP_RRQ : OP_WRQ, 0);
      return Buffer.concat([
        head,
        Buffer.from(`${packet.filename}\0`, 'utf8'),
        Buffer.from(`${packet.mode}\0`, 'latin1'),
        ...optionBytes(packet.options),
      ]);
    }
    case 'data': {
      const out = Buffer.allocUnsafe(4 + packet.data.length);
      writeDataHeader(out, 0, packet.block);
      packet.data.copy(out, 4);
      return out;
    }
    case 'ack': {
      const out = Buffer.allocUnsafe(4);
      out.writeUInt16BE(OP_ACK, 0);
      out.writeUInt16BE(packet.block & 0xffff, 2);
      return out;
    }
    case 'error': {
      const message = Buffer.from(packet.message, 'utf8');
      const out = Buffer.alloc(5 + message.length);
      out.writeUInt16BE(OP_ERROR, 0);
      out.writeUInt16BE(packet.code, 2);
      message.copy(out, 4);
      return out;
    }
    case 'oack': {
      const head = Buffer.alloc(2);
      head.writeUInt16BE(OP_OACK, 0);
      return Buffer.concat([head, ...optionBytes(packet.options)]);
    }
  }
}

/** Writes a DATA header (opcode 3, block number modulo 65536) at `offset`: the per-block hot path. */
export function writeDataHeader(out: Buffer, offset: number, block: number): void {
  out[offset] = 0;
  out[offset + 1] = OP_DATA;
  out[offset + 2] = (block >>> 8) & 0xff;
  out[offset + 3] = block & 0xff;
}

export function errorPacket(code: number, message: string): Buffer {
  return encode({ op: 'error', code, message });
}
