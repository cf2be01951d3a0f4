/**
 * pnpm bench http [--quick] [--write] [--plan] [options]: smeltd serving a 300 MiB file from inside an ISO against
 * nginx serving the same file extracted, in one run (1 and 50 concurrent curl clients, every byte checked in a
 * sha256 pass); the per-MAC iPXE script under wrk against nginx serving a static file of the same bytes; and
 * smeltd's RSS while 50 clients stream from a 5 GiB ISO. See BENCHMARKS.md, section HTTP.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { addToBenchmarks } from '../lib/benchmarks-md.ts';
import { numbers, one, parseOptions, runBench, say, UsageError } from '../lib/cli.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { pinModes, placement } from '../lib/cpu.ts';
import { cpuPressureUs, describeMachine, load1, waitForQuiet } from '../lib/machine.ts';
import { createNetns } from '../lib/netns.ts';
import { repoRoot } from '../lib/paths.ts';
import { ensureRandomFile } from '../lib/payload.ts';
import { run, waitFor } from '../lib/process.ts';
import { duration, fmt, MiB } from '../lib/stats.ts';
import { buildHugeIso, buildPayloadIso, freeBytes, hugeIsoNeeds, type IsoFixture } from './fixtures.ts';
import { estimateSeconds, fullPlan, quickPlan, type Plan } from './plan.ts';
import { renderSummary, summariseFile } from './profile.ts';
import {
  placeReport,
  renderReport,
  type BigCell,
  type MemoryCell,
  type Results,
  type RunInfo,
  type WrkCell,
} from './report.ts';
import { cmdlineOf, processTree, rssBytes, sampleRss, type RssSampler } from './rss.ts';
import {
  apiPost,
  curlIn,
  nginxVersion,
  ports,
  serverIds,
  smeltdVersion,
  startNginx,
  startSmeltd,
  type RunningServer,
  type ServerId,
} from './servers.ts';
import { exampleCommand, transfer, type TransferRun } from './transfers.ts';
import { runWrk, wrkArgs, wrkVersion } from './wrk.ts';

const usage = `usage: pnpm bench http [options]
  --quick               300 MiB at 1 and 10 clients, one short wrk setting, no memory check (~2 min)
  --write               add the report to BENCHMARKS.md (section HTTP)
  --json FILE           also write every run's raw figures there
  --plan                print what would run and the time estimate, then stop
  --runs N              measured runs per big-file scenario and per wrk setting, median reported (default 3)
  --clients LIST        concurrent clients for the big file (full: 1,50)
  --size-mib N          size of the file inside the ISO (default 300)
  --connections LIST    wrk connections (full: 16,256)          --wrk-s S      seconds per wrk run
  --rss-s S             memory check: seconds the clients stream from the huge ISO (full: 40; 0: skip)
  --rss-gib N           size of the huge ISO's big file (default 5)
  --servers LIST        of smeltd,nginx
  --pin MODE            none: the scheduler places servers and clients (default); split: servers CPU 0,
                        clients CPU 1; shared: all on CPU 0
  --quiet-wait-s S      before each run, wait up to S s for other work to leave the CPUs (default 30; 0: off)
  --wait-others-s S     at the start, wait up to S s (polling every 60 s) while another benchmark that
                        started earlier (bench/run.ts, kea-dhcp4, perfdhcp) runs (full: 1800; quick: 0)
  --profile DIR         run smeltd under node --cpu-prof (profile written to DIR) and summarise it
  --phases LIST         of big,wrk,memory (default: all the plan has)
  --node-flags FLAGS    extra flags for smeltd's node, space-separated (to try a setting, e.g. GC sizes)`;

const QUIET_THRESHOLD = 0.2;
/** The deployed machine whose script is requested, and the path both servers serve it at. */
const MAC = '52:54:00:00:00:01';
const SCRIPT_PATH = `boot/${MAC.replaceAll(':', '-')}.ipxe`;

export function main(argv: string[]): Promise<number> {
  return runBench('http', usage, argv, bench);
}

/** When a process started (clock ticks after boot, /proc/PID/stat field 22); Infinity when it is gone. */
function startTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return Infinity;
  }
}

/**
 * Other benchmarks running on the machine that started before this one (pid and command line). Only older ones
 * count: two benches that both waited for every other one would wait for each other until their time ran out.
 */
function otherBenchmarks(): string[] {
  const mine = new Set<number>();
  for (let pid = process.pid; pid > 1;) {
    mine.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  const ours = startTicks(process.pid);
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (!/bench\/run\.ts|kea-dhcp4|perfdhcp/.test(cmdline) || cmdline.includes('grep')) continue;
    if (startTicks(Number(entry)) > ours) continue;
    found.push(`${entry} ${cmdline.slice(0, 100)}`);
  }
  return found;
}

interface Tracked {
  server: RunningServer;
  sampler: RssSampler;
}

async function bench(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    plan: { type: 'boolean', default: false },
    runs: { type: 'string' },
    clients: { type: 'string' },
    'size-mib': { type: 'string' },
    connections: { type: 'string' },
    'wrk-s': { type: 'string' },
    'rss-s': { type: 'string' },
    'rss-gib': { type: 'string' },
    servers: { type: 'string' },
    pin: { type: 'string' },
    'quiet-wait-s': { type: 'string' },
    'wait-others-s': { type: 'string' },
    profile: { type: 'string' },
    'node-flags': { type: 'string' },
    phases: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const base = o.quick ? quickPlan : fullPlan;
  const plan: Plan = {
    sizeMiB: one(o['size-mib'], base.sizeMiB),
    clients: numbers(o.clients, base.clients),
    runs: one(o.runs, base.runs),
    wrkConnections: numbers(o.connections, base.wrkConnections),
    wrkSeconds: one(o['wrk-s'], base.wrkSeconds),
    rssSeconds: one(o['rss-s'], base.rssSeconds, true),
    rssClients: base.rssClients,
    rssGiB: one(o['rss-gib'], base.rssGiB),
  };
  const phases = (o.phases ?? 'big,wrk,memory').split(',').map((p) => p.trim());
  for (const p of phases) if (!['big', 'wrk', 'memory'].includes(p)) throw new UsageError(`unknown phase "${p}"`);
  if (!phases.includes('big')) plan.clients = [];
  if (!phases.includes('wrk')) plan.wrkConnections = [];
  if (!phases.includes('memory')) plan.rssSeconds = 0;
  const servers = (o.servers?.split(',') ?? [...serverIds]).map((s) => s.trim());
  for (const s of servers)
    if (!(serverIds as readonly string[]).includes(s)) throw new UsageError(`unknown server "${s}"`);
  const active = serverIds.filter((id) => servers.includes(id));
  const pinMode = o.pin ?? 'none';
  if (!(pinModes as readonly string[]).includes(pinMode)) throw new UsageError(`unknown --pin ${pinMode}`);
  const where = placement(pinMode as (typeof pinModes)[number]);
  const quietWaitS = one(o['quiet-wait-s'], 30, true);
  const waitOthersS = one(o['wait-others-s'], o.quick ? 0 : 1800, true);
  const command = `pnpm bench http${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;

  const estimate = estimateSeconds(plan);
  say(`bench http: ${active.join(' vs ')}; estimated ${duration(estimate.total)} (plus waits for a quiet machine)`);
  if (o.plan) {
    say(estimate.lines.join('\n'));
    return 0;
  }

  // ---- prerequisites --------------------------------------------------------------------------------------------
  if (process.getuid?.() !== 0) {
    say('bench http: needs root (it makes a network namespace); run it as root');
    return 1;
  }
  const tools = [
    'ip',
    'bash',
    'curl',
    'wrk',
    'xorriso',
    'dd',
    'openssl',
    'cmp',
    ...(active.includes('nginx') ? ['nginx'] : []),
  ];
  if (where.server !== undefined) tools.push('taskset');
  for (const tool of tools) {
    if ((await run('bash', ['-c', `command -v ${tool}`])).code !== 0) {
      say(`bench http: ${tool} is missing: apt-get install nginx-light wrk xorriso curl openssl diffutils`);
      return 1;
    }
  }

  const others: string[] = [];
  const seen = otherBenchmarks();
  if (seen.length > 0) {
    say(`bench http: other benchmarks are running:\n  ${seen.join('\n  ')}`);
    const deadline = Date.now() + waitOthersS * 1000;
    let still = seen;
    while (still.length > 0 && Date.now() < deadline) {
      say(`bench http: waiting for them to finish (up to ${duration((deadline - Date.now()) / 1000)} more) ...`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(60_000, Math.max(0, deadline - Date.now()))));
      still = otherBenchmarks();
    }
    others.push(
      still.length > 0
        ? `Other benchmarks were running when this one started (${still.length}; waited ${waitOthersS} s): ${still.map((s) => s.split(' ').slice(1, 4).join(' ')).join('; ')}.`
        : `Waited for other benchmarks to finish before starting.`,
    );
  }

  const started = new Date();
  const loadBefore = load1();
  const pressureBefore = cpuPressureUs();
  const info: RunInfo = {
    command,
    started,
    elapsedS: 0,
    machine: describeMachine(),
    load: { before: loadBefore, after: 0 },
    quiet: { threshold: QUIET_THRESHOLD, waitS: quietWaitS, runs: 0, busyStarts: 0, waitedS: 0 },
    others,
    placement: where.describe,
    versions: [],
    fixtures: [],
    serverCommands: [],
    clientCommands: [],
    urls: [],
    runs: plan.runs,
    sizeMiB: plan.sizeMiB,
    wrkSeconds: plan.wrkSeconds,
    memory: { clients: plan.rssClients, seconds: plan.rssSeconds, gib: plan.rssGiB },
    notes: [],
  };
  if (active.includes('smeltd')) info.versions.push(`smeltd: ${await smeltdVersion()}`);
  if (active.includes('nginx')) info.versions.push(`nginx: ${await nginxVersion()}`);
  info.versions.push(`wrk: ${await wrkVersion()}`);
  info.versions.push(
    `curl: ${(await run('curl', ['--version'])).stdout.split('\n')[0]?.split(' ').slice(0, 2).join(' ') ?? '?'}`,
  );

  // ---- fixtures ---------------------------------------------------------------------------------------------------
  const cacheDir = process.env.SMELT_BENCH_CACHE ?? join(tmpdir(), 'smelt-bench-cache');
  const payloadName = `http-${plan.sizeMiB}MiB.bin`;
  if (!existsSync(join(cacheDir, payloadName)))
    say(`bench http: making a ${plan.sizeMiB} MiB random file in ${cacheDir} ...`);
  const payload = ensureRandomFile(cacheDir, payloadName, plan.sizeMiB * MiB);
  const scratch = mkdtempSync(join(tmpdir(), 'smelt-bench-http-'));
  onCleanup(`scratch directory ${scratch}`, () => {
    rmSync(scratch, { recursive: true, force: true });
  });
  say(`bench http: building the ISOs in ${scratch} ...`);
  const payloadIso = await buildPayloadIso(scratch, payload);
  info.fixtures.push(
    `${plan.sizeMiB} MiB of random bytes as casper/filesystem.squashfs in a ${fmt(payloadIso.isoBytes / MiB)} MiB ISO (with a 1 MiB casper/vmlinuz and a 4 MiB casper/initrd): \`${payloadIso.commands[0] ?? ''}\`; nginx serves it as extracted (SHA-256 checked equal to the source): \`${payloadIso.commands[1] ?? ''}\`.`,
  );
  let huge: IsoFixture | undefined;
  if (plan.rssSeconds > 0) {
    const free = freeBytes(scratch);
    if (free < hugeIsoNeeds(plan.rssGiB)) {
      info.memory.skipped = `only ${(free / 2 ** 30).toFixed(1)} GiB free in ${tmpdir()}, the ${plan.rssGiB} GiB ISO may need ${(hugeIsoNeeds(plan.rssGiB) / 2 ** 30).toFixed(0)} GiB`;
      say(`bench http: skipping the memory check: ${info.memory.skipped}`);
    } else {
      say(`bench http: building the ${plan.rssGiB} GiB sparse ISO ...`);
      huge = await buildHugeIso(scratch, plan.rssGiB);
      info.fixtures.push(
        `a ${(huge.isoBytes / 2 ** 30).toFixed(2)} GiB ISO taking ${fmt(huge.isoDiskBytes / MiB)} MiB of disk: ${huge.commands.join('; ')}; nginx serves the source tree (the same bytes).`,
      );
    }
  } else {
    info.memory.skipped = !phases.includes('memory')
      ? `not in --phases ${phases.join(',')}`
      : o.quick
        ? 'not part of --quick'
        : '--rss-s 0';
  }
  const bootDir = join(scratch, 'nginx-boot');
  mkdirSync(bootDir, { recursive: true, mode: 0o755 });

  // ---- servers ----------------------------------------------------------------------------------------------------
  const ns = await createNetns('http');
  const tracked = new Map<ServerId, Tracked>();
  const profileDir = o.profile === undefined ? undefined : resolvePath(o.profile);
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  let smeltdScript: string | undefined;
  if (active.includes('smeltd')) {
    const smeltd = await startSmeltd({
      ns,
      dir: join(scratch, 'smeltd'),
      ...(where.server === undefined ? {} : { cpu: where.server }),
      ...(profileDir === undefined ? {} : { profileDir }),
      nodeFlags: (o['node-flags'] ?? '').split(' ').filter((flag) => flag !== ''),
    });
    const boots: [string, IsoFixture][] = [['payload', payloadIso]];
    if (huge) boots.push(['huge', huge]);
    for (const [name, fixture] of boots) {
      await apiPost(ns, smeltd, '/api/v1/boots', {
        name,
        isoPath: fixture.iso,
        isoPrefix: name,
        kernel: fixture.kernel,
        initrd: [fixture.initrd],
      });
    }
    await apiPost(ns, smeltd, '/api/v1/deployments', {
      mac: MAC,
      boot: 'payload',
      hostname: 'bench-node',
      type: 'preseed',
    });
    const script = await curlIn(ns, [`${smeltd.base}/${SCRIPT_PATH}`]);
    if (!script.ok || !script.body.startsWith('#!ipxe'))
      throw new Error(`smeltd's script: HTTP ${script.status}: ${script.body}`);
    smeltdScript = script.body;
    // Node's pid: ip netns exec and taskset exec it, so the service's pid is node's own.
    const pid = smeltd.service.pid;
    await waitFor('smeltd to be node', () => cmdlineOf(pid).startsWith(process.execPath), 5000);
    tracked.set('smeltd', { server: smeltd, sampler: sampleRss(() => [pid]) });
    info.notes.push(
      `smeltd's RSS after start-up and the API calls, before any download: ${fmt(rssBytes(pid) / MiB)} MiB.`,
    );
    info.serverCommands.push(
      `smeltd: \`${smeltd.command.join(' ').replaceAll(scratch, 'SCRATCH').replaceAll(repoRoot, '')}\`; then \`POST /api/v1/boots\` {"name":"payload","isoPath":"SCRATCH/payload.iso","isoPrefix":"payload","kernel":"casper/vmlinuz","initrd":["casper/initrd"]}${huge ? ' (and "huge" the same way)' : ''}, and \`POST /api/v1/deployments\` {"mac":"${MAC}","boot":"payload","hostname":"bench-node","type":"preseed"}.`,
    );
  }
  // nginx's copy of the script: smeltd's rendering, byte for byte (or a stand-in of the usual size without smeltd).
  writeFileSync(join(bootDir, SCRIPT_PATH.slice('boot/'.length)), smeltdScript ?? `#!ipxe\n${'#'.repeat(513)}\n`, {
    mode: 0o644,
  });
  if (active.includes('nginx')) {
    const locations: Record<string, string> = { payload: payloadIso.root, boot: bootDir };
    if (huge) locations.huge = huge.root;
    const nginx = await startNginx({
      ns,
      dir: join(scratch, 'nginx'),
      ...(where.server === undefined ? {} : { cpu: where.server }),
      locations,
      probe: SCRIPT_PATH,
    });
    const master = nginx.service.pid;
    tracked.set('nginx', { server: nginx, sampler: sampleRss(() => processTree(master)) });
    info.serverCommands.push(
      `nginx: \`${nginx.command
        .map((arg) => (arg.includes(' ') ? `'${arg}'` : arg))
        .join(' ')
        .replaceAll(scratch, 'SCRATCH')}\` with this config: \`${nginx.config
        .replaceAll(scratch, 'SCRATCH')
        .replace(/\s*\n\s*/g, ' ')
        .trim()}\``,
    );
  }
  const servers_ = [...tracked.keys()];
  const urlOf = (id: ServerId, path: string) => `http://127.0.0.1:${ports[id]}/${path}`;
  const bigPath = `payload/${payloadIso.file}`;
  info.urls.push(
    `URLs, the same path on both: \`/${bigPath}\` (smeltd: from inside the ISO by its isoPrefix; nginx: the extracted file), \`/${SCRIPT_PATH}\` (smeltd: rendered per request for a deployed machine, ${smeltdScript === undefined ? '?' : Buffer.byteLength(smeltdScript)} bytes; nginx: a static copy)${huge ? `, \`/huge/${huge.file}\`` : ''}.`,
  );

  // Both serve the same bytes before anything is measured.
  for (const id of servers_) {
    const head = await curlIn(ns, ['-o', '/dev/null', '-I', urlOf(id, bigPath)]);
    if (!head.ok) throw new Error(`${id} does not serve /${bigPath}: HTTP ${head.status}`);
    const script = await curlIn(ns, [urlOf(id, SCRIPT_PATH)]);
    if (!script.ok || (smeltdScript !== undefined && script.body !== smeltdScript)) {
      throw new Error(`${id} serves a different /${SCRIPT_PATH} (HTTP ${script.status})`);
    }
  }

  // ---- warm-up: the files in the page cache, JIT for smeltd ----------------------------------------------------
  say('bench http: warming up ...');
  await run('bash', ['-c', `cat '${payloadIso.iso}' '${payloadIso.regularFile}' > /dev/null`], { timeoutMs: 120_000 });
  const outDir = join(scratch, 'clients');
  for (const id of servers_) {
    const warm = await transfer({
      ns,
      ...(where.client === undefined ? {} : { cpu: where.client }),
      url: urlOf(id, bigPath),
      clients: 2,
      fileBytes: payloadIso.fileBytes,
      mode: 'raw',
      maxTimeS: 120,
      outDir,
    });
    const wrkWarm = await runWrk({
      ns,
      ...(where.client === undefined ? {} : { cpu: where.client }),
      url: urlOf(id, SCRIPT_PATH),
      connections: 64,
      seconds: 2,
    });
    say(`bench http: ${id} warm-up: ${fmt(warm.mibps)} MiB/s, ${fmt(wrkWarm.rps)} requests/s`);
  }

  const gate = async () => {
    if (quietWaitS <= 0) return;
    const quiet = await waitForQuiet(QUIET_THRESHOLD, quietWaitS * 1000);
    info.quiet.runs++;
    info.quiet.waitedS += quiet.waitedMs / 1000;
    if (quiet.busy >= QUIET_THRESHOLD) info.quiet.busyStarts++;
  };
  const rotate = <T>(list: readonly T[], by: number) => list.map((_, i) => list[(i + by) % list.length] as T);
  const results: Results = { big: [], wrk: [], memory: [] };
  let corrupt = 0;

  // ---- big files --------------------------------------------------------------------------------------------------
  for (const clients of plan.clients) {
    const cells = new Map<ServerId, BigCell>();
    for (const id of servers_) {
      const cell: BigCell = { server: id, clients, raw: [], rssPeak: 0 };
      cells.set(id, cell);
      results.big.push(cell);
    }
    const maxTimeS = Math.min(900, Math.round((clients * plan.sizeMiB) / 50 + 30));
    const measure = async (id: ServerId, mode: 'raw' | 'sha256', label: string): Promise<TransferRun> => {
      const t = tracked.get(id);
      await gate();
      t?.sampler.phase(`big-${clients}`);
      const m = await transfer({
        ns,
        ...(where.client === undefined ? {} : { cpu: where.client }),
        url: urlOf(id, bigPath),
        clients,
        fileBytes: payloadIso.fileBytes,
        mode,
        ...(payloadIso.sha256 === undefined ? {} : { sha256: payloadIso.sha256 }),
        maxTimeS,
        outDir,
      });
      const cell = cells.get(id);
      if (cell && t) cell.rssPeak = Math.max(cell.rssPeak, t.sampler.peaks().get(`big-${clients}`) ?? 0);
      corrupt += m.counts.corrupt;
      const bad = m.transfers.find((x) => x.verdict === 'failed' || x.verdict === 'corrupt');
      say(
        `  ${plan.sizeMiB} MiB × ${clients} ${id} ${label}: ${fmt(m.mibps)} MiB/s in ${m.seconds.toFixed(2)} s` +
          (m.counts.corrupt + m.counts.failed > 0
            ? ` — ${m.counts.corrupt} corrupt, ${m.counts.failed} failed (${bad?.detail ?? ''})`
            : '') +
          (m.pressure > 0.25 ? ` [CPU pressure ${(m.pressure * 100).toFixed(0)}%]` : ''),
      );
      return m;
    };
    for (let r = 0; r < plan.runs; r++) {
      for (const id of rotate(servers_, r)) cells.get(id)?.raw.push(await measure(id, 'raw', `run ${r + 1}`));
    }
    for (const id of servers_) {
      const cell = cells.get(id);
      if (cell) cell.verified = await measure(id, 'sha256', 'sha256-checked');
    }
  }

  // ---- small script -----------------------------------------------------------------------------------------------
  for (const connections of plan.wrkConnections) {
    const cells = new Map<ServerId, WrkCell>();
    for (const id of servers_) {
      const cell: WrkCell = { server: id, connections, runs: [], rssPeak: 0 };
      cells.set(id, cell);
      results.wrk.push(cell);
    }
    for (let r = 0; r < plan.runs; r++) {
      for (const id of rotate(servers_, r)) {
        const t = tracked.get(id);
        await gate();
        t?.sampler.phase(`wrk-${connections}`);
        const w = await runWrk({
          ns,
          ...(where.client === undefined ? {} : { cpu: where.client }),
          url: urlOf(id, SCRIPT_PATH),
          connections,
          seconds: plan.wrkSeconds,
        });
        const cell = cells.get(id);
        if (cell) {
          cell.runs.push(w);
          cell.rssPeak = Math.max(cell.rssPeak, t?.sampler.peaks().get(`wrk-${connections}`) ?? 0);
        }
        say(
          `  wrk ${connections} connections ${id} run ${r + 1}: ` +
            (w.failed ??
              `${fmt(w.rps)} requests/s, p50 ${fmt(w.p50)} ms, p99 ${fmt(w.p99)} ms, ${w.errors + w.non2xx} errors, ${w.timeouts} timeouts`),
        );
      }
    }
  }

  // ---- memory: clients streaming from the huge ISO ----------------------------------------------------------------
  if (huge) {
    // Both copies in the page cache first (holes read as zero pages): otherwise the clients' cmp, reading the
    // source, warms nginx's file for it while smeltd reads the ISO cold.
    say(`bench http: reading the ${plan.rssGiB} GiB ISO and its source once (page cache) ...`);
    await run('bash', ['-c', `cat '${huge.iso}' '${huge.regularFile}' > /dev/null`], { timeoutMs: 300_000 });
    const offsets = Array.from(
      { length: plan.rssClients },
      (_, i) => Math.floor((i * huge.fileBytes) / plan.rssClients / 4096) * 4096,
    );
    for (const id of servers_) {
      const t = tracked.get(id);
      if (!t) continue;
      await gate();
      // Settle first: the idle RSS after the earlier phases, once garbage collection has had a moment.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const cell: MemoryCell = { server: id, baseline: t.sampler.now(), peak: 0 };
      t.sampler.phase('memory');
      const m = await transfer({
        ns,
        ...(where.client === undefined ? {} : { cpu: where.client }),
        url: urlOf(id, `huge/${huge.file}`),
        clients: plan.rssClients,
        fileBytes: huge.fileBytes,
        mode: 'cmp',
        source: huge.regularFile,
        offsets,
        maxTimeS: plan.rssSeconds,
        stopAtMaxTime: true,
        outDir,
      });
      cell.run = m;
      cell.peak = t.sampler.peaks().get('memory') ?? 0;
      corrupt += m.counts.corrupt;
      results.memory.push(cell);
      const bad = m.transfers.find((x) => x.verdict === 'failed' || x.verdict === 'corrupt');
      say(
        `  memory ${id}: ${(m.bytes / 2 ** 30).toFixed(1)} GiB in ${m.seconds.toFixed(1)} s (${fmt(m.mibps)} MiB/s), RSS ${fmt(cell.baseline / MiB)} → peak ${fmt(cell.peak / MiB)} MiB` +
          (m.counts.corrupt + m.counts.failed > 0
            ? ` — ${m.counts.corrupt} corrupt, ${m.counts.failed} failed (${bad?.detail ?? ''})`
            : ''),
      );
    }
  }

  // ---- tear down ----------------------------------------------------------------------------------------------------
  for (const t of tracked.values()) t.sampler.stop();
  const smeltd = tracked.get('smeltd');
  if (smeltd && profileDir !== undefined) {
    // The profile is written when node exits: SIGTERM to node alone, and time to write it.
    const before = new Set(readdirSync(profileDir));
    process.kill(smeltd.server.service.pid, 'SIGTERM');
    try {
      await waitFor('smeltd to exit and write its profile', () => !smeltd.server.service.alive(), 120_000, 200);
    } catch (error) {
      info.notes.push(`profiling: ${String(error)}`);
    }
    const written = readdirSync(profileDir).filter((name) => name.endsWith('.cpuprofile') && !before.has(name));
    // CPU.DATE.TIME.PID.THREAD.SEQ.cpuprofile: thread 0 is the main thread (others are workers).
    const file = written.find((name) => /\.\d+\.0\.\d+\.cpuprofile$/.test(name)) ?? written[0];
    if (file === undefined) info.notes.push(`profiling: smeltd wrote no .cpuprofile in ${profileDir}`);
    else {
      const path = join(profileDir, file);
      info.profile = `Profile of this whole run (\`${path.replace(repoRoot, '')}\`; summarise it again with \`node bench/http/profile.ts FILE\`); profiling slows smeltd down, so this run's figures are not comparable with an unprofiled one.\n\n${renderSummary(summariseFile(path, 15), 15)}`;
    }
  }
  for (const t of tracked.values()) await t.server.service.stop();
  await ns.remove();

  info.clientCommands.push(
    `Big file, measured runs (every client at once from one bash, in the namespace): \`${exampleCommand('raw')}\`; sha256 run: \`${exampleCommand('sha256')}\`` +
      (huge
        ? `; memory runs: \`${exampleCommand('cmp')}\` (OFFSET = i × size / ${plan.rssClients}, T = ${plan.rssSeconds} s).`
        : '.'),
    `Small script: \`${wrkArgs(`http://127.0.0.1:PORT/${SCRIPT_PATH}`, 256, plan.wrkSeconds).join(' ').replace(repoRoot, '')}\` (-c per row), after a 2 s unmeasured warm-up per server.`,
    'Before measuring: the ISO and the extracted file read once (page cache), and 2 unmeasured downloads from each server (JIT warm-up for smeltd).',
  );
  info.elapsedS = (Date.now() - started.getTime()) / 1000;
  info.load.after = load1();
  const pressureAfter = cpuPressureUs();
  if (pressureBefore !== undefined && pressureAfter !== undefined) {
    info.cpuPressure = (pressureAfter - pressureBefore) / 1e6 / info.elapsedS;
  }
  const report = renderReport(results, servers_, info);
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify({ info, plan, results }, null, 1)}\n`);
    say(`bench http: raw figures in ${o.json}`);
  }
  process.stdout.write(`${report}\n`);
  if (o.write) {
    const path = await addToBenchmarks(report, placeReport);
    say(`bench http: added to ${path}`);
  }
  say(`bench http: done in ${duration(info.elapsedS)}${corrupt ? `; ${corrupt} CORRUPT transfers` : ''}`);
  return corrupt > 0 ? 1 : 0;
}
