import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDrops, type Drops } from '../dhcp/topology.ts';
import { pin } from '../lib/cpu.ts';
import { cpuPressureUs } from '../lib/machine.ts';
import type { Netns } from '../lib/netns.ts';
import { cpuSeconds, otherBenchmarks, processTree, rssOf } from '../lib/proc.ts';
import { killGroup, run } from '../lib/process.ts';
import type { StormConfig, StormResult } from './client.ts';
import type { DeployResult } from './deploy.ts';
import { firmware } from './firmware.ts';
import { BOOT_NAME, SCRIPT_PATH, startServers, type Fixtures, type ServerId } from './servers.ts';
import { createStormTopology, poolFor, type Pool } from './topology.ts';

const clientScript = new URL('client.ts', import.meta.url).pathname;
const deployScript = new URL('deploy.ts', import.meta.url).pathname;

/** The MAC of machine `index` in `group` (bench/storm/client.ts makes the same). */
export function macOf(group: number, index: number): string {
  return [0x02, 0x53, group & 255, (index >>> 16) & 255, (index >>> 8) & 255, index & 255]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(':');
}

export const STORM_GROUP = 1;
export const WARMUP_GROUP = 0xfe;

export interface ClientRun {
  result?: StormResult;
  error?: string;
  ms: number;
}

/** Runs bench/storm/client.ts in the client namespace; killed (its process group) after limitS. */
export function runClient(
  ns: Netns,
  cpu: string | undefined,
  configPath: string,
  limitS: number,
  label: string,
  say: (text: string) => void,
): Promise<ClientRun> {
  const [command, ...rest] = ns.wrap(pin(cpu, [process.execPath, clientScript, '--config', configPath]));
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command ?? 'ip', rest, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr = (stderr + text).slice(-8192);
      for (const line of text.split('\n')) if (line.trim()) say(`  ${label}: ${line.trim()}`);
    });
    const timer = setTimeout(() => {
      killed = true;
      killGroup(child, 'SIGKILL');
    }, limitS * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error: `could not run the simulator: ${error.message}`, ms: performance.now() - started });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!killed && code === 0 && line.startsWith('{')) {
        const result = JSON.parse(line, (_key, value: unknown) => (value === null ? Number.NaN : value)) as StormResult;
        resolve({ result, ms });
        return;
      }
      const why = killed ? `killed at its ${limitS} s limit` : `exited ${code ?? '?'}`;
      resolve({ error: `simulator ${why}: ${stderr.trim().split('\n').slice(-3).join(' ')}`, ms });
    });
  });
}

/** smeltd's /metrics, fetched with curl inside its namespace; '' when it does not answer. */
async function smeltdMetrics(ns: Netns, api: string): Promise<string> {
  const result = await run('ip', ['netns', 'exec', ns.name, 'curl', '-sS', '--max-time', '5', `${api}/metrics`], {
    timeoutMs: 8000,
  });
  return result.code === 0 ? result.stdout : '';
}

/** name{labels} → value, for the series whose name starts with one of the prefixes. */
export function parseMetrics(text: string, prefixes: readonly string[]): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !prefixes.some((prefix) => line.startsWith(prefix))) continue;
    const cut = line.lastIndexOf(' ');
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) values.set(line.slice(0, cut), value);
  }
  return values;
}

/** smeltd's counters that say how much it did, and what went wrong or had to wait (HTTP: only non-2xx). */
const COUNTERS = [
  'smelt_dhcp_received_total',
  'smelt_dhcp_sent_total',
  'smelt_tftp_transfers_started_total',
  'smelt_tftp_transfers_completed_total',
  'smelt_dhcp_dropped_total',
  'smelt_dhcp_ignored_total',
  'smelt_dhcp_errors_total',
  'smelt_tftp_requests_refused_total',
  'smelt_tftp_packets_dropped_total',
  'smelt_tftp_transfers_failed_total',
  'smelt_tftp_retransmissions_total',
  'smelt_tftp_internal_errors_total',
  'smelt_tftp_send_errors_total',
  'smelt_http_requests_total',
];

export interface Measurement {
  server: ServerId;
  run: number;
  result?: StormResult;
  error?: string;
  warmup?: StormResult;
  deploy?: DeployResult;
  /** CPU seconds of the server processes during the storm, and their peak RSS. */
  serverCpuS: number;
  serverRssPeak: number;
  /** Kernel drop counters during the storm: the server's and the simulator's namespace. */
  drops: { server: Drops; client: Drops };
  /** smeltd: its trouble counters after the storm, and the peaks of its TFTP gauges while it ran. */
  metrics: string[];
  tftpActivePeak?: number;
  tftpQueuedPeak?: number;
  complaints: string[];
  /** Seconds some task waited for a CPU per second of storm (PSI): the machine was contended. */
  cpuPressure?: number;
  busyAtStart: number;
  /** Other benchmarks or QEMU guests seen running during the storm (sampled every 5 s). */
  othersDuring: string[];
  wallS: number;
}

export interface MeasureOptions {
  server: ServerId;
  run: number;
  clients: number;
  warmup: number;
  rampS: number;
  maxRunS: number;
  fixtures: Fixtures;
  scratch: string;
  serverCpu?: string;
  clientCpu?: string;
  smeltdFlags: readonly string[];
  profileDir?: string;
  /** Simulator worker processes (0: one per 125 machines). */
  workers: number;
  /** Where the first smeltd script received is kept; the reference serves a copy of it. */
  capturedScript: string;
  beforeStorm: () => Promise<number>;
  say: (text: string) => void;
}

function stormConfig(o: MeasureOptions, label: string, clients: number, group: number, rampMs: number): StormConfig {
  return {
    label,
    clients,
    group,
    rampMs,
    deadlineS: o.maxRunS,
    workers: o.workers,
    files: { firstStage: o.fixtures.firstStage, kernel: o.fixtures.kernel, initrd: o.fixtures.initrd },
    progressS: 5,
    firmware,
  };
}

/** One storm against one server: fresh namespaces, start, deploy (smeltd), warm-up, the storm, stop. */
export async function measureServer(o: MeasureOptions): Promise<Measurement> {
  const dir = join(o.scratch, `${o.server}-${o.run + 1}`);
  mkdirSync(dir, { recursive: true });
  const zero: Drops = { udpRcvbuf: 0, packetSocket: 0 };
  const m: Measurement = {
    server: o.server,
    run: o.run,
    serverCpuS: Number.NaN,
    serverRssPeak: 0,
    drops: { server: zero, client: zero },
    metrics: [],
    complaints: [],
    busyAtStart: 0,
    othersDuring: [],
    wallS: 0,
  };
  const started = performance.now();
  const pool: Pool = poolFor(o.clients + o.warmup);
  const topology = await createStormTopology(`${o.server.slice(0, 3)}${o.run}`, pool);
  try {
    let servers;
    try {
      servers = await startServers(o.server, {
        ns: topology.server.ns,
        ifname: topology.server.ifname,
        address: topology.server.address,
        dir,
        pool,
        fixtures: o.fixtures,
        smeltdFlags: o.smeltdFlags,
        ...(o.serverCpu !== undefined && { cpu: o.serverCpu }),
        ...(o.profileDir !== undefined && { profileDir: join(o.profileDir, `run-${o.run + 1}`) }),
      });
    } catch (error) {
      m.error = `did not start: ${error instanceof Error ? error.message : String(error)}`;
      return m;
    }
    try {
      if (servers.api) {
        const macs = [
          ...Array.from({ length: o.warmup }, (_, i) => macOf(WARMUP_GROUP, i)),
          ...Array.from({ length: o.clients }, (_, i) => macOf(STORM_GROUP, i)),
        ];
        const macFile = join(dir, 'macs.txt');
        writeFileSync(macFile, `${macs.join('\n')}\n`);
        const boot = { name: BOOT_NAME, kind: 'installer', kernel: o.fixtures.kernel, initrd: [o.fixtures.initrd] };
        o.say(`bench storm: deploying ${macs.length} machines on smeltd through its API ...`);
        const [command, ...args] = topology.server.ns.wrap([
          process.execPath,
          deployScript,
          '--api',
          servers.api.url,
          '--token-file',
          servers.api.tokenFile,
          '--boot',
          JSON.stringify(boot),
          '--macs',
          macFile,
        ]);
        const deployed = await run(command ?? 'ip', args, { timeoutMs: 300_000 });
        const line = deployed.stdout.trim().split('\n').pop() ?? '';
        if (deployed.code !== 0 || !line.startsWith('{'))
          throw new Error(`deploying failed: ${deployed.stderr.slice(-600)}${deployed.stdout.slice(-300)}`);
        m.deploy = JSON.parse(line) as DeployResult;
        if (m.deploy.deployed !== macs.length)
          throw new Error(`deployed ${m.deploy.deployed} of ${macs.length}: ${m.deploy.errors.join(' / ')}`);
      }

      // Warm-up: a few other machines boot first (one after another's worth of ramp), so that neither side is
      // measured cold; smeltd's script is kept for the reference's static copy.
      if (o.warmup > 0) {
        const config = stormConfig(o, `${o.server} warm-up`, o.warmup, WARMUP_GROUP, 500);
        const scriptOut = join(dir, 'warmup-script.ipxe');
        if (o.server === 'smeltd') config.scriptOut = scriptOut;
        const configPath = join(dir, 'warmup.json');
        writeFileSync(configPath, JSON.stringify({ ...config, deadlineS: 120, progressS: 0 }));
        const warm = await runClient(topology.client.ns, o.clientCpu, configPath, 150, 'warm-up', o.say);
        if (!warm.result) throw new Error(`warm-up: ${warm.error ?? '?'}`);
        m.warmup = warm.result;
        if (warm.result.booted === 0) {
          const why = warm.result.failures[0];
          throw new Error(
            `no warm-up machine booted: ${why ? `${why.stage}: ${why.reason} (${why.example})` : 'no failure recorded'}`,
          );
        }
        if (o.server === 'smeltd' && existsSync(scriptOut)) copyFileSync(scriptOut, o.capturedScript);
      }

      m.busyAtStart = await o.beforeStorm();
      const serverNs = topology.server.ns;
      const before = {
        server: await readDrops(serverNs),
        client: await readDrops(topology.client.ns),
        cpu: cpuSeconds(servers.roots().flatMap(processTree)),
        pressure: cpuPressureUs(),
      };
      // While the storm runs: the servers' RSS every 250 ms, smeltd's TFTP gauges every 2 s.
      const rssTimer = setInterval(() => {
        m.serverRssPeak = Math.max(m.serverRssPeak, rssOf(servers.roots().flatMap(processTree)));
      }, 250);
      const others = new Set<string>();
      const othersTimer = setInterval(() => {
        for (const other of otherBenchmarks()) others.add(other.replace(/^\d+ /, '').slice(0, 60));
      }, 5000);
      const sampling = { on: true };
      const sampler = (async () => {
        const api = servers.api;
        if (!api) return;
        while (sampling.on) {
          const values = parseMetrics(await smeltdMetrics(serverNs, api.url), ['smelt_tftp_transfers_']);
          m.tftpActivePeak = Math.max(m.tftpActivePeak ?? 0, values.get('smelt_tftp_transfers_active') ?? 0);
          m.tftpQueuedPeak = Math.max(m.tftpQueuedPeak ?? 0, values.get('smelt_tftp_transfers_queued') ?? 0);
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      })();
      const configPath = join(dir, 'storm.json');
      writeFileSync(configPath, JSON.stringify(stormConfig(o, o.server, o.clients, STORM_GROUP, o.rampS * 1000)));
      o.say(`bench storm: ${o.server} run ${o.run + 1}: ${o.clients} machines power on within ${o.rampS} s ...`);
      const stormStarted = performance.now();
      const storm = await runClient(topology.client.ns, o.clientCpu, configPath, o.maxRunS + 60, o.server, o.say);
      const stormS = (performance.now() - stormStarted) / 1000;
      clearInterval(rssTimer);
      clearInterval(othersTimer);
      m.othersDuring = [...others];
      sampling.on = false;
      await sampler;
      const after = {
        server: await readDrops(serverNs),
        client: await readDrops(topology.client.ns),
        cpu: cpuSeconds(servers.roots().flatMap(processTree)),
        pressure: cpuPressureUs(),
      };
      m.serverCpuS = after.cpu - before.cpu;
      m.drops = {
        server: { udpRcvbuf: after.server.udpRcvbuf - before.server.udpRcvbuf, packetSocket: 0 },
        client: { udpRcvbuf: after.client.udpRcvbuf - before.client.udpRcvbuf, packetSocket: 0 },
      };
      if (before.pressure !== undefined && after.pressure !== undefined)
        m.cpuPressure = (after.pressure - before.pressure) / 1e6 / stormS;
      if (storm.result) m.result = storm.result;
      else m.error = storm.error ?? 'no result';
      if (servers.api) {
        const values = parseMetrics(await smeltdMetrics(serverNs, servers.api.url), COUNTERS);
        for (const [series, value] of values) {
          if (value === 0) continue;
          if (series.startsWith('smelt_http_requests_total') && /status="2\d\d"/.test(series)) continue;
          m.metrics.push(`${series} ${value}`);
        }
      }
    } catch (error) {
      m.error = error instanceof Error ? error.message : String(error);
    } finally {
      m.complaints = servers.complaints().slice(0, 8);
      await servers.stop();
    }
  } finally {
    await topology.remove();
    m.wallS = (performance.now() - started) / 1000;
  }
  return m;
}

/** The reference's static script: smeltd's own for one machine when one was captured (same URLs), else a stand-in. */
export function writeReferenceScript(fixtures: Fixtures, captured: string, address: string): 'smeltd' | 'stand-in' {
  const target = join(fixtures.www, SCRIPT_PATH);
  mkdirSync(join(fixtures.www, 'boot'), { recursive: true, mode: 0o755 });
  if (existsSync(captured)) {
    copyFileSync(captured, target);
    return 'smeltd';
  }
  const mac = macOf(STORM_GROUP, 0);
  const lines = [
    '#!ipxe',
    `echo Smelt: installing ${mac.replaceAll(':', '-')} on ${mac}: ${BOOT_NAME}`,
    `kernel http://${address}/boots/${BOOT_NAME}/kernel/vmlinuz initrd=initrd.img auto=true priority=critical url=http://${address}/answers/${mac.replaceAll(':', '-')}/0123456789abcdef0123456789abcdef/preseed.cfg`,
    `initrd http://${address}/boots/${BOOT_NAME}/initrd/0/initrd.img`,
    'boot || goto failed',
    ':failed',
    'echo Smelt: the installer did not boot; trying again in 30 s',
    'sleep 30',
    `chain --replace --autofree http://${address}/boot/${mac.replaceAll(':', '-')}.ipxe`,
  ];
  writeFileSync(target, `${lines.join('\n')}\n`, { mode: 0o644 });
  return 'stand-in';
}
