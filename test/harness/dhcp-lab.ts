/**
 * Network labs for the DHCP end-to-end tests: namespaces joined by veth pairs or by a switch (a bridge in a
 * namespace of its own), the real DHCP clients run inside them (udhcpc, dhclient, scapy via dhcp_client.py), and
 * the daemon's API and metrics read from inside the server's namespace, where its API listens on 127.0.0.1.
 *
 * Everything a lab makes (namespaces, daemons, background processes, a temporary directory) is undone by close(),
 * processes first, by the PIDs the lab started. Nothing here touches the machine's own interfaces.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, uniqueName, type Netns } from './netns.ts';
import { repoRoot, smeltctlBin } from './paths.ts';
import { exited, run, runOk, type RunResult } from './process.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from './smeltd.ts';

export const PYTHON = '/usr/bin/python3'; // the one with scapy
export const DHCP_CLIENT = join(repoRoot, 'test/harness/dhcp_client.py');

/** One end of a link: an interface in a namespace, optionally with an address (CIDR) and a MAC. */
export interface End {
  ns: Netns;
  name: string;
  address?: string;
  mac?: string;
}

/** A process the lab started in the background; stop() sends SIGTERM to its PID and waits for the exit. */
export interface Background {
  child: ChildProcess;
  output(): string;
  /** Resolves with the output once `pattern` appears in it; rejects after `timeoutMs` or if the process exits. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

/** A switch: br0 in a namespace of its own. attach() plugs an interface of another namespace into it. */
export interface Switch {
  ns: Netns;
  attach(end: End): Promise<void>;
}

export interface Lab {
  /** Scripts, lease files, data directories. */
  dir: string;
  /** A new namespace named by uniqueName(tag); tags of 3 characters leave room for a 5-digit PID. */
  netns(tag: string): Promise<Netns>;
  /** A veth pair from a to b, both up. */
  link(a: End, b: End): Promise<void>;
  switch(tag: string): Promise<Switch>;
  /** A long-running command inside a namespace. */
  spawn(ns: Netns, argv: readonly string[]): Background;
  /** smeltd inside `ns` with this config (merged over the harness's loopback defaults); a new data dir unless given. */
  smeltd(ns: Netns, config: Record<string, unknown>, dataDir?: string): Promise<RunningSmeltd>;
  close(): Promise<void>;
}

/** The MAC every lab bridge is given (locally administered; each lab's bridge is in an L2 domain of its own). */
export const BRIDGE_MAC = '02:5e:00:00:00:01';

/**
 * Gives a lab's bridge a MAC of its own. A Linux bridge otherwise takes the lowest of its ports' MACs and changes it
 * when that port goes — when a VM stops first and its tap is removed — and the machines still running, whose ARP
 * caches hold the old MAC, lose their next connections to the addresses on the bridge until their entries expire.
 * With its MAC set a bridge without ports has no carrier (smeltd refuses an interface that is down): `anchor` adds
 * one end of an idle veth pair as a port, its other end up and unused (IPv6 off on both: no solicitations or DAD
 * in the captures), to keep the bridge up before the VMs' taps join.
 */
export async function pinBridge(
  ns: Pick<Netns, 'exec'>,
  options: { bridge?: string; anchor?: boolean } = {},
): Promise<void> {
  const bridge = options.bridge ?? 'br0';
  await ns.exec(['ip', 'link', 'set', bridge, 'address', BRIDGE_MAC]);
  if (!options.anchor) return;
  await ns.exec(['ip', 'link', 'add', 'anchor0', 'type', 'veth', 'peer', 'name', 'anchor1']);
  for (const end of ['anchor0', 'anchor1']) await ns.exec(['sysctl', '-qw', `net.ipv6.conf.${end}.disable_ipv6=1`]);
  await ns.exec(['ip', 'link', 'set', 'anchor0', 'master', bridge]);
  await ns.exec(['ip', 'link', 'set', 'anchor1', 'up']);
  await ns.exec(['ip', 'link', 'set', 'anchor0', 'up']);
}

async function configure(end: End): Promise<void> {
  const ip = (args: string[]) => runOk('ip', ['-n', end.ns.name, ...args]);
  if (end.mac !== undefined) await ip(['link', 'set', end.name, 'address', end.mac]);
  if (end.address !== undefined) await ip(['addr', 'add', end.address, 'dev', end.name]);
  // No IPv6 on lab links: no router solicitations or DAD traffic in the captures.
  await runOk('ip', ['netns', 'exec', end.ns.name, 'sysctl', '-qw', `net.ipv6.conf.${end.name}.disable_ipv6=1`]);
  await ip(['link', 'set', end.name, 'up']);
}

export function createLab(prefix: string): Lab {
  const dir = tempDir(`smelt-${prefix}-`);
  chmodSync(dir, 0o755);
  const namespaces: Netns[] = [];
  const processes: Background[] = [];
  const daemons: RunningSmeltd[] = [];
  let ports = 0;
  let daemonDirs = 0;

  const lab: Lab = {
    dir,
    async netns(tag) {
      // uniqueName keeps 15 characters: the tag must survive whole (tags differ between the DHCP test files, so
      // files running at once never collide even where a long PID is cut short).
      assert.ok(uniqueName(tag).startsWith(`smelt-${tag}-`), `namespace tag "${tag}" is too long`);
      const ns = await createNetns(tag);
      namespaces.push(ns);
      // Answer ARP only on the interface that has the address: several client interfaces of one namespace share
      // a segment, and a unicast reply must reach the one that asked.
      await ns.exec(['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']);
      return ns;
    },
    async link(a, b) {
      await runOk('ip', [
        '-n',
        a.ns.name,
        'link',
        'add',
        a.name,
        'type',
        'veth',
        'peer',
        'name',
        b.name,
        'netns',
        b.ns.name,
      ]);
      await configure(a);
      await configure(b);
    },
    async switch(tag) {
      const ns = await lab.netns(tag);
      await ns.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
      // Its ports are attached next; they give it its carrier.
      await pinBridge(ns);
      await ns.exec(['ip', 'link', 'set', 'br0', 'up']);
      return {
        ns,
        async attach(end) {
          const port = `p${++ports}`;
          await runOk('ip', [
            '-n',
            end.ns.name,
            'link',
            'add',
            end.name,
            'type',
            'veth',
            'peer',
            'name',
            port,
            'netns',
            ns.name,
          ]);
          await ns.exec(['ip', 'link', 'set', port, 'master', 'br0']);
          await ns.exec(['ip', 'link', 'set', port, 'up']);
          await configure(end);
        },
      };
    },
    spawn(ns, argv) {
      const child = spawn('ip', ['netns', 'exec', ns.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const background: Background = {
        child,
        output: () => output,
        waitFor(pattern, timeoutMs) {
          return new Promise((resolve, reject) => {
            const check = () => {
              if (!pattern.test(output)) return false;
              cleanup();
              resolve(output);
              return true;
            };
            const onExit = () => {
              if (check()) return;
              cleanup();
              reject(new Error(`${argv.join(' ')} exited before printing ${String(pattern)}:\n${output}`));
            };
            const timer = setTimeout(() => {
              cleanup();
              reject(new Error(`${argv.join(' ')}: no ${String(pattern)} within ${timeoutMs} ms:\n${output}`));
            }, timeoutMs);
            const cleanup = () => {
              clearTimeout(timer);
              child.stdout.off('data', check);
              child.stderr.off('data', check);
              child.off('exit', onExit);
            };
            child.stdout.on('data', check);
            child.stderr.on('data', check);
            child.once('exit', onExit);
            check();
          });
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited(child);
          clearTimeout(timer);
        },
      };
      processes.push(background);
      return background;
    },
    async smeltd(ns, config, dataDir) {
      // Under the lab's directory, so that close() removes it even when the daemon never came up.
      const daemon = await startSmeltd({
        netns: ns.name,
        config,
        dataDir: dataDir ?? join(dir, `data-${++daemonDirs}`),
      });
      daemons.push(daemon);
      return daemon;
    },
    async close() {
      // Every step is tried, whatever failed before it; the first failure is reported at the end.
      const failures: unknown[] = [];
      const attempt = async (step: () => Promise<unknown>) => {
        try {
          await step();
        } catch (error) {
          failures.push(error);
        }
      };
      for (const daemon of daemons) {
        if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) continue;
        const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 10_000);
        await attempt(() => daemon.stop());
        clearTimeout(timer);
      }
      for (const background of processes) await attempt(() => background.stop());
      for (const ns of namespaces.reverse()) await attempt(() => ns.remove());
      removeDir(dir);
      if (failures.length > 0) throw failures[0];
    },
  };
  return lab;
}

// ---- clients ------------------------------------------------------------------------------------------------

export interface UdhcpcResult {
  code: number | null;
  output: string;
  /** The environment udhcpc gave its script on "bound" (ip, router, dns, lease, serverid, ...), if it bound. */
  bound?: Record<string, string>;
  /** The script's events in order: deconfig, bound, leasefail, nak, ... */
  events: string[];
}

let udhcpcRuns = 0;

/**
 * busybox udhcpc, once: DISCOVER up to `tries` times a second apart, and exit when bound (-q) or when it gives
 * up (-n). Its script only writes the environment it is given to a file: nothing on the interface changes.
 */
export async function udhcpc(
  lab: Lab,
  ns: Netns,
  iface: string,
  options: { tries?: number; args?: string[] } = {},
): Promise<UdhcpcResult> {
  const script = join(lab.dir, 'udhcpc.sh');
  if (!existsSync(script)) {
    writeFileSync(
      script,
      '#!/bin/sh\nn=$(ls "$SMELT_DUMP".* 2>/dev/null | wc -l)\nenv > "$SMELT_DUMP.$n.$1"\nexit 0\n',
    );
    chmodSync(script, 0o755);
  }
  const dump = join(lab.dir, `udhcpc-${++udhcpcRuns}`);
  const tries = options.tries ?? 3;
  const args = ['udhcpc', '-f', '-q', '-n', '-i', iface, '-s', script, '-t', String(tries), '-T', '1', '-A', '1'];
  const result = await run('ip', ['netns', 'exec', ns.name, ...args, ...(options.args ?? [])], {
    env: { ...process.env, SMELT_DUMP: dump },
    timeoutMs: (tries + 10) * 1000,
  });
  const files = readdirSync(lab.dir)
    .filter((name) => name.startsWith(`${dump.slice(lab.dir.length + 1)}.`))
    .map((name) => {
      const [, n, event] = name.split('.');
      return { n: Number(n), event: event ?? '', path: join(lab.dir, name) };
    })
    .sort((a, b) => a.n - b.n);
  const boundFile = files.find((f) => f.event === 'bound');
  return {
    code: result.code,
    output: result.stdout + result.stderr,
    events: files.map((f) => f.event),
    ...(boundFile && { bound: parseEnv(readFileSync(boundFile.path, 'utf8')) }),
  };
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/**
 * The dhclient-script stand-in: it records every call's environment and sets the address dhclient got on the
 * interface (so a RELEASE can be sent from it), nothing else: no routes, no resolv.conf.
 */
export function dhclientScript(lab: Lab): { path: string; records(iface: string): Record<string, string>[] } {
  const path = join(lab.dir, 'dhclient.sh');
  const log = (iface: string) => join(lab.dir, `dhclient.${iface}.log`);
  if (!existsSync(path)) {
    writeFileSync(
      path,
      [
        '#!/bin/sh',
        `{ env; echo ---; } >> "${lab.dir}/dhclient.$interface.log"`,
        'case "$reason" in',
        '  PREINIT) /usr/sbin/ip link set dev "$interface" up ;;',
        '  BOUND|RENEW|REBIND|REBOOT) /usr/sbin/ip -4 addr flush dev "$interface"',
        '    /usr/sbin/ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;',
        '  EXPIRE|FAIL|RELEASE|STOP) /usr/sbin/ip -4 addr flush dev "$interface" ;;',
        'esac',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(path, 0o755);
  }
  return {
    path,
    records(iface) {
      const file = log(iface);
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('---\n')
        .filter((block) => block.trim() !== '')
        .map(parseEnv);
    },
  };
}

/** A DHCP reply as dhcp_client.py prints it; options are hex strings by code. */
export interface Reply {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: string;
  sname: string;
  file: string;
  type: string | null;
  options: Record<string, string>;
  /** Option codes in the order they appear on the wire. */
  order: number[];
  length: number;
}

export interface Exchange {
  xid: number;
  mac: string;
  replies: Reply[];
}

/** dhcp_client.py IFACE ARGS... inside `ns`; its (last) JSON line. */
export async function scapy<T = Exchange>(ns: Netns, iface: string, args: readonly string[]): Promise<T> {
  const result = await run('ip', ['netns', 'exec', ns.name, PYTHON, DHCP_CLIENT, iface, ...args], {
    timeoutMs: 60_000,
  });
  assert.equal(result.code, 0, `dhcp_client.py ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as T;
}

/** Option `code` of a reply as bytes, undefined when absent. */
export function opt(reply: Reply, code: number): Buffer | undefined {
  const hex = reply.options[String(code)];
  return hex === undefined ? undefined : Buffer.from(hex, 'hex');
}

export function optText(reply: Reply, code: number): string | undefined {
  return opt(reply, code)?.toString('latin1');
}

/** An address-list option as dotted quads. */
export function optIps(reply: Reply, code: number): string[] | undefined {
  const value = opt(reply, code);
  if (!value) return undefined;
  const out: string[] = [];
  for (let i = 0; i + 4 <= value.length; i += 4) out.push([...value.subarray(i, i + 4)].join('.'));
  return out;
}

export function optU32(reply: Reply, code: number): number | undefined {
  const value = opt(reply, code);
  return value?.length === 4 ? value.readUInt32BE(0) : undefined;
}

// ---- the daemon, from inside its namespace --------------------------------------------------------------------

/** An API call made with curl inside the daemon's namespace (its API listens on 127.0.0.1 there). */
export async function apiIn(
  ns: Netns,
  daemon: RunningSmeltd,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const args = ['curl', '-sS', '--max-time', '10', '-X', method, '-H', `authorization: Bearer ${daemon.token}`];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  args.push('-w', '\n%{http_code}', `${daemon.url}${path}`);
  const out = await ns.exec(args);
  const at = out.lastIndexOf('\n');
  const text = out.slice(0, at);
  return { status: Number(out.slice(at + 1)), json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/** The real smeltctl, run inside the daemon's namespace against its API. */
export function smeltctlIn(lab: Lab, ns: Netns, daemon: RunningSmeltd, args: readonly string[]): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns.name, smeltctlBin, ...args], {
    env: {
      ...process.env,
      SMELT_SERVER: daemon.url,
      SMELT_TOKEN: daemon.token,
      SMELTCTL_CONFIG: join(lab.dir, 'smeltctl.json'),
      NO_COLOR: '',
      FORCE_COLOR: '',
    },
    timeoutMs: 30_000,
  });
}

/** smeltctl ARGS -o json, which must succeed; its parsed output. */
export async function smeltctlJson<T>(lab: Lab, ns: Netns, daemon: RunningSmeltd, args: readonly string[]): Promise<T> {
  const result = await smeltctlIn(lab, ns, daemon, [...args, '-o', 'json']);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as T;
}

/** One series of /metrics: its family name and labels. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export async function metricsIn(ns: Netns, daemon: RunningSmeltd): Promise<Series[]> {
  const text = await ns.exec(['curl', '-sS', '--max-time', '10', `${daemon.url}/metrics`]);
  const series: Series[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match?.[1] || match[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (pair[1] !== undefined && pair[2] !== undefined) labels[pair[1]] = pair[2];
    }
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return series;
}

/** The sum of the series of family `name` whose labels include `labels` (0 when there is none). */
export function metric(series: readonly Series[], name: string, labels: Record<string, string> = {}): number {
  return series
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export function logLines(daemon: RunningSmeltd): Record<string, unknown>[] {
  return daemon
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Polls `probe` every `intervalMs` until it returns something other than undefined, at most `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14 and stime 15 (proc(5)), so indexes 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Whether a process is still running (not exited, not a zombie). */
export function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return !/^\S+ \(.*\) [ZX]/.test(stat);
}
