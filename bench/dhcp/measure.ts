import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import { cpuPressureUs } from '../lib/machine.ts';
import type { Netns } from '../lib/netns.ts';
import { killGroup, type Service } from '../lib/process.ts';
import { MEASURED_RUN_STARTS, type GeneratorMode, type GeneratorResult } from './generator.ts';
import { compareLeases, readAcked, type Acked, type LeaseCheck } from './leases.ts';
import { groupCpuNs } from './server-cpu.ts';
import { listening, type ServerContext, type ServerId, type ServerSpec } from './servers.ts';
import { dropsSince, readDrops, type Drops, type Topology } from './topology.ts';

const generatorScript = new URL('generator.ts', import.meta.url).pathname;

export interface GeneratorRun {
  result?: GeneratorResult;
  /** Why there is no result (the process failed, or was killed at its time limit). */
  error?: string;
  ms: number;
}

/**
 * Runs bench/dhcp/generator.ts inside the client namespace (pinned to the clients' CPUs), its progress lines passed
 * through to stderr, killed (its process group) after limitS. `onMeasuredRun` is called when it says that its
 * warm-up is over.
 */
export function runGeneratorProcess(
  ns: Netns,
  cpu: string | undefined,
  args: readonly string[],
  limitS: number,
  label: string,
  onMeasuredRun?: () => void,
): Promise<GeneratorRun> {
  const [command, ...rest] = ns.wrap(pin(cpu, [process.execPath, generatorScript, ...args]));
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
      for (const line of text.split('\n')) {
        if (line.trim() === MEASURED_RUN_STARTS) onMeasuredRun?.();
        else if (line.trim()) process.stderr.write(`  ${label}: ${line.trim()}\n`);
      }
    });
    const timer = setTimeout(() => {
      killed = true;
      killGroup(child, 'SIGKILL');
    }, limitS * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error: `could not run the generator: ${error.message}`, ms: performance.now() - started });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!killed && code === 0 && line.startsWith('{')) {
        // JSON has no NaN: the generator's NaN (no figure) arrives as null.
        const result = JSON.parse(line, (_key, value: unknown) =>
          value === null ? Number.NaN : value,
        ) as GeneratorResult;
        resolve({ result, ms });
        return;
      }
      const why = killed ? `killed at its ${limitS} s limit` : `exited ${code ?? '?'}`;
      resolve({ error: `generator ${why}: ${stderr.trim().split('\n').slice(-3).join(' ')}`, ms });
    });
  });
}

export interface GeneratorSettings {
  concurrency: number;
  timeoutMs: number;
  retries: number;
}

export function generatorArgs(
  topology: Topology,
  mode: GeneratorMode,
  clients: number,
  group: number,
  s: GeneratorSettings,
  extra: string[] = [],
): string[] {
  return [
    '--mode',
    mode,
    '--server',
    topology.server.address,
    '--relay-address',
    topology.client.address,
    '--clients',
    String(clients),
    '--group',
    String(group),
    '--concurrency',
    String(s.concurrency),
    '--timeout-ms',
    String(s.timeoutMs),
    '--retries',
    String(s.retries),
    ...extra,
  ];
}

export interface StoreCheck extends LeaseCheck {
  source: string;
  error?: string;
}

export interface RestartCheck {
  /** The store read again after kill -9 and a restart. */
  store?: StoreCheck;
  /** A DISCOVER from a sample of the ACKed clients: OFFERs of the same address / another / none. */
  asked: number;
  same: number;
  other: number;
  unanswered: number;
  error?: string;
}

export interface Measurement {
  server: ServerId;
  scenario: string;
  run: number;
  result?: GeneratorResult;
  /** Why the measurement has no (or a partial) result: did not start, no DHCP replies, generator killed. */
  error?: string;
  drops?: { server: Drops; client: Drops };
  store?: StoreCheck;
  restart?: RestartCheck;
  /** It did not exit within 3 s of SIGTERM and was killed. */
  killedAtStop: boolean;
  /** The server's last lines of output after a run with NAKs or failures (what it said about them). */
  serverSaid?: string;
  /**
   * The server's CPU time per DORA over the measured run, µs: every thread of its process group (over the warm-up
   * and the run when the generator did not say where the run started).
   */
  serverCpuUsPerDora?: number;
  /** Unmeasured clients the generator ran first (InstanceOptions.warmupClients). */
  warmupClients: number;
  /** Share of the run's wall time some task waited for a CPU (PSI "some"); NaN without PSI. */
  pressure: number;
  busyAtStart: number;
}

export interface InstanceOptions {
  spec: ServerSpec;
  context: ServerContext;
  topology: Topology;
  mode: GeneratorMode;
  clients: number;
  run: number;
  scenario: string;
  settings: GeneratorSettings;
  clientCpu?: string;
  maxRunS: number;
  warmupClients: number;
  /** The pause between the warm-up and the measured run. */
  settleMs: number;
  checkSample: number;
  /** Where the generator writes each measured run's per-DORA trace (--trace-dir), if anywhere. */
  traceDir?: string;
  /** Called just before the measured run (the quiet-machine gate); returns the busy share when it started. */
  beforeRun: () => Promise<number>;
  say: (text: string) => void;
}

const READY_MS = 20_000;

async function stopTimed(service: Service): Promise<boolean> {
  const started = Date.now();
  await service.stop();
  return Date.now() - started > 2900;
}

/** Picks up to n of the list, spread evenly (deterministic). */
function sample<T>(list: readonly T[], n: number): T[] {
  if (list.length <= n) return [...list];
  const step = list.length / n;
  return Array.from({ length: n }, (_, i) => list[Math.floor(i * step)] as T);
}

/**
 * One measurement on a fresh server instance with an empty lease store: start it, wait until it serves DHCP, a
 * warm-up (other MACs, in the generator's process), the measured run, the lease store checked against every ACK, then kill -9, restart
 * on the same store, the store checked again, and a sample of the clients asks once more (DISCOVER) whether it is
 * offered its address again; stop.
 */
export async function measureInstance(o: InstanceOptions): Promise<Measurement> {
  const { spec, context, topology } = o;
  const m: Measurement = {
    server: spec.id,
    scenario: o.scenario,
    run: o.run,
    killedAtStop: false,
    warmupClients: o.warmupClients,
    pressure: Number.NaN,
    busyAtStart: 0,
  };
  const label = `${spec.id} ${o.scenario} run ${o.run + 1}`;
  spec.prepare(context);
  let service = spec.start(context);
  let remark: string | undefined;
  try {
    remark = await spec.ready(service, context, READY_MS);
  } catch (error) {
    m.error = `did not start: ${error instanceof Error ? error.message : String(error)}`;
    m.killedAtStop = await stopTimed(service);
    return m;
  }

  m.busyAtStart = await o.beforeRun();
  const ackedPath = join(context.dir, 'acked.txt');
  const serverDrops = await readDrops(context.ns);
  const clientDrops = await readDrops(topology.client.ns);
  const pressureBefore = cpuPressureUs();
  const cpuBefore = groupCpuNs(service.pid);
  let cpuAtRun: number | undefined;
  const started = performance.now();
  const main = await runGeneratorProcess(
    topology.client.ns,
    o.clientCpu,
    generatorArgs(topology, o.mode, o.clients, 1, o.settings, [
      '--max-seconds',
      String(o.maxRunS),
      '--leases-out',
      ackedPath,
      '--progress-s',
      o.clients >= 10_000 ? '10' : '0',
      '--warmup',
      String(o.warmupClients),
      '--settle-ms',
      String(o.settleMs),
      ...(o.traceDir === undefined
        ? []
        : ['--trace', join(o.traceDir, `${spec.id}-${o.scenario}-run${String(o.run + 1)}.csv`)]),
    ]),
    o.maxRunS + 120,
    label,
    () => {
      cpuAtRun = groupCpuNs(service.pid);
    },
  );
  const pressureAfter = cpuPressureUs();
  const doras =
    cpuAtRun === undefined
      ? (main.result?.completed ?? 0) + (main.result?.warmup?.completed ?? 0)
      : (main.result?.completed ?? 0);
  if (doras > 0) m.serverCpuUsPerDora = (groupCpuNs(service.pid) - (cpuAtRun ?? cpuBefore)) / 1000 / doras;
  if (pressureBefore !== undefined && pressureAfter !== undefined) {
    m.pressure = (pressureAfter - pressureBefore) / 1000 / (performance.now() - started);
  }
  m.drops = {
    server: dropsSince(serverDrops, await readDrops(context.ns)),
    client: dropsSince(clientDrops, await readDrops(topology.client.ns)),
  };
  m.result = main.result;
  const warm = main.result?.warmup;
  if (!main.result) m.error = main.error;
  else if (main.result.noReplies) m.error = `${spec.id}: no DHCP replies`;
  else if (main.result.stalled) m.error = `${spec.id} stalled: nothing completed for 30 s, the rest abandoned`;
  else if (warm?.completed === 0) {
    m.error = `${spec.id}: no DORA completed in the warm-up (${warm.failed} failed, ${warm.naks} NAKs, ${warm.malformed} malformed replies${warm.firstMalformed ? `: ${warm.firstMalformed}` : ''})`;
  }
  if (m.error !== undefined && remark !== undefined) m.error += ` (${remark})`;
  if (m.error !== undefined && main.result?.completed === 0) {
    if (!service.alive()) m.error += `; it exited: ${service.output().trim().split('\n').slice(-3).join(' ')}`;
    m.killedAtStop = await stopTimed(service);
    return m;
  }
  if (!service.alive()) {
    m.error = `${m.error ? `${m.error}; ` : ''}${spec.id} EXITED during the run: ${service.output().trim().split('\n').slice(-3).join(' ')}`;
    m.killedAtStop = await stopTimed(service);
    return m;
  }

  const res = main.result;
  if (res && res.naks + res.failed > 0) {
    const said = service
      .output()
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '');
    if (said.length > 0) m.serverSaid = said.slice(-4).join(' / ').slice(-800);
  }

  // Every ACK against the store, while the server still runs (what it persisted, not what it may write on exit).
  const acked: Acked[] = readAcked(ackedPath);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const reading = await spec.leases(context);
  m.store = {
    ...compareLeases(acked, reading),
    source: reading.source,
    ...(reading.error !== undefined && { error: reading.error }),
  };

  // kill -9, restart on the same store: are the leases still there, and does the server still know them?
  const restart: RestartCheck = { asked: 0, same: 0, other: 0, unanswered: 0 };
  m.restart = restart;
  try {
    process.kill(-service.pid, 'SIGKILL');
  } catch {
    // gone already
  }
  await service.stop();
  // Until the old instance's sockets are gone (a child it left could hold them a moment longer).
  for (let waited = 0; waited < 5000 && (await listening(context.ns, 67)); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  service = spec.start(context);
  try {
    await spec.ready(service, context, READY_MS);
    const again = await spec.leases(context);
    restart.store = {
      ...compareLeases(acked, again),
      source: again.source,
      ...(again.error !== undefined && { error: again.error }),
    };
    const ask = sample(acked, o.checkSample);
    if (ask.length > 0) {
      const listPath = join(context.dir, 'check.txt');
      writeFileSync(listPath, `${ask.map(([mac, address]) => `${mac} ${address}`).join('\n')}\n`);
      const check = await runGeneratorProcess(
        topology.client.ns,
        o.clientCpu,
        // The run's own retransmission timing: a server busy just after its restart (dnsmasq reloading 25k leases) is
        // slow, not wrong.
        generatorArgs(topology, o.mode, ask.length, 1, o.settings, ['--check', listPath, '--progress-s', '0']),
        120,
        `${label} re-ask`,
      );
      if (check.result) {
        restart.asked = ask.length;
        restart.same = check.result.sameAddress;
        restart.other = check.result.otherAddress;
        restart.unanswered = check.result.failed + check.result.notStarted;
      } else restart.error = check.error;
    }
  } catch (error) {
    restart.error = `restart failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  m.killedAtStop = await stopTimed(service);
  if (m.killedAtStop) o.say(`bench dhcp: ${spec.id} did not exit within 3 s of SIGTERM: killed (pid ${service.pid})`);
  return m;
}
