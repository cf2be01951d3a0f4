/**
 * Option values as bytes: writers for the server's replies (they throw RangeError on values that cannot be
 * represented — programming errors), encapsulated option lists (43, 82, 175) both ways, and RFC 3397 domain search.
 * Pure; re-exported by options.ts.
 */
import { ipv4Bytes } from './header.ts';

const PAD = 0;
const END = 255;

export function ipValue(address: string): Buffer {
  return ipv4Bytes(address, 'address');
}

/** An address given as its 32-bit number (a subnet's mask or broadcast address): no text on the way. */
export function ipNumberValue(address: number): Buffer {
  checkUint(address, 0xffffffff, 'address');
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(address, 0);
  return out;
}

export function ipsValue(addresses: readonly string[]): Buffer {
  return Buffer.concat(addresses.map(ipValue));
}

function checkUint(n: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${what}: ${n} is not an integer in 0-${max}`);
}

export function u32Value(n: number): Buffer {
  checkUint(n, 0xffffffff, 'u32');
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(n, 0);
  return out;
}

export function u16Value(n: number): Buffer {
  checkUint(n, 0xffff, 'u16');
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(n, 0);
  return out;
}

export function u8Value(n: number): Buffer {
  checkUint(n, 0xff, 'u8');
  const out = Buffer.allocUnsafe(1);
  out[0] = n;
  return out;
}

/**
 * Text as UTF-8 without a terminating NUL (RFC 2132 §2: "options containing NVT ASCII data SHOULD NOT include a
 * trailing NUL"). ASCII, what every option here carries, is the same bytes in either encoding.
 */
export function textValue(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Latin1 bytes of `text`, refusing characters latin1 cannot hold rather than truncating them. */
export function latin1Value(text: string, what: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\xff]*$/.test(text)) throw new RangeError(`${what}: only latin1 characters are allowed`);
  return Buffer.from(text, 'latin1');
}

/**
 * An encapsulated option list (RFC 2132 §8.4 vendor-specific 43, RFC 3046 relay agent info 82, iPXE 175): code,
 * length, value. PAD is skipped and END ends the list (both tolerated though 82 never uses them); repeated codes
 * are concatenated like top-level options (RFC 3396). Undefined when a sub-option runs past the end.
 */
export function decodeEncapsulated(value: Buffer): Map<number, Buffer> | undefined {
  const parts = new Map<number, Buffer[]>();
  let at = 0;
  while (at < value.length) {
    const code = value[at] ?? END;
    if (code === PAD) {
      at++;
      continue;
    }
    if (code === END) break;
    const length = value[at + 1];
    if (length === undefined || at + 2 + length > value.length) return undefined;
    const data = value.subarray(at + 2, at + 2 + length);
    const list = parts.get(code);
    if (list) list.push(data);
    else parts.set(code, [data]);
    at += 2 + length;
  }
  return new Map([...parts].map(([code, list]) => [code, Buffer.concat(list)]));
}

/**
 * code/length/value for each entry, in order, without a trailing END (add one where a format wants it, as PXE's
 * option 43 does: option-pxe.ts). A value over 255 bytes becomes consecutive instances, as RFC 3396 does for
 * top-level options; decodeEncapsulated joins them again.
 */
export function encodeEncapsulated(entries: Iterable<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of entries) {
    if (!Number.isInteger(code) || code <= PAD || code >= END) throw new RangeError(`sub-option code ${code}`);
    let at = 0;
    do {
      const chunk = value.subarray(at, at + 255);
      parts.push(Buffer.of(code, chunk.length), chunk);
      at += 255;
    } while (at < value.length);
  }
  return Buffer.concat(parts);
}

/** RFC 1035 §2.3.4: labels of 1-63 octets, a name of at most 255 octets on the wire. */
function labelsOf(domain: string): string[] {
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  const labels = name.split('.');
  if (!/^[\x21-\x7e]+$/.test(name) || labels.some((label) => label.length === 0 || label.length > 63)) {
    throw new RangeError(`not a domain name (ASCII labels of 1-63 characters): ${JSON.stringify(domain)}`);
  }
  if (name.length + 2 > 255) throw new RangeError(`domain name longer than 255 octets: ${domain}`);
  return labels;
}

/**
 * RFC 3397 domain search list: each name in DNS wire format, compressed as RFC 1035 §4.1.4 with pointers that are
 * offsets into the whole option value (RFC 3397 §2: the value may span several instances, concatenated per
 * RFC 3396 — which encode does when it exceeds 255 bytes). Suffixes are shared when spelled identically.
 */
export function domainSearchValue(domains: readonly string[]): Buffer {
  const out: number[] = [];
  const seen = new Map<string, number>();
  for (const domain of domains) {
    const labels = labelsOf(domain);
    let pointer: number | undefined;
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      pointer = seen.get(suffix);
      if (pointer !== undefined) break;
      // A pointer has 14 bits of offset.
      if (out.length <= 0x3fff) seen.set(suffix, out.length);
      const label = labels[i] ?? '';
      out.push(label.length, ...Buffer.from(label, 'latin1'));
    }
    if (pointer === undefined) out.push(0);
    else out.push(0xc0 | (pointer >> 8), pointer & 0xff);
  }
  return Buffer.from(out);
}

/**
 * Reads an RFC 3397 value back into names (no trailing dot). Undefined when malformed: a truncated label, a
 * reserved label type, or a pointer that does not point strictly backwards (which also rules out loops).
 */
export function parseDomainSearchValue(value: Buffer): string[] | undefined {
  const names: string[] = [];
  let at = 0;
  while (at < value.length) {
    const labels: string[] = [];
    let cursor = at;
    let next: number | undefined;
    let limit = at;
    for (;;) {
      const length = value[cursor];
      if (length === undefined) return undefined;
      if (length === 0) {
        next ??= cursor + 1;
        break;
      }
      if ((length & 0xc0) === 0xc0) {
        const low = value[cursor + 1];
        if (low === undefined) return undefined;
        const target = ((length & 0x3f) << 8) | low;
        next ??= cursor + 2;
        if (target >= limit) return undefined;
        limit = target;
        cursor = target;
        continue;
      }
      if ((length & 0xc0) !== 0 || cursor + 1 + length > value.length) return undefined;
      labels.push(value.toString('latin1', cursor + 1, cursor + 1 + length));
      cursor += 1 + length;
    }
    names.push(labels.join('.'));
    at = next;
  }
  return names;
}
