import { z } from 'zod';

/** Parses dotted-quad IPv4 text into a 32-bit unsigned number; undefined when it is not one. */
export function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function numberToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export const ipv4Schema = z.string().refine((s) => ipv4ToNumber(s) !== undefined, {
  error: (issue) => `"${String(issue.input)}" is not an IPv4 address (dotted quad, e.g. 192.168.0.10)`,
});

/** A netmask: contiguous ones, given as dotted quad (255.255.255.0) or prefix length ("24" or "/24"). */
export function netmaskToPrefix(text: string): number | undefined {
  const bare = text.startsWith('/') ? text.slice(1) : text;
  if (/^(0|[1-9][0-9]?)$/.test(bare)) {
    const prefix = Number(bare);
    return prefix <= 32 ? prefix : undefined;
  }
  const value = ipv4ToNumber(text);
  if (value === undefined) return undefined;
  for (let prefix = 0; prefix <= 32; prefix++) if (prefixToMask(prefix) === value) return prefix;
  return undefined;
}

export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Netmasks are stored in dotted-quad form whatever form they were given in. */
export const netmaskSchema = z.string().transform((text, ctx) => {
  const prefix = netmaskToPrefix(text);
  if (prefix === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a netmask (e.g. 255.255.255.0 or 24)` });
    return z.NEVER;
  }
  return numberToIpv4(prefixToMask(prefix));
});

export interface Cidr {
  network: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, extra] = text.split('/');
  if (address === undefined || prefixText === undefined || extra !== undefined) return undefined;
  const value = ipv4ToNumber(address);
  if (value === undefined || !/^(0|[1-9][0-9]?)$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  return { network: (value & prefixToMask(prefix)) >>> 0, prefix };
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return (address & prefixToMask(cidr.prefix)) >>> 0 === cidr.network;
}

export function formatCidr(cidr: Cidr): string {
  return `${numberToIpv4(cidr.network)}/${cidr.prefix}`;
}

/** A subnet in CIDR form; the host bits must be zero so that what is stored is what was meant. */
export const cidrSchema = z.string().superRefine((text, ctx) => {
  const cidr = parseCidr(text);
  if (!cidr) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a subnet in CIDR form (e.g. 10.0.0.0/24)` });
  } else if (formatCidr(cidr) !== text) {
    ctx.addIssue({ code: 'custom', message: `"${text}" has host bits set: did you mean ${formatCidr(cidr)}?` });
  }
});

/** A hostname per RFC 1123 §2.1: dot-separated labels of letters, digits and inner hyphens. */
export const hostnameSchema = z
  .string()
  .max(253)
  .regex(/^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)(\.(?!-)[a-zA-Z0-9-]{1,63}(?<!-))*$/, {
    message: 'not a hostname: letters, digits and hyphens in dot-separated labels of at most 63 characters',
  });

/** An http(s) URL. */
export const httpUrlSchema = z.url({ protocol: /^https?$/, error: 'not an http:// or https:// URL' });
