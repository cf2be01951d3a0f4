import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import { repoRoot } from '../lib/paths.ts';
import { run, startService, type Service } from '../lib/process.ts';
import { smeltdEntry } from '../lib/smeltd-entry.ts';
import type { Netns } from '../lib/netns.ts';
import { readDnsmasqLeases, readKeaLeases, readSmeltdLeases, type LeaseReading } from './leases.ts';
import { LEASE_TIME_S, NETMASK, POOL, SUBNET } from './topology.ts';

export const serverIds = ['smeltd', 'smeltd-os', 'kea', 'kea-mt', 'dnsmasq'] as const;
export type ServerId = (typeof serverIds)[number];

export interface ServerContext {
  ns: Netns;
  /** The server's end of the veth pair, and its address. */
  ifname: string;
  address: string;
  /** This server instance's own directory: config, lease store, pid files. Kept across a restart. */
  dir: string;
  cpu?: string;
}

export interface ServerSpec {
  id: ServerId;
  /** Why it cannot run here (with the fix), or undefined when it can. */
  missing(): Promise<string | undefined>;
  version(): Promise<string>;
  /** The command line (after its config file is written), for the report. */
  commandLine(context: ServerContext): string[];
  /** The config, where there is a file, for the report. */
  configText?(context: ServerContext): string;
  /** Writes config files (once per instance; a restart reuses them and the lease store). */
  prepare(context: ServerContext): void;
  start(context: ServerContext): Service;
  /**
   * Resolves when it serves DHCP (with a remark when it only seems to: smeltd's API is up but nothing listens on
   * UDP 67, which the generator's warm-up then reports as no replies); throws when it did not start within timeoutMs.
   */
  ready(service: Service, context: ServerContext, timeoutMs: number): Promise<string | undefined>;
  /** What its lease store holds now. */
  leases(context: ServerContext): Promise<LeaseReading>;
  /** Where its leases persist and how, for the report. */
  store: string;
  /**
   * Each lease costs it more the more it holds (dnsmasq rewrites its whole lease file per lease): it gets the short
   * warm-up (--short-warmup), or the warm-up would take minutes and leave it measured as a server already slowed
   * down by 20,000 leases. Every other server gets the same long one (--warmup).
   */
  shortWarmup?: boolean;
}

function launch(id: ServerId, context: ServerContext, argv: string[]): Service {
  const [command, ...args] = context.ns.wrap(pin(context.cpu, argv));
  return startService(id, command ?? 'ip', args);
}

/** Whether something in the namespace listens on UDP `port` (or TCP with tcp = true). */
export async function listening(ns: Netns, port: number, tcp = false): Promise<boolean> {
  const { stdout } = await run('ip', ['netns', 'exec', ns.name, 'ss', '-Hn', tcp ? '-tl' : '-ul', `sport = :${port}`]);
  return stdout.trim() !== '';
}

/** Polls (async) until check() holds; throws `what` (with the server's output) on timeout or exit. */
async function until(service: Service, what: string, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!service.alive()) {
      // The last lines that are not stack frames: the message, not where it was thrown.
      const lines = service.output().trim().split('\n');
      const said = lines
        .filter((line) => !/^\s+at /.test(line))
        .slice(-3)
        .join(' / ')
        .slice(-600);
      throw new Error(`${service.name} exited before ${what}: ${said || 'no output'}`);
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`${service.name}: ${what} did not happen within ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim() ?? '?'
  );
}

// ---- Kea ------------------------------------------------------------------------------------------------------------

const keaPath = '/usr/sbin/kea-dhcp4';

function keaConfig(context: ServerContext, multiThreaded: boolean): Record<string, unknown> {
  return {
    Dhcp4: {
      // raw: AF_PACKET sockets, as Kea needs to answer clients that have no address yet (its documented default
      // for directly connected clients); relayed traffic arrives on the same socket.
      'interfaces-config': { interfaces: [context.ifname], 'dhcp-socket-type': 'raw' },
      // memfile with persist: every lease change is appended to the CSV before the reply is sent (no fsync).
      // lfc-interval 0: no periodic lease-file cleanup (kea-lfc) during a run; the default is 3600 s.
      'lease-database': {
        type: 'memfile',
        persist: true,
        name: join(context.dir, 'kea-leases4.csv'),
        'lfc-interval': 0,
      },
      'valid-lifetime': LEASE_TIME_S,
      subnet4: [{ id: 1, subnet: SUBNET, pools: [{ pool: `${POOL.start} - ${POOL.end}` }] }],
      // thread-pool-size 0: one thread per CPU Kea can see; packet-queue-size 64: Kea's default.
      'multi-threading': multiThreaded
        ? { 'enable-multi-threading': true, 'thread-pool-size': 0, 'packet-queue-size': 64 }
        : { 'enable-multi-threading': false },
      // Warnings only (Kea logs every lease at INFO), to stdout, which the bench keeps.
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
    },
  };
}

function kea(id: 'kea' | 'kea-mt'): ServerSpec {
  const multiThreaded = id === 'kea-mt';
  const configPath = (c: ServerContext) => join(c.dir, 'kea-dhcp4.json');
  return {
    id,
    store:
      'memfile CSV (`persist: true`: one write(2) per lease change before the reply, never an fsync (strace); `lfc-interval: 0`)',
    missing() {
      return Promise.resolve(
        existsSync(keaPath) ? undefined : `${keaPath} is missing: apt-get install kea-dhcp4-server`,
      );
    },
    async version() {
      const { stdout } = await run(keaPath, ['-V']);
      return `Kea ${firstLine(stdout)}${multiThreaded ? ' (multi-threaded)' : ''}`;
    },
    configText: (c) => JSON.stringify(keaConfig(c, multiThreaded)),
    // PID and logger lock files in the instance's directory, not /run/kea (another Kea may run on the machine).
    commandLine: (c) => ['env', `KEA_PIDFILE_DIR=${c.dir}`, `KEA_LOCKFILE_DIR=${c.dir}`, keaPath, '-c', configPath(c)],
    prepare(c) {
      mkdirSync(c.dir, { recursive: true });
      writeFileSync(configPath(c), `${JSON.stringify(keaConfig(c, multiThreaded), null, 2)}\n`);
    },
    start(c) {
      return launch(id, c, this.commandLine(c));
    },
    async ready(service, c, timeoutMs) {
      await until(service, 'binding port 67', timeoutMs, () => listening(c.ns, 67));
      await new Promise((resolve) => setTimeout(resolve, 200)); // the raw socket opens with the UDP one
      return undefined;
    },
    leases: (c) => Promise.resolve(readKeaLeases(join(c.dir, 'kea-leases4.csv'))),
  };
}

// ---- dnsmasq --------------------------------------------------------------------------------------------------------

const dnsmasqPath = '/usr/sbin/dnsmasq';

const dnsmasq: ServerSpec = {
  id: 'dnsmasq',
  shortWarmup: true,
  store: 'lease file (rewritten whole and fsynced on every change)',
  missing() {
    return Promise.resolve(
      existsSync(dnsmasqPath) ? undefined : `${dnsmasqPath} is missing: apt-get install dnsmasq-base`,
    );
  },
  async version() {
    const { stdout } = await run(dnsmasqPath, ['--version']);
    return firstLine(stdout).replace(/\s+Copyright.*/, '');
  },
  commandLine: (c) => [
    dnsmasqPath,
    '--no-daemon',
    '--conf-file=/dev/null', // nothing from /etc/dnsmasq.conf
    '--bind-interfaces',
    `--interface=${c.ifname}`,
    '--port=0', // no DNS
    `--dhcp-range=${POOL.start},${POOL.end},${NETMASK},${LEASE_TIME_S}`,
    `--dhcp-leasefile=${join(c.dir, 'dnsmasq.leases')}`,
    '--dhcp-lease-max=60000', // the default is 1000
    // dnsmasq pings every address before offering it and waits for an answer; nothing here ever answers, so the
    // ping only adds a wait Kea and smeltd do not have (41 DORA/s instead of 400 at 1k clients in a trial run).
    '--no-ping',
    '--quiet-dhcp', // no log line per DHCP message, like Kea and smeltd at their warning level
    '--log-facility=-',
    `--pid-file=${join(c.dir, 'dnsmasq.pid')}`,
    '--user=root', // it writes its lease file in the instance's directory
  ],
  prepare(c) {
    mkdirSync(c.dir, { recursive: true });
  },
  start(c) {
    return launch('dnsmasq', c, this.commandLine(c));
  },
  async ready(service, c, timeoutMs) {
    await until(service, 'binding port 67', timeoutMs, () => listening(c.ns, 67));
    return undefined;
  },
  leases: (c) => Promise.resolve(readDnsmasqLeases(join(c.dir, 'dnsmasq.leases'))),
};

// ---- smeltd ---------------------------------------------------------------------------------------------------------

/** The API inside the server namespace (its own loopback, so a fixed port collides with nothing). */
export const SMELTD_API = '127.0.0.1:7480';
/** More flags for smeltd (--smeltd-flags), replacing the bench's own of the same name: to try a setting. */
const smeltdExtraFlags: string[] = [];
export function addSmeltdFlags(flags: readonly string[]): void {
  smeltdExtraFlags.push(...flags);
}

/**
 * smeltd as configured by default (`smeltd`), or with `--store.sync os` (`smeltd-os`): leases written to the
 * kernel before the ACK but not fsynced, the durability Kea's memfile has (for a like-for-like comparison).
 */
function smeltdSpec(id: 'smeltd' | 'smeltd-os'): ServerSpec {
  const variant: [string, string][] = id === 'smeltd-os' ? [['--store.sync', 'os']] : [];
  return {
    id,
    store:
      id === 'smeltd-os'
        ? 'embedded SQLite store in dataDir (WAL, synchronous=NORMAL: `--store.sync os`, each commit written to the kernel before the ACK, fsynced only at checkpoints)'
        : 'embedded SQLite store in dataDir (WAL, synchronous=FULL: `store.sync disk`, the default, each commit fsynced before the ACK)',
    missing() {
      if (!existsSync(join(repoRoot, 'packages/daemon/src/dhcp'))) {
        return Promise.resolve('smeltd has no DHCP server yet (packages/daemon/src/dhcp)');
      }
      return Promise.resolve(undefined);
    },
    async version() {
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/daemon/package.json'), 'utf8')) as {
        version: string;
      };
      const head = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
      const dirty = await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'packages']);
      const commit = head.code === 0 ? head.stdout.trim() : 'unknown commit';
      return `smeltd ${pkg.version} (${commit}${dirty.stdout.trim() ? ' + uncommitted changes' : ''}), Node ${process.version}`;
    },
    commandLine: (c) => {
      const flags: [string, string][] = [
        ['--address', c.address],
        ['--dataDir', join(c.dir, 'data')],
        ['--interface', c.ifname],
        ['--dhcp.mode', 'server'],
        ['--dhcp.subnet', SUBNET],
        ['--dhcp.pool.start', POOL.start],
        ['--dhcp.pool.end', POOL.end],
        ['--dhcp.leaseTime', String(LEASE_TIME_S)],
        ['--api.listen', SMELTD_API],
        ['--tftp.listen', '127.0.0.1:0'],
        ['--http.listen', '127.0.0.1:0'],
        ['--log.level', 'warn'],
        ...variant,
      ];
      // A flag given in --smeltd-flags replaces the bench's own (smeltd refuses a flag given twice).
      const extra = smeltdExtraFlags.filter((arg) => arg.startsWith('--')).map((arg) => arg.split('=')[0]);
      // The build as bin/smeltd runs it, from a snapshot taken at the bench's start (bench/lib/smeltd-entry.ts).
      return [
        process.execPath,
        ...smeltdEntry(),
        'start',
        ...flags.filter(([flag]) => !extra.includes(flag)).flat(),
        ...smeltdExtraFlags,
      ];
    },
    prepare(c) {
      mkdirSync(join(c.dir, 'data'), { recursive: true });
    },
    start(c) {
      return launch(id, c, this.commandLine(c));
    },
    async ready(service, c, timeoutMs) {
      // "api listening" is logged last, once every server is up — at level info, which --log.level warn hides; so
      // also: the API port and UDP 67 both bound.
      const apiPort = Number(SMELTD_API.split(':')[1]);
      await until(service, 'serving the API', timeoutMs, async () => {
        if (service.output().includes('"api listening"')) return true;
        return listening(c.ns, apiPort, true);
      });
      if (service.output().includes('"dhcp listening"')) return undefined;
      try {
        await until(service, 'binding UDP port 67', Math.min(timeoutMs, 3000), () => listening(c.ns, 67));
      } catch (error) {
        if (!service.alive()) throw error;
        return 'its API is up but nothing listens on UDP port 67 in its namespace';
      }
      return undefined;
    },
    leases: (c) => readSmeltdLeases(c.ns, join(c.dir, 'data'), SMELTD_API),
  };
}

export const servers: Record<ServerId, ServerSpec> = {
  smeltd: smeltdSpec('smeltd'),
  'smeltd-os': smeltdSpec('smeltd-os'),
  kea: kea('kea'),
  'kea-mt': kea('kea-mt'),
  dnsmasq,
};
