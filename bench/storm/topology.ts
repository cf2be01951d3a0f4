import { ipv4ToNumber, numberToIpv4 } from '../dhcp/wire.ts';
import { createNetns, type Netns } from '../lib/netns.ts';
import { run, runOk } from '../lib/process.ts';

/** The storm's segment: a /16 with the server at .0.1, the simulator's own address at .0.2, the pool from .1.1. */
export const SUBNET = '10.66.0.0/16';
export const SERVER_ADDRESS = '10.66.0.1';
export const CLIENT_ADDRESS = '10.66.0.2';
export const NETMASK = '255.255.0.0';
const POOL_START = '10.66.1.1';

/**
 * TCP congestion control inside the storm's namespaces. A new namespace takes the host's (bbr here); with the
 * simulator's CPU saturated by 1,000 downloads, receive queues overflow and reorder, and BBR's bandwidth estimate
 * collapsed to ~5 kbit/s on a few connections, which then took many minutes for their last megabyte — the storm's
 * end was decided by that lottery. cubic, Linux's default, recovers from the same losses in round trips. It is set
 * on the segment's route (`congctl`): a namespace's default may only name what the host's
 * net.ipv4.tcp_allowed_congestion_control allows, which is a host setting this bench does not touch.
 */
export const CONGESTION_CONTROL = 'cubic';

export interface Pool {
  start: string;
  end: string;
  size: number;
}

/**
 * A pool twice the number of machines, as a segment is sized with room to spare. The room matters to dnsmasq: it
 * picks an address by hashing the MAC and holds nothing for an OFFER, so concurrent DISCOVERs that hash alike are
 * offered the same address and all but one get a NAK for their REQUEST; the fuller the pool, the more often.
 */
export function poolFor(machines: number): Pool {
  const size = machines * 2;
  const start = ipv4ToNumber(POOL_START);
  return { start: POOL_START, end: numberToIpv4(start + size - 1), size };
}

export function poolAddresses(pool: Pool): string[] {
  const start = ipv4ToNumber(pool.start);
  return Array.from({ length: pool.size }, (_, k) => numberToIpv4(start + k));
}

export interface StormTopology {
  server: { ns: Netns; ifname: string; address: string };
  client: { ns: Netns; ifname: string; address: string; mac: string };
  describe: string;
  remove(): Promise<void>;
}

/** `ip -n NS -batch -` with the given lines. */
async function batch(ns: Netns, lines: string[]): Promise<void> {
  const result = await run('ip', ['-n', ns.name, '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    timeoutMs: 120_000,
  });
  if (result.code !== 0) throw new Error(`ip -n ${ns.name} -batch failed: ${result.stderr.slice(0, 500)}`);
}

/**
 * Two new namespaces and one veth pair (MTU 1500: blksize 1468 fills a frame) for one server's storm, so that no
 * lease, neighbour entry or TIME_WAIT socket of one server's run is seen by the next.
 *
 * - Both ends get a 255.255.255.255/32 route: without it a socket bound to 0.0.0.0 in a namespace cannot send a
 *   limited broadcast (FIELD-NOTES.md), so neither the DISCOVERs nor broadcast OFFERs would leave.
 * - The client end holds every pool address (/16): a machine sends TFTP and HTTP from the address it was leased,
 *   whichever that is, so the server sees one peer per machine as on a real segment.
 * - The server end gets a permanent neighbour entry for every pool address (the client end's MAC). Without them the
 *   server would ARP for ~1,000 addresses, and the kernel's neighbour table is shared by all namespaces and capped
 *   at gc_thresh3 (1024 here): entries would be refused ("neighbour table overflow") and packets dropped — a limit
 *   of this host, not of any server. Permanent entries are not counted against it (Linux >= 4.19).
 */
export async function createStormTopology(tag: string, pool: Pool): Promise<StormTopology> {
  const server = await createNetns(`storm-${tag}-s`);
  const client = await createNetns(`storm-${tag}-c`);
  const ifServer = `st${process.pid}s`.slice(-15);
  const ifClient = `st${process.pid}c`.slice(-15);
  await server.exec(['ip', 'link', 'add', ifServer, 'type', 'veth', 'peer', 'name', ifClient]);
  await server.exec(['ip', 'link', 'set', ifClient, 'netns', client.name]);
  await server.exec(['ip', 'addr', 'add', `${SERVER_ADDRESS}/16`, 'dev', ifServer]);
  await client.exec(['ip', 'addr', 'add', `${CLIENT_ADDRESS}/16`, 'dev', ifClient]);
  const addresses = poolAddresses(pool);
  await batch(
    client,
    addresses.map((address) => `addr add ${address}/16 dev ${ifClient}`),
  );
  for (const [ns, ifname] of [
    [server, ifServer],
    [client, ifClient],
  ] as const) {
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
    await ns.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', ifname]);
  }
  // The namespace's default cannot be set to an algorithm the host does not allow to unprivileged users (cubic is
  // not, here), but a route may name one: the segment's route carries it, so every connection on it uses it.
  for (const [ns, ifname, address] of [
    [server, ifServer, SERVER_ADDRESS],
    [client, ifClient, CLIENT_ADDRESS],
  ] as const) {
    await ns.exec(
      ['ip', 'route', 'replace', SUBNET, 'dev', ifname, 'proto', 'kernel', 'scope', 'link', 'src', address].concat([
        'congctl',
        CONGESTION_CONTROL,
      ]),
    );
  }
  const link = JSON.parse(await runOk('ip', ['-n', client.name, '-j', 'link', 'show', ifClient])) as {
    address?: string;
  }[];
  const mac = link[0]?.address ?? '';
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new Error(`no MAC on ${ifClient}: ${JSON.stringify(link)}`);
  await batch(
    server,
    addresses.map((address) => `neigh replace ${address} lladdr ${mac} dev ${ifServer} nud permanent`),
  );
  return {
    server: { ns: server, ifname: ifServer, address: SERVER_ADDRESS },
    client: { ns: client, ifname: ifClient, address: CLIENT_ADDRESS, mac },
    describe:
      `the server in a namespace of its own (${SERVER_ADDRESS}/16), the simulator in another (${CLIENT_ADDRESS}/16 ` +
      `plus all ${pool.size} pool addresses ${pool.start}-${pool.end}), one veth pair, MTU 1500; a 255.255.255.255/32 ` +
      `route on both ends; a permanent neighbour entry on the server's end for every pool address (the kernel's ` +
      `shared neighbour table holds 1024 learned entries here); TCP congestion control ${CONGESTION_CONTROL} on the ` +
      `segment's route on both ends; new ` +
      `namespaces for every server and run`,
    remove: async () => {
      await client.remove();
      await server.remove();
    },
  };
}
