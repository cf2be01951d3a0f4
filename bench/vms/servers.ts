/**
 * The two sides of the real-VM benchmark, each started in the run's namespace on its bridge:
 *   - smeltd: DHCP server mode, HTTP and TFTP; the guest boot registered and every VM's MAC deployed through the
 *     API (bench/storm/deploy.ts) before power-on, so each VM's script is its installer script;
 *   - dnsmasq (DHCP + TFTP) + nginx (HTTP): the same kernel and initrd at smeltd's URL paths, one static iPXE
 *     script (a copy of what smeltd rendered for a machine deployed the same way), the answer file smeltd rendered
 *     for that machine as a static file, and a `return 200` for the phone-home POST, so that the guest does the
 *     same requests against both.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startLoggedService, tailOf } from '../lib/logged-service.ts';
import type { Netns } from '../lib/netns.ts';
import { repoRoot } from '../lib/paths.ts';
import { cpuSeconds, processTree } from '../lib/proc.ts';
import { run, type Service } from '../lib/process.ts';
import { startDnsmasqNginx, waitListening } from '../lib/reference.ts';

export const serverIds = ['smeltd', 'reference'] as const;
export type ServerId = (typeof serverIds)[number];
export const serverTitles: Record<ServerId, string> = { smeltd: 'smeltd', reference: 'dnsmasq + nginx' };

/** The lab's /24: the server on the bridge at .1, the pool .100-.149. */
export const NET = '10.67.0';
export const SERVER_ADDRESS = `${NET}.1`;
export const POOL = { start: `${NET}.100`, end: `${NET}.149` };
export const SMELTD_API = 'http://127.0.0.1:7480';
export const BOOT_NAME = 'guest';
/** The reference's static script (dnsmasq hands iPXE this URL). */
export const SCRIPT_PATH = 'boot/guest.ipxe';
/**
 * The guest kernel's own arguments (both sides: the reference serves a copy of smeltd's script). no_timer_check: a
 * kernel on a vCPU starved by other work (software emulation, two CPUs shared) can miss the timer interrupts its
 * boot-time IO-APIC check waits for and panic ("IO-APIC + timer doesn't work!"), seen here once with others using
 * 5 CPU-seconds a second; the check only guards against broken hardware timers, which QEMU's are not.
 */
export const BOOT_CMDLINE = 'console=ttyS0 no_timer_check';

export interface ServerContext {
  ns: Netns;
  ifname: string;
  dir: string;
  /** The guest's kernel and initrd (smeltd serves them from here). */
  kernel: string;
  initrd: string;
  /** dnsmasq's TFTP root (holds undionly.kpxe; the BIOS VMs' ROM is iPXE already and does not use it). */
  tftpRoot: string;
  /** nginx's root. */
  www: string;
  /** Node's arguments before smeltd's own (V8 flags, the entry file: bench/vms/snapshot.ts); default the sources. */
  smeltdEntry?: string[];
}

export interface HttpRequest {
  url: string;
  status: number;
  /** How long the server took, request to the last byte handed to the kernel (smeltd's "ms", nginx's $request_time). */
  ms: number;
}

export interface RunningServers {
  id: ServerId;
  services: Service[];
  /** User + system CPU seconds of the server's processes (nginx's workers included) so far. */
  cpuSeconds(): number;
  /** Every HTTP request the server answered (smeltd's debug "http" lines; nginx's access log). */
  httpRequests(): HttpRequest[];
  /** Lines the server logged at warning level or above (smeltd), or error lines (dnsmasq, nginx). */
  complaints(): string[];
  describe: string[];
  stop(): Promise<void>;
}

function launch(name: string, c: ServerContext, argv: readonly string[]): Service {
  const [command, ...args] = c.ns.wrap(argv);
  return startLoggedService(name, command ?? 'ip', args, join(c.dir, `${name}.log`));
}

const lines = (path: string) =>
  tailOf(path, 64 * 2 ** 20)
    .split('\n')
    .filter((line) => line.trim() !== '');

// ---- smeltd -----------------------------------------------------------------------------------------------------

export function smeltdCommand(c: ServerContext): string[] {
  return [
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    ...(c.smeltdEntry ?? [join(repoRoot, 'packages/daemon/src/main.ts')]),
    'start',
    ...['--address', SERVER_ADDRESS],
    ...['--interface', c.ifname],
    ...['--dataDir', join(c.dir, 'data')],
    ...['--dhcp.mode', 'server'],
    ...['--dhcp.subnet', `${NET}.0/24`],
    ...['--dhcp.pool.start', POOL.start],
    ...['--dhcp.pool.end', POOL.end],
    ...['--dhcp.gateway', SERVER_ADDRESS],
    ...['--http.listen', `${SERVER_ADDRESS}:80`],
    ...['--tftp.listen', `${SERVER_ADDRESS}:69`],
    ...['--api.listen', SMELTD_API.replace('http://', '')],
    ...['--files.dirs', c.tftpRoot],
    // Debug: one "http" line per request (URL, status), as nginx's access log has; 5 VMs make a few dozen lines.
    ...['--log.level', 'debug'],
  ];
}

/** The boot registered on smeltd (POST /api/v1/boots). */
export function bootJson(c: Pick<ServerContext, 'kernel' | 'initrd'>) {
  return {
    name: BOOT_NAME,
    kind: 'installer',
    kernel: c.kernel,
    initrd: [c.initrd],
    cmdline: BOOT_CMDLINE,
    flavour: 'preseed',
  };
}

/**
 * Registers the boot and deploys `macs` through the API (bench/storm/deploy.ts, run in the namespace, where the API
 * listens on loopback).
 */
async function deploy(c: ServerContext, macs: readonly string[]): Promise<{ ms: number }> {
  const macFile = join(c.dir, 'macs.txt');
  writeFileSync(macFile, `${macs.join('\n')}\n`);
  const argv = c.ns.wrap([
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    join(repoRoot, 'bench/storm/deploy.ts'),
    ...['--api', SMELTD_API],
    ...['--token-file', join(c.dir, 'data', 'api-token')],
    ...['--boot', JSON.stringify(bootJson(c))],
    ...['--macs', macFile],
  ]);
  const result = await run(argv[0] ?? 'ip', argv.slice(1), { timeoutMs: 60_000 });
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { deployed: number; ms: number; errors: string[] } | undefined;
  try {
    parsed = JSON.parse(last) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (result.code !== 0 || parsed?.deployed !== macs.length)
    throw new Error(`deploying on smeltd failed: ${result.stderr.slice(-600)} ${last}`);
  return { ms: parsed.ms };
}

/** GET `url` from inside the namespace as iPXE would (its User-Agent); the body. */
async function fetchIn(ns: Netns, url: string): Promise<string> {
  const argv = ns.wrap(['curl', '-sS', '--fail', '--max-time', '10', '-A', 'iPXE/1.0.0', url]);
  const result = await run(argv[0] ?? 'ip', argv.slice(1), { timeoutMs: 15_000 });
  if (result.code !== 0) throw new Error(`GET ${url} failed: ${result.stderr.trim()}`);
  return result.stdout;
}

export interface Captured {
  /** smeltd's installer script for the probe machine. */
  script: string;
  /** Its answer file. */
  answers: string;
  /** The URL paths (no leading slash) of the kernel, the initrd and the answer file in that script. */
  paths: { kernel: string; initrd: string; answers: string };
}

/** The kernel, initrd and answer file URLs of an installer script, as paths. */
export function scriptPaths(script: string): Captured['paths'] {
  const kernelLine = /^kernel (\S+)(.*)$/m.exec(script);
  const initrdLine = /^initrd (\S+)/m.exec(script);
  const answers = /\burl=(\S+)/.exec(kernelLine?.[2] ?? '');
  if (!kernelLine?.[1] || !initrdLine?.[1] || !answers?.[1])
    throw new Error(`not an installer script with kernel, initrd and url=:\n${script}`);
  const path = (url: string) => new URL(url).pathname.replace(/^\//, '');
  return { kernel: path(kernelLine[1]), initrd: path(initrdLine[1]), answers: path(answers[1]) };
}

async function startSmeltd(
  c: ServerContext,
  macs: readonly string[],
  probe: string | undefined,
): Promise<{ servers: RunningServers; captured?: Captured; deployMs: number }> {
  mkdirSync(join(c.dir, 'data'), { recursive: true });
  const command = smeltdCommand(c);
  const service = launch('smeltd', c, command);
  const logPath = join(c.dir, 'smeltd.log');
  const servers: RunningServers = {
    id: 'smeltd',
    services: [service],
    cpuSeconds: () => cpuSeconds(processTree(service.pid)),
    httpRequests: () =>
      lines(logPath).flatMap((line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; status?: number; ms?: number };
          return entry.msg === 'http' && entry.url !== undefined
            ? [{ url: entry.url, status: entry.status ?? 0, ms: entry.ms ?? Number.NaN }]
            : [];
        } catch {
          return [];
        }
      }),
    complaints: () =>
      lines(logPath).flatMap((line) => {
        try {
          const entry = JSON.parse(line) as { level?: number; msg?: string };
          return (entry.level ?? 0) >= 40 ? [`level ${entry.level ?? '?'}: ${entry.msg ?? line}`] : [];
        } catch {
          return [line];
        }
      }),
    describe: [],
    stop: () => service.stop(),
  };
  try {
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
    const deployed = await deploy(c, probe === undefined ? macs : [...macs, probe]);
    let captured: Captured | undefined;
    if (probe !== undefined) {
      const script = await fetchIn(c.ns, `http://${SERVER_ADDRESS}/boot/${probe.replaceAll(':', '-')}.ipxe`);
      const paths = scriptPaths(script);
      const answers = await fetchIn(c.ns, `http://${SERVER_ADDRESS}/${paths.answers}`);
      captured = { script, answers, paths };
    }
    return { servers, deployMs: deployed.ms, ...(captured && { captured }) };
  } catch (error) {
    await service.stop();
    throw error;
  }
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
    `--dhcp-range=${POOL.start},${POOL.end},255.255.255.0,3600`,
    `--dhcp-leasefile=${join(c.dir, 'dnsmasq.leases')}`,
    // dnsmasq pings an address before offering it and waits; smeltd does not.
    '--no-ping',
    // iPXE (user class "iPXE") gets the script's URL; a PXE ROM would get undionly.kpxe by TFTP from dnsmasq itself.
    '--dhcp-userclass=set:ipxe,iPXE',
    '--dhcp-boot=tag:!ipxe,undionly.kpxe',
    `--dhcp-boot=tag:ipxe,http://${SERVER_ADDRESS}/${SCRIPT_PATH}`,
    // ipxe.org's advice: tell iPXE no ProxyDHCP offer will come (175.176 = 1), as smeltd does.
    '--dhcp-option=tag:ipxe,encap:175,176,1',
    '--enable-tftp',
    `--tftp-root=${c.tftpRoot}`,
    '--log-facility=-',
    `--pid-file=${join(c.dir, 'dnsmasq.pid')}`,
    '--user=root',
  ];
}

export function nginxConfig(c: ServerContext): string {
  const config = [
    `worker_processes ${availableParallelism()};`,
    `pid ${join(c.dir, 'nginx.pid')};`,
    `error_log ${join(c.dir, 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    "  log_format bench '$remote_addr $request_method $uri $status $body_bytes_sent $request_time';",
    `  access_log ${join(c.dir, 'access.log')} bench;`,
    '  sendfile on;',
    '  tcp_nopush on;',
    '  default_type application/octet-stream;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(c.dir, `${t}-temp`)};`),
    '  server {',
    `    listen ${SERVER_ADDRESS}:80;`,
    `    root ${c.www};`,
    // The guest's phone-home POST: answered as smeltd answers it (the machine's new state).
    '    location /hooks/ { default_type text/plain; return 200 "deployed\\n"; }',
    '  }',
    '}',
  ];
  return `${config.join('\n')}\n`;
}

async function startReference(c: ServerContext): Promise<RunningServers> {
  const { dnsmasq, nginx, stop } = await startDnsmasqNginx({
    dir: c.dir,
    ns: c.ns,
    nginxConfig: nginxConfig(c),
    dnsmasqArgs: dnsmasqCommand(c),
    launch: (name, argv) => launch(name, c, argv),
  });
  const services = [dnsmasq, nginx];
  return {
    id: 'reference',
    services,
    cpuSeconds: () => cpuSeconds([...processTree(dnsmasq.pid), ...processTree(nginx.pid)]),
    httpRequests: () =>
      lines(join(c.dir, 'access.log')).flatMap((line) => {
        const [, , url, status, , seconds] = line.split(' ');
        return url === undefined ? [] : [{ url, status: Number(status), ms: Number(seconds) * 1000 }];
      }),
    complaints: () =>
      [...lines(join(c.dir, 'dnsmasq.log')), ...lines(join(c.dir, 'error.log'))].filter((line) =>
        /error|fail|warn|NAK|no address/i.test(line),
      ),
    describe: [],
    stop,
  };
}

export async function startServers(
  id: ServerId,
  c: ServerContext,
  macs: readonly string[],
  probe?: string,
): Promise<{ servers: RunningServers; captured?: Captured; deployMs?: number }> {
  if (id === 'smeltd') return startSmeltd(c, macs, probe);
  return { servers: await startReference(c) };
}

/** The reference's static answer file: smeltd's, as captured; read back for the report. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
