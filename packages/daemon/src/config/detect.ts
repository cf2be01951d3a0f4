import type { NetworkInterfaceInfo } from 'node:os';
import { cidrContains, ipv4ToNumber, numberToIpv4, parseCidr } from '@smelt/shared/net';
import type { ConfigInput } from './schema.ts';

/** What the host tells us, passed in so that detection stays a pure function of it. */
export interface HostFacts {
  /** os.networkInterfaces(): only links that are up and have addresses. */
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Every link's name (/sys/class/net), down ones included, so that "down" and "absent" can be told apart. */
  links: readonly string[];
  /** The text of /proc/net/route. */
  routeTable: string;
  /** The text of /etc/resolv.conf, or '' when there is none. */
  resolvConf: string;
}

export class DetectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DetectError';
  }
}

interface Route {
  iface: string;
  destination: number;
  gateway: number;
  mask: number;
}

/** /proc/net/route holds addresses as host-order (little-endian here) hex. */
function parseRouteTable(text: string): Route[] {
  const fromHex = (hex: string) => {
    const n = parseInt(hex, 16);
    return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
  };
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 8 && /^[0-9A-Fa-f]{8}$/.test(fields[1] ?? ''))
    .map((f) => ({
      iface: f[0] ?? '',
      destination: fromHex(f[1] ?? ''),
      gateway: fromHex(f[2] ?? ''),
      mask: fromHex(f[7] ?? ''),
    }));
}

function describeInterfaces(facts: HostFacts): string {
  const names = [...new Set([...facts.links, ...Object.keys(facts.interfaces)])];
  return names
    .map((name) => {
      const infos = facts.interfaces[name];
      if (infos === undefined) return `${name} (down or no address)`;
      const v4 = infos.filter((i) => i.family === 'IPv4').map((i) => i.cidr);
      return v4.length > 0 ? `${name} (${v4.join(', ')})` : `${name} (no IPv4)`;
    })
    .join(', ');
}

/**
 * A DHCP pool inside the subnet that leaves out the server and the gateway: up to 100 addresses from host .100
 * in a /24 or larger (the layout of DESIGN.md §9), otherwise the upper half; where an excluded address falls
 * inside, the larger side of it is kept.
 */
export function choosePool(
  network: number,
  prefix: number,
  exclude: readonly number[],
): { start: number; end: number } | undefined {
  if (prefix > 29) return undefined;
  const size = 2 ** (32 - prefix);
  const firstHost = network + 1;
  const lastHost = network + size - 2;
  let start = size >= 256 ? network + 100 : network + size / 2;
  let end = Math.min(start + 99, lastHost);
  start = Math.max(start, firstHost);
  for (const address of [...exclude].sort((a, b) => a - b)) {
    if (address < start || address > end) continue;
    if (address - start >= end - address) end = address - 1;
    else start = address + 1;
  }
  return start <= end ? { start, end } : undefined;
}

/** A complete configuration for the given interface, or for the default-route interface when none is given. */
export function detectConfig(facts: HostFacts, interfaceName?: string): ConfigInput {
  const routes = parseRouteTable(facts.routeTable);
  const defaultRoutes = routes.filter((r) => r.destination === 0 && r.mask === 0);
  const name = interfaceName ?? defaultRoutes[0]?.iface;
  if (name === undefined) {
    throw new DetectError(
      `no default route, so no interface to detect; pass --interface (interfaces: ${describeInterfaces(facts)})`,
    );
  }
  const infos = facts.interfaces[name];
  if (infos === undefined) {
    throw new DetectError(
      facts.links.includes(name)
        ? `interface "${name}" is down or has no address (ip link set ${name} up); interfaces: ${describeInterfaces(facts)}`
        : `no interface named "${name}"; interfaces: ${describeInterfaces(facts)}`,
    );
  }
  const v4 =
    infos.find((info) => info.family === 'IPv4' && !info.internal) ?? infos.find((info) => info.family === 'IPv4');
  if (!v4?.cidr) {
    throw new DetectError(`interface "${name}" has no IPv4 address; interfaces: ${describeInterfaces(facts)}`);
  }
  const cidr = parseCidr(v4.cidr);
  const address = ipv4ToNumber(v4.address);
  if (!cidr || address === undefined) throw new DetectError(`cannot read the address of "${name}": ${v4.cidr}`);
  const subnet = `${numberToIpv4(cidr.network)}/${cidr.prefix}`;

  const gatewayRoute = defaultRoutes.find((r) => r.iface === name && r.gateway !== 0);
  const gateway = gatewayRoute?.gateway;
  const pool = choosePool(cidr.network, cidr.prefix, gateway === undefined ? [address] : [address, gateway]);
  const nameservers = [...facts.resolvConf.matchAll(/^\s*nameserver\s+([0-9.]+)\s*$/gm)]
    .map((m) => m[1] ?? '')
    // A loopback resolver (systemd-resolved's 127.0.0.53) means nothing to the machines we boot; nor does one off
    // their subnet when we offer them no gateway to it (an isolated provisioning segment: the host's own upstream
    // resolver is out of their reach, and a resolver they cannot reach costs every lookup a timeout).
    .filter((ip) => {
      const number = ipv4ToNumber(ip);
      return number !== undefined && !ip.startsWith('127.') && (gateway !== undefined || cidrContains(cidr, number));
    });
  const dns = nameservers.length > 0 ? nameservers : gateway === undefined ? [] : [numberToIpv4(gateway)];

  return {
    interface: name,
    address: v4.address,
    dataDir: '/var/lib/smelt',
    api: { listen: '0.0.0.0:7480' },
    http: { listen: '0.0.0.0:80' },
    // TFTP answers from the address the request came to (FIELD-NOTES: no IP_PKTINFO in node:dgram).
    tftp: { listen: `${v4.address}:69` },
    dhcp: {
      mode: 'proxy',
      subnet,
      ...(pool && { pool: { start: numberToIpv4(pool.start), end: numberToIpv4(pool.end) } }),
      ...(gateway !== undefined && { gateway: numberToIpv4(gateway) }),
      dns,
      leaseTime: 3600,
    },
    ipxe: { dir: '/usr/lib/ipxe' },
    store: { kind: 'sqlite' },
    log: { level: 'info' },
  };
}
