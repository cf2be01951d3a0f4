import type { Socket, RemoteInfo } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { ipv4ToNumber } from '@smelt/shared/net';
import type { Logger } from 'pino';
import { chooseFirstStage, isNetworkBoot, type FirstStage } from '../boot/firmware.ts';
import type { Config } from '../config/schema.ts';
import type { Discovery } from '../discovery/discovery.ts';
import type { EventJournal } from '../events/journal.ts';
import { explainBindError, ListenError } from '../listen.ts';
import type { Counter, Metrics, Series } from '../metrics.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { Decision } from './decision.ts';
import { DeviceSocketError, openDeviceSocket, type DeviceSocket } from './device-socket.ts';
import { clientFacts, type ClientFacts } from './facts.ts';
import { ipv4Text, parseIpv4Number } from './header.ts';
import { persistLeases } from './lease-store.ts';
import type { LeaseEntry, LeaseTable } from './lease-table.ts';
import { maxMessageSize, MessageType } from './options.ts';
import { BOOTREQUEST, decode, encode, MalformedPacket, type DhcpPacket } from './packet.ts';
import { decideProxy } from './proxy-mode.ts';
import type { DeploymentView } from './reservations.ts';
import { createRateLimiter } from './rate-limit.ts';
import type { ServerFacts } from './reply.ts';
import { decideServer } from './server-mode.ts';
import { findSubnet, type Subnet } from './subnets.ts';

export interface DhcpServerDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  commit: GroupCommit;
  table: LeaseTable;
  subnets: readonly Subnet[];
  deployments: DeploymentView;
  discovery: Discovery;
  events: EventJournal;
  /** Base URL of the machine-facing HTTP server (iPXE scripts, HTTP Boot), no trailing slash. */
  httpBase: string;
  now?: () => number;
  /** IPv4 addresses of an interface; os.networkInterfaces() unless a test says otherwise. */
  addressesOf?: (name: string) => string[];
  /** Told of every request served, so that a collection can run in the quiet after a storm (idle-reclaim.ts). */
  idle?: { busy(): void };
}

export interface RunningDhcpServer {
  interfaces: { name: string; addresses: string[] }[];
  close(): Promise<void>;
}

interface Listener {
  name: string;
  addresses: string[];
  /** The addresses as numbers, for the per-packet subnet lookup. */
  numbers: number[];
  socket: Socket;
  sendNow: DeviceSocket['sendNow'];
  role: 'dhcp' | 'pxe';
}

const messageNames: Record<number, string> = {
  1: 'discover',
  2: 'offer',
  3: 'request',
  4: 'decline',
  5: 'ack',
  6: 'nak',
  7: 'release',
  8: 'inform',
};

/** A counter by one label, each series resolved once (a label takes few values: message types, reasons). */
function byLabel(counter: Counter, label: string): (value: string) => void {
  const series = new Map<string, Series>();
  return (value) => {
    let one = series.get(value);
    if (!one) {
      one = counter.series({ [label]: value });
      series.set(value, one);
    }
    one.inc();
  };
}

function systemAddresses(name: string): string[] {
  return (networkInterfaces()[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
}

/**
 * The DHCP server's sockets (DESIGN.md §5.2: the only DHCP code that touches the network). One device-bound
 * socket per served interface on the server port, and in proxy mode one on the PXE port (4011); each packet is
 * decoded, checked, handed to the mode's pure decision, and the reply sent once its leases are durable.
 */
export async function startDhcpServer(deps: DhcpServerDeps): Promise<RunningDhcpServer> {
  const { config, log, metrics, table, subnets } = deps;
  const dhcp = config.dhcp;
  const now = deps.now ?? Date.now;
  const addressesOf = deps.addressesOf ?? systemAddresses;
  const ports = { server: dhcp.port, client: dhcp.port + 1 };
  const names = dhcp.interfaces.length > 0 ? dhcp.interfaces : config.interface ? [config.interface] : [];
  const limiter = createRateLimiter(dhcp.rateLimit, now);

  const received = byLabel(
    metrics.counter('smelt_dhcp_received_total', 'DHCP requests received, by message type'),
    'type',
  );
  const sent = byLabel(metrics.counter('smelt_dhcp_sent_total', 'DHCP replies sent, by message type'), 'type');
  const dropped = byLabel(metrics.counter('smelt_dhcp_dropped_total', 'DHCP packets dropped, by reason'), 'reason');
  const ignored = byLabel(
    metrics.counter('smelt_dhcp_ignored_total', 'DHCP requests not answered, by reason'),
    'reason',
  );
  const errors = byLabel(metrics.counter('smelt_dhcp_errors_total', 'DHCP failures on our side, by kind'), 'kind');
  const poolFullLogged = new Map<string, number>();
  const unsupportedLogged = new Set<string>();

  const listeners: Listener[] = [];
  const closeAll = () =>
    Promise.all(
      listeners.map(
        (l) =>
          new Promise<void>((resolve) => {
            l.socket.close(() => {
              resolve();
            });
          }),
      ),
    );
  try {
    for (const name of names) {
      const addresses = addressesOf(name);
      if (addresses.length === 0) log.warn({ interface: name }, 'interface has no IPv4 address; using address');
      for (const [role, port, address] of socketsFor(addresses)) {
        const { socket, sendNow } = await openSocket(name, port, address);
        const numbers = addresses.map((a) => ipv4ToNumber(a) ?? 0);
        const listener: Listener = { name, addresses, numbers, socket, sendNow, role };
        socket.on('message', (message, rinfo) => {
          onMessage(listener, message, rinfo);
        });
        socket.on('error', (error) => {
          errors('socket');
          log.error({ err: error, interface: name }, 'DHCP socket error');
        });
        listeners.push(listener);
      }
    }
  } catch (error) {
    await closeAll();
    throw error;
  }

  /**
   * Server mode: 0.0.0.0:67 on the device (broadcasts and unicasts: renewals, relays). Proxy mode shares the
   * segment, often the host, with the site's DHCP server, and Linux gives a unicast datagram to only one of the
   * sockets sharing a port: so it takes broadcasts on 255.255.255.255:67 (it still sends from there, the source
   * address chosen by the device) and unicasts only on `address`:67 (relays), never the site server's renewals;
   * plus 0.0.0.0:4011 for PXE boot-server requests.
   */
  function socketsFor(addresses: readonly string[]): [Listener['role'], number, string][] {
    if (dhcp.mode !== 'proxy') return [['dhcp', dhcp.port, '0.0.0.0']];
    return [
      ['dhcp', dhcp.port, '255.255.255.255'],
      ...(addresses.includes(config.address) ? [['dhcp', dhcp.port, config.address] as ['dhcp', number, string]] : []),
      ['pxe', dhcp.proxyPort, '0.0.0.0'],
    ];
  }

  function onMessage(listener: Listener, message: Buffer, rinfo: RemoteInfo): void {
    // Nothing a peer sends may throw out of here: the daemon outlives every packet.
    try {
      handle(listener, message, rinfo);
    } catch (error) {
      errors('internal');
      log.error({ err: error, from: rinfo.address }, 'DHCP request handling failed');
    }
  }

  function handle(listener: Listener, message: Buffer, rinfo: RemoteInfo): void {
    const packet = decode(message);
    if (packet instanceof MalformedPacket) {
      dropped('malformed');
      log.debug({ from: rinfo.address, reason: packet.reason, length: packet.length }, 'malformed DHCP packet');
      return;
    }
    if (packet.op !== BOOTREQUEST) {
      dropped('not-a-request');
      return;
    }
    const facts = clientFacts(packet);
    if (!facts) {
      dropped('not-dhcp');
      return;
    }
    if (!limiter.allow(facts.mac)) {
      dropped('rate-limited');
      return;
    }
    received(messageNames[facts.messageType] ?? 'other');
    deps.idle?.busy();
    const subnet = subnetFor(packet, listener);
    const server = serverFacts(packet, listener, subnet);
    const stage = firstStage(facts);
    const decision = decide(packet, facts, listener, rinfo, subnet, server, stage);
    const netBoot = isNetworkBoot(facts);
    if (dhcp.mode === 'server' || netBoot) {
      const lease =
        facts.messageType === MessageType.request && decision.kind === 'reply' && !decision.nak
          ? decision.reply.yiaddr
          : undefined;
      deps.discovery.seen({
        mac: facts.mac,
        arch: facts.arch,
        vendorClass: facts.vendorClass,
        userClasses: facts.userClasses,
        uuid: facts.uuid,
        relay: facts.relay,
        lease: lease === '0.0.0.0' ? undefined : lease,
      });
    }
    if (log.isLevelEnabled('debug')) {
      log.debug(
        {
          mac: facts.mac,
          xid: packet.xid,
          type: messageNames[facts.messageType] ?? facts.messageType,
          interface: listener.name,
          relay: facts.relay,
          arch: facts.arch,
          stage: stage?.kind,
          decision: decision.kind === 'ignore' ? `ignore: ${decision.reason}` : decision.kind,
          ...(decision.kind === 'reply' && {
            reply: messageNames[decision.reply.options.get(53)?.[0] ?? 0],
            yiaddr: decision.reply.yiaddr,
            to: `${decision.to.address}:${String(decision.to.port)}`,
          }),
        },
        'dhcp',
      );
    }
    carryOut(decision, listener, facts, subnet, maxMessageSize(packet));
  }

  function decide(
    packet: DhcpPacket,
    facts: ClientFacts,
    listener: Listener,
    rinfo: RemoteInfo,
    subnet: Subnet | undefined,
    server: ServerFacts,
    stage: FirstStage | undefined,
  ): Decision {
    if (dhcp.mode === 'proxy') {
      return decideProxy({
        request: packet,
        facts,
        server,
        stage,
        arrivedOn: listener.role,
        from: { address: rinfo.address, port: rinfo.port },
        ports,
      });
    }
    return decideServer({
      request: packet,
      facts,
      table,
      server,
      subnet,
      stage,
      host: deps.deployments.hostFor(facts.mac),
      ports,
    });
  }

  function carryOut(
    decision: Decision,
    listener: Listener,
    facts: ClientFacts,
    subnet: Subnet | undefined,
    maxSize: number | undefined,
  ): void {
    if (decision.kind === 'ignore') {
      ignored(decision.reason);
      if (decision.reason === 'pool-full' && subnet) poolFull(subnet, facts.mac);
      return;
    }
    // Nothing to make durable (an OFFER, an INFORM, a NAK): the reply goes at once.
    if (decision.persist.length === 0) {
      if (decision.kind === 'reply') send(listener, decision.reply, decision.to, maxSize);
      return;
    }
    persistLeases(deps.commit, decision.persist, deps.deployments).then(
      () => {
        try {
          leaseEvents(decision.persist, facts);
          if (decision.kind === 'reply') send(listener, decision.reply, decision.to, maxSize);
        } catch (error) {
          errors('internal');
          log.error({ err: error, mac: facts.mac }, 'DHCP reply failed');
        }
      },
      (error: unknown) => {
        // No reply without a durable lease: the client retries, and nothing it was told is lost.
        errors('store');
        log.error({ err: error, mac: facts.mac }, 'could not persist a lease; not replying');
      },
    );
  }

  /** The events of leases made durable: granted (a new binding, not a renewal), released, declined. */
  function leaseEvents(persist: readonly LeaseEntry[], facts: ClientFacts): void {
    for (const entry of persist) {
      if (entry.state === 'bound' && entry.mac === facts.mac && now() - entry.grantedAt < 1000) {
        const address = ipv4Text(entry.address);
        deps.events.record('lease.granted', { mac: entry.mac, subject: address, message: `leased ${address}` });
      } else if (entry.state === 'released' && entry.mac === facts.mac && facts.messageType === MessageType.release) {
        const address = ipv4Text(entry.address);
        deps.events.record('lease.released', { mac: entry.mac, subject: address, message: `released ${address}` });
      } else if (entry.state === 'declined') {
        const address = ipv4Text(entry.address);
        deps.events.record('lease.declined', {
          mac: entry.mac,
          subject: address,
          message: `${address} declined: in use by another host; out of the pool for ${dhcp.declineTimeout} s`,
        });
      }
    }
  }

  function send(listener: Listener, reply: DhcpPacket, to: { address: string; port: number }, max?: number): void {
    let bytes: Buffer;
    try {
      bytes = encode(reply, max === undefined ? {} : { maxSize: max });
    } catch (error) {
      // Only a bug of ours can get here (a value the codec refuses); it must not take the daemon down.
      errors('encode');
      log.error({ err: error, to: `${to.address}:${to.port}` }, 'could not encode a DHCP reply');
      return;
    }
    const type = reply.options.get(53)?.[0] ?? 0;
    try {
      if (listener.sendNow(bytes, to.port, to.address)) {
        sent(messageNames[type] ?? 'other');
        return;
      }
    } catch (error) {
      errors('send');
      log.warn({ err: error, to: `${to.address}:${to.port}`, interface: listener.name }, 'DHCP send failed');
      return;
    }
    // The kernel's send buffer is full: dgram queues it until there is room.
    listener.socket.send(bytes, to.port, to.address, (error) => {
      if (error) {
        errors('send');
        log.warn({ err: error, to: `${to.address}:${to.port}`, interface: listener.name }, 'DHCP send failed');
      } else sent(messageNames[type] ?? 'other');
    });
  }

  /** RFC 2131 §4.3.1: the relay's subnet (giaddr), else the client's own (ciaddr), else the receiving interface's. */
  function subnetFor(packet: DhcpPacket, listener: Listener): Subnet | undefined {
    if (packet.giaddr !== '0.0.0.0') return findSubnet(subnets, parseIpv4Number(packet.giaddr) ?? 0);
    if (packet.ciaddr !== '0.0.0.0') return findSubnet(subnets, parseIpv4Number(packet.ciaddr) ?? 0);
    for (const address of listener.numbers) {
      const subnet = findSubnet(subnets, address);
      if (subnet) return subnet;
    }
    return undefined;
  }

  /**
   * Our address as this client should see it: `address` when it is on the receiving interface (an interface may
   * carry other addresses too: a router's, or another DHCP server's), else the interface's address in the
   * client's subnet, else its first. A relayed request reached `address`.
   */
  function serverFacts(packet: DhcpPacket, listener: Listener, subnet: Subnet | undefined): ServerFacts {
    if (packet.giaddr === '0.0.0.0' && !listener.addresses.includes(config.address)) {
      const local =
        listener.addresses.find((a) => subnet && findSubnet([subnet], ipv4ToNumber(a) ?? 0)) ?? listener.addresses[0];
      if (local !== undefined) return { serverId: local, nextServer: local };
    }
    return { serverId: config.address, nextServer: config.address };
  }

  function firstStage(facts: ClientFacts): FirstStage | undefined {
    if (!isNetworkBoot(facts)) return undefined;
    const stage = chooseFirstStage(facts, {
      files: { bios: config.ipxe.bios, efi64: config.ipxe.efi64, arm64: config.ipxe.arm64 },
      httpBase: deps.httpBase,
      mac: facts.mac,
    });
    if (stage.kind === 'unsupported') {
      const key = `${facts.mac}/${stage.arch}`;
      if (!unsupportedLogged.has(key) && unsupportedLogged.size < 10_000) {
        unsupportedLogged.add(key);
        log.warn(
          { mac: facts.mac, arch: stage.arch, vendorClass: facts.vendorClass },
          `no first stage for client architecture ${stage.arch} (DHCP option 93); not offering a boot file`,
        );
      }
      return undefined;
    }
    return stage;
  }

  function poolFull(subnet: Subnet, mac: string): void {
    const last = poolFullLogged.get(subnet.name) ?? 0;
    if (now() - last < 10_000) return;
    poolFullLogged.set(subnet.name, now());
    const stats = table.stats(subnet);
    log.warn({ subnet: subnet.name, mac, ...stats }, 'DHCP pool is full; not offering');
    deps.events.record('dhcp.pool-full', {
      mac,
      subject: subnet.name,
      message: `pool of ${subnet.name} is full (${stats.bound} bound, ${stats.offered} offered, ${stats.declined} declined)`,
    });
  }

  const leasesGauge = metrics.gauge('smelt_dhcp_leases', 'Addresses per subnet and state');
  // Counted when /metrics is read, not on a timer: the count walks the lease table (~4 ms at 70,000 leases), which
  // every 5 s held the exchanges in flight during a storm and woke an idle daemon for nothing.
  const updateGauges = () => {
    for (const subnet of subnets) {
      const stats = table.stats(subnet);
      leasesGauge.set(stats.bound, { subnet: subnet.name, state: 'bound' });
      leasesGauge.set(stats.offered, { subnet: subnet.name, state: 'offered' });
      leasesGauge.set(stats.declined, { subnet: subnet.name, state: 'declined' });
      leasesGauge.set(stats.pool, { subnet: subnet.name, state: 'pool' });
    }
  };
  const stopCounting = metrics.onCollect(updateGauges);

  const interfaces = [...new Map(listeners.map((l) => [l.name, { name: l.name, addresses: l.addresses }])).values()];
  log.info({ mode: dhcp.mode, interfaces, port: dhcp.port }, 'dhcp listening');
  return {
    interfaces,
    async close() {
      stopCounting();
      await closeAll();
    },
  };
}

async function openSocket(name: string, port: number, address: string): Promise<DeviceSocket> {
  try {
    return await openDeviceSocket(name, port, address);
  } catch (error) {
    if (error instanceof DeviceSocketError) {
      const why =
        error.code === 'ENODEV'
          ? `there is no interface "${name}"`
          : `${explainBindError(error.code, port)} (${error.message})`;
      throw new ListenError(`cannot listen on ${name} ${address}:${port} for the DHCP server: ${why}`);
    }
    throw error;
  }
}
