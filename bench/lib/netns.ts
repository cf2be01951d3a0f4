import { existsSync } from 'node:fs';
import { onCleanup } from './cleanup.ts';
import { run, runOk, startService, waitFor, type Service } from './process.ts';
import { pin } from './cpu.ts';

/** A network namespace the benchmark made; it (and every interface and rule inside it) goes with remove(). */
export interface Netns {
  name: string;
  /** argv that runs `argv` inside the namespace. */
  wrap(argv: readonly string[]): string[];
  exec(argv: readonly string[]): Promise<string>;
  remove(): Promise<void>;
}

const prefix = 'smelt-bench-';

/** Namespaces left by an earlier benchmark process that no longer runs (killed before its cleanup). */
async function removeStale(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${prefix}(\\d+)-`).exec(name);
    if (!match) continue;
    if (existsSync(`/proc/${match[1] ?? ''}`)) continue;
    process.stderr.write(`bench: removing namespace ${name} left by an earlier run\n`);
    await run('ip', ['netns', 'delete', name]);
  }
}

/**
 * A new namespace with its loopback up. Loopback also gets 192.0.2.1/32 (TEST-NET-1, reachable from nowhere):
 * glibc's getaddrinfo(AI_ADDRCONFIG) counts only IPv4 addresses other than 127.0.0.1, so in a namespace that has
 * nothing else tftpd-hpa cannot resolve `-a 127.0.0.1:PORT` and exits 66.
 */
export async function createNetns(tag: string): Promise<Netns> {
  await removeStale();
  const name = `${prefix}${process.pid}-${tag}`;
  await runOk('ip', ['netns', 'add', name]);
  const remove = onCleanup(`namespace ${name}`, async () => {
    await runOk('ip', ['netns', 'delete', name]);
  });
  await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  await runOk('ip', ['-n', name, 'addr', 'add', '192.0.2.1/32', 'dev', 'lo']);
  const wrap = (argv: readonly string[]) => ['ip', 'netns', 'exec', name, ...argv];
  return {
    name,
    wrap,
    exec: (argv) => {
      const [command, ...args] = wrap(argv);
      return runOk(command ?? 'ip', args);
    },
    remove,
  };
}

export interface Link {
  /** Address of the `a` end (in namespace a) and of the `b` end. */
  a: { ns: Netns; ifname: string; address: string };
  b: { ns: Netns; ifname: string; address: string };
  mtu: number;
}

/** A veth pair between two namespaces, a /30 between them, both ends up; it goes with either namespace. */
export async function createVethLink(
  a: Netns,
  b: Netns,
  options: { subnet: string; mtu?: number }, // subnet: the first three octets, e.g. "10.250.7"
): Promise<Link> {
  const mtu = options.mtu ?? 1500;
  const ifA = `sb${process.pid}a`.slice(-15);
  const ifB = `sb${process.pid}b`.slice(-15);
  await runOk('ip', ['-n', a.name, 'link', 'add', ifA, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', ifB]);
  await runOk('ip', ['-n', a.name, 'link', 'set', ifB, 'netns', b.name]);
  const addressA = `${options.subnet}.1`;
  const addressB = `${options.subnet}.2`;
  await a.exec(['ip', 'addr', 'add', `${addressA}/30`, 'dev', ifA]);
  await b.exec(['ip', 'addr', 'add', `${addressB}/30`, 'dev', ifB]);
  await a.exec(['ip', 'link', 'set', ifA, 'up']);
  await b.exec(['ip', 'link', 'set', ifB, 'up']);
  return { a: { ns: a, ifname: ifA, address: addressA }, b: { ns: b, ifname: ifB, address: addressB }, mtu };
}

export interface Delay {
  /** How the delay is made, for the report. */
  method: string;
  service?: Service;
  /** The delay line's closing counters (packets delayed, late wake-ups), once stopped. */
  stop(): Promise<string>;
}

const delayLineScript = new URL('delayline.py', import.meta.url).pathname;

/** Whether this kernel has sch_netem (`tc qdisc add ... netem` fails with "Specified qdisc kind is unknown"). */
async function hasNetem(ns: Netns, ifname: string): Promise<boolean> {
  const [command, ...args] = ns.wrap(['tc', 'qdisc', 'add', 'dev', ifname, 'root', 'netem', 'delay', '1ms']);
  const result = await run(command ?? 'ip', args);
  if (result.code !== 0) return false;
  await ns.exec(['tc', 'qdisc', 'del', 'dev', ifname, 'root']);
  return true;
}

/**
 * Adds `delayUs` to every packet leaving `ifname` in `ns` (one direction, like `tc qdisc add dev X root netem
 * delay 1ms`). Uses netem when the kernel has it (with a queue limit high enough that a window of large blocks
 * is delayed, not dropped); otherwise (kernels built without CONFIG_NET_SCH_NETEM) a user-space delay line:
 * iptables-legacy sends the packets to NFQUEUE and bench/lib/delayline.py releases each one delayUs after it
 * arrived. The delay line runs on `cpu` (the client's CPU), where the receive processing of released packets then
 * happens too. `forceDelayLine` skips netem (to compare the two).
 */
export async function addDelay(
  ns: Netns,
  ifname: string,
  delayUs: number,
  options: { cpu?: string; forceDelayLine?: boolean } = {},
): Promise<Delay> {
  if (!options.forceDelayLine && (await hasNetem(ns, ifname))) {
    await ns.exec(['tc', 'qdisc', 'add', 'dev', ifname, 'root', 'netem', 'delay', `${delayUs}us`, 'limit', '100000']);
    return {
      method: `tc netem delay ${delayUs}us limit 100000 on ${ifname}`,
      stop: async () => {
        await ns.exec(['tc', 'qdisc', 'del', 'dev', ifname, 'root']);
        return '';
      },
    };
  }
  const [command, ...args] = ns.wrap(pin(options.cpu, ['/usr/bin/python3', delayLineScript, '0', String(delayUs)]));
  const service = startService('delay line', command ?? 'ip', args);
  await waitFor('the delay line to bind its queue', () => service.output().includes('ready') || !service.alive());
  if (!service.alive()) throw new Error(`the delay line failed to start:\n${service.output()}`);
  const rule = ['OUTPUT', '-o', ifname, '-p', 'udp', '-j', 'NFQUEUE', '--queue-num', '0'];
  await ns.exec(['iptables-legacy', '-A', ...rule]);
  return {
    method:
      `user-space delay line: iptables-legacy -A ${rule.join(' ')} + bench/lib/delayline.py 0 ${delayUs}` +
      ` (this kernel has no sch_netem)`,
    service,
    stop: async () => {
      await ns.exec(['iptables-legacy', '-D', ...rule]);
      await service.stop();
      const output = service.output();
      const late = [...output.matchAll(/released (\d+) ms late/g)].map((match) => Number(match[1]));
      const summary = /delayline: (packets=.*)/.exec(output)?.[1] ?? '';
      return late.length === 0
        ? summary
        : `${summary}; ${late.length} releases over 50 ms late (worst ${Math.max(...late)} ms): the delay line was held off the CPU`;
    },
  };
}
