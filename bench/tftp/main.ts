/**
 * pnpm bench tftp [--quick] [--runs N] [--write] [--plan] [filters]: smeltd, tftpd-hpa and atftpd serving the
 * same random files to curl and atftp, on loopback and on a namespace link with 1 ms of added delay, every
 * download SHA-256-checked. See BENCHMARKS.md.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { addToBenchmarks, insertIntoSection } from '../lib/benchmarks-md.ts';
import { list, numbers, parseOptions, runBench, say } from '../lib/cli.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { pin, pinModes, placement } from '../lib/cpu.ts';
import { cpuPressureUs, describeMachine, load1, waitForQuiet } from '../lib/machine.ts';
import { addDelay, createNetns, createVethLink, type Delay, type Netns } from '../lib/netns.ts';
import { ensureRandomFile, type Payload } from '../lib/payload.ts';
import { run, type Service } from '../lib/process.ts';
import { duration, fmt, median } from '../lib/stats.ts';
import { clientIds, clientVersion, exampleCommand } from './clients.ts';
import { measure, stealSeconds } from './measure.ts';
import {
  combosOf,
  estimateSeconds,
  fullMatrix,
  LINK_DELAY_US,
  linkKinds,
  quickMatrix,
  scenariosOf,
  type LinkKind,
  type Matrix,
} from './plan.ts';
import type { ProbeResult } from './probe.ts';
import { renderReport, Results, type RunInfo } from './report.ts';
import { isSmeltd, serverIds, servers, smeltdConfig, type ServerContext, type ServerId } from './servers.ts';

const usage = `usage: pnpm bench tftp [options]
  --quick               30 MiB only, blksize 1468/65464, windowsize 1/16/64, 1 client (a few minutes)
  --runs N              runs per combination, median reported (default 3)
  --write               append the report to BENCHMARKS.md
  --json FILE           also write every run's raw figures there
  --plan                print what would run and the time estimate, then stop
  --servers LIST        of smeltd,tftpd-hpa,atftpd          --links LIST        of loopback,link
                        (and smeltd-nogso: smeltd with --tftp.gso false, for an A/B of UDP GSO)
  --sizes LIST          file sizes in MiB (30,300)          --concurrency LIST  clients at once (1,20)
  --clients LIST        of curl,atftp                       --blksizes LIST     --windowsizes LIST
  --max-run-s S         skip combinations estimated above S seconds per run (default 120)
  --pin MODE            split: server CPU 0, clients CPU 1 (default); shared: all on CPU 0; none
  --quiet-wait-s S      before each run, wait up to S s for other work to leave the CPUs (default 60; 0: off)
  --repeat-under-s S    run a combination once when its first run took longer (default 15 quick, 20 full)`;

/** A run starts once less than this share of the CPUs is busy (or after --quiet-wait-s). */
const QUIET_THRESHOLD = 0.2;

const ports: Record<ServerId, number> = { smeltd: 6901, 'tftpd-hpa': 6902, atftpd: 6903, 'smeltd-nogso': 6904 };
const probeScript = new URL('probe.ts', import.meta.url).pathname;

/** What a server will agree to for (blksize, windowsize), before probing: for the up-front time estimate. */
function expectedAgreement(server: ServerId, link: LinkKind, blksize: number, windowsize: number) {
  return {
    blksize: isSmeltd(server) && link === 'link' ? Math.min(blksize, 1468) : blksize, // capped by the MTU
    windowsize: server === 'tftpd-hpa' ? 1 : windowsize, // tftpd-hpa has no windowsize
  };
}

export function main(argv: string[]): Promise<number> {
  return runBench('tftp', usage, argv, bench);
}

async function bench(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    plan: { type: 'boolean', default: false },
    servers: { type: 'string' },
    links: { type: 'string' },
    sizes: { type: 'string' },
    concurrency: { type: 'string' },
    clients: { type: 'string' },
    blksizes: { type: 'string' },
    windowsizes: { type: 'string' },
    'max-run-s': { type: 'string' },
    'repeat-under-s': { type: 'string' },
    pin: { type: 'string' },
    'quiet-wait-s': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const base = o.quick ? quickMatrix : fullMatrix;
  const matrix: Matrix = {
    links: list(o.links, linkKinds, base.links),
    sizesMiB: numbers(o.sizes, base.sizesMiB),
    concurrency: numbers(o.concurrency, base.concurrency),
    clients: list(o.clients, clientIds, base.clients),
    blksizes: numbers(o.blksizes, base.blksizes),
    windowsizes: numbers(o.windowsizes, base.windowsizes),
    servers: list(o.servers, serverIds, base.servers),
  };
  const runsWanted = numbers(o.runs, [3])[0] ?? 3;
  const maxRunS = numbers(o['max-run-s'], [120])[0] ?? 120;
  const quietWaitS = o['quiet-wait-s'] === '0' ? 0 : (numbers(o['quiet-wait-s'], [60])[0] ?? 60);
  const repeatUnderS = numbers(o['repeat-under-s'], [o.quick ? 15 : 20])[0] ?? 20;
  const scenarios = scenariosOf(matrix);
  const combos = combosOf(matrix);
  const where = placement(list(o.pin, pinModes, ['split'])[0]);
  const command = `pnpm bench tftp${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;

  // ---- the plan and its time estimate -------------------------------------------------------------------------
  let estimate = 0;
  let measurements = 0;
  let skipped = 0;
  const perScenario: string[] = [];
  for (const scenario of scenarios) {
    const before = estimate;
    for (const combo of combos) {
      for (const server of matrix.servers) {
        const agreed = expectedAgreement(server, scenario.link, combo.blksize, combo.windowsize);
        if (combo.client === 'atftp' && combo.windowsize > 1 && agreed.windowsize === 1) continue;
        const effective = combo.client === 'curl' ? 1 : agreed.windowsize;
        const seconds = estimateSeconds(scenario.link, scenario.bytes, scenario.clients, agreed.blksize, effective);
        if (seconds > maxRunS) {
          skipped++;
          continue;
        }
        const runs = seconds > repeatUnderS ? 1 : runsWanted;
        measurements += runs;
        estimate += runs * (seconds + 0.15 + (scenario.clients * scenario.bytes) / 1.5e9); // + start-up, hashing
      }
    }
    perScenario.push(`  ${scenario.key}: ${duration(estimate - before)}`);
  }
  estimate += matrix.links.length * 15; // namespaces, server start-up, probes, warm-up
  say(
    `bench tftp: ${scenarios.length} scenarios × ${combos.length} client/blksize/windowsize combinations × ` +
      `${matrix.servers.length} servers: ${measurements} runs, ${skipped} combinations skipped as too slow; ` +
      `estimated ${duration(estimate)}`,
  );
  if (o.plan) {
    say(perScenario.join('\n'));
    return 0;
  }

  // ---- prerequisites --------------------------------------------------------------------------------------------
  if (process.getuid?.() !== 0) {
    say('bench tftp: needs root (it makes network namespaces and pins processes); run it as root');
    return 1;
  }
  const tools = ['ip', 'taskset', 'bash', 'timeout', ...matrix.clients];
  if (matrix.links.includes('link')) tools.push('tc', 'iptables-legacy', '/usr/bin/python3');
  for (const tool of tools) {
    if ((await run('bash', ['-c', `command -v ${tool}`])).code !== 0) {
      say(`bench tftp: ${tool} is missing: run scripts/setup.sh --for bench`);
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
      if (!isSmeltd(id)) {
        say(`bench tftp: ${why}`);
        return 1;
      }
      say(`bench tftp: leaving ${id} out: ${why}`);
    }
  }

  const started = new Date();
  const loadBefore = load1();
  const pressureBefore = cpuPressureUs();
  const stealBefore = stealSeconds();
  const cacheDir = process.env.SMELT_BENCH_CACHE ?? join(tmpdir(), 'smelt-bench-cache');
  const payloads = new Map<number, Payload>();
  for (const sizeMiB of new Set([30, ...matrix.sizesMiB])) {
    if (!existsSync(join(cacheDir, `tftp-${sizeMiB}MiB.bin`)))
      say(`bench tftp: making a ${sizeMiB} MiB random file in ${cacheDir} ...`);
    payloads.set(sizeMiB, ensureRandomFile(cacheDir, `tftp-${sizeMiB}MiB.bin`, sizeMiB * 1024 * 1024));
  }
  const scratchRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const scratch = join(scratchRoot, `smelt-bench-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  onCleanup(`scratch directory ${scratch}`, () => {
    rmSync(scratch, { recursive: true, force: true });
  });

  const results = new Results();
  const info: RunInfo = {
    command,
    started,
    elapsedS: 0,
    machine: describeMachine(),
    placement:
      where.client === undefined
        ? where.describe
        : `${where.describe}; on the 1 ms link the delay line runs on the clients' CPU ${where.client} too`,
    versions: [],
    serverCommands: [],
    clientCommands: matrix.clients.map((client) => `\`${exampleCommand(client)}\``),
    linkSetup: [],
    rttMs: {},
    load: { before: loadBefore, after: 0 },
    quiet: { threshold: QUIET_THRESHOLD, waitS: quietWaitS, runs: 0, busyStarts: 0, waitedS: 0 },
    runsWanted,
    repeatUnderS,
    maxRunS,
    servers: active,
    missing,
    notes: [],
  };
  for (const id of active) info.versions.push(`${id}: ${await servers[id].version()}`);
  for (const client of matrix.clients) info.versions.push(`${client}: ${await clientVersion(client)}`);
  info.clientCommands.push(
    "curl's rate uses its own `%{time_total}` (its ~12 ms start-up left out); atftp's is wall time around the process (~2 ms start-up included); concurrent clients: all bytes over first start to last end",
  );

  let corrupt = 0;
  let done = 0;
  for (const link of matrix.links) {
    // ---- namespaces, link, servers ----------------------------------------------------------------------------
    let serverNs: Netns;
    let clientNs: Netns;
    let address: string;
    let delay: Delay | undefined;
    if (link === 'loopback') {
      serverNs = clientNs = await createNetns('lo');
      address = '127.0.0.1';
      info.linkSetup.push(`loopback: servers and clients in one namespace (${serverNs.name}), 127.0.0.1`);
    } else {
      serverNs = await createNetns('srv');
      clientNs = await createNetns('cli');
      const veth = await createVethLink(serverNs, clientNs, { subnet: `10.247.${process.pid % 250}` });
      address = veth.a.address;
      delay = await addDelay(serverNs, veth.a.ifname, LINK_DELAY_US, { cpu: where.client });
      info.linkSetup.push(
        `link: servers in ${serverNs.name} (${veth.a.address}), clients in ${clientNs.name} (${veth.b.address}), one veth pair, MTU ${veth.mtu}; ${LINK_DELAY_US / 1000} ms added to every packet from the servers (${delay.method})`,
      );
    }
    const running = new Map<ServerId, { service: Service; context: ServerContext }>();
    for (const id of active) {
      const context: ServerContext = {
        ns: serverNs,
        address,
        port: ports[id],
        root: cacheDir,
        scratch: join(scratch, link, id),
        cpu: where.server,
      };
      mkdirSync(context.scratch, { recursive: true });
      running.set(id, { service: servers[id].start(context), context });
      if (link === matrix.links[0]) {
        info.serverCommands.push(`\`${pin(where.server, servers[id].commandLine(context)).join(' ')}\``);
        if (isSmeltd(id)) info.serverCommands.push(`${id}'s config: \`${JSON.stringify(smeltdConfig(context))}\``);
      }
    }

    // ---- what each server agrees to; the round trip ----------------------------------------------------------
    const sets = [...new Set(matrix.blksizes.flatMap((b) => [1, ...matrix.windowsizes].map((w) => `${b}:${w}`)))];
    const agreed = new Map<string, ProbeResult>();
    const broken = new Map<ServerId, string>();
    info.rttMs[link] = {};
    const probeFile = payloads.get(30)?.name ?? '';
    for (const [id, { service }] of running) {
      const [cmd, ...args] = clientNs.wrap(
        pin(where.client, [process.execPath, probeScript, address, String(ports[id]), probeFile, '20000', ...sets]),
      );
      const result = await run(cmd ?? 'ip', args, { timeoutMs: 60_000 });
      let probes: ProbeResult[] = [];
      try {
        probes = JSON.parse(result.stdout) as ProbeResult[];
      } catch {
        // reported below
      }
      const bad = probes.find((p) => p.reply !== 'oack' && p.reply !== 'data');
      if (probes.length !== sets.length || bad) {
        const why = `${id} does not answer on ${link}: ${bad ? `${bad.reply} ${bad.error ?? ''}` : result.stderr}\n${service.output()}`;
        say(`bench tftp: ${why}`);
        broken.set(id, why);
        continue;
      }
      for (const p of probes) agreed.set(`${id}|${p.blksize}:${p.windowsize}`, p);
      const rtt = median(probes.slice(1).map((p) => p.rttMs));
      const table = info.rttMs[link];
      table[id] = rtt;
      if (link === 'link' && rtt < (LINK_DELAY_US / 1000) * 0.9) {
        throw new Error(`the link's delay is not in effect: ${id} answered in ${rtt.toFixed(2)} ms`);
      }
    }
    // smeltd is JIT-compiled: one unmeasured download first, so that the first measured run is not its warm-up.
    for (const id of serverIds.filter(isSmeltd)) {
      const payload = payloads.get(30);
      if (!running.has(id) || broken.has(id) || !payload) continue;
      const warm = await measure({
        ns: clientNs,
        cpu: where.client,
        client: 'atftp',
        clients: 1,
        host: address,
        port: ports[id],
        payload,
        blksize: 1468,
        windowsize: 16,
        outDir: join(scratch, 'downloads'),
        limitS: 120,
      });
      say(`bench tftp: ${id} warm-up on ${link}: ${fmt(warm.mibps)} MiB/s${warm.failed ? ' (FAILED)' : ''}`);
    }

    // ---- the measurements: per combination, runs interleaved across servers ---------------------------------
    for (const scenario of scenarios.filter((s) => s.link === link)) {
      const payload = payloads.get(scenario.sizeMiB);
      if (!payload) continue;
      for (const combo of combos) {
        const candidates: { id: ServerId; seconds: number }[] = [];
        for (const id of running.keys()) {
          const cell = results.get(scenario, combo, id);
          const why = broken.get(id);
          if (why) {
            cell.skipped = { short: 'no answer', long: why.split('\n')[0] ?? why };
            continue;
          }
          const probe = agreed.get(`${id}|${combo.blksize}:${combo.windowsize}`);
          const blksize = probe?.agreedBlksize ?? combo.blksize;
          const windowsize = combo.client === 'curl' ? 1 : (probe?.agreedWindowsize ?? combo.windowsize);
          cell.agreed = { blksize, windowsize };
          if (combo.client === 'atftp' && combo.windowsize > 1 && windowsize === 1) {
            cell.skipped = {
              short: 'n/a',
              long: `${id} does not negotiate windowsize (RFC 7440), so atftp asking for one gets lock-step: the same as windowsize 1`,
            };
            continue;
          }
          const seconds = estimateSeconds(link, scenario.bytes, scenario.clients, blksize, windowsize);
          if (seconds > maxRunS) {
            cell.skipped = {
              short: `skip (~${duration(seconds)})`,
              long: `estimated time per run above the ${maxRunS} s bound (lock-step round trips: blocks × RTT), not run`,
            };
            continue;
          }
          candidates.push({ id, seconds });
        }
        for (let r = 0; r < runsWanted; r++) {
          // Rotate the order so that no server always goes first (or always runs right after another).
          const order = candidates.map((_, i) => candidates[(i + r) % candidates.length]);
          for (const candidate of order) {
            if (!candidate) continue;
            const { id, seconds } = candidate;
            const cell = results.get(scenario, combo, id);
            const first = cell.runs[0];
            if (r > 0 && first && (first.failed > 0 || first.seconds > repeatUnderS)) continue;
            const server = running.get(id);
            if (!server?.service.alive()) {
              const why = `${id} exited during the benchmark:\n${server?.service.output() ?? ''}`;
              if (!broken.has(id)) say(`bench tftp: ${why}`);
              broken.set(id, why);
              info.notes.push(`${id} EXITED during the ${link} runs: ${why.split('\n').slice(1, 4).join(' ')}`);
              continue;
            }
            if (quietWaitS > 0) {
              const quiet = await waitForQuiet(QUIET_THRESHOLD, quietWaitS * 1000);
              info.quiet.runs++;
              info.quiet.waitedS += quiet.waitedMs / 1000;
              if (quiet.busy >= QUIET_THRESHOLD) info.quiet.busyStarts++;
            }
            const limitS = Math.round(Math.min(maxRunS * 1.5, Math.max(30, seconds * 4 + 10)));
            const m = await measure({
              ns: clientNs,
              cpu: where.client,
              client: combo.client,
              clients: scenario.clients,
              host: address,
              port: ports[id],
              payload,
              blksize: combo.blksize,
              windowsize: combo.windowsize,
              outDir: join(scratch, 'downloads'),
              limitS,
            });
            cell.runs.push(m);
            corrupt += m.corrupt;
            done++;
            const status =
              (m.failed > 0 ? `FAILED (${m.errors[0] ?? ''})` : `${fmt(m.mibps)} MiB/s in ${m.seconds.toFixed(2)} s`) +
              (m.pressure > 0.25 ? ` [CPU contention ${(m.pressure * 100).toFixed(0)}%]` : '') +
              (m.steal > 0.05 ? ` [steal ${(m.steal * 100).toFixed(0)}%]` : '');
            say(
              `[${done}/~${measurements}] ${scenario.key} ${combo.client} bs ${combo.blksize} w ${combo.windowsize} ${id} ` +
                `run ${r + 1}: ${status}${m.corrupt ? ` CORRUPT ×${m.corrupt}` : ''}${m.timeouts ? ` (${m.timeouts} timeouts)` : ''}`,
            );
          }
        }
      }
    }

    // ---- tear down ----------------------------------------------------------------------------------------------
    for (const { service } of running.values()) await service.stop();
    if (delay) {
      const counters = await delay.stop();
      if (counters) info.linkSetup.push(`delay line counters at the end: ${counters}`);
    }
    await clientNs.remove();
    if (serverNs !== clientNs) await serverNs.remove();
  }

  info.elapsedS = (Date.now() - started.getTime()) / 1000;
  info.load.after = load1();
  const pressureAfter = cpuPressureUs();
  if (pressureBefore !== undefined && pressureAfter !== undefined) {
    info.cpuPressure = (pressureAfter - pressureBefore) / 1e6 / info.elapsedS;
  }
  const stealAfter = stealSeconds();
  if (stealBefore !== undefined && stealAfter !== undefined) {
    info.steal = (stealAfter - stealBefore) / (availableParallelism() * info.elapsedS);
  }
  const report = renderReport(results, scenarios, combos, info);
  if (o.json !== undefined) {
    const cells = [...results.cells.values()].map(({ scenario, combo, server, agreed, skipped, runs }) => ({
      scenario: scenario.key,
      ...combo,
      server,
      agreed,
      skipped: skipped?.long,
      runs,
    }));
    writeFileSync(o.json, `${JSON.stringify({ info, cells }, null, 1)}\n`);
    say(`bench tftp: raw figures in ${o.json}`);
  }
  process.stdout.write(`${report}\n`);
  if (o.write) {
    // Runs are level-2 headings of their own ("## TFTP run of ..."): they go at the end of the TFTP ones.
    const path = await addToBenchmarks(report, (text, formatted) => insertIntoSection(text, '## TFTP', formatted));
    say(`bench tftp: added to the TFTP section of ${path}`);
  }
  say(`bench tftp: done in ${duration(info.elapsedS)}${corrupt ? `; ${corrupt} CORRUPT downloads` : ''}`);
  return corrupt > 0 ? 1 : 0;
}
