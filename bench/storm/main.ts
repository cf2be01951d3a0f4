/**
 * pnpm bench storm [--quick] [--clients N] [--write] [--plan] [options]: the boot-storm simulator. N machines,
 * each with its own MAC, power on within a couple of seconds and do what firmware does — DHCP as a PXE ROM, TFTP of
 * undionly.kpxe, DHCP as iPXE, HTTP of the iPXE script, kernel and initrd — with the firmware's timeouts and
 * retries (bench/storm/client.ts, bench/storm/firmware.ts). Against smeltd and against dnsmasq + nginx serving the
 * same files, in the same run: time until all are booted, p50/p99 per stage, retries, failures. See BENCHMARKS.md,
 * section "Boot storm".
 */
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { addToBenchmarks } from '../lib/benchmarks-md.ts';
import { list, one, parseOptions, runBench, say, UsageError } from '../lib/cli.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { pinModes, placement, type PinMode } from '../lib/cpu.ts';
import { cpuPressureUs, describeMachine, load1, waitForQuiet } from '../lib/machine.ts';
import { repoRoot } from '../lib/paths.ts';
import { ensureRandomFile } from '../lib/payload.ts';
import { otherBenchmarks } from '../lib/proc.ts';
import { run } from '../lib/process.ts';
import { duration } from '../lib/stats.ts';
import { describeFirmware } from './firmware.ts';
import { measureServer, writeReferenceScript, type Measurement } from './measure.ts';
import { estimateSeconds, fullPlan, quickPlan, type Plan } from './plan.ts';
import { placeReport, renderReport, verdicts, type RunInfo } from './report.ts';
import {
  DNSMASQ_TFTP_MAX,
  dnsmasqCommand,
  FIRST_STAGE,
  INITRD_URL_PATH,
  KERNEL_URL_PATH,
  nginxConfig,
  serverIds,
  smeltdCommand,
  type Fixtures,
  type ServerContext,
  type ServerId,
  versions,
} from './servers.ts';
import { CONGESTION_CONTROL, SERVER_ADDRESS, poolFor } from './topology.ts';

const usage = `usage: pnpm bench storm [options]
  --quick               100 machines, 2 MiB kernel + 4 MiB initrd, 180 s bound (about a minute)
  --clients N           machines (default 1000; 100 with --quick)
  --write               add the report to BENCHMARKS.md (section "Boot storm")
  --json FILE           also write every measurement's raw figures there
  --plan                print what would run and the time estimate, then stop
  --servers LIST        of smeltd,reference (reference: dnsmasq + nginx)
  --runs N              storms per server, alternating which server goes first (default 1)
  --kernel-mib N        kernel size (8; 2 with --quick)      --initrd-mib N   initrd size (16; 4 with --quick)
  --ramp-s S            all machines power on within S seconds (default 2)
  --max-run-s S         a storm's bound: machines not booted S s after the first power-on failed (600; 180 quick)
  --warmup N            unmeasured machines booted first on each server (default 10; 0: none)
  --workers N           simulator processes, sharing its CPU (default: one per 125 machines)
  --pin MODE            split: servers on CPU 0, the simulator on CPU 1 (default); shared: all on CPU 0; none
  --quiet-wait-s S      before each storm, wait up to S s for other benchmarks and QEMU guests to end and the CPUs
                        to be quiet (default 600; 60 with --quick; 0: off)
  --wait-others-s S     at the start, wait up to S s (polling every 30 s) while another benchmark, a QEMU guest
                        or a foreign nginx runs (default 1800; 0 with --quick)
  --smeltd-flags "..."  more flags for smeltd, replacing the bench's own of the same name (e.g. "--tftp.timeout 2")
  --profile DIR         run smeltd under node --cpu-prof, profiles in DIR/run-N (summary: node bench/http/profile.ts FILE)`;

/** A storm starts once less than this share of the CPUs is busy (or after --quiet-wait-s). */
const QUIET_THRESHOLD = 0.2;

export function main(argv: string[]): Promise<number> {
  return runBench('storm', usage, argv, bench);
}

/** `target` as a hard link to `source` (same file system), else a copy; world-readable (nginx's workers). */
function place(source: string, target: string): void {
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  rmSync(target, { force: true });
  try {
    linkSync(source, target);
  } catch {
    copyFileSync(source, target);
  }
  chmodSync(target, 0o644);
}

/** Every directory from `path` up to `top` searchable by nginx's workers (they run as nobody). */
function makeSearchable(path: string, top: string): void {
  for (let dir = path; dir.startsWith(top); dir = dirname(dir)) chmodSync(dir, 0o755);
}

async function bench(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    clients: { type: 'string' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    plan: { type: 'boolean', default: false },
    servers: { type: 'string' },
    runs: { type: 'string' },
    'kernel-mib': { type: 'string' },
    'initrd-mib': { type: 'string' },
    'ramp-s': { type: 'string' },
    'max-run-s': { type: 'string' },
    warmup: { type: 'string' },
    workers: { type: 'string' },
    pin: { type: 'string' },
    'quiet-wait-s': { type: 'string' },
    'wait-others-s': { type: 'string' },
    'smeltd-flags': { type: 'string' },
    profile: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const base = o.quick ? quickPlan : fullPlan;
  const plan: Plan = {
    servers: list(o.servers, serverIds, base.servers),
    clients: one(o.clients, base.clients),
    runs: one(o.runs, base.runs),
    kernelMiB: one(o['kernel-mib'], base.kernelMiB),
    initrdMiB: one(o['initrd-mib'], base.initrdMiB),
    rampS: one(o['ramp-s'], base.rampS, true),
    maxRunS: one(o['max-run-s'], base.maxRunS),
    warmup: one(o.warmup, base.warmup, true),
  };
  if (plan.clients > 60_000) throw new UsageError('at most 60000 machines (the pool is a /16)');
  const pinMode: PinMode = list(o.pin, pinModes, ['split'])[0] ?? 'split';
  const where = placement(pinMode);
  const quietWaitS = one(o['quiet-wait-s'], o.quick ? 60 : 600, true);
  const waitOthersS = one(o['wait-others-s'], o.quick ? 0 : 1800, true);
  const smeltdFlags = (o['smeltd-flags'] ?? '').split(/\s+/).filter(Boolean);
  const command = `pnpm bench storm${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
  const gb = (plan.clients * (plan.kernelMiB + plan.initrdMiB) * 2 ** 20) / 1e9;
  say(
    `bench storm: ${plan.clients} machines × ${plan.servers.length} servers × ${plan.runs} run(s), ` +
      `${plan.kernelMiB} MiB kernel + ${plan.initrdMiB} MiB initrd (${gb.toFixed(1)} GB per storm); ` +
      `estimated ${duration(estimateSeconds(plan))} (+ waits for a quiet machine)`,
  );
  if (o.plan) {
    say(`  ${plan.servers.join(', ')}; ramp ${plan.rampS} s; bound ${plan.maxRunS} s per storm; ${where.describe}`);
    return 0;
  }

  // ---- prerequisites --------------------------------------------------------------------------------------------
  if (process.getuid?.() !== 0) {
    say('bench storm: needs root (network namespaces, taskset); run it as root');
    return 1;
  }
  for (const tool of ['ip', 'ss', 'taskset', 'curl']) {
    if ((await run('bash', ['-c', `command -v ${tool}`])).code !== 0) {
      say(`bench storm: ${tool} is missing (apt-get install iproute2 util-linux curl)`);
      return 1;
    }
  }
  const ipxeFirstStage = '/usr/lib/ipxe/undionly.kpxe';
  if (!existsSync(ipxeFirstStage)) {
    say(`bench storm: ${ipxeFirstStage} is missing: apt-get install ipxe`);
    return 1;
  }
  const missing: string[] = [];
  const active: ServerId[] = [];
  for (const id of plan.servers) {
    let why: string | undefined;
    if (id === 'reference') {
      if (!existsSync('/usr/sbin/dnsmasq')) why = '/usr/sbin/dnsmasq is missing: apt-get install dnsmasq-base';
      else if ((await run('bash', ['-c', 'command -v nginx'])).code !== 0)
        why = 'nginx is missing: apt-get install nginx-light';
    } else if (!existsSync(join(repoRoot, 'packages/daemon/src/main.ts')))
      why = 'packages/daemon/src/main.ts is missing';
    if (why === undefined) active.push(id);
    else {
      missing.push(`${id}: ${why}`);
      say(`bench storm: leaving ${id} out: ${why}`);
    }
  }
  if (active.length === 0) return 1;

  // ---- wait for other benchmarks ----------------------------------------------------------------------------------
  let others = otherBenchmarks();
  const othersAtStart = [...others];
  const waitUntil = Date.now() + waitOthersS * 1000;
  while (others.length > 0 && Date.now() < waitUntil) {
    say(`bench storm: waiting for other work to end (${others.length}: ${others[0] ?? ''}) ...`);
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    others = otherBenchmarks();
  }
  if (others.length > 0) say(`bench storm: other work still runs; measuring anyway: ${others.join('; ')}`);

  // ---- fixtures -------------------------------------------------------------------------------------------------
  const started = new Date();
  const loadBefore = load1();
  let hostCongestionControl = '?';
  try {
    hostCongestionControl = readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
  } catch {
    // not Linux
  }
  const pressureBefore = cpuPressureUs();
  const cacheDir = process.env.SMELT_BENCH_CACHE ?? join(tmpdir(), 'smelt-bench-cache');
  say(`bench storm: files in ${cacheDir} (made once) ...`);
  const kernelPayload = ensureRandomFile(cacheDir, `storm-kernel-${plan.kernelMiB}MiB.bin`, plan.kernelMiB * 2 ** 20);
  const initrdPayload = ensureRandomFile(cacheDir, `storm-initrd-${plan.initrdMiB}MiB.bin`, plan.initrdMiB * 2 ** 20);
  const scratch = join(tmpdir(), `smelt-bench-storm-${process.pid}`);
  mkdirSync(scratch, { recursive: true, mode: 0o755 });
  onCleanup(`scratch directory ${scratch}`, () => {
    rmSync(scratch, { recursive: true, force: true });
  });
  const fixtures: Fixtures = {
    tftpRoot: join(scratch, 'tftp'),
    firstStage: join(scratch, 'tftp', FIRST_STAGE),
    kernel: join(scratch, 'files', 'vmlinuz'),
    initrd: join(scratch, 'files', 'initrd.img'),
    www: join(scratch, 'www'),
  };
  mkdirSync(fixtures.tftpRoot, { recursive: true, mode: 0o755 });
  copyFileSync(ipxeFirstStage, fixtures.firstStage);
  chmodSync(fixtures.firstStage, 0o644);
  place(kernelPayload.path, fixtures.kernel);
  place(initrdPayload.path, fixtures.initrd);
  place(kernelPayload.path, join(fixtures.www, KERNEL_URL_PATH));
  place(initrdPayload.path, join(fixtures.www, INITRD_URL_PATH));
  mkdirSync(join(fixtures.www, 'boot'), { recursive: true, mode: 0o755 });
  for (const path of [fixtures.firstStage, join(fixtures.www, KERNEL_URL_PATH), join(fixtures.www, INITRD_URL_PATH)])
    makeSearchable(dirname(path), scratch);
  const capturedScript = join(scratch, 'smeltd-script.ipxe');
  const firstStageBytes = readFileSync(fixtures.firstStage).length;

  const info: RunInfo = {
    command,
    started,
    elapsedS: 0,
    machine: describeMachine(),
    placement: where.describe,
    load: { before: loadBefore, after: 0 },
    quiet: { threshold: QUIET_THRESHOLD, waitS: quietWaitS, runs: 0, busyStarts: 0, waitedS: 0 },
    others: othersAtStart,
    versions: await versions(),
    clients: plan.clients,
    warmup: plan.warmup,
    rampS: plan.rampS,
    maxRunS: plan.maxRunS,
    runs: plan.runs,
    sizes:
      `first stage \`undionly.kpxe\` ${firstStageBytes.toLocaleString('en')} bytes (Debian's ipxe package), kernel ` +
      `${plan.kernelMiB} MiB and initrd ${plan.initrdMiB} MiB of random bytes (${gb.toFixed(1)} GB of HTTP per storm)`,
    firmware: describeFirmware(),
    topology: '',
    serverCommands: [],
    referenceScript: '',
    missing,
    notes: [],
  };
  const example: ServerContext = {
    ns: { name: 'NS', wrap: (a) => [...a], exec: () => Promise.resolve(''), remove: () => Promise.resolve() },
    ifname: 'VETH',
    address: SERVER_ADDRESS,
    dir: 'DIR',
    pool: poolFor(plan.clients + plan.warmup),
    fixtures: {
      tftpRoot: 'SCRATCH/tftp',
      firstStage: `SCRATCH/tftp/${FIRST_STAGE}`,
      kernel: 'SCRATCH/files/vmlinuz',
      initrd: 'SCRATCH/files/initrd.img',
      www: 'SCRATCH/www',
    },
    smeltdFlags,
  };
  const shown = (argv: string[]) => argv.join(' ').replace(process.execPath, 'node').replaceAll(repoRoot, '');
  if (active.includes('smeltd')) {
    info.serverCommands.push(`smeltd's settings that shape a storm: ${await smeltdSettings(smeltdCommand(example))}`);
    info.serverCommands.push(
      `smeltd: \`${shown(smeltdCommand(example))}\`; then \`POST /api/v1/boots\` {"name":"storm","kind":"installer","kernel":"SCRATCH/files/vmlinuz","initrd":["SCRATCH/files/initrd.img"]} and one \`POST /api/v1/deployments\` {"mac","boot":"storm"} per machine (bench/storm/deploy.ts, 8 in flight), before the warm-up`,
    );
  }
  if (active.includes('reference')) {
    info.serverCommands.push(
      `dnsmasq: \`${shown(dnsmasqCommand(example))}\` (\`--tftp-max=${DNSMASQ_TFTP_MAX}\`: its default of 50 would queue a storm where smeltd's default 1000 transfers run at once)`,
      `nginx: \`nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'\` with \`${nginxConfig(example).replace(/\s+/g, ' ').trim()}\`; SCRATCH/www holds the kernel and initrd (hard links) at smeltd's URL paths and the static script`,
    );
  }

  // ---- the storms -------------------------------------------------------------------------------------------------
  const measurements: Measurement[] = [];
  // Before each storm: wait (up to --quiet-wait-s) until no other benchmark or QEMU guest runs and the CPUs are
  // quiet; a storm that starts busy anyway is marked so, and the targets are judged on the quiet ones.
  const beforeStorm = async () => {
    if (quietWaitS === 0) return 0;
    const started = Date.now();
    let busy: number;
    for (;;) {
      const left = quietWaitS * 1000 - (Date.now() - started);
      if (otherBenchmarks().length > 0 && left > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, left)));
        continue;
      }
      busy = (await waitForQuiet(QUIET_THRESHOLD, Math.max(0, left))).busy;
      if (busy < QUIET_THRESHOLD || Date.now() - started >= quietWaitS * 1000) break;
    }
    info.quiet.runs++;
    info.quiet.waitedS += (Date.now() - started) / 1000;
    if (busy >= QUIET_THRESHOLD) info.quiet.busyStarts++;
    return busy;
  };
  let total = 0;
  for (let r = 0; r < plan.runs; r++) {
    // smeltd first in the first run (its script becomes the reference's static copy), then alternating.
    const order = r % 2 === 0 ? active : [...active].reverse();
    for (const id of order) {
      if (id === 'reference') {
        const source = writeReferenceScript(fixtures, capturedScript, SERVER_ADDRESS);
        const bytes = readFileSync(join(fixtures.www, 'boot/storm.ipxe')).length;
        info.referenceScript =
          source === 'smeltd'
            ? `a static copy of the script smeltd rendered for one deployed machine (${bytes} bytes; the same URLs)`
            : `a stand-in in smeltd's format (${bytes} bytes), smeltd not having run first`;
      }
      say(`bench storm: ${id} run ${r + 1} ...`);
      const m = await measureServer({
        server: id,
        run: r,
        clients: plan.clients,
        warmup: plan.warmup,
        rampS: plan.rampS,
        maxRunS: plan.maxRunS,
        fixtures,
        scratch,
        ...(where.server !== undefined && { serverCpu: where.server }),
        ...(where.client !== undefined && { clientCpu: where.client }),
        smeltdFlags,
        workers: one(o.workers, 0, true),
        ...(o.profile !== undefined && { profileDir: o.profile }),
        capturedScript,
        beforeStorm,
        say,
      });
      measurements.push(m);
      total++;
      const res = m.result;
      say(
        `[${total}/${plan.runs * active.length}] ${id} run ${r + 1}: ` +
          (res
            ? `${res.booted}/${res.clients} booted, ${res.failed} failed, all booted after ${res.allBootedS.toFixed(1)} s, ${res.retries} retries`
            : 'no result') +
          (m.error ? ` — ${m.error}` : ''),
      );
    }
  }
  info.topology =
    'the server in a network namespace of its own (10.66.0.1/16), the simulator in another (10.66.0.2/16 plus every pool ' +
    `address, ${poolFor(plan.clients + plan.warmup).size} from 10.66.1.1), one veth pair, MTU 1500, a 255.255.255.255/32 route on both ends, ` +
    "a permanent neighbour entry on the server's end for every pool address (the kernel's neighbour table, shared by all " +
    'namespaces, holds 1024 learned entries here: ~1,000 machines would overflow it); TCP congestion control ' +
    `${CONGESTION_CONTROL} on the segment's route (this host's default is ${hostCongestionControl}: with the simulator's CPU ` +
    'saturated, BBR left a few connections crawling at ~5 kbit/s for minutes); pool twice the machines; fresh ' +
    'namespaces for every storm';

  info.elapsedS = (Date.now() - started.getTime()) / 1000;
  info.load.after = load1();
  const pressureAfter = cpuPressureUs();
  if (pressureBefore !== undefined && pressureAfter !== undefined)
    info.cpuPressure = (pressureAfter - pressureBefore) / 1e6 / info.elapsedS;
  const report = renderReport(measurements, info);
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify({ info, measurements }, null, 1)}\n`);
    say(`bench storm: raw figures in ${o.json}`);
  }
  process.stdout.write(`${report}\n`);
  if (o.write) {
    // Only this report goes through prettier (BENCHMARKS.md is checked by prettier --check), never the sections
    // others wrote; the file is read again right before writing, as others append their own sections.
    const path = await addToBenchmarks(report, placeReport);
    say(`bench storm: added to the "Boot storm" section of ${path}`);
  }
  const { allPass } = verdicts(measurements, plan.clients, QUIET_THRESHOLD);
  say(`bench storm: done in ${duration(info.elapsedS)}; targets ${allPass ? 'all met' : 'NOT all met'}`);
  return 0;
}

/** The keys of smeltd's effective config (`smeltd config show` with the storm's flags) that shape a storm. */
export async function smeltdSettings(command: string[]): Promise<string> {
  const wanted = [
    'http.maxInstalls',
    'http.slotSeconds',
    'tftp.maxTransfers',
    'tftp.maxPerPeer',
    'tftp.timeout',
    'tftp.retries',
    'dhcp.rateLimit',
    'dhcp.offerTimeout',
    'store.kind',
  ];
  const start = command.indexOf('start');
  // The example's placeholders (VETH, SCRATCH/..., DIR/...) do not exist here and smeltd checks them: any existing
  // interface and absolute paths will do for reading the settings.
  const stand = new Map([
    ['--interface', 'lo'],
    ['--files.dirs', tmpdir()],
    ['--dataDir', join(tmpdir(), 'smelt-storm-settings')],
  ]);
  const flags = command.slice(start + 1).map((arg, k, all) => stand.get(all[k - 1] ?? '') ?? arg);
  const argv = [...command.slice(0, start), 'config', 'show', ...flags];
  const result = await run(argv[0] ?? process.execPath, argv.slice(1), { timeoutMs: 30_000 });
  if (result.code !== 0) return `(smeltd config show failed: ${result.stderr.trim().split('\n')[0] ?? ''})`;
  const values = new Map<string, string>();
  let section = '';
  for (const line of result.stdout.split('\n')) {
    const top = /^(\w+):\s*(.*)$/.exec(line);
    if (top) {
      section = top[1] ?? '';
      if (top[2]) values.set(section, top[2]);
      continue;
    }
    const nested = /^ {2}(\w+):\s*(.+)$/.exec(line);
    if (nested) values.set(`${section}.${nested[1] ?? ''}`, nested[2] ?? '');
  }
  return wanted
    .filter((key) => values.has(key))
    .map((key) => `\`${key}\` ${values.get(key) ?? ''}`)
    .join(', ');
}
