/**
 * The fixed part of a BOOTP/DHCP message (RFC 2131 §2, figure 1) and the IPv4 text helpers it needs: pure, used by
 * packet.ts (framing) and options.ts (address-valued options).
 *
 *   0 op · 1 htype · 2 hlen · 3 hops · 4 xid(4) · 8 secs(2) · 10 flags(2) · 12 ciaddr · 16 yiaddr · 20 siaddr ·
 *   24 giaddr · 28 chaddr(16) · 44 sname(64) · 108 file(128) · 236 magic cookie(4) · 240 options
 */

export const HEADER_LENGTH = 236;
/** RFC 2131 §3: the first four octets of the options field are 99.130.83.99 (RFC 1497). */
export const MAGIC_COOKIE: readonly number[] = [99, 130, 83, 99];
export const OPTIONS_OFFSET = HEADER_LENGTH + 4;
export const CHADDR_OFFSET = 28;
export const CHADDR_LENGTH = 16;
export const SNAME_OFFSET = 44;
export const SNAME_LENGTH = 64;
export const FILE_OFFSET = 108;
export const FILE_LENGTH = 128;
/**
 * IPv4 (20) + UDP (8) headers. Option 57 (RFC 2132 §9.10, minimum 576 = the minimum IP datagram of RFC 791) counts
 * the whole IP datagram: RFC 2131 §2 sizes a 576-octet message as 236 + 312 octets of options field (cookie
 * included) = 548 of UDP payload. ISC dhcpd and dnsmasq subtract these 28 octets from option 57 too.
 */
export const IP_UDP_OVERHEAD = 28;

/** The fixed header, as in DhcpPacket (packet.ts) minus the options. */
export interface DhcpHeader {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: Buffer;
  sname: string;
  file: string;
}

export function formatIpv4(bytes: Uint8Array, offset: number): string {
  const a = bytes[offset] ?? 0;
  const b = bytes[offset + 1] ?? 0;
  const c = bytes[offset + 2] ?? 0;
  const d = bytes[offset + 3] ?? 0;
  // Most header addresses of a request are zero: no new string for them.
  if ((a | b | c | d) === 0) return '0.0.0.0';
  return `${a}.${b}.${c}.${d}`;
}

/** 10.0.0.1 for 0x0a000001: numberToIpv4 without the array (the hot path formats one per reply and lease). */
export function ipv4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * Strict dotted quad ('10.0.0.1'; no leading zeros, no shorthand) as a 32-bit number; undefined otherwise. Read a
 * character at a time, not with a regular expression: a match allocates an array and four strings. Nothing is
 * cached: each client's yiaddr is a new address, and a cache of them (there was one, 4,096 entries) was replaced
 * every 4,096 clients of a storm, each time after it had lived long enough to be promoted to the old generation.
 */
export function parseIpv4Number(text: string): number | undefined {
  if (text === '0.0.0.0') return 0;
  let value = 0;
  let at = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (text.charCodeAt(at) !== 0x2e) return undefined; // '.'
      at++;
    }
    const start = at;
    let octet = 0;
    while (at < text.length && at - start < 3) {
      const digit = text.charCodeAt(at) - 0x30;
      if (digit < 0 || digit > 9) break;
      octet = octet * 10 + digit;
      at++;
    }
    const digits = at - start;
    if (digits === 0 || octet > 255 || (digits > 1 && text.charCodeAt(start) === 0x30)) return undefined;
    value = value * 256 + octet;
  }
  if (at !== text.length) return undefined;
  return value;
}

/** Strict dotted quad ('10.0.0.1'; no leading zeros, no shorthand); undefined otherwise. A new Buffer each call. */
export function parseIpv4(text: string): Buffer | undefined {
  const value = parseIpv4Number(text);
  if (value === undefined) return undefined;
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

/** parseIpv4 for values the caller supplied: an invalid address is a programming error. */
export function ipv4Bytes(text: string, what: string): Buffer {
  const bytes = parseIpv4(text);
  if (!bytes) throw new RangeError(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
  return bytes;
}

function writeIpv4(out: Buffer, offset: number, text: string, what: string): void {
  const value = parseIpv4Number(text);
  if (value === undefined) throw new RangeError(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
  out.writeUInt32BE(value, offset);
}

/** A NUL-terminated text field (sname, file): latin1 so every byte maps to one character and back. */
function readText(bytes: Buffer, offset: number, length: number): string {
  if (bytes[offset] === 0) return '';
  const field = bytes.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? field.length : nul);
}

function writeText(out: Buffer, offset: number, length: number, text: string, what: string): void {
  if (text === '') return;
  // Characters above U+00FF would be silently truncated by latin1: refuse them rather than send the wrong name.
  // eslint-disable-next-line no-control-regex
  if (!/^[\x01-\xff]*$/.test(text)) throw new RangeError(`${what}: only latin1 characters and no NUL are allowed`);
  if (text.length > length) throw new RangeError(`${what}: ${text.length} characters do not fit in ${length} bytes`);
  out.write(text, offset, 'latin1');
}

/** Reads the fixed header from a buffer already known to hold at least HEADER_LENGTH bytes; chaddr is a view of it. */
export function readHeader(bytes: Buffer): DhcpHeader {
  return {
    op: bytes.readUInt8(0),
    htype: bytes.readUInt8(1),
    hlen: bytes.readUInt8(2),
    hops: bytes.readUInt8(3),
    xid: bytes.readUInt32BE(4),
    secs: bytes.readUInt16BE(8),
    flags: bytes.readUInt16BE(10),
    ciaddr: formatIpv4(bytes, 12),
    yiaddr: formatIpv4(bytes, 16),
    siaddr: formatIpv4(bytes, 20),
    giaddr: formatIpv4(bytes, 24),
    chaddr: bytes.subarray(CHADDR_OFFSET, CHADDR_OFFSET + CHADDR_LENGTH),
    sname: readText(bytes, SNAME_OFFSET, SNAME_LENGTH),
    file: readText(bytes, FILE_OFFSET, FILE_LENGTH),
  };
}

/**
 * Writes the fixed header and the magic cookie into a zero-filled `out`. Throws RangeError on values that cannot
 * be represented (out-of-range numbers, hlen > 16, chaddr longer than 16 bytes, bad addresses, over-long or
 * non-latin1 sname/file). A chaddr shorter than 16 bytes is zero-padded.
 */
export function writeHeader(out: Buffer, header: DhcpHeader): void {
  if (header.hlen > CHADDR_LENGTH) throw new RangeError(`hlen ${header.hlen} exceeds the 16-byte chaddr field`);
  if (header.chaddr.length > CHADDR_LENGTH) throw new RangeError(`chaddr of ${header.chaddr.length} bytes`);
  out.writeUInt8(header.op, 0);
  out.writeUInt8(header.htype, 1);
  out.writeUInt8(header.hlen, 2);
  out.writeUInt8(header.hops, 3);
  out.writeUInt32BE(header.xid, 4);
  out.writeUInt16BE(header.secs, 8);
  out.writeUInt16BE(header.flags, 10);
  writeIpv4(out, 12, header.ciaddr, 'ciaddr');
  writeIpv4(out, 16, header.yiaddr, 'yiaddr');
  writeIpv4(out, 20, header.siaddr, 'siaddr');
  writeIpv4(out, 24, header.giaddr, 'giaddr');
  out.set(header.chaddr, CHADDR_OFFSET);
  writeText(out, SNAME_OFFSET, SNAME_LENGTH, header.sname, 'sname');
  writeText(out, FILE_OFFSET, FILE_LENGTH, header.file, 'file');
  out.set(MAGIC_COOKIE, HEADER_LENGTH);
}
