import { insertIntoSection } from '../lib/benchmarks-md.ts';
import { duration, fmt, median, MiB } from '../lib/stats.ts';
import { markdownTable } from '../lib/table.ts';
import type { ServerId } from './servers.ts';
import { percentile, type TransferRun, type Verdict } from './transfers.ts';
import type { WrkResult } from './wrk.ts';

/** The issue's targets. */
export const BIG_FILE_RATIO = 0.8;
/** 150 MB, read as 150 × 10^6 bytes (the stricter reading; 143 MiB). */
export const RSS_LIMIT_BYTES = 150e6;

export interface BigCell {
  server: ServerId;
  clients: number;
  raw: TransferRun[];
  verified?: TransferRun;
  /** Peak RSS of the server during this scenario's runs. */
  rssPeak: number;
}

export interface WrkCell {
  server: ServerId;
  connections: number;
  runs: WrkResult[];
  rssPeak: number;
}

export interface MemoryCell {
  server: ServerId;
  run?: TransferRun;
  /** RSS when idle just before, and the peak while the clients streamed. */
  baseline: number;
  peak: number;
  failed?: string;
}

export interface RunInfo {
  command: string;
  started: Date;
  elapsedS: number;
  machine: string;
  load: { before: number; after: number };
  cpuPressure?: number;
  quiet: { threshold: number; waitS: number; runs: number; busyStarts: number; waitedS: number };
  others: string[];
  placement: string;
  versions: string[];
  fixtures: string[];
  serverCommands: string[];
  clientCommands: string[];
  urls: string[];
  runs: number;
  sizeMiB: number;
  wrkSeconds: number;
  memory: { clients: number; seconds: number; gib: number; skipped?: string };
  notes: string[];
  profile?: string;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const mib = (bytes: number) => (bytes / MiB).toFixed(0);

function rate(cell: BigCell | undefined): number {
  if (!cell) return Number.NaN;
  return median(cell.raw.filter((run) => run.counts.failed === 0).map((run) => run.mibps));
}

function wrkRate(cell: WrkCell | undefined): number {
  if (!cell) return Number.NaN;
  return median(cell.runs.filter((run) => run.failed === undefined).map((run) => run.rps));
}

function tally(runs: readonly (TransferRun | undefined)[]): Record<Verdict, number> {
  const total: Record<Verdict, number> = { ok: 0, stopped: 0, corrupt: 0, failed: 0 };
  for (const run of runs) {
    if (!run) continue;
    for (const verdict of Object.keys(total) as Verdict[]) total[verdict] += run.counts[verdict];
  }
  return total;
}

function tallyText(t: Record<Verdict, number>): string {
  const parts = [`${t.ok} ok`];
  if (t.stopped > 0) parts.push(`${t.stopped} stopped at the time limit, prefix checked`);
  parts.push(`${t.corrupt} corrupt`);
  if (t.failed > 0) parts.push(`${t.failed} failed`);
  return parts.join(', ');
}

export interface Results {
  big: BigCell[];
  wrk: WrkCell[];
  memory: MemoryCell[];
}

function bigTable(results: Results, servers: readonly ServerId[], info: RunInfo): string {
  const header = [
    'clients',
    'server',
    'MiB/s (aggregate)',
    'vs nginx',
    'per request p50 / p99',
    'MiB/s, sha256-checked',
    'transfers: ok / corrupt / failed',
    'peak RSS',
  ];
  const rows: string[][] = [];
  const clientCounts = [...new Set(results.big.map((cell) => cell.clients))];
  for (const clients of clientCounts) {
    const nginx = results.big.find((c) => c.clients === clients && c.server === 'nginx');
    for (const server of servers) {
      const cell = results.big.find((c) => c.clients === clients && c.server === server);
      if (!cell) continue;
      const seconds = cell.raw.flatMap((run) => run.transfers.map((t) => t.seconds));
      const ratio = rate(cell) / rate(nginx);
      const all = tally([...cell.raw, cell.verified]);
      rows.push([
        String(clients),
        server,
        fmt(rate(cell)) + (cell.raw.length < info.runs ? ` (n=${cell.raw.length})` : ''),
        server === 'nginx' ? '' : `${fmt(ratio)}×${ratio >= BIG_FILE_RATIO ? '' : ' ✗'}`,
        `${fmt(percentile(seconds, 50))} / ${fmt(percentile(seconds, 99))} s`,
        cell.verified ? fmt(cell.verified.mibps) : '–',
        `${all.ok} / ${all.corrupt} / ${all.failed}`,
        `${mib(cell.rssPeak)} MiB`,
      ]);
    }
  }
  return markdownTable(header, rows, ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right']);
}

function wrkTable(results: Results, servers: readonly ServerId[]): string {
  const header = ['connections', 'server', 'requests/s', 'vs nginx', 'latency p50 / p99', 'errors', 'peak RSS'];
  const rows: string[][] = [];
  for (const connections of [...new Set(results.wrk.map((cell) => cell.connections))]) {
    const nginx = results.wrk.find((c) => c.connections === connections && c.server === 'nginx');
    for (const server of servers) {
      const cell = results.wrk.find((c) => c.connections === connections && c.server === server);
      if (!cell) continue;
      const ok = cell.runs.filter((run) => run.failed === undefined);
      const ratio = wrkRate(cell) / wrkRate(nginx);
      const errors = ok.reduce((sum, run) => sum + run.errors + run.non2xx, 0);
      const timeouts = ok.reduce((sum, run) => sum + run.timeouts, 0);
      const failed = cell.runs.length - ok.length;
      rows.push([
        String(connections),
        server,
        fmt(wrkRate(cell)),
        server === 'nginx' ? '' : `${fmt(ratio)}×`,
        `${fmt(median(ok.map((run) => run.p50)))} / ${fmt(median(ok.map((run) => run.p99)))} ms`,
        `${errors}${timeouts > 0 ? `, ${timeouts} timeouts (> 2 s)` : ''}${failed > 0 ? `, ${failed} runs failed` : ''}`,
        `${mib(cell.rssPeak)} MiB`,
      ]);
    }
  }
  return markdownTable(header, rows, ['right', 'left', 'right', 'right', 'right', 'left', 'right']);
}

function memoryTable(results: Results, info: RunInfo): string {
  const header = ['server', 'streamed', 'MiB/s (aggregate)', 'RSS idle → peak', 'transfers'];
  const rows = results.memory.map((cell) => [
    cell.server === 'nginx' ? 'nginx (master + workers, summed)' : cell.server,
    cell.run ? `${(cell.run.bytes / 2 ** 30).toFixed(1)} GiB in ${cell.run.seconds.toFixed(0)} s` : '–',
    cell.run ? fmt(cell.run.mibps) : '–',
    `${mib(cell.baseline)} → ${mib(cell.peak)} MiB (${mb(cell.peak)} MB)`,
    cell.failed ?? (cell.run ? tallyText(cell.run.counts) : '–'),
  ]);
  return [
    markdownTable(header, rows, ['left', 'right', 'right', 'right', 'left']),
    '',
    `${info.memory.clients} clients at once, each from its own offset (client i starts at i/${info.memory.clients} of the file, so together they cover the whole ${info.memory.gib} GiB, across the file's two ISO extents), each stopped after ${info.memory.seconds} s, every byte compared with the source by cmp; the ISO and the source read once before (page cache); RSS sampled every 100 ms from /proc/PID/status (VmRSS), idle = just before the clients start (after the earlier phases).`,
  ].join('\n');
}

interface TargetLine {
  pass: boolean | undefined;
  text: string;
}

function targets(results: Results, info: RunInfo): TargetLine[] {
  const lines: TargetLine[] = [];
  const ratios = [...new Set(results.big.map((cell) => cell.clients))].map((clients) => {
    const ours = rate(results.big.find((c) => c.clients === clients && c.server === 'smeltd'));
    const theirs = rate(results.big.find((c) => c.clients === clients && c.server === 'nginx'));
    return { clients, ours, theirs, ratio: ours / theirs };
  });
  const measured = ratios.filter((r) => Number.isFinite(r.ratio));
  lines.push({
    pass: measured.length === 0 ? undefined : measured.every((r) => r.ratio >= BIG_FILE_RATIO),
    text:
      `Big files (${info.sizeMiB} MiB inside an ISO) at least ${BIG_FILE_RATIO}× nginx: ` +
      (measured.length === 0
        ? 'not measured'
        : measured
            .map(
              (r) =>
                `${r.clients} client${r.clients === 1 ? '' : 's'} ${fmt(r.ratio)}× (${fmt(r.ours)} vs ${fmt(r.theirs)} MiB/s)`,
            )
            .join('; ')),
  });
  const memory = results.memory.find((cell) => cell.server === 'smeltd');
  lines.push({
    pass: memory?.run === undefined ? undefined : memory.peak < RSS_LIMIT_BYTES,
    text:
      `smeltd RSS under 150 MB while ${info.memory.clients} clients stream from a ${info.memory.gib} GiB ISO: ` +
      (memory?.run === undefined
        ? `not measured${info.memory.skipped ? ` (${info.memory.skipped})` : memory?.failed ? ` (${memory.failed})` : ''}`
        : `peak ${mb(memory.peak)} MB (${mib(memory.peak)} MiB; ${mib(memory.baseline)} MiB idle before)`),
  });
  const checked = (server: ServerId) =>
    tally([
      ...results.big.filter((c) => c.server === server).flatMap((c) => [...c.raw, c.verified]),
      ...results.memory.filter((c) => c.server === server).map((c) => c.run),
    ]);
  const ours = checked('smeltd');
  const theirs = checked('nginx');
  lines.push({
    pass: ours.ok + ours.stopped + ours.corrupt === 0 ? undefined : ours.corrupt === 0 && ours.failed === 0,
    text:
      `0 corrupt transfers: smeltd ${tallyText(ours)}; nginx ${tallyText(theirs)} ` +
      `(raw runs: status and length checked; sha256 runs: every byte; memory runs: every byte received, with cmp)`,
  });
  return lines;
}

export function renderReport(results: Results, servers: readonly ServerId[], info: RunInfo): string {
  const when = info.started
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  const out: string[] = [];
  out.push(`### HTTP run of ${when}`, '');
  out.push(`Command: \`${info.command}\` — took ${duration(info.elapsedS)}.`, '');
  out.push(`- Machine: ${info.machine}; load average ${fmt(info.load.before)} before, ${fmt(info.load.after)} after.`);
  out.push(`- CPU placement: ${info.placement}.`);
  if (info.quiet.runs > 0) {
    out.push(
      `- Other work on the machine: each run waited for < ${info.quiet.threshold * 100}% CPU busy (up to ${info.quiet.waitS} s; ${duration(info.quiet.waitedS)} waited in all); ${info.quiet.busyStarts} of ${info.quiet.runs} runs started busy anyway.` +
        (info.cpuPressure === undefined
          ? ''
          : ` CPU pressure (PSI some) over the whole run: ${(info.cpuPressure * 100).toFixed(0)}% of the time.`),
    );
  }
  for (const line of info.others) out.push(`- ${line}`);
  for (const line of info.versions) out.push(`- ${line}`);
  out.push('', '#### Targets', '');
  for (const line of targets(results, info)) {
    const verdict = line.pass === undefined ? 'NOT MEASURED' : line.pass ? 'PASS' : 'MISS';
    out.push(`- **${verdict}** ${line.text}`);
  }
  if (results.big.length > 0) {
    out.push('', `#### ${info.sizeMiB} MiB file inside an ISO (smeltd) vs the same file extracted (nginx)`, '');
    out.push(bigTable(results, servers, info), '');
    out.push(
      `MiB/s: median of ${info.runs} runs of curl to /dev/null, all bytes over first start to last end (1 client: curl's own time_total); per request: curl's time_total over all those runs; sha256-checked: one more run with every client piping into \`openssl dgst -sha256\` (client CPU then limits it).`,
    );
  }
  if (results.wrk.length > 0) {
    out.push(
      '',
      '#### Small script: `/boot/<mac>.ipxe` (smeltd renders it) vs a static file of the same bytes (nginx)',
      '',
    );
    out.push(wrkTable(results, servers), '');
    out.push(
      `wrk, ${info.wrkSeconds} s per run, median of ${info.runs} runs (latency percentiles: medians of the runs'); errors: socket errors and non-2xx answers.`,
    );
  }
  if (results.memory.length > 0) {
    out.push('', `#### Memory: ${info.memory.clients} clients streaming from a ${info.memory.gib} GiB ISO`, '');
    out.push(memoryTable(results, info));
  } else if (info.memory.skipped) {
    out.push('', `#### Memory`, '', `Not measured: ${info.memory.skipped}.`);
  }
  out.push('', '#### How', '');
  for (const line of info.fixtures) out.push(`- Fixture: ${line}`);
  for (const line of info.urls) out.push(`- ${line}`);
  for (const line of info.serverCommands) out.push(`- ${line}`);
  for (const line of info.clientCommands) out.push(`- ${line}`);
  for (const line of info.notes) out.push(`- ${line}`);
  if (info.profile) out.push('', '#### Where smeltd spends its time (`node --cpu-prof`)', '', info.profile);
  return out.join('\n');
}

const sectionIntro = `## HTTP

\`pnpm bench http\`: smeltd serving a file from inside an ISO against nginx serving the same file extracted, and
smeltd's per-MAC iPXE script against nginx serving a static file of the same bytes, in one run. Runs are listed
below, newest last.`;

/** BENCHMARKS.md with the report at the end of its "## HTTP" section (made at the end of the file when missing). */
export function placeReport(text: string, report: string): string {
  return insertIntoSection(text, '## HTTP', report, sectionIntro);
}
