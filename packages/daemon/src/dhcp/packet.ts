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
import { OptionList, type DhcpOptions } from './option-list.ts';

export { OptionList, type DhcpOptions } from './option-list.ts';

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
   * `sname`; insertion order is first appearance. PAD, END and option overload (52) are not included. Decoded
   * and built packets carry an OptionList (option-list.ts); any DhcpOptions, a Map among them, encodes alike.
   */
  options: DhcpOptions;
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
  into: DhcpOptions,
): MalformedPacket | undefined {
  let at = start;
  while (at < end) {
    const code = bytes[at] ?? END;
    if (code === PAD) {
      at++;
      continue;
    }
    if (code === END) return undefined;
    if (at + 1 >= end)
      return new MalformedPacket(`${truncated(code, at, field)}: no length byte`, bytes.length, 'option');
    const length = bytes[at + 1] ?? 0;
    const left = end - at - 2;
    if (length > left) {
      const reason = `${truncated(code, at, field)}: length ${length}, ${left} bytes left`;
      return new MalformedPacket(reason, bytes.length, 'option');
    }
    // RFC 2131 §4.1: option 52 belongs in the options field; one found in `file`/`sname` is ignored.
    if (code !== OVERLOAD || field === 'options') {
      const value = bytes.subarray(at + 2, at + 2 + length);
      const earlier = into.get(code);
      // RFC 3396 §7: instances of one code are concatenated, in order (rare: a copy only then).
      into.set(code, earlier ? Buffer.concat([earlier, value]) : value);
    }
    at += 2 + length;
  }
  return undefined;
}

function truncated(code: number, at: number, field: Field): string {
  return `truncated option ${code} at offset ${at}${field === 'options' ? '' : ` (${field} field)`}`;
}

/** Decodes one UDP payload. Never throws, for any input. */
export function decode(bytes: Uint8Array): DhcpPacket | MalformedPacket {
  const size = bytes.byteLength;
  if (size < MIN_PACKET_LENGTH) {
    return new MalformedPacket(
      `truncated: ${size} bytes, fewer than the ${MIN_PACKET_LENGTH} of fixed header and magic cookie`,
      size,
      'short',
    );
  }
  if (
    bytes[HEADER_LENGTH] !== MAGIC_COOKIE[0] ||
    bytes[HEADER_LENGTH + 1] !== MAGIC_COOKIE[1] ||
    bytes[HEADER_LENGTH + 2] !== MAGIC_COOKIE[2] ||
    bytes[HEADER_LENGTH + 3] !== MAGIC_COOKIE[3]
  ) {
    const cookie = formatIpv4(bytes, HEADER_LENGTH);
    return new MalformedPacket(`bad magic cookie ${cookie} (expected 99.130.83.99)`, size, 'cookie');
  }
  const op = bytes[0] ?? 0;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) {
    return new MalformedPacket(`op ${op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)`, size, 'op');
  }
  const hlen = bytes[2] ?? 0;
  if (hlen > CHADDR_LENGTH) {
    return new MalformedPacket(`hlen ${hlen} exceeds the ${CHADDR_LENGTH}-byte chaddr field`, size, 'hlen');
  }
  // One copy of the datagram, which chaddr and the option values are views of: the packet neither keeps the
  // caller's buffer alive nor shares its memory, at the cost of one allocation instead of one per option.
  const buffer = Buffer.from(bytes);

  const options = new OptionList();
  const error = scanField(buffer, OPTIONS_OFFSET, size, 'options', options);
  if (error) return error;
  // RFC 2132 §9.3: option overload, exactly one octet: 1 `file`, 2 `sname`, 3 both.
  const overloadValue = options.get(OVERLOAD);
  let overload = 0;
  if (overloadValue) {
    options.delete(OVERLOAD);
    const first = overloadValue[0] ?? 0;
    if (overloadValue.length !== 1 || first < 1 || first > 3) {
      const shown = overloadValue.length === 1 ? `value ${first}` : `length ${overloadValue.length}`;
      return new MalformedPacket(`invalid option overload (52): ${shown}, expected 1, 2 or 3`, size, 'overload');
    }
    overload = first;
  }
  const header = readHeader(buffer);
  // RFC 2131 §4.1 / RFC 3396 §7: options continue in `file`, then in `sname`.
  if (overload & 1) {
    const fileError = scanField(buffer, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, 'file', options);
    if (fileError) return fileError;
    header.file = '';
  }
  if (overload & 2) {
    const snameError = scanField(buffer, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, 'sname', options);
    if (snameError) return snameError;
    header.sname = '';
  }
  return {
    op: header.op,
    htype: header.htype,
    hlen: header.hlen,
    hops: header.hops,
    xid: header.xid,
    secs: header.secs,
    flags: header.flags,
    ciaddr: header.ciaddr,
    yiaddr: header.yiaddr,
    siaddr: header.siaddr,
    giaddr: header.giaddr,
    chaddr: header.chaddr,
    sname: header.sname,
    file: header.file,
    options,
  };
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
  const minSize = Math.min(options.minSize ?? DEFAULT_MIN_SIZE, limit);
  const fast = encodeSimple(packet, limit, minSize);
  if (fast) return { bytes: fast, dropped: [], overload: 0 };
  const layout = layoutOptions(packet.options, {
    main: limit - MIN_PACKET_LENGTH,
    file: packet.file === '',
    sname: packet.sname === '',
  });
  const bytes = Buffer.alloc(Math.max(MIN_PACKET_LENGTH + layout.main.length, minSize));
  writeHeader(bytes, packet);
  layout.main.copy(bytes, OPTIONS_OFFSET);
  layout.file?.copy(bytes, FILE_OFFSET);
  layout.sname?.copy(bytes, SNAME_OFFSET);
  return { bytes, dropped: layout.dropped, overload: layout.overload };
}

/** Never written: encodeSimple's second pass reads only codes its first pass found with a value. */
const EMPTY = Buffer.alloc(0);

/**
 * The common case, written straight into the message: every option a single instance (≤ 255 octets) and all of
 * them fitting in the options field, so option-layout.ts's rules 2-5 have nothing to do. Undefined otherwise.
 */
function encodeSimple(packet: DhcpPacket, limit: number, minSize: number): Buffer | undefined {
  // keys() and get(), not `for (const [code, value] of options)`: the entry arrays of an iteration are allocated
  // even in optimised code (~64 bytes an option, measured with a Map), and a server encodes every reply here.
  const options = packet.options;
  let length = 1; // END
  for (const code of options.keys()) {
    const value = options.get(code);
    if (!value || value.length > 255 || !(code > PAD && code < END && code !== OVERLOAD && Number.isInteger(code))) {
      return undefined;
    }
    length += 2 + value.length;
  }
  if (MIN_PACKET_LENGTH + length > limit) return undefined;
  const size = Math.max(MIN_PACKET_LENGTH + length, minSize);
  // From Node's buffer pool (a reply is a few hundred bytes), zeroed here: writeHeader expects zeros.
  const bytes = Buffer.allocUnsafe(size).fill(0);
  writeHeader(bytes, packet);
  let at = OPTIONS_OFFSET;
  for (const code of options.keys()) {
    const value = options.get(code) ?? EMPTY;
    bytes[at] = code;
    bytes[at + 1] = value.length;
    bytes.set(value, at + 2);
    at += 2 + value.length;
  }
  bytes[at] = END;
  return bytes;
}

/** Encodes a packet; see encodeDetailed and EncodeOptions. */
export function encode(packet: DhcpPacket, options?: EncodeOptions): Buffer {
  return encodeDetailed(packet, options).bytes;
}

/** 'aa:bb:cc:dd:ee:ff' for Ethernet (htype 1, hlen 6), else undefined. */
export function macOf(packet: DhcpPacket): string | undefined {
  const c = packet.chaddr;
  if (packet.htype !== 1 || packet.hlen !== 6 || c.length < 6) return undefined;
  // One string made from 17 character codes: a template literal of eleven parts builds it through a chain of
  // intermediate strings, and a server reads a MAC from every request.
  // prettier-ignore
  return String.fromCharCode(
    high(c[0]), low(c[0]), COLON, high(c[1]), low(c[1]), COLON, high(c[2]), low(c[2]), COLON,
    high(c[3]), low(c[3]), COLON, high(c[4]), low(c[4]), COLON, high(c[5]), low(c[5]),
  );
}

/** Character codes of '0'..'9', 'a'..'f'. */
const HEX_DIGIT: readonly number[] = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));
const COLON = 0x3a;
const high = (octet = 0): number => HEX_DIGIT[octet >> 4] ?? 0;
const low = (octet = 0): number => HEX_DIGIT[octet & 15] ?? 0;

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
    options: new OptionList(),
  };
}
