/**
 * DHCP/BOOTP message codec (RFC 2131 §2–3, RFC 2132, RFC 3396): pure, no sockets, no config.
 *
 * `decode` never throws: it returns a typed packet or a `MalformedPacket` value with a human `reason` and a stable
 * `kind` (a metrics label). `encode` turns a packet back into bytes, fitting the options into the client's maximum
 * message size (option-layout.ts). Typed option accessors live in options.ts.
 */
import {
  CHADDR_LENGTH,
  FILE_LENGTH,
  FILE_OFFSET,
  HEADER_LENGTH,
  IP_UDP_OVERHEAD,
  MAGIC_COOKIE,
  OPTIONS_OFFSET,
  SNAME_LENGTH,
  SNAME_OFFSET,
  formatIpv4,
  readHeader,
  writeHeader,
} from './header.ts';
import { layoutOptions } from './option-layout.ts';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** flags: RFC 2131 §2 broadcast bit. */
export const BROADCAST_FLAG = 0x8000;
/** The smallest message: fixed header + magic cookie, no options at all. */
export const MIN_PACKET_LENGTH = OPTIONS_OFFSET;
/** RFC 2131 §2 / RFC 2132 §9.10: every client accepts a 576-octet IP datagram. */
export const DEFAULT_MAX_SIZE = 576;
/** RFC 1542 §2.1: a BOOTP message is at least 300 octets of UDP data; some relays drop shorter ones. */
export const DEFAULT_MIN_SIZE = 300;

const PAD = 0;
const END = 255;
const OVERLOAD = 52;

export interface DhcpPacket {
  /** 1 BOOTREQUEST, 2 BOOTREPLY. */
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  /** uint32. */
  xid: number;
  secs: number;
  /** 0x8000 = broadcast bit. */
  flags: number;
  /** Dotted quads, '0.0.0.0' when zero. */
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** Always 16 bytes as on the wire (encode zero-pads a shorter one). */
  chaddr: Buffer;
  /** The 64-byte field as latin1 text up to the first NUL; '' when it carried options (overload). */
  sname: string;
  /** The 128-byte field likewise. */
  file: string;
  /**
   * code → value. Several instances of a code are concatenated (RFC 3396 §7) in the order options field, `file`,
   * `sname`; insertion order is first appearance. PAD, END and option overload (52) are not included.
   */
  options: Map<number, Buffer>;
}

export type MalformedKind =
  /** Shorter than the fixed header and magic cookie. */
  | 'short'
  /** Not 99.130.83.99 after the fixed header. */
  | 'cookie'
  /** op neither BOOTREQUEST nor BOOTREPLY. */
  | 'op'
  /** hlen larger than chaddr. */
  | 'hlen'
  /** An option whose length byte is missing or whose value runs past the end of its field. */
  | 'option'
  /** Option 52 not exactly one octet of 1, 2 or 3. */
  | 'overload'
  /** Constructed elsewhere without a kind. */
  | 'other';

/** Why a datagram is not a DHCP message. A value returned by `decode`, never thrown. */
export class MalformedPacket {
  /** Human-readable, e.g. "truncated option 55 at offset 260: length 20, 5 bytes left". */
  readonly reason: string;
  /** Length of the datagram, in bytes. */
  readonly length: number;
  /** Stable short label, for counting drops by cause. */
  readonly kind: MalformedKind;
  constructor(reason: string, length: number, kind: MalformedKind = 'other') {
    this.reason = reason;
    this.length = length;
    this.kind = kind;
  }
  toString(): string {
    return `malformed DHCP packet (${this.length} bytes): ${this.reason}`;
  }
}

type Field = 'options' | 'file' | 'sname';

/**
 * Collects code/length/value options of one field into `into`. PAD is skipped (RFC 2132 §3.1); END stops the field
 * and whatever follows it is ignored (§3.2); a field without END simply ends at its boundary, as many clients send
 * it. Returns a MalformedPacket for an option that runs past the end of its field.
 */
function scanField(
  bytes: Buffer,
  start: number,
  end: number,
  field: Field,
  into: Map<number, Buffer[]>,
): MalformedPacket | undefined {
  let at = start;
  while (at < end) {
    const code = bytes[at] ?? END;
    if (code === PAD) {
      at++;
      continue;
    }
    if (code === END) return undefined;
    const where = `truncated option ${code} at offset ${at}${field === 'options' ? '' : ` (${field} field)`}`;
    if (at + 1 >= end) return new MalformedPacket(`${where}: no length byte`, bytes.length, 'option');
    const length = bytes[at + 1] ?? 0;
    const left = end - at - 2;
    if (length > left) {
      return new MalformedPacket(`${where}: length ${length}, ${left} bytes left`, bytes.length, 'option');
    }
    // RFC 2131 §4.1: option 52 belongs in the options field; one found in `file`/`sname` is ignored.
    if (code !== OVERLOAD || field === 'options') {
      const value = bytes.subarray(at + 2, at + 2 + length);
      const list = into.get(code);
      if (list) list.push(value);
      else into.set(code, [value]);
    }
    at += 2 + length;
  }
  return undefined;
}

/** Decodes one UDP payload. Never throws, for any input. */
export function decode(bytes: Uint8Array): DhcpPacket | MalformedPacket {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = buffer.length;
  if (size < MIN_PACKET_LENGTH) {
    return new MalformedPacket(
      `truncated: ${size} bytes, fewer than the ${MIN_PACKET_LENGTH} of fixed header and magic cookie`,
      size,
      'short',
    );
  }
  if (MAGIC_COOKIE.some((octet, i) => buffer[HEADER_LENGTH + i] !== octet)) {
    const cookie = formatIpv4(buffer, HEADER_LENGTH);
    return new MalformedPacket(`bad magic cookie ${cookie} (expected 99.130.83.99)`, size, 'cookie');
  }
  const header = readHeader(buffer);
  if (header.op !== BOOTREQUEST && header.op !== BOOTREPLY) {
    return new MalformedPacket(`op ${header.op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)`, size, 'op');
  }
  if (header.hlen > CHADDR_LENGTH) {
    return new MalformedPacket(`hlen ${header.hlen} exceeds the ${CHADDR_LENGTH}-byte chaddr field`, size, 'hlen');
  }

  const found = new Map<number, Buffer[]>();
  const error = scanField(buffer, OPTIONS_OFFSET, size, 'options', found);
  if (error) return error;
  // RFC 2132 §9.3: option overload, exactly one octet: 1 `file`, 2 `sname`, 3 both.
  const overloadParts = found.get(OVERLOAD);
  let overload = 0;
  if (overloadParts) {
    found.delete(OVERLOAD);
    const value = Buffer.concat(overloadParts);
    const first = value[0] ?? 0;
    if (value.length !== 1 || first < 1 || first > 3) {
      const shown = value.length === 1 ? `value ${first}` : `length ${value.length}`;
      return new MalformedPacket(`invalid option overload (52): ${shown}, expected 1, 2 or 3`, size, 'overload');
    }
    overload = first;
  }
  // RFC 2131 §4.1 / RFC 3396 §7: options continue in `file`, then in `sname`.
  if (overload & 1) {
    const fileError = scanField(buffer, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, 'file', found);
    if (fileError) return fileError;
    header.file = '';
  }
  if (overload & 2) {
    const snameError = scanField(buffer, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, 'sname', found);
    if (snameError) return snameError;
    header.sname = '';
  }

  const options = new Map<number, Buffer>();
  // Buffer.concat copies: the packet does not keep the datagram alive or share its memory.
  for (const [code, parts] of found) options.set(code, Buffer.concat(parts));
  return { ...header, options };
}

export interface EncodeOptions {
  /**
   * The client's option 57, default 576: the largest message it accepts, counted as RFC 2132 §9.10 does (the whole
   * IP datagram, minimum 576). The UDP payload is kept within `maxSize - 28` (IP_UDP_OVERHEAD in header.ts), so the
   * result is never longer than `maxSize`. Values below 269 (header, cookie, END and the headers) throw.
   */
  maxSize?: number;
  /** Pad the payload with zeros to at least this many bytes, default 300 (RFC 1542 §2.1); capped by maxSize. */
  minSize?: number;
}

export interface EncodeResult {
  bytes: Buffer;
  /** Option codes left out because they did not fit (option-layout.ts), in the order they were dropped. */
  dropped: number[];
  /** Option 52 as written: 0 none, 1 `file`, 2 `sname`, 3 both. */
  overload: number;
}

/**
 * Encodes a packet and reports what had to give way. Throws RangeError on values that cannot be represented
 * (header.ts, option-layout.ts) — those are programming errors, not network input.
 */
export function encodeDetailed(packet: DhcpPacket, options: EncodeOptions = {}): EncodeResult {
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
  const limit = maxSize - IP_UDP_OVERHEAD;
  if (!Number.isInteger(maxSize) || limit < MIN_PACKET_LENGTH + 1) {
    throw new RangeError(`maxSize ${maxSize} leaves no room for a DHCP message`);
  }
  const layout = layoutOptions(packet.options, {
    main: limit - MIN_PACKET_LENGTH,
    file: packet.file === '',
    sname: packet.sname === '',
  });
  const minSize = Math.min(options.minSize ?? DEFAULT_MIN_SIZE, limit);
  const bytes = Buffer.alloc(Math.max(MIN_PACKET_LENGTH + layout.main.length, minSize));
  writeHeader(bytes, packet);
  layout.main.copy(bytes, OPTIONS_OFFSET);
  layout.file?.copy(bytes, FILE_OFFSET);
  layout.sname?.copy(bytes, SNAME_OFFSET);
  return { bytes, dropped: layout.dropped, overload: layout.overload };
}

/** Encodes a packet; see encodeDetailed and EncodeOptions. */
export function encode(packet: DhcpPacket, options?: EncodeOptions): Buffer {
  return encodeDetailed(packet, options).bytes;
}

/** 'aa:bb:cc:dd:ee:ff' for Ethernet (htype 1, hlen 6), else undefined. */
export function macOf(packet: DhcpPacket): string | undefined {
  if (packet.htype !== 1 || packet.hlen !== 6 || packet.chaddr.length < 6) return undefined;
  return [...packet.chaddr.subarray(0, 6)].map((octet) => octet.toString(16).padStart(2, '0')).join(':');
}

/** An all-zero BOOTREPLY for Ethernet with no options: the starting point of a reply. */
export function emptyPacket(): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(CHADDR_LENGTH),
    sname: '',
    file: '',
    options: new Map(),
  };
}
