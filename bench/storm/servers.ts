import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import type { Netns } from '../lib/netns.ts';
import { repoRoot } from '../lib/paths.ts';
import { startLoggedService, tailOf } from '../lib/logged-service.ts';
import { run, type Service } from '../lib/process.ts';
import { startDnsmasqNginx, waitListening } from '../lib/reference.ts';
import { NETMASK, SUBNET, type Pool } from './topology.ts';
import { smeltdEntry } from '../lib/smeltd-entry.ts';

/** `smeltd` alone, and the reference: dnsmasq (DHCP + TFTP) and nginx (HTTP) side by side. */
export const serverIds = ['smeltd', 'reference'] as const;
export type ServerId = (typeof serverIds)[number];

export const serverTitles: Record<ServerId, string> = { smeltd: 'smeltd', reference: 'dnsmasq + nginx' };

/** The files both sides serve (bench/storm/main.ts makes them). */
export interface Fixtures {
  /** The TFTP root (files.dirs for smeltd, --tftp-root for dnsmasq) holding FIRST_STAGE. */
  tftpRoot: string;
  firstStage: string;
  kernel: string;
  initrd: string;
  /** nginx's root: the kernel and initrd at smeltd's URL paths, and the static script at SCRIPT_PATH. */
  www: string;
}

export const FIRST_STAGE = 'undionly.kpxe';
/** The boot smeltd serves; its kernel and initrd URLs are /boots/storm/kernel/vmlinuz and /boots/storm/initrd/0/initrd.img. */
export const BOOT_NAME = 'storm';
export const KERNEL_URL_PATH = `boots/${BOOT_NAME}/kernel/vmlinuz`;
export const INITRD_URL_PATH = `boots/${BOOT_NAME}/initrd/0/initrd.img`;
/** The reference's one static iPXE script. */
export const SCRIPT_PATH = 'boot/storm.ipxe';
export const SMELTD_API = 'http://127.0.0.1:7480';
/** Concurrent TFTP transfers the reference's dnsmasq allows (--tftp-max; its default is 50); smeltd's default is 1000. */
export const DNSMASQ_TFTP_MAX = 1000;

export interface ServerContext {
  ns: Netns;
  ifname: string;
  address: string;
  dir: string;
  cpu?: string;
  pool: Pool;
  fixtures: Fixtures;
  smeltdFlags: readonly string[];
  /** Run smeltd under `node --cpu-prof`, the profile written here when it stops (node bench/http/profile.ts reads it). */
  profileDir?: string;
}

export interface RunningServers {
  id: ServerId;
  services: Service[];
  /** Every process (smeltd; dnsmasq, nginx's master and workers): for CPU and RSS. */
  roots(): number[];
  /** The command lines and configs, for the report (DIR for the instance's directory). */
  describe: string[];
  /** smeltd's API and token file. */
  api?: { url: string; tokenFile: string };
  /** Problems the servers printed (smeltd's warnings, dnsmasq's and nginx's errors), most frequent first. */
  complaints(): string[];
  stop(): Promise<void>;
}

/** Starts a server in the namespace (pinned), everything it prints going to DIR/NAME.log. */
function launch(name: string, c: ServerContext, argv: readonly string[]): Service {
  const [command, ...args] = c.ns.wrap(pin(c.cpu, argv));
  return startLoggedService(name, command ?? 'ip', args, join(c.dir, `${name}.log`));
}

/** A server's whole log (up to 64 MiB), split in lines. */
function logLines(c: ServerContext, name: string): string[] {
  return tailOf(join(c.dir, `${name}.log`), 64 * 2 ** 20).split('\n');
}

/** Lines of output counted by message (timestamps and numbers blurred), most frequent first: "3× message". */
function tally(lines: string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const key = line
      .replace(/^[A-Z][a-z]{2} +\d+ [\d:]+ /, '') // syslog's time stamp (dnsmasq --log-facility=-)
      .replace(/\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b/gi, 'MAC')
      .replace(/\b\d+(\.\d+){3}\b/g, 'ADDR')
      .replace(/\d+/g, 'N')
      .slice(0, 200);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([line, count]) => `${count}× ${line}`);
}

// ---- smeltd -----------------------------------------------------------------------------------------------------

export function smeltdCommand(c: ServerContext): string[] {
  const flags: [string, string][] = [
    ['--address', c.address],
    ['--interface', c.ifname],
    ['--dataDir', join(c.dir, 'data')],
    ['--dhcp.mode', 'server'],
    ['--dhcp.subnet', SUBNET],
    ['--dhcp.pool.start', c.pool.start],
    ['--dhcp.pool.end', c.pool.end],
    ['--http.listen', `${c.address}:80`],
    ['--tftp.listen', `${c.address}:69`],
    ['--api.listen', SMELTD_API.replace('http://', '')],
    ['--files.dirs', c.fixtures.tftpRoot],
    ['--log.level', 'warn'],
  ];
  // A flag given in --smeltd-flags replaces the bench's own (smeltd refuses a flag given twice).
  const extra = c.smeltdFlags.filter((arg) => arg.startsWith('--')).map((arg) => arg.split('=')[0]);
  return [
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    ...(c.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', c.profileDir]),
    ...smeltdEntry(),
    'start',
    ...flags.filter(([flag]) => !extra.includes(flag)).flat(),
    ...c.smeltdFlags,
  ];
}

async function startSmeltd(c: ServerContext): Promise<RunningServers> {
  mkdirSync(join(c.dir, 'data'), { recursive: true });
  const command = smeltdCommand(c);
  const service = launch('smeltd', c, command);
  await waitListening(
    [service],
    c.ns,
    [
      [67, false],
      [69, false],
      [80, true],
      [7480, true],
    ],
    30_000,
  );
  return {
    id: 'smeltd',
    services: [service],
    roots: () => [service.pid],
    describe: [`\`${pin(c.cpu, command).join(' ')}\``],
    api: { url: SMELTD_API, tokenFile: join(c.dir, 'data', 'api-token') },
    complaints: () =>
      tally(
        logLines(c, 'smeltd')
          .filter((line) => line.trim() !== '')
          .map((line) => {
            try {
              const entry = JSON.parse(line) as { level?: number; msg?: string; reason?: string; err?: unknown };
              return `level ${entry.level ?? '?'}: ${entry.msg ?? line}${entry.reason ? ` (${entry.reason})` : ''}`;
            } catch {
              return line;
            }
          }),
      ),
    stop: () => service.stop(),
  };
}

// ---- dnsmasq + nginx ----------------------------------------------------------------------------------------------

export function dnsmasqCommand(c: ServerContext): string[] {
  return [
    '/usr/sbin/dnsmasq',
    '--no-daemon',
    '--conf-file=/dev/null',
    '--bind-interfaces',
    `--interface=${c.ifname}`,
    '--port=0',
    `--dhcp-range=${c.pool.start},${c.pool.end},${NETMASK},3600`,
    `--dhcp-leasefile=${join(c.dir, 'dnsmasq.leases')}`,
    '--dhcp-lease-max=60000',
    // dnsmasq pings an address before offering it and waits; smeltd does not (bench/dhcp does the same).
    '--no-ping',
    // iPXE (user class "iPXE") gets the script's URL; the PXE ROM gets the first stage by TFTP from dnsmasq itself.
    '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:!ipxe,${FIRST_STAGE}`,
    `--dhcp-boot=tag:ipxe,http://${c.address}/${SCRIPT_PATH}`,
    // ipxe.org's advice: tell iPXE no ProxyDHCP offer will come (175.176 = 1), as smeltd does, or each machine
    // waits ~3 s for one.
    '--dhcp-option=tag:ipxe,encap:175,176,1',
    '--enable-tftp',
    `--tftp-root=${c.fixtures.tftpRoot}`,
    `--tftp-max=${DNSMASQ_TFTP_MAX}`,
    '--quiet-dhcp',
    '--quiet-tftp',
    '--log-facility=-',
    `--pid-file=${join(c.dir, 'dnsmasq.pid')}`,
    '--user=root',
  ];
}

export function nginxConfig(c: ServerContext): string {
  const lines = [
    `worker_processes ${availableParallelism()};`,
    `pid ${join(c.dir, 'nginx.pid')};`,
    `error_log ${join(c.dir, 'error.log')} warn;`,
    'events { worker_connections 8192; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    '  tcp_nopush on;',
    '  keepalive_requests 1000000;',
    '  default_type application/octet-stream;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(c.dir, `${t}-temp`)};`),
    '  server {',
    `    listen ${c.address}:80;`,
    `    root ${c.fixtures.www};`,
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

async function startReference(c: ServerContext): Promise<RunningServers> {
  const config = nginxConfig(c);
  const { dnsmasq, nginx, dnsmasqArgs, nginxArgs, stop } = await startDnsmasqNginx({
    dir: c.dir,
    ns: c.ns,
    nginxConfig: config,
    dnsmasqArgs: dnsmasqCommand(c),
    launch: (name, argv) => launch(name, c, argv),
  });
  const services = [dnsmasq, nginx];
  const errorLog = () => {
    try {
      return readFileSync(join(c.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    id: 'reference',
    services,
    roots: () => [dnsmasq.pid, nginx.pid],
    describe: [
      `\`${pin(c.cpu, dnsmasqArgs).join(' ')}\``,
      `\`${pin(c.cpu, nginxArgs).join(' ')}\` with \`${config.replaceAll('\n', ' ').replace(/\s+/g, ' ').trim()}\``,
    ],
    complaints: () =>
      tally(
        [...logLines(c, 'dnsmasq'), ...logLines(c, 'nginx'), ...errorLog().split('\n')]
          .map((line) => line.replace(/^\S+ \S+ \[\w+\] \d+#\d+: (\*\d+ )?/, 'nginx: '))
          .filter(
            (line) =>
              line.trim() !== '' &&
              // dnsmasq's start-up lines are not complaints.
              !/started, version|compile time options|DHCP, IP range|sockets bound exclusively|TFTP root is|tftp\[\d+\]: sent /.test(
                line,
              ),
          ),
      ),
    stop,
  };
}

export function startServers(id: ServerId, c: ServerContext): Promise<RunningServers> {
  return id === 'smeltd' ? startSmeltd(c) : startReference(c);
}

export async function versions(): Promise<string[]> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/daemon/package.json'), 'utf8')) as { version: string };
  const head = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'packages']);
  const commit = head.code === 0 ? head.stdout.trim() : 'unknown commit';
  const dnsmasq = await run('/usr/sbin/dnsmasq', ['--version']);
  const nginx = await run('nginx', ['-v']);
  return [
    `smeltd ${pkg.version} (${commit}${dirty.stdout.trim() ? ' + uncommitted changes in packages/' : ''}), Node ${process.version}`,
    (dnsmasq.stdout.split('\n')[0] ?? '?').replace(/\s+Copyright.*/, ''),
    `${nginx.stdout}${nginx.stderr}`.trim().replace(/^nginx version: /, ''),
  ];
}
