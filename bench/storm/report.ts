import { insertIntoSection } from '../lib/benchmarks-md.ts';
import { duration, median } from '../lib/stats.ts';
import { markdownTable } from '../lib/table.ts';
import { stageNames, stageTitles } from './firmware.ts';
import type { Measurement } from './measure.ts';
import { serverTitles, type ServerId } from './servers.ts';

export interface RunInfo {
  command: string;
  started: Date;
  elapsedS: number;
  machine: string;
  placement: string;
  load: { before: number; after: number };
  cpuPressure?: number;
  quiet: { threshold: number; waitS: number; runs: number; busyStarts: number; waitedS: number };
  others: string[];
  versions: string[];
  clients: number;
  warmup: number;
  rampS: number;
  maxRunS: number;
  runs: number;
  sizes: string;
  firmware: string[];
  topology: string;
  serverCommands: string[];
  referenceScript: string;
  missing: string[];
  notes: string[];
}

/** The text under `## Boot storm` the first time the section is made. */
export const sectionIntro = `## Boot storm

**What.** \`pnpm bench storm\` (bench/storm/): N simulated machines, each with its own MAC and UUID, power on within
2 s and do what a BIOS PXE ROM and then iPXE do — DHCP as the PXE ROM, TFTP of \`undionly.kpxe\` (the offer's boot
file, from the leased address, blksize 1468 with tsize), DHCP again as iPXE (user class \`iPXE\`, option 175), HTTP
of the iPXE script named in that ACK (followed through \`sleep\` + \`chain\` when it says wait), then of the kernel
and the initrd the script names — with the firmware's timeouts and retries (bench/storm/firmware.ts). Every byte is
compared with the files the server was given. Run against \`smeltd\` (DHCP server mode, TFTP, HTTP; every machine
deployed through the API first, so that its script is the installer script, not the hold script of a free machine)
and against dnsmasq (DHCP + TFTP) + nginx (HTTP: a static copy of smeltd's script, the same kernel and initrd at the
same URLs), in the same run, each in fresh network namespaces, the server on CPU 0 and the simulator on CPU 1. A
machine not booted when the storm's time bound passes has failed.

**How.**

\`\`\`sh
pnpm bench storm --quick          # 100 machines, 2 MiB kernel + 4 MiB initrd (~30 s)
pnpm bench storm --write          # 1,000 machines, 8 MiB + 16 MiB (25 GB of HTTP per storm; ~3 min)
pnpm bench storm --plan           # what it would do, with a time estimate
pnpm bench storm --help           # --clients N --servers --runs --kernel-mib --initrd-mib --ramp-s --smeltd-flags ...
\`\`\`

Needs root, \`dnsmasq\` (Debian \`dnsmasq-base\`), \`nginx\` (\`nginx-light\`), \`/usr/lib/ipxe/undionly.kpxe\` (\`ipxe\`),
\`iproute2\`, \`util-linux\` (taskset), \`curl\`.

**Reading it.** The simulator has one CPU for 1,000 machines: the 25 GB of kernels and initrds saturate it (its CPU
share is in the tables), so the download stage and the total are bounded by the simulator for a server as fast as
nginx — on a real rack each machine has its own NIC and CPU and the server's uplink would be the limit. The machines'
DHCP, TFTP and script requests are run by worker processes that the downloads (at nice 10) do not hold up; their
event-loop lag is reported. smeltd's "HTTP script" stage includes the waits its admission control asks for
(\`http.maxInstalls\`: beyond that many machines downloading at once, the script says "busy, asking again in N s");
nginx serves all 1,000 at once, and fair sharing then makes them all finish near the end.
`;

const ms = (value: number) =>
  Number.isFinite(value) ? (value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`) : '–';
const seconds = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} s` : '–');
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const n = (value: number) => value.toLocaleString('en');

function title(m: Measurement, runs: number): string {
  return runs > 1 ? `${serverTitles[m.server]} (run ${m.run + 1})` : serverTitles[m.server];
}

/** Whether other work shared the machine: busy when the storm started, or another benchmark or guest seen in it. */
export function contended(m: Measurement, quietBelow: number): boolean {
  return m.busyAtStart >= quietBelow || m.othersDuring.length > 0;
}

export interface Verdicts {
  lines: string[][];
  allPass: boolean;
}

/**
 * The issue's targets: N machines with zero failures (in every run); all booted no later than the reference, and
 * fewer retries (medians over the runs that started on a quiet machine, when each server has one; else all runs).
 */
export function verdicts(measurements: readonly Measurement[], clients: number, quietBelow = 0.2): Verdicts {
  const all = (id: ServerId) => measurements.filter((m) => m.server === id);
  const quiet = (id: ServerId) => all(id).filter((m) => !contended(m, quietBelow));
  const onlyQuiet = quiet('smeltd').length > 0 && quiet('reference').length > 0;
  const of = (id: ServerId) => (onlyQuiet ? quiet(id) : all(id));
  const smeltd = of('smeltd');
  const reference = of('reference');
  const failed = (ms: Measurement[]) =>
    ms.reduce((sum, m) => sum + (m.result ? m.result.failed : clients), 0) / Math.max(1, ms.length);
  const time = (ms: Measurement[]) => median(ms.map((m) => m.result?.allBootedS ?? Number.NaN));
  const retries = (ms: Measurement[]) => median(ms.map((m) => m.result?.retries ?? Number.NaN));
  const lines: string[][] = [];
  let allPass = true;
  const verdict = (ok: boolean | undefined) => {
    if (ok === undefined) return 'n/a';
    if (!ok) allPass = false;
    return ok ? 'PASS' : 'MISS';
  };
  const sf = failed(all('smeltd'));
  const rf = failed(all('reference'));
  lines.push([
    `${n(clients)} machines, zero failures${measurements.length > 2 ? ' (failed per run, mean)' : ''}`,
    all('smeltd').length ? `${n(sf)} failed` : '–',
    all('reference').length ? `${n(rf)} failed` : '–',
    verdict(all('smeltd').length ? sf === 0 : undefined),
  ]);
  const st = time(smeltd);
  const rt = time(reference);
  const referenceFinished = Number.isFinite(rt);
  lines.push([
    'all booted no later than dnsmasq + nginx',
    seconds(st),
    referenceFinished ? seconds(rt) : 'not all booted',
    verdict(smeltd.length && reference.length ? Number.isFinite(st) && (!referenceFinished || st <= rt) : undefined) +
      (Number.isFinite(st) && !referenceFinished && reference.length ? ' (the reference did not boot them all)' : ''),
  ]);
  const sr = retries(smeltd);
  const rr = retries(reference);
  const fewer = Number.isFinite(sr) && Number.isFinite(rr) ? sr < rr || (sr === 0 && rr === 0) : undefined;
  lines.push([
    'fewer retries than dnsmasq + nginx',
    Number.isFinite(sr) ? n(sr) : '–',
    Number.isFinite(rr) ? n(rr) : '–',
    smeltd.length && reference.length
      ? `${verdict(fewer)}${sr === 0 && rr === 0 ? ' (none on either side: cannot be fewer)' : ''}`
      : 'n/a',
  ]);
  return { lines, allPass };
}

export function renderReport(measurements: readonly Measurement[], info: RunInfo): string {
  const out: string[] = [];
  const stamp = info.started
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  out.push(`### Boot storm run of ${stamp}`, '');
  out.push(
    `\`${info.command}\` — ${n(info.clients)} machines powering on within ${info.rampS} s, ${info.sizes}; ` +
      `${info.runs} run${info.runs > 1 ? 's' : ''} per server; done in ${duration(info.elapsedS)}.`,
    '',
  );

  out.push(
    info.runs > 1
      ? `**Targets** (time and retries: medians over the uncontended runs — under ${(info.quiet.threshold * 100).toFixed(0)} % of the CPUs busy at the start, no other benchmark or QEMU guest seen during — when each server has one)`
      : '**Targets**',
    '',
  );
  out.push(
    markdownTable(
      ['target', 'smeltd', 'dnsmasq + nginx', 'verdict'],
      verdicts(measurements, info.clients, info.quiet.threshold).lines,
      ['left', 'right', 'right', 'left'],
    ),
    '',
  );

  const ok = measurements.filter((m) => m.result);
  out.push('**Whole storm**', '');
  out.push(
    markdownTable(
      [
        'server',
        'booted',
        'failed',
        'all booted after',
        'last boot',
        'per machine p50 / p99',
        'retries',
        'server CPU',
        'server peak RSS',
        'simulator CPU',
        'other work',
      ],
      measurements.map((m) => {
        const r = m.result;
        const busy =
          `${(m.busyAtStart * 100).toFixed(0)} % busy at start` +
          (m.othersDuring.length > 0 ? `, ${m.othersDuring.length} other job(s) during` : '') +
          (contended(m, info.quiet.threshold) ? ' (contended)' : '');
        if (!r) return [title(m, info.runs), '–', '–', `error: ${m.error ?? '?'}`, '', '', '', '', '', '', busy];
        return [
          title(m, info.runs),
          n(r.booted),
          n(r.failed),
          seconds(r.allBootedS),
          seconds(r.lastBootS),
          `${ms(r.bootP50Ms)} / ${ms(r.bootP99Ms)}`,
          n(r.retries),
          Number.isFinite(m.serverCpuS) ? `${m.serverCpuS.toFixed(1)} s` : '–',
          m.serverRssPeak > 0 ? mib(m.serverRssPeak) : '–',
          `${(r.cpuShare * 100).toFixed(0)} %`,
          busy,
        ];
      }),
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
  );

  if (ok.length > 0) {
    out.push('**Per stage** — time per machine p50 / p99, retries (retransmissions or repeated requests), failed', '');
    const header = ['stage', ...ok.map((m) => title(m, info.runs))];
    const rows = stageNames.map((stage) => [
      stageTitles[stage],
      ...ok.map((m) => {
        const s = m.result?.stages[stage];
        if (!s) return '–';
        return `${ms(s.p50Ms)} / ${ms(s.p99Ms)}, ${n(s.retries)} retries${s.failed > 0 ? `, **${n(s.failed)} failed**` : ''}`;
      }),
    ]);
    out.push(markdownTable(header, rows, ['left', ...ok.map(() => 'right' as const)]), '');
  }

  const details: string[] = [];
  for (const m of measurements) {
    const r = m.result;
    const parts: string[] = [];
    if (m.error) parts.push(`error: ${m.error}`);
    if (r) {
      for (const f of r.failures.slice(0, 6))
        parts.push(
          `${n(f.count)} failed in ${stageTitles[f.stage]}: ${f.reason}${f.example ? ` (e.g. ${f.example})` : ''}`,
        );
      parts.push(
        `DHCP: ${n(r.naks)} NAKs, ${n(r.proxyWaits)} ProxyDHCP waits, ${n(r.offersWithoutBootFile)} offers without a boot file, ${n(r.dhcpDuplicates)} late/duplicate replies, ${n(r.addressChanged)} machines got another address from iPXE's DHCP`,
      );
      parts.push(
        `TFTP: blksize ${Object.entries(r.tftpBlksizes)
          .map(([size, count]) => `${size} ×${n(count)}`)
          .join(', ')}; ${n(r.tftpDuplicates)} DATA blocks received twice (server retransmissions)`,
      );
      parts.push(
        `HTTP: ${n(r.httpConnections)} connections, ${(r.bytes.http / 1e9).toFixed(2)} GB; script ${n(r.scriptBytes)} bytes`,
      );
      if (r.scriptPolls > 0)
        parts.push(
          `${n(r.scriptPolls)} scripts said wait and ask again (followed, as iPXE does): ${Object.entries(r.scriptWaits)
            .sort((a, b) => b[1] - a[1])
            .slice(0, 3)
            .map(([said, count]) => `${n(count)}× "${said}"`)
            .join(', ')}`,
        );
      if (Object.keys(r.retryReasons).length > 0)
        parts.push(
          `HTTP retries: ${Object.entries(r.retryReasons)
            .sort((a, b) => b[1] - a[1])
            .slice(0, 4)
            .map(([why, count]) => `${n(count)}× ${why}`)
            .join(', ')}`,
        );
      parts.push(
        `simulator: ${r.workers} worker process${r.workers === 1 ? '' : 'es'} (+ as many download processes), event loops late by up to ${ms(r.loopDelayP99Ms)} (worst p99) / ${ms(r.loopDelayMaxMs)} (max), peak RSS ${mib(r.rssPeakBytes)}`,
      );
    }
    parts.push(
      `kernel drops during the storm: server namespace ${n(m.drops.server.udpRcvbuf)} UDP receive-buffer overflows, simulator namespace ${n(m.drops.client.udpRcvbuf)}`,
    );
    if (r && r.cpuShare > 0.9)
      parts.push(
        `the simulator's CPU was saturated (${(r.cpuShare * 100).toFixed(0)} %): the downloads were bounded by it, not only by the server`,
      );
    if (m.cpuPressure !== undefined)
      parts.push(`CPU pressure during the storm: ${m.cpuPressure.toFixed(2)} s waiting per s`);
    if (m.deploy)
      parts.push(`deploying ${n(m.deploy.deployed)} machines through the API took ${seconds(m.deploy.ms / 1000)}`);
    if (m.warmup) parts.push(`warm-up: ${n(m.warmup.booted)}/${n(m.warmup.clients)} booted`);
    if (m.tftpActivePeak !== undefined)
      parts.push(
        `smeltd's TFTP gauges (sampled every 2 s): up to ${n(m.tftpActivePeak)} transfers active, ${n(m.tftpQueuedPeak ?? 0)} queued`,
      );
    if (m.metrics.length > 0)
      parts.push(
        `smeltd's counters after the warm-up and the storm: ${m.metrics.map((line) => `\`${line}\``).join(', ')}`,
      );
    if (m.complaints.length > 0)
      parts.push(`what it logged: ${m.complaints.map((line) => `\`${line.replaceAll('`', "'")}\``).join('; ')}`);
    if (m.othersDuring.length > 0)
      parts.push(`other work seen during the storm: ${m.othersDuring.map((other) => `\`${other}\``).join(', ')}`);
    if (m.busyAtStart >= info.quiet.threshold)
      parts.push(
        `the machine was ${(m.busyAtStart * 100).toFixed(0)} % busy when the storm started (did not get quiet)`,
      );
    details.push(`- ${title(m, info.runs)}: ${parts.join('; ')}.`);
  }
  out.push('**Details**', '', ...details, '');

  out.push('**Set-up**', '');
  const setup = [
    `Machine: ${info.machine}; ${info.placement}; load ${info.load.before.toFixed(2)} → ${info.load.after.toFixed(2)}` +
      (info.cpuPressure !== undefined ? `; CPU pressure over the whole run ${info.cpuPressure.toFixed(2)} s/s` : '') +
      `; each storm started once the machine was under ${(info.quiet.threshold * 100).toFixed(0)} % busy (waited ${info.quiet.waitedS.toFixed(0)} s in all${info.quiet.busyStarts > 0 ? `, ${info.quiet.busyStarts} started busy` : ''})` +
      (info.others.length > 0 ? `; other benchmarks seen at the start: ${info.others.join('; ')}` : ''),
    `Versions: ${info.versions.join('; ')}`,
    `Network: ${info.topology}`,
    `Files: ${info.sizes}; the reference's script: ${info.referenceScript}`,
    `Each storm: ${info.warmup > 0 ? `${info.warmup} unmeasured machines (other MACs) boot first, then ` : ''}${n(info.clients)} machines power on evenly within ${info.rampS} s; the storm is over ${info.maxRunS} s after the first power-on at the latest`,
    ...info.firmware.map((line) => `Firmware: ${line}`),
    ...info.serverCommands,
    ...info.missing.map((line) => `Left out: ${line}`),
    ...info.notes,
  ];
  out.push(...setup.map((line) => `- ${line}`), '');
  return out.join('\n');
}

/** BENCHMARKS.md with a run's report at the end of the `## Boot storm` section (made at the end when missing). */
export function placeReport(text: string, report: string): string {
  return insertIntoSection(text, '## Boot storm', report, sectionIntro);
}
