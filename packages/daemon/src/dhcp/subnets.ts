import { ipv4ToNumber, parseCidr, prefixToMask } from '@smelt/shared/net';
import type { Config } from '../config/schema.ts';

/** One subnet the server hands out addresses on, with numbers precomputed for the hot path. */
export interface Subnet {
  /** "10.0.0.0/24", as configured: the name in logs and metrics. */
  name: string;
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
  /** The dynamic pool, inclusive; undefined for a subnet that only serves reservations (and proxy mode). */
  pool?: { start: number; end: number };
  gateway?: string;
  dns: string[];
  ntp: string[];
  domain?: string;
  leaseTime: number;
}

function toNumber(text: string): number {
  const value = ipv4ToNumber(text);
  if (value === undefined) throw new Error(`not an IPv4 address: ${text}`);
  return value;
}

type SubnetFields = Pick<Config['dhcp'], 'subnet' | 'pool' | 'gateway' | 'dns' | 'ntp' | 'domain' | 'leaseTime'>;

function subnetOf(fields: SubnetFields): Subnet | undefined {
  if (fields.subnet === undefined) return undefined;
  const cidr = parseCidr(fields.subnet);
  if (!cidr) throw new Error(`not a subnet: ${fields.subnet}`);
  const mask = prefixToMask(cidr.prefix);
  return {
    name: fields.subnet,
    network: cidr.network,
    prefix: cidr.prefix,
    mask,
    broadcast: (cidr.network | ~mask) >>> 0,
    ...(fields.pool && { pool: { start: toNumber(fields.pool.start), end: toNumber(fields.pool.end) } }),
    ...(fields.gateway !== undefined && { gateway: fields.gateway }),
    dns: fields.dns,
    ntp: fields.ntp,
    ...(fields.domain !== undefined && { domain: fields.domain }),
    leaseTime: fields.leaseTime,
  };
}

/** The configured subnets, the top-level one first (the config schema has already validated them). */
export function subnetsFromConfig(dhcp: Config['dhcp']): Subnet[] {
  const first = subnetOf(dhcp);
  const rest = dhcp.subnets.map((entry) => subnetOf(entry)).filter((s): s is Subnet => s !== undefined);
  return first ? [first, ...rest] : rest;
}

export function subnetContains(subnet: Subnet, address: number): boolean {
  return (address & subnet.mask) >>> 0 === subnet.network;
}

/** The subnet that holds `address` (a relay's giaddr, or our address on the receiving interface). */
export function findSubnet(subnets: readonly Subnet[], address: number): Subnet | undefined {
  return subnets.find((subnet) => subnetContains(subnet, address));
}
