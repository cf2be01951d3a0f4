/**
 * pnpm bench dhcp [--quick] [--runs N] [--write] [--plan] [filters]: one load generator (bench/dhcp/generator.ts,
 * ours: Debian's perfdhcp reports no percentiles and no per-client outcome) drives smeltd, Kea (memfile; single-
 * and multi-threaded) and dnsmasq in the same run, in network namespaces, at 1k, 10k and 50k distinct clients:
 * completed DORA per second, p50/p99 latency, retries, NAKs, failures, and whether every ACKed lease is in the
 * server's store, also after kill -9 and a restart. See BENCHMARKS.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addToBenchmarks, insertIntoSection } from '../lib/benchmarks-md.ts';
import { list, numbers, one, parseOptions, runBench, say } from '../lib/cli.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { pin, pinModes, placement } from '../lib/cpu.ts';
import { cpuPressureUs, describeMachine, load1, waitForQuiet } from '../lib/machine.ts';
import { run } from '../lib/process.ts';
import { duration, fmt } from '../lib/stats.ts';
import { generatorModes } from './generator.ts';
import { measureInstance, type GeneratorSettings, type Measurement } from './measure.ts';
import {
  checkPoolFits,
  estimateSeconds,
  fullMatrix,
  OVERHEAD_S,
  quickMatrix,
  scenariosOf,
  type Matrix,
} from './plan.ts';
import { renderReport, Results, type RunInfo } from './report.ts';
import { addSmeltdFlags, serverIds, servers, type ServerContext, type ServerId } from './servers.ts';
import { createTopology, POOL_SIZE } from './topology.ts';

const usage = `usage: pnpm bench dhcp [options]
  --quick               1k clients only (a few minutes)
  --runs N              runs per server and client count, median reported (default 3)
  --write               append the report to BENCHMARKS.md's DHCP section
  --json FILE           also write every measurement's raw figures there
  --plan                print what would run and the time estimate, then stop
  --servers LIST        of smeltd,smeltd-os,kea,kea-mt,dnsmasq --clients LIST   client counts (1000,10000,50000)
  --modes LIST          of broadcast,relay (default broadcast)
  --concurrency N       DORAs in flight (default 64)         --timeout-ms MS  first retransmission (4000, doubling)
  --retries N           retransmissions per step (default 3)
  --warmup N            unmeasured clients before each measured run, same generator process (default 20000)
  --short-warmup N      the same for dnsmasq, whose cost per lease grows with the leases it holds (default 500)
  --settle-ms MS        quiet between the warm-up and the measured run (default 1000)
  --check-sample N      clients re-asking after kill -9 + restart (default 2000)
  --max-run-s S         stop starting clients after S s in one run (default 600; 120 with --quick)
  --repeat-under-s S    run once when the first run took longer (default 20)
  --pin MODE            split: servers CPU 0, generator CPU 1 (default); shared: all on CPU 0; none
  --quiet-wait-s S      before each run, wait up to S s for other work to leave the CPUs (default 60; 0: off)
  --data-root DIR       where lease stores live (default: $TMPDIR or /tmp, a real disk here, not tmpfs)
  --trace-dir DIR       per measured run, a CSV of each DORA's start/offer/ack times (ms) in DIR
  --smeltd-flags "..."  more flags for smeltd, after the bench's own (e.g. "--dhcp.rateLimit 100")`;

/** A run starts once less than this share of the CPUs is busy (or after --quiet-wait-s). */
const QUIET_THRESHOLD = 0.2;

export function main(argv: string[]): Promise<number> {
  return runBench('dhcp', usage, argv, bench);
}

async function bench(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    plan: { type: 'boolean', default: false },
    servers: { type: 'string' },
    clients: { type: 'string' },
    modes: { type: 'string' },
    concurrency: { type: 'string' },
    'timeout-ms': { type: 'string' },
    retries: { type: 'string' },
    warmup: { type: 'string' },
    'short-warmup': { type: 'string' },
    'settle-ms': { type: 'string' },
    'check-sample': { type: 'string' },
    'max-run-s': { type: 'string' },
    'repeat-under-s': { type: 'string' },
    pin: { type: 'string' },
    'quiet-wait-s': { type: 'string' },
    'data-root': { type: 'string' },
    'smeltd-flags': { type: 'string' },
    'trace-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const base = o.quick ? quickMatrix : fullMatrix;
  const matrix: Matrix = {
    servers: list(o.servers, serverIds, base.servers),
    clients: numbers(o.clients, base.clients),
    modes: list(o.modes, generatorModes, base.modes),
  };
  const runsWanted = one(o.runs, 3);
  const maxRunS = one(o['max-run-s'], o.quick ? 120 : 600);
  const repeatUnderS = one(o['repeat-under-s'], 20);
  const quietWaitS = o['quiet-wait-s'] === '0' ? 0 : one(o['quiet-wait-s'], 60);
  const warmupClients = one(o.warmup, 20_000);
  const shortWarmupClients = one(o['short-warmup'], 500);
  const settleMs = one(o['settle-ms'], 1000, true);
  const checkSample = one(o['check-sample'], 2000);
  const warmupOf = (server: ServerId) => (servers[server].shortWarmup ? shortWarmupClients : warmupClients);
  checkPoolFits(matrix.clients, matrix.servers.map(warmupOf), POOL_SIZE);
  // The generator writes each run's trace at its end: a directory that is not there would cost the run's figures.
  if (o['trace-dir'] !== undefined) mkdirSync(o['trace-dir'], { recursive: true });
  const settings: GeneratorSettings = {
    concurrency: one(o.concurrency, 64),
    timeoutMs: one(o['timeout-ms'], 4000),
    retries: o.retries === '0' ? 0 : one(o.retries, 3),
  };
  if (o['smeltd-flags'] !== undefined) addSmeltdFlags(o['smeltd-flags'].split(/\s+/).filter(Boolean));
  const where = placement(list(o.pin, pinModes, ['split'])[0]);
  const scenarios = scenariosOf(matrix);
  const command = `pnpm bench dhcp${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;

  // ---- the plan and its time estimate -------------------------------------------------------------------------
  let estimate = 0;
  let instances = 0;
  const perScenario: string[] = [];
  for (const scenario of scenarios) {
    const parts: string[] = [];
    for (const server of matrix.servers) {
      const seconds = Math.min(maxRunS, estimateSeconds(server, scenario.clients));
      const warmupS = estimateSeconds(server, warmupOf(server));
      const runs = seconds > repeatUnderS ? 1 : runsWanted;
      instances += runs;
      estimate += runs * (seconds + warmupS + OVERHEAD_S);
      parts.push(`${server} ${runs}×${duration(seconds)}`);
    }
    perScenario.push(`  ${scenario.key}: ${parts.join(', ')}`);
  }
  say(
    `bench dhcp: ${scenarios.length} scenarios × ${matrix.servers.length} servers: ${instances} server instances; ` +
      `estimated ${duration(estimate)} (+ waits for a quiet machine)`,
  );
  if (o.plan) {
    say(perScenario.join('\n'));
    return 0;
  }

  // ---- prerequisites --------------------------------------------------------------------------------------------
  if (process.getuid?.() !== 0) {
    say('bench dhcp: needs root (it makes network namespaces and pins processes); run it as root');
    return 1;
  }
  for (const tool of ['ip', 'ss', 'taskset', 'curl', 'env']) {
    if ((await run('bash', ['-c', `command -v ${tool}`])).code !== 0) {
      say(`bench dhcp: ${tool} is missing`);
      return 1;
    }
  }
  const missing: string[] = [];
  const active: ServerId[] = [];
  for (const id of matrix.servers) {
    const why = await servers[id].missing();
    if (why === undefined) active.push(id);
    else {
      missing.push(`${id}: ${why}`);
      say(`bench dhcp: leaving ${id} out: ${why}`);
    }
  }
  if (active.length === 0) return 1;

  const started = new Date();
  const loadBefore = load1();
  const pressureBefore = cpuPressureUs();
  const dataRoot = o['data-root'] ?? tmpdir();
  const scratch = join(dataRoot, `smelt-bench-dhcp-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  onCleanup(`scratch directory ${scratch}`, () => {
    rmSync(scratch, { recursive: true, force: true });
  });
  const fsType =
    (await run('findmnt', ['-no', 'FSTYPE', '-T', scratch])).stdout.trim() ||
    (await run('stat', ['-f', '-c', '%T', scratch])).stdout.trim();

  const topology = await createTopology();
  const info: RunInfo = {
    command,
    started,
    elapsedS: 0,
    machine: describeMachine(),
    placement: where.describe,
    load: { before: loadBefore, after: 0 },
    quiet: { threshold: QUIET_THRESHOLD, waitS: quietWaitS, runs: 0, busyStarts: 0, waitedS: 0 },
    versions: [],
    serverCommands: [],
    generator: [
      `\`node bench/dhcp/generator.ts --mode MODE --clients N --concurrency ${settings.concurrency} --timeout-ms ${settings.timeoutMs} --retries ${settings.retries}\`, inside the client namespace, one Node process (its own DHCP codec, bench/dhcp/wire.ts)`,
      `${settings.concurrency} DORAs in flight; a message unanswered for ${settings.timeoutMs / 1000} s is sent again (same xid), the wait doubling, up to ${settings.retries} times, then the client fails; latency from the first DISCOVER to the ACK; DORA/s over first DISCOVER → last ACK`,
      `broadcast: from 0.0.0.0:68 to 255.255.255.255:67, broadcast flag set, replies to 255.255.255.255:68 matched by xid and chaddr; relay: giaddr ${topology.client.address}, unicast from port 67 to the server's port 67 and back`,
      `each measured run starts with unmeasured clients (other MACs, same generator process): ${warmupClients} for every server but dnsmasq (${shortWarmupClients}: its cost per lease grows with the leases it holds). Both the generator and smeltd run on V8, which optimises code while it runs: smeltd's DHCP path settles only over its first ~17,000 DORAs (--trace-opt: decode and handle ~5,000 in, the lease table's offer and bind ~10,000, decideServer ~13,000, the event journal's record ~15,000), and a generator warmed up by 500 clients compiles its own hot path inside the measured run and then reads the replies late (Kea at 1,000 clients: ~3,300 DORA/s, p99 ~35 ms after 500; ~4,500 and ~21 ms after 20,000, 5 interleaved rounds). The runs measure a server that has been serving for a while: the warm-up's leases stay in the store through the measured run, and ${settleMs} ms of quiet follow them before it (a storm comes after a quiet time; smeltd collects its garbage in such a pause: idle-reclaim.ts). The generator gives each client an xid of its own spread over all 32 bits, as real clients' random xids are. The server's CPU per DORA is over the measured run alone; the warm-up's own rate and p99 are the "warm-up" column (for smeltd: a daemon just started). After the run, every ACKed MAC → address is looked up in the server's lease store; then the server is killed with SIGKILL, started again on the same store, the store read again, and up to ${checkSample} of the clients (spread evenly) send a DISCOVER each: the OFFER must carry the address they were ACKed`,
      `each server instance gets its own DIR under ${scratch} for its config and lease store (${fsType === 'tmpfs' ? 'tmpfs: fsync costs nothing' : `${fsType}, a real disk: fsync counts`})`,
    ],
    topology: `Network: ${topology.describe}.`,
    runsWanted,
    repeatUnderS,
    maxRunS,
    servers: active,
    missing,
    notes: [],
  };
  for (const id of active) info.versions.push(`${id}: ${await servers[id].version()}`);
  const contextFor = (id: ServerId, dir: string): ServerContext => ({
    ns: topology.server.ns,
    ifname: topology.server.ifname,
    address: topology.server.address,
    dir,
    ...(where.server !== undefined && { cpu: where.server }),
  });
  for (const id of active) {
    const example = contextFor(id, 'DIR');
    info.serverCommands.push(`\`${pin(where.server, servers[id].commandLine(example)).join(' ')}\``);
    const config = servers[id].configText?.(example);
    if (config) info.serverCommands.push(`${id}'s config: \`${config}\``);
    info.serverCommands.push(`${id}'s lease store: ${servers[id].store}`);
  }

  const results = new Results();
  const broken = new Map<ServerId, string>();
  let done = 0;
  const beforeRun = async () => {
    if (quietWaitS === 0) return 0;
    const quiet = await waitForQuiet(QUIET_THRESHOLD, quietWaitS * 1000);
    info.quiet.runs++;
    info.quiet.waitedS += quiet.waitedMs / 1000;
    if (quiet.busy >= QUIET_THRESHOLD) info.quiet.busyStarts++;
    return quiet.busy;
  };
  for (const scenario of scenarios) {
    for (let r = 0; r < runsWanted; r++) {
      // Rotate the order so that no server always goes first.
      const order = [...active.slice(r % active.length), ...active.slice(0, r % active.length)];
      for (const id of order) {
        const previous = results.of(scenario, id);
        const why = broken.get(id);
        if (why !== undefined) {
          if (r === 0) {
            const skipped: Measurement = {
              server: id,
              scenario: scenario.key,
              run: 0,
              error: why,
              killedAtStop: false,
              warmupClients: 0,
              pressure: Number.NaN,
              busyAtStart: 0,
            };
            results.measurements.push(skipped);
          }
          continue;
        }
        const first = previous[0];
        if (r > 0 && (!first?.result || first.error || first.result.seconds > repeatUnderS)) continue;
        const dir = join(scratch, scenario.key, `${id}-${r + 1}`);
        say(`bench dhcp: ${scenario.key} ${id} run ${r + 1} ...`);
        const m = await measureInstance({
          spec: servers[id],
          context: contextFor(id, dir),
          topology,
          mode: scenario.mode,
          clients: scenario.clients,
          run: r,
          scenario: scenario.key,
          settings,
          ...(where.client !== undefined && { clientCpu: where.client }),
          maxRunS,
          warmupClients: warmupOf(id),
          settleMs,
          ...(o['trace-dir'] !== undefined && { traceDir: o['trace-dir'] }),
          checkSample,
          beforeRun,
          say,
        });
        results.measurements.push(m);
        done++;
        // A server that does not start or does not answer will not in the next scenario either.
        if (m.error && (m.error.startsWith('did not start') || m.error.includes('no DHCP replies') || !m.result))
          broken.set(id, m.error);
        rmSync(join(dir, 'acked.txt'), { force: true });
        const res = m.result;
        const status =
          res && res.completed > 0
            ? `${fmt(res.rate)} DORA/s, p50 ${res.p50Ms.toFixed(1)} ms, p99 ${res.p99Ms.toFixed(1)} ms, ${res.completed}/${res.clients} ACKed, ${res.retries} retries, ${res.failed} failed, server CPU ${m.serverCpuUsPerDora?.toFixed(0) ?? '?'} µs/DORA, generator CPU ${(res.cpuShare * 100).toFixed(0)}%` +
              (m.store
                ? `; store: ${m.store.missing + m.store.wrongAddress} lost${m.store.error ? ` (${m.store.error})` : ''}`
                : '') +
              (m.restart?.store
                ? `; after kill -9: ${m.restart.store.missing + m.restart.store.wrongAddress} lost, re-asked ${m.restart.same}/${m.restart.asked} same`
                : '') +
              (m.restart?.error ? `; restart: ${m.restart.error}` : '')
            : 'no DORA completed';
        say(
          `[${done}/~${instances}] ${scenario.key} ${id} run ${r + 1}: ${status}${m.error ? ` — ${m.error.split('\n')[0] ?? ''}` : ''}`,
        );
      }
    }
  }

  info.elapsedS = (Date.now() - started.getTime()) / 1000;
  info.load.after = load1();
  const pressureAfter = cpuPressureUs();
  if (pressureBefore !== undefined && pressureAfter !== undefined) {
    info.cpuPressure = (pressureAfter - pressureBefore) / 1e6 / info.elapsedS;
  }
  const report = renderReport(results, scenarios, info);
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify({ info, measurements: results.measurements }, null, 1)}\n`);
    say(`bench dhcp: raw figures in ${o.json}`);
  }
  process.stdout.write(`${report}\n`);
  if (o.write) {
    const path = await addToBenchmarks(report, (text, formatted) => insertIntoSection(text, '## DHCP', formatted));
    say(`bench dhcp: added to the DHCP section of ${path}`);
  }
  const lost = results.measurements.reduce(
    (total, m) =>
      total +
      (m.store ? m.store.missing + m.store.wrongAddress : 0) +
      (m.restart?.store ? m.restart.store.missing + m.restart.store.wrongAddress : 0),
    0,
  );
  say(`bench dhcp: done in ${duration(info.elapsedS)}${lost > 0 ? `; ${lost} LOST leases` : ''}`);
  return 0;
}
