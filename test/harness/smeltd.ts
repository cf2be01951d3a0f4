import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smeltdBin } from './paths.ts';
import { exited } from './process.ts';

export interface SmeltdOptions {
  /** Reuse a data directory (a restart); otherwise a new temporary one is made. */
  dataDir?: string;
  /** Extra config file settings, merged (section by section, recursively) over the loopback defaults below. */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Run inside a network namespace (argv prefix `ip netns exec NAME`). */
  netns?: string;
  /**
   * With netns: enter the network namespace alone (`nsenter --net`), not the private mount namespace `ip netns
   * exec` makes, so that what the daemon's helpers mount (FUSE exports) is seen by other processes, as on a host.
   */
  hostMounts?: boolean;
  args?: string[];
}

export interface RunningSmeltd {
  child: ChildProcess;
  dataDir: string;
  url: string;
  token: string;
  /** Where TFTP listens, from the "tftp listening" log line: the first address it bound (of several on 0.0.0.0). */
  tftp?: { host: string; port: number };
  /** Where the machine-facing HTTP server listens, from the "http listening" log line. */
  http?: { host: string; port: number };
  /** Everything the daemon has logged so far. */
  output(): string;
  /** SIGTERM (or the given signal) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `over` merged into `base`: objects key by key, anything else (arrays too) replaced. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const under = merged[key];
    merged[key] = isPlainObject(under) && isPlainObject(value) ? merge(under, value) : value;
  }
  return merged;
}

/** HOST:PORT as logged ("[::1]:69" for IPv6) → its parts. */
function splitHostPort(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(colon + 1)) };
}

/** The first bound address of a "tftp listening" line ({listen: configured, addresses: ['127.0.0.1:41234']}). */
function tftpAddress(line: string): { host: string; port: number } {
  const { listen, addresses } = JSON.parse(line) as { listen: string; addresses?: string[] };
  return splitHostPort(addresses?.[0] ?? listen);
}

/**
 * Starts the real smeltd binary with a config file that keeps it on loopback (API and TFTP on 127.0.0.1,
 * OS-chosen ports: a test must never bind the machine's real interfaces, nor port 69) and waits for its "api
 * listening" log line, the last one the daemon logs once every server is up, from which the URL is taken.
 */
export async function startSmeltd(options: SmeltdOptions = {}): Promise<RunningSmeltd> {
  const dataDir = options.dataDir ?? tempDir('smelt-e2e-');
  mkdirSync(dataDir, { recursive: true });
  const configPath = join(dataDir, 'test-config.json');
  const config = merge(
    {
      address: '127.0.0.1',
      dataDir,
      api: { listen: '127.0.0.1:0' },
      tftp: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      // DHCP only ever runs inside a namespace a test made, on interfaces it names.
      dhcp: { mode: 'off' },
      log: { level: 'info' },
    },
    options.config ?? {},
  );
  writeFileSync(configPath, JSON.stringify(config));
  const argv = [smeltdBin, 'start', '--config', configPath, ...(options.args ?? [])];
  const enter = options.hostMounts
    ? ['nsenter', `--net=/run/netns/${options.netns ?? ''}`, '--']
    : ['ip', 'netns', 'exec', options.netns ?? ''];
  const [command, ...args] = options.netns ? [...enter, ...argv] : argv;
  const child = spawn(command ?? smeltdBin, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const listen = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A daemon left running would keep the test process alive after the failure.
      child.kill('SIGKILL');
      reject(new Error(`smeltd did not log "api listening" within 20 s:\n${output}`));
    }, 20_000);
    const onData = () => {
      for (const line of output.split('\n')) {
        if (!line.includes('"api listening"')) continue;
        const { listen } = JSON.parse(line) as { listen: string };
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(listen);
        return;
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`smeltd exited ${code} before listening:\n${output}`));
    });
  });
  const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  const tftpLine = output.split('\n').find((line) => line.includes('"tftp listening"'));
  const httpLine = output.split('\n').find((line) => line.includes('"http listening"'));
  return {
    child,
    dataDir,
    url: `http://${listen}`,
    token,
    ...(tftpLine === undefined ? {} : { tftp: tftpAddress(tftpLine) }),
    ...(httpLine === undefined ? {} : { http: splitHostPort((JSON.parse(httpLine) as { listen: string }).listen) }),
    output: () => output,
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited(child);
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
