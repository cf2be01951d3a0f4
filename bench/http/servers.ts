import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import type { Netns } from '../lib/netns.ts';
import { repoRoot } from '../lib/paths.ts';
import { run, startService, type Service } from '../lib/process.ts';
import { smeltdEntry } from '../lib/smeltd-entry.ts';

export const serverIds = ['smeltd', 'nginx'] as const;
export type ServerId = (typeof serverIds)[number];

/** Fixed ports: each run has a namespace (and so a loopback) of its own. */
export const ports = { nginx: 8080, smeltd: 8081, smeltdApi: 8082 } as const;

export interface RunningServer {
  id: ServerId;
  service: Service;
  /** The command line, for the report. */
  command: string[];
  /** Base URL as the clients (in the namespace) reach it. */
  base: string;
}

/** Runs curl inside the namespace; returns the body and the status code. */
export async function curlIn(
  ns: Netns,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ status: number; body: string; ok: boolean }> {
  const [command, ...rest] = ns.wrap([
    'curl',
    '-sS',
    '--max-time',
    String(timeoutMs / 1000),
    '-w',
    '\n%{http_code}',
    ...args,
  ]);
  const result = await run(command ?? 'ip', rest, { timeoutMs: timeoutMs + 5000 });
  const cut = result.stdout.lastIndexOf('\n');
  const status = Number(result.stdout.slice(cut + 1)) || 0;
  return { status, body: result.stdout.slice(0, Math.max(0, cut)), ok: result.code === 0 && status < 400 };
}

/** Polls until `url` answers (any status) or the service exits; throws with its output on failure. */
async function waitForHttp(ns: Netns, service: Service, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!service.alive()) throw new Error(`${service.name} exited before it answered ${url}:\n${service.output()}`);
    const { status } = await curlIn(ns, ['-o', '/dev/null', url], 2000);
    if (status > 0) return;
    if (Date.now() > deadline) {
      throw new Error(`${service.name} did not answer ${url} within ${timeoutMs / 1000} s:\n${service.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function smeltdCommand(dataDir: string, profileDir?: string, nodeFlags: string[] = []): string[] {
  return [
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    ...nodeFlags,
    ...(profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir]),
    ...smeltdEntry(),
    'start',
    '--address',
    '127.0.0.1',
    '--interface',
    'lo',
    '--dataDir',
    dataDir,
    '--dhcp.mode',
    'off',
    '--api.listen',
    `127.0.0.1:${ports.smeltdApi}`,
    '--tftp.listen',
    '127.0.0.1:0',
    '--http.listen',
    `127.0.0.1:${ports.smeltd}`,
    '--log.level',
    'warn',
  ];
}

/**
 * smeltd in the foreground, all its listeners on the namespace's loopback, DHCP off, warnings only (it logs no line
 * per request at that level; nginx gets `access_log off` to match). Ready when its API answers (the info-level
 * "api listening" line is not printed at warn).
 */
export async function startSmeltd(o: {
  ns: Netns;
  dir: string;
  cpu?: string;
  profileDir?: string;
  nodeFlags?: string[];
}): Promise<RunningServer & { api: string; token: string }> {
  const dataDir = join(o.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const command = smeltdCommand(dataDir, o.profileDir, o.nodeFlags);
  const [first, ...args] = o.ns.wrap(pin(o.cpu, command));
  const service = startService('smeltd', first ?? 'ip', args);
  const api = `http://127.0.0.1:${ports.smeltdApi}`;
  await waitForHttp(o.ns, service, `${api}/api/v1`, 30_000);
  const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  return { id: 'smeltd', service, command, base: `http://127.0.0.1:${ports.smeltd}`, api, token };
}

/** POSTs JSON to smeltd's API (curl in the namespace); throws with the problem+json it answered on failure. */
export async function apiPost(
  ns: Netns,
  smeltd: { api: string; token: string },
  path: string,
  body: unknown,
): Promise<unknown> {
  const { status, body: text } = await curlIn(ns, [
    '-X',
    'POST',
    '-H',
    `Authorization: Bearer ${smeltd.token}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    JSON.stringify(body),
    `${smeltd.api}${path}`,
  ]);
  if (status < 200 || status >= 300) throw new Error(`POST ${path} answered ${status}: ${text}`);
  return JSON.parse(text) as unknown;
}

/**
 * nginx's config: what an operator serving boot files would write — sendfile on, one worker per CPU, access log
 * off (smeltd logs nothing per request at warn either), keep-alive without a per-connection request cap (Node's
 * default; nginx's own is 1000), everything it writes (pid, error log, temp directories) in its own directory.
 * Several roots, one location each, so that one instance serves every fixture.
 */
export function nginxConfig(dir: string, locations: Record<string, string>): string {
  const workers = availableParallelism();
  const lines = [
    `worker_processes ${workers};`,
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    '  tcp_nopush on;',
    '  keepalive_requests 1000000;',
    '  default_type application/octet-stream;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, `${t}-temp`)};`),
    '  server {',
    `    listen 127.0.0.1:${ports.nginx};`,
    ...Object.entries(locations).map(([prefix, root]) => `    location /${prefix}/ { alias ${root}/; }`),
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

export async function startNginx(o: {
  ns: Netns;
  dir: string;
  cpu?: string;
  locations: Record<string, string>;
  probe: string;
}): Promise<RunningServer & { config: string }> {
  mkdirSync(o.dir, { recursive: true });
  const config = nginxConfig(o.dir, o.locations);
  const configPath = join(o.dir, 'nginx.conf');
  writeFileSync(configPath, config);
  const command = ['nginx', '-p', o.dir, '-e', join(o.dir, 'error.log'), '-c', configPath, '-g', 'daemon off;'];
  const [first, ...args] = o.ns.wrap(pin(o.cpu, command));
  const service = startService('nginx', first ?? 'ip', args);
  const base = `http://127.0.0.1:${ports.nginx}`;
  await waitForHttp(o.ns, service, `${base}/${o.probe}`, 15_000);
  return { id: 'nginx', service, command, base, config };
}

export async function nginxVersion(): Promise<string> {
  const { stderr, stdout } = await run('nginx', ['-v']);
  return `${stdout}${stderr}`.trim().replace(/^nginx version: /, '');
}

export async function smeltdVersion(): Promise<string> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/daemon/package.json'), 'utf8')) as { version: string };
  const head = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'packages']);
  const commit = head.code === 0 ? head.stdout.trim() : 'unknown commit';
  return `smeltd ${pkg.version} (${commit}${dirty.stdout.trim() ? ' + uncommitted changes' : ''}), Node ${process.version}`;
}
