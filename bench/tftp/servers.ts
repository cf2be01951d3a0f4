import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import type { Netns } from '../lib/netns.ts';
import { repoRoot } from '../lib/paths.ts';
import { run, startService, type Service } from '../lib/process.ts';
import { smeltdEntry } from '../lib/smeltd-entry.ts';

/** smeltd-nogso: smeltd with UDP GSO turned off (--tftp.gso false), for an A/B in one run; not run by default. */
export const serverIds = ['smeltd', 'tftpd-hpa', 'atftpd', 'smeltd-nogso'] as const;
export type ServerId = (typeof serverIds)[number];

export interface ServerContext {
  ns: Netns;
  address: string;
  port: number;
  /** The directory served (holds the payload files). */
  root: string;
  /** A scratch directory of its own (smeltd's data directory and config). */
  scratch: string;
  cpu?: string;
}

export interface ServerSpec {
  id: ServerId;
  /** Why it cannot run here (with the fix), or undefined when it can. */
  missing(): Promise<string | undefined>;
  version(): Promise<string>;
  /** The command line, for the report. */
  commandLine(context: ServerContext): string[];
  start(context: ServerContext): Service;
}

/** tftpd-hpa conflicts with atftpd as a Debian package, so scripts/setup.sh --for bench unpacks it here instead. */
export const tftpdHpaPath = join(repoRoot, '.tools/deb/tftpd-hpa/usr/sbin/in.tftpd');
const atftpdPath = '/usr/sbin/atftpd';

function launch(id: ServerId, context: ServerContext, argv: string[]): Service {
  const [command, ...args] = context.ns.wrap(pin(context.cpu, argv));
  return startService(id, command ?? 'ip', args);
}

const tftpdHpa: ServerSpec = {
  id: 'tftpd-hpa',
  async missing() {
    if (!existsSync(tftpdHpaPath)) return `${tftpdHpaPath} is missing: run scripts/setup.sh --for bench`;
    const { stderr, stdout } = await run(tftpdHpaPath, ['-V']);
    if (!`${stdout}${stderr}`.includes('tftp-hpa')) return `${tftpdHpaPath} does not start: ${stderr}${stdout}`;
    return undefined;
  },
  async version() {
    const { stderr, stdout } = await run(tftpdHpaPath, ['-V']);
    return `${stdout}${stderr}`.split('\n')[0]?.trim() ?? '?';
  },
  // -L: foreground; -s: chroot to the root; -u nobody: the packaged default. Forks one process per transfer.
  commandLine: (c) => [tftpdHpaPath, '-L', '-s', '-u', 'nobody', '-a', `${c.address}:${c.port}`, c.root],
  start(context) {
    return launch('tftpd-hpa', context, this.commandLine(context));
  },
};

const atftpd: ServerSpec = {
  id: 'atftpd',
  missing() {
    return Promise.resolve(
      existsSync(atftpdPath) ? undefined : `${atftpdPath} is missing: run scripts/setup.sh --for bench`,
    );
  },
  async version() {
    const { stdout, stderr } = await run(atftpdPath, ['-V']);
    return `${stdout}${stderr}`.split('\n')[0]?.trim() ?? '?';
  },
  // One thread per transfer; its log (one line per transfer) goes nowhere.
  commandLine: (c) => [
    atftpdPath,
    '--daemon',
    '--no-fork',
    '--port',
    String(c.port),
    '--bind-address',
    c.address,
    '--user',
    'nobody',
    '--group',
    'nogroup',
    '--logfile',
    '/dev/null',
    c.root,
  ],
  start(context) {
    return launch('atftpd', context, this.commandLine(context));
  },
};

/**
 * The smeltd config for the benchmark: TFTP on the benchmark's address only, every other listener on loopback
 * (DHCP off), warnings only (no per-transfer logging), and a per-peer cap above the 20 concurrent clients, which
 * here all come from one address (a real boot storm comes from many).
 */
export function smeltdConfig(context: ServerContext): Record<string, unknown> {
  return {
    address: context.address,
    dataDir: join(context.scratch, 'data'),
    api: { listen: '127.0.0.1:0' },
    http: { listen: '127.0.0.1:0' },
    dhcp: { mode: 'off' },
    tftp: { listen: `${context.address}:${context.port}`, maxPerPeer: 64 },
    files: { dirs: [context.root] },
    log: { level: 'warn' },
  };
}

const smeltd: ServerSpec = {
  id: 'smeltd',
  missing() {
    const server = join(repoRoot, 'packages/daemon/src/tftp/server.ts');
    const daemon = join(repoRoot, 'packages/daemon/src/daemon.ts');
    if (!existsSync(server) || !readFileSync(daemon, 'utf8').includes('startTftpServer')) {
      return Promise.resolve(
        'smeltd has no TFTP server yet (packages/daemon/src/tftp/server.ts, started by daemon.ts)',
      );
    }
    return Promise.resolve(undefined);
  },
  async version() {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/daemon/package.json'), 'utf8')) as { version: string };
    const head = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
    const dirty = await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'packages']);
    const commit = head.code === 0 ? head.stdout.trim() : 'unknown commit';
    return `smeltd ${pkg.version} (${commit}${dirty.stdout.trim() ? ' + uncommitted changes' : ''})`;
  },
  // The build as bin/smeltd runs it, from a snapshot taken at the bench's start (bench/lib/smeltd-entry.ts).
  commandLine: (c) => [process.execPath, ...smeltdEntry(), 'start', '--config', join(c.scratch, 'smeltd.json')],
  start(context) {
    mkdirSync(join(context.scratch, 'data'), { recursive: true });
    writeFileSync(join(context.scratch, 'smeltd.json'), `${JSON.stringify(smeltdConfig(context), null, 2)}\n`);
    return launch('smeltd', context, this.commandLine(context));
  },
};

const smeltdNoGso: ServerSpec = {
  id: 'smeltd-nogso',
  missing: () => smeltd.missing(),
  async version() {
    return `${await smeltd.version()}, tftp.gso false (one sendmsg per DATA block)`;
  },
  commandLine: (c) => [...smeltd.commandLine(c), '--tftp.gso', 'false'],
  start(context) {
    mkdirSync(join(context.scratch, 'data'), { recursive: true });
    writeFileSync(join(context.scratch, 'smeltd.json'), `${JSON.stringify(smeltdConfig(context), null, 2)}\n`);
    return launch('smeltd-nogso', context, this.commandLine(context));
  },
};

/** Both builds of smeltd (with and without GSO). */
export const isSmeltd = (id: ServerId): boolean => id === 'smeltd' || id === 'smeltd-nogso';

export const servers: Record<ServerId, ServerSpec> = {
  smeltd,
  'tftpd-hpa': tftpdHpa,
  atftpd,
  'smeltd-nogso': smeltdNoGso,
};
