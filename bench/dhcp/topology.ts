import { createNetns, type Netns } from '../lib/netns.ts';
import { run } from '../lib/process.ts';
import { ipv4ToNumber } from './wire.ts';

/**
 * The DHCP bench's segment: a /15, so that the pool (~131,000 addresses) holds the largest run's 50,000 clients and
 * the 20,000 warm-up clients before them, whose leases stay through the run.
 */
export const SUBNET = '10.64.0.0/15';
export const PREFIX = 15;
export const SERVER_ADDRESS = '10.64.0.1';
export const CLIENT_ADDRESS = '10.64.0.2';
export const POOL = { start: '10.64.1.0', end: '10.65.255.250' };
/** Addresses in POOL. */
export const POOL_SIZE = ipv4ToNumber(POOL.end) - ipv4ToNumber(POOL.start) + 1;
export const NETMASK = '255.254.0.0';
export const LEASE_TIME_S = 3600;

export interface Topology {
  server: { ns: Netns; ifname: string; address: string };
  client: { ns: Netns; ifname: string; address: string };
  describe: string;
}

/**
 * Two new namespaces joined by one veth pair: the servers' end 10.64.0.1/15, the generator's end 10.64.0.2/15.
 * Both ends get a 255.255.255.255/32 route: in a namespace a socket bound to 0.0.0.0 cannot send to the limited
 * broadcast address without one (FIELD-NOTES), so neither a broadcast DISCOVER nor a broadcast OFFER would leave.
 * Everything goes with the namespaces (bench/lib/cleanup.ts removes them however the bench ends).
 */
export async function createTopology(): Promise<Topology> {
  const server = await createNetns('dhcp-srv');
  const client = await createNetns('dhcp-cli');
  const ifServer = `sd${process.pid}s`.slice(-15);
  const ifClient = `sd${process.pid}c`.slice(-15);
  await server.exec(['ip', 'link', 'add', ifServer, 'type', 'veth', 'peer', 'name', ifClient]);
  await server.exec(['ip', 'link', 'set', ifClient, 'netns', client.name]);
  await server.exec(['ip', 'addr', 'add', `${SERVER_ADDRESS}/${PREFIX}`, 'dev', ifServer]);
  await client.exec(['ip', 'addr', 'add', `${CLIENT_ADDRESS}/${PREFIX}`, 'dev', ifClient]);
  for (const [ns, ifname] of [
    [server, ifServer],
    [client, ifClient],
  ] as const) {
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
    await ns.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', ifname]);
  }
  return {
    server: { ns: server, ifname: ifServer, address: SERVER_ADDRESS },
    client: { ns: client, ifname: ifClient, address: CLIENT_ADDRESS },
    describe:
      `servers in ${server.name} (${ifServer}, ${SERVER_ADDRESS}/${PREFIX}), the generator in ${client.name} ` +
      `(${ifClient}, ${CLIENT_ADDRESS}/${PREFIX}), one veth pair (MTU 1500), a 255.255.255.255/32 route on both ends; ` +
      `pool ${POOL.start}-${POOL.end}, lease time ${LEASE_TIME_S} s`,
  };
}

/** Kernel drop counters of a namespace: UDP receive-buffer overflows and packet-socket (AF_PACKET) drops. */
export interface Drops {
  udpRcvbuf: number;
  packetSocket: number;
}

export async function readDrops(ns: Netns): Promise<Drops> {
  const snmp = await run('ip', ['netns', 'exec', ns.name, 'cat', '/proc/net/snmp']);
  const [header, values] = snmp.stdout.split('\n').filter((line) => line.startsWith('Udp:'));
  const index = header?.split(/\s+/).indexOf('RcvbufErrors') ?? -1;
  const udpRcvbuf = index < 0 ? 0 : Number(values?.split(/\s+/)[index] ?? 0);
  // Kea's raw sockets are AF_PACKET: their drops show only as skmem d<N> in `ss -0 -m`.
  const ss = await run('ip', ['netns', 'exec', ns.name, 'ss', '-0', '-a', '-m']);
  let packetSocket = 0;
  for (const match of ss.stdout.matchAll(/skmem:\([^)]*\bd(\d+)\)/g)) packetSocket += Number(match[1]);
  return { udpRcvbuf, packetSocket };
}

export function dropsSince(before: Drops, after: Drops): Drops {
  return {
    udpRcvbuf: after.udpRcvbuf - before.udpRcvbuf,
    // A packet socket's counter goes with it (a restarted Kea starts at 0): never negative.
    packetSocket: Math.max(0, after.packetSocket - before.packetSocket),
  };
}
