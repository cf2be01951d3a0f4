/**
 * pnpm bench vms [--quick] [--vms N] [--runs N] [--write] [--plan] [options]: N real QEMU VMs (BIOS, the e1000's
 * iPXE ROM, software emulation) network-boot the test guest at once from smeltd and from dnsmasq + nginx serving
 * the same, in the same run (bench/vms/measure.ts). Results under "## Boot storm" → "### Five real VMs" in
 * BENCHMARKS.md.
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { guestFiles } from '../../test/harness/guest.ts';
import { E1000_ROM, qemuArgs, QEMU } from '../../test/harness/qemu.ts';
import { addToBenchmarks } from '../lib/benchmarks-md.ts';
import { one, parseOptions, runBench, say, UsageError } from '../lib/cli.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { describeMachine, load1, waitForQuiet } from '../lib/machine.ts';
import { repoRoot } from '../lib/paths.ts';
import { otherBenchmarks } from '../lib/proc.ts';
import { run } from '../lib/process.ts';
import { duration } from '../lib/stats.ts';
import { versions } from '../storm/servers.ts';
import { createVmLab, LAB_DESCRIPTION } from './lab.ts';
import { measureServer, type Measurement } from './measure.ts';
import { captureFilter } from './pcap.ts';
import { insertIntoSubsection, renderReport, verdicts, type RunInfo } from './report.ts';
import {
  bootJson,
  dnsmasqCommand,
  nginxConfig,
  SCRIPT_PATH,
  serverIds,
  serverTitles,
  smeltdCommand,
  startServers,
  type Captured,
  type ServerContext,
  type ServerId,
} from './servers.ts';
import { smeltdBuild } from './snapshot.ts';

const usage = `usage: pnpm bench vms [options]
  --quick               2 VMs, 1 run per server
  --vms N               VMs booting at once (default 5; 2 with --quick; at most 50)
  --runs N              runs per server, alternating which server goes first (default 2; 1 with --quick)
  --servers LIST        of smeltd,reference (reference: dnsmasq + nginx)
  --max-run-s S         a VM not booted S s after the first power-on has failed (default 300)
  --memory-mib N        each VM's memory (default 384)
  --write               add the report to BENCHMARKS.md ("## Boot storm" → "### Five real VMs")
  --json FILE           also write every measurement's raw figures there
  --keep DIR            keep each run's files there: serial consoles, server logs, the capture (capture.pcap)
  --capture-http        capture every HTTP packet too (whole), not only the SYNs; with --keep
  --smeltd-commit REV   run smeltd from a snapshot of that commit (git archive; this checkout's node_modules),
                        not from the working tree, which others may be editing (e.g. HEAD); either way smeltd runs
                        as packages/daemon/bin/smeltd runs it: its JS build (scripts/build-js.ts) with node-options
  --plan                print what would run and the time estimate, then stop
  --quiet-wait-s S      before each run, wait up to S s for other benchmarks and QEMU guests to end and the CPUs
                        to be quiet (default 600; 60 with --quick; 0: off)`;

const QUIET_THRESHOLD = 0.2;

export function main(argv: string[]): Promise<number> {
  return runBench('vms', usage, argv, bench);
}

/** The VMs' MACs: QEMU's locally administered prefix, then "5e" (smelt) and the index. */
export function vmMacs(count: number): string[] {
  return Array.from({ length: count }, (_, k) => `52:54:00:5e:00:${(k + 1).toString(16).padStart(2, '0')}`);
}
/** A machine deployed like the VMs but never powered on: its script and answer file become the reference's. */
export const PROBE_MAC = '52:54:00:5e:01:00';

/** A copy of `source` at `target`, world-readable, its directories searchable (nginx's workers run as nobody). */
function place(source: string | Buffer, target: string, top: string): void {
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  rmSync(target, { force: true });
  if (typeof source === 'string') copyFileSync(source, target);
  else writeFileSync(target, source);
  chmodSync(target, 0o644);
  for (let dir = dirname(target); dir.startsWith(top) && dir !== top; dir = dirname(dir)) chmodSync(dir, 0o755);
}

async function bench(argv: string[]): Promise<number> {
  const o = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    vms: { type: 'string' },
    runs: { type: 'string' },
    servers: { type: 'string' },
    'max-run-s': { type: 'string' },
    'memory-mib': { type: 'string' },
    write: { type: 'boolean', default: false },
    json: { type: 'string' },
    keep: { type: 'string' },
    'capture-http': { type: 'boolean', default: false },
    'smeltd-commit': { type: 'string' },
    plan: { type: 'boolean', default: false },
    'quiet-wait-s': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const vms = one(o.vms, o.quick ? 2 : 5);
  if (vms > 50) throw new UsageError('at most 50 VMs (the pool is .100-.149)');
  const runs = one(o.runs, o.quick ? 1 : 2);
  const maxRunS = one(o['max-run-s'], 300);
  const memoryMb = one(o['memory-mib'], 384);
  const quietWaitS = one(o['quiet-wait-s'], o.quick ? 60 : 600, true);
  let servers: ServerId[] = [...serverIds];
  if (o.servers !== undefined) {
    servers = o.servers.split(',').map((item) => item.trim()) as ServerId[];
    for (const id of servers)
      if (!serverIds.includes(id)) throw new UsageError(`unknown server "${id}" (use ${serverIds.join(', ')})`);
  }
  const command = `pnpm bench vms${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
  // Measured here: one TCG VM boots in ~16 s, five at once in ~36 s; plus ~15 s of set-up and tear-down per run.
  const estimate = runs * servers.length * (15 + Math.min(maxRunS, 7 * vms)) + 15;
  say(
    `bench vms: ${vms} VMs × ${servers.length} server(s) × ${runs} run(s); estimated ${duration(estimate)} ` +
      '(+ waits for a quiet machine)',
  );
  if (o.plan) {
    say(`  ${servers.map((id) => serverTitles[id]).join(', ')}; bound ${maxRunS} s per run; ${memoryMb} MiB per VM`);
    return 0;
  }

  // ---- prerequisites --------------------------------------------------------------------------------------------
  if (process.getuid?.() !== 0) {
    say('bench vms: needs root (network namespaces, taps); run it as root');
    return 1;
  }
  for (const tool of ['ip', 'ss', 'curl', 'tcpdump', QEMU, ...(servers.includes('reference') ? ['nginx'] : [])]) {
    if ((await run('bash', ['-c', `command -v ${tool}`])).code !== 0) {
      say(`bench vms: ${tool} is missing`);
      return 1;
    }
  }
  for (const file of [E1000_ROM, '/usr/bin/python3', ...(servers.includes('reference') ? ['/usr/sbin/dnsmasq'] : [])]) {
    if (!existsSync(file)) {
      say(`bench vms: ${file} is missing`);
      return 1;
    }
  }

  const started = new Date();
  const loadBefore = load1();
  const guest = await guestFiles(say);
  const scratch = join(tmpdir(), `smelt-bench-vms-${process.pid}`);
  mkdirSync(scratch, { recursive: true, mode: 0o755 });
  onCleanup(`scratch directory ${scratch}`, () => {
    rmSync(scratch, { recursive: true, force: true });
  });
  const tftpRoot = join(scratch, 'tftp');
  const www = join(scratch, 'www');
  mkdirSync(tftpRoot, { recursive: true, mode: 0o755 });
  if (existsSync('/usr/lib/ipxe/undionly.kpxe'))
    place('/usr/lib/ipxe/undionly.kpxe', join(tftpRoot, 'undionly.kpxe'), scratch);
  const smeltd = servers.includes('smeltd') ? await smeltdBuild(o['smeltd-commit'], scratch) : undefined;
  if (smeltd) say(`bench vms: smeltd runs as node ${smeltd.entry.join(' ')}`);
  const context = {
    kernel: guest.kernel,
    initrd: guest.initrd,
    tftpRoot,
    www,
    ...(smeltd && { smeltdEntry: smeltd.entry }),
  };
  const macs = vmMacs(vms);

  // ---- the reference's files: what smeltd serves a deployed machine, captured from a smeltd of its own ----------
  say('bench vms: capturing the script and answer file smeltd serves a deployed machine ...');
  const captured = await capture(context, scratch);
  place(guest.kernel, join(www, captured.paths.kernel), scratch);
  place(guest.initrd, join(www, captured.paths.initrd), scratch);
  place(Buffer.from(captured.answers), join(www, captured.paths.answers), scratch);
  place(Buffer.from(captured.script), join(www, SCRIPT_PATH), scratch);

  const example: ServerContext = {
    ns: { name: 'NS', wrap: (a) => [...a], exec: () => Promise.resolve(''), remove: () => Promise.resolve() },
    ifname: 'br0',
    dir: 'DIR',
    kernel: 'KERNEL',
    initrd: 'INITRD',
    tftpRoot: 'SCRATCH/tftp',
    www: 'SCRATCH/www',
    ...(smeltd && { smeltdEntry: smeltd.entry }),
  };
  const shown = (args: string[]) =>
    args.join(' ').replace(process.execPath, 'node').replaceAll(`${scratch}/`, 'SCRATCH/').replaceAll(repoRoot, '');
  const info: RunInfo = {
    command,
    started,
    elapsedS: 0,
    vms,
    runs,
    maxRunS,
    memoryMb,
    machine: describeMachine(),
    load: { before: loadBefore, after: 0 },
    versions: (await versions()).map((line, k) => (k === 0 && smeltd !== undefined ? smeltd.describe(line) : line)),
    guest:
      `kernel ${guest.release} (${guest.kernelPackage}, ${readFileSync(guest.kernel).length.toLocaleString('en')} bytes), ` +
      `initramfs ${readFileSync(guest.initrd).length.toLocaleString('en')} bytes (test/harness/guest/init), kernel command line \`${bootJson(context).cmdline}\` plus the boot's own arguments`,
    lab: `${LAB_DESCRIPTION} (\`tcpdump -i br0 -U -w ... '${captureFilter}'\`)`,
    vmCommand: shown([
      QEMU,
      ...qemuArgs(
        { netns: 'NS', bridge: 'br0', tap: 'tapK', mac: 'MAC', firmware: 'bios', dir: 'DIR', timeoutMs: 0, memoryMb },
        { serial: 'DIR/serial.log', firmware: 'DIR/firmware.log', vars: '' },
      ),
    ]).replace(/-uuid \S+/, '-uuid UUID-OF-MAC'),
    serverCommands: [],
    referenceFiles: '',
    notes: [],
  };
  if (servers.includes('smeltd'))
    info.serverCommands.push(
      `smeltd: \`${shown(smeltdCommand(example))}\`; then \`POST /api/v1/boots\` \`${JSON.stringify(bootJson(example))}\` and \`POST /api/v1/deployments\` {"mac","boot":"guest"} per VM (bench/storm/deploy.ts), before power-on`,
    );
  if (servers.includes('reference'))
    info.serverCommands.push(
      `dnsmasq: \`${shown(dnsmasqCommand(example))}\``,
      `nginx: \`nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'\` with \`${nginxConfig(example).replace(/\s+/g, ' ').trim()}\``,
    );
  info.referenceFiles =
    `SCRATCH/www holds the kernel and initrd at smeltd's paths (/${captured.paths.kernel}, /${captured.paths.initrd}), ` +
    `/${SCRIPT_PATH}: smeltd's installer script for ${PROBE_MAC} (${captured.script.length} bytes), ` +
    `/${captured.paths.answers.replace(/\/[^/]+\/preseed\.cfg$/, '/TOKEN/preseed.cfg')}: its answer file (${captured.answers.length} bytes; its phone-home URL /hooks/... is nginx's \`return 200\`)`;

  // ---- the runs -----------------------------------------------------------------------------------------------
  const beforeRun = async () => {
    if (quietWaitS === 0) return 0;
    const start = Date.now();
    let busy: number;
    for (;;) {
      const left = quietWaitS * 1000 - (Date.now() - start);
      if (otherBenchmarks().length > 0 && left > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, left)));
        continue;
      }
      busy = (await waitForQuiet(QUIET_THRESHOLD, Math.max(0, left))).busy;
      if (busy < QUIET_THRESHOLD || Date.now() - start >= quietWaitS * 1000) break;
    }
    return busy;
  };
  const measurements: Measurement[] = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const id of order) {
      say(`bench vms: run ${r + 1}, ${serverTitles[id]}: ${vms} VMs ...`);
      const m = await measureServer({
        server: id,
        run: r,
        macs,
        maxRunS,
        memoryMb,
        scratch,
        captureHttp: o['capture-http'],
        context,
        beforeRun,
        say,
      });
      measurements.push(m);
      const perVm = m.vms.map((vm) => (vm.at.booted === undefined ? 'failed' : vm.at.booted.toFixed(1)));
      say(
        `  ${m.booted}/${vms} booted, all after ${Number.isFinite(m.allBootedS) ? `${m.allBootedS.toFixed(1)} s` : '–'} ` +
          `(per VM: ${perVm.join(', ')}), ${m.retries} retries, server CPU ${m.serverCpuS.toFixed(2)} s, ` +
          `VMs' CPU ${m.vmCpuS.toFixed(1)} s, others' CPU ${m.foreignCpuS.toFixed(1)} s` +
          (m.error ? ` — ${m.error}` : ''),
      );
      for (const vm of m.vms.filter((x) => x.failed !== undefined)) say(`  ${vm.mac}: ${vm.failed ?? ''}`);
    }
  }

  if (o.keep !== undefined) {
    mkdirSync(o.keep, { recursive: true });
    for (const name of readdirSync(scratch).filter((entry) => /^run\d+-/.test(entry)))
      cpSync(join(scratch, name), join(o.keep, name), { recursive: true });
    say(`bench vms: each run's files kept in ${o.keep}`);
  }
  info.elapsedS = (Date.now() - started.getTime()) / 1000;
  info.load.after = load1();
  const report = renderReport(measurements, info);
  if (o.json !== undefined) {
    writeFileSync(o.json, `${JSON.stringify({ info, measurements }, null, 1)}\n`);
    say(`bench vms: raw figures in ${o.json}`);
  }
  process.stdout.write(`${report}\n`);
  if (o.write) {
    const path = await addToBenchmarks(report, insertIntoSubsection);
    say(`bench vms: added to "### Five real VMs" in ${path}`);
  }
  const { allPass } = verdicts(measurements, vms);
  say(`bench vms: done in ${duration(info.elapsedS)}; targets ${allPass ? 'all met' : 'NOT all met'}`);
  return 0;
}

/** smeltd in a lab of its own with PROBE_MAC deployed: the installer script and answer file it serves that machine. */
async function capture(context: Omit<ServerContext, 'ns' | 'ifname' | 'dir'>, scratch: string): Promise<Captured> {
  const dir = join(scratch, 'capture');
  mkdirSync(dir, { recursive: true });
  const lab = await createVmLab('vcap', dir);
  try {
    const { servers, captured } = await startServers(
      'smeltd',
      { ...context, ns: lab.ns, ifname: lab.bridge, dir },
      [],
      PROBE_MAC,
    );
    await servers.stop();
    if (!captured) throw new Error('smeltd served no script to capture');
    return captured;
  } finally {
    await lab.remove();
  }
}
