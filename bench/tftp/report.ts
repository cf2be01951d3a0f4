import { duration, fmt, median, MiB } from '../lib/stats.ts';
import { markdownTable, type Align } from '../lib/table.ts';
import type { Measurement } from './measure.ts';
import type { Combo, LinkKind, Scenario } from './plan.ts';
import type { ServerId } from './servers.ts';

export interface Cell {
  scenario: Scenario;
  combo: Combo;
  server: ServerId;
  /** What the server agreed to for this blksize/windowsize (from the probe). */
  agreed?: { blksize: number; windowsize: number };
  /** Why it was not measured: short text for the table, long text for the notes. */
  skipped?: { short: string; long: string };
  runs: Measurement[];
}

export interface RunInfo {
  command: string;
  started: Date;
  elapsedS: number;
  machine: string;
  placement: string;
  versions: string[];
  serverCommands: string[];
  clientCommands: string[];
  linkSetup: string[];
  /** Median probe round trip (RRQ → first answer) per link and server, milliseconds. */
  rttMs: Partial<Record<LinkKind, Partial<Record<ServerId, number>>>>;
  load: { before: number; after: number };
  /** The quiet gate: runs gated, runs that started busy anyway (after waiting waitS), seconds spent waiting. */
  quiet: { threshold: number; waitS: number; runs: number; busyStarts: number; waitedS: number };
  /** Share of the run's wall time some task waited for a CPU (PSI "some"). */
  cpuPressure?: number;
  /** Share of the CPUs' time the hypervisor gave to others over the run (steal). */
  steal?: number;
  runsWanted: number;
  repeatUnderS: number;
  maxRunS: number;
  servers: ServerId[];
  missing: string[];
  notes: string[];
}

/** A run during which tasks waited for a CPU more than this share of the time is flagged in the notes. */
const CONTENDED = 0.25;
/** A run whose VM lost more than this share of its CPUs' time to the hypervisor (steal) is noted. */
const STOLEN = 0.05;

const key = (scenario: Scenario, combo: Combo, server: ServerId) =>
  `${scenario.key}|${combo.client}|${combo.blksize}|${combo.windowsize}|${server}`;

export class Results {
  readonly cells = new Map<string, Cell>();
  get(scenario: Scenario, combo: Combo, server: ServerId): Cell {
    const k = key(scenario, combo, server);
    let cell = this.cells.get(k);
    if (!cell) {
      cell = { scenario, combo, server, runs: [] };
      this.cells.set(k, cell);
    }
    return cell;
  }
  find(scenario: Scenario, combo: Combo, server: ServerId): Cell | undefined {
    return this.cells.get(key(scenario, combo, server));
  }
}

/** The median rate of a cell's successful runs; NaN when none succeeded. */
export function rate(cell: Cell | undefined): number {
  if (!cell) return Number.NaN;
  return median(cell.runs.filter((run) => run.failed === 0).map((run) => run.mibps));
}

function cellText(cell: Cell | undefined, runsWanted: number): string {
  if (!cell) return '';
  if (cell.skipped) return cell.skipped.short;
  if (cell.runs.length === 0) return '–';
  const failedRuns = cell.runs.filter((run) => run.failed > 0).length;
  const corrupt = cell.runs.reduce((sum, run) => sum + run.corrupt, 0);
  let text = failedRuns === cell.runs.length ? 'FAILED' : fmt(rate(cell));
  if (cell.agreed && cell.agreed.blksize !== cell.combo.blksize) text += ` (bs ${cell.agreed.blksize})`;
  if (failedRuns > 0 && failedRuns < cell.runs.length) text += ` (${failedRuns}/${cell.runs.length} failed)`;
  if (corrupt > 0) text += ` CORRUPT ×${corrupt}`;
  if (cell.runs.length < runsWanted && failedRuns < cell.runs.length) text += ` (n=${cell.runs.length})`;
  return text;
}

/** smeltd's figure over the reference the issue names for this row: atftpd when windowed, else tftpd-hpa. */
export function target(combo: Combo): { reference: ServerId; minimum: number } {
  return combo.windowsize > 1 ? { reference: 'atftpd', minimum: 1.0 } : { reference: 'tftpd-hpa', minimum: 0.7 };
}

function ratioText(results: Results, scenario: Scenario, combo: Combo): string {
  const ours = results.find(scenario, combo, 'smeltd');
  const { reference, minimum } = target(combo);
  const theirs = results.find(scenario, combo, reference);
  const ratio = rate(ours) / rate(theirs);
  if (!Number.isFinite(ratio)) return '';
  return `${fmt(ratio)}× ${reference} ${ratio >= minimum ? '✓' : `✗ (≥ ${minimum})`}`;
}

export function scenarioTable(results: Results, scenario: Scenario, combos: Combo[], info: RunInfo): string {
  const header = ['client', 'blksize', 'window', ...info.servers.map((s) => `${s} MiB/s`)];
  const withRatio = info.servers.includes('smeltd');
  if (withRatio) header.push('smeltd vs target');
  const withAb = withRatio && info.servers.includes('smeltd-nogso');
  if (withAb) header.push('GSO on / off');
  const rows = combos.map((combo) => {
    const row = [
      combo.client,
      String(combo.blksize),
      combo.client === 'curl' ? '1 (lock-step)' : String(combo.windowsize),
      ...info.servers.map((server) => cellText(results.find(scenario, combo, server), info.runsWanted)),
    ];
    if (withRatio) row.push(ratioText(results, scenario, combo));
    if (withAb) {
      const ab = rate(results.find(scenario, combo, 'smeltd')) / rate(results.find(scenario, combo, 'smeltd-nogso'));
      row.push(Number.isFinite(ab) ? `${fmt(ab)}×` : '');
    }
    return row;
  });
  const align = header.map((_, i): Align =>
    i === 0 || i === 2 || (withRatio && i === header.length - (withAb ? 2 : 1)) ? 'left' : 'right',
  );
  return markdownTable(header, rows, align);
}

function scenarioNotes(results: Results, scenario: Scenario, combos: Combo[], info: RunInfo): string[] {
  const notes = new Set<string>();
  for (const combo of combos) {
    for (const server of info.servers) {
      const cell = results.find(scenario, combo, server);
      if (!cell) continue;
      const what = `${server}, ${combo.client} blksize ${combo.blksize} window ${combo.windowsize}`;
      if (cell.skipped) notes.add(`${cell.skipped.short}: ${cell.skipped.long}`);
      const timeouts = cell.runs.map((run) => run.timeouts);
      const drops = cell.runs.map((run) => run.rcvbufErrors);
      if (timeouts.some((t) => t > 0) || drops.some((d) => d > 0)) {
        notes.add(
          `${what}: per run, ${drops.join(' / ')} datagrams dropped on a full client socket buffer (UDP RcvbufErrors), ${timeouts.join(' / ')} atftp retransmission timeouts`,
        );
      }
      // With concurrent clients on one CPU, tasks waiting for it is the point, not a disturbance.
      const contended = scenario.clients === 1 ? cell.runs.filter((run) => run.pressure > CONTENDED) : [];
      if (contended.length > 0) {
        notes.add(
          `${what}: ${contended.length} of ${cell.runs.length} runs saw CPU contention (PSI some ${contended.map((run) => `${(run.pressure * 100).toFixed(0)}%`).join(', ')} of the run; other work or the delay line)`,
        );
      }
      const stolen = cell.runs.filter((run) => run.steal > STOLEN);
      if (stolen.length > 0) {
        notes.add(
          `${what}: ${stolen.length} of ${cell.runs.length} runs lost CPU time to other VMs on the host (steal ${stolen.map((run) => `${(run.steal * 100).toFixed(0)}%`).join(', ')} of the CPUs' time)`,
        );
      }
      const errors = cell.runs.flatMap((run) => run.errors);
      if (errors.length > 0) notes.add(`${what}: ${errors.length} failed downloads, e.g. "${errors[0] ?? ''}"`);
      const corrupt = cell.runs.reduce((sum, run) => sum + run.corrupt, 0);
      if (corrupt > 0) notes.add(`${what}: ${corrupt} CORRUPT downloads (SHA-256 mismatch)`);
    }
  }
  if (scenario.link === 'link') {
    const lockStep = rate(results.find(scenario, { client: 'curl', blksize: 1468, windowsize: 1 }, 'tftpd-hpa'));
    if (Number.isFinite(lockStep) && scenario.clients === 1) {
      notes.add(
        `lock-step round trip on this link: ${((1468 / (lockStep * MiB)) * 1000).toFixed(2)} ms per block (tftpd-hpa, curl, blksize 1468)`,
      );
    }
  }
  return [...notes];
}

interface TargetLine {
  name: string;
  pass: boolean | undefined;
  detail: string;
}

function targets(results: Results, scenarios: Scenario[], combos: Combo[], info: RunInfo): TargetLine[] {
  const lines: TargetLine[] = [];
  const cells = [...results.cells.values()];
  const corrupt = cells.reduce((sum, cell) => sum + cell.runs.reduce((s, run) => s + run.corrupt, 0), 0);
  const downloads = cells.reduce((sum, cell) => sum + cell.runs.reduce((s, run) => s + run.ok + run.corrupt, 0), 0);
  const failed = cells.reduce((sum, cell) => sum + cell.runs.reduce((s, run) => s + run.failed, 0), 0);
  lines.push({
    name: 'Zero corrupt files (every download SHA-256-checked)',
    pass: corrupt === 0,
    detail: `${corrupt} corrupt of ${downloads} completed downloads, all servers; ${failed} downloads failed outright`,
  });
  if (!info.servers.includes('smeltd')) return lines;
  for (const windowed of [true, false]) {
    const ratios: { ratio: number; capped: boolean; where: string }[] = [];
    for (const scenario of scenarios) {
      for (const combo of combos) {
        if (combo.windowsize > 1 !== windowed) continue;
        const { reference } = target(combo);
        const ours = results.find(scenario, combo, 'smeltd');
        const ratio = rate(ours) / rate(results.find(scenario, combo, reference));
        const capped = ours?.agreed !== undefined && ours.agreed.blksize < combo.blksize;
        if (Number.isFinite(ratio)) {
          ratios.push({
            ratio,
            capped,
            where: `${scenario.link} ${scenario.sizeMiB} MiB ×${scenario.clients} ${combo.client} bs ${combo.blksize}${capped ? ` (smeltd: ${ours.agreed?.blksize ?? ''})` : ''} w ${combo.windowsize}`,
          });
        }
      }
    }
    const minimum = windowed ? 1.0 : 0.7;
    const failing = ratios.filter((r) => r.ratio < minimum).sort((x, y) => x.ratio - y.ratio);
    const worst = [...ratios].sort((x, y) => x.ratio - y.ratio)[0];
    lines.push({
      name: windowed
        ? 'Windowed: smeltd ≥ 1.0× atftpd at the same windowsize (atftp client)'
        : 'Lock-step: smeltd ≥ 0.7× tftpd-hpa (curl, and atftp at windowsize 1)',
      pass: ratios.length === 0 ? undefined : failing.length === 0,
      detail:
        ratios.length === 0
          ? 'not measured'
          : `${ratios.length - failing.length}/${ratios.length} combinations pass; worst ${fmt(worst?.ratio ?? NaN)}× (${worst?.where ?? ''})` +
            (failing.length > 0
              ? `${failing.some((f) => f.capped) ? `; ${failing.filter((f) => f.capped).length} of the ${failing.length} below are smeltd keeping blocks within the link MTU (1468) where the reference sends its larger blocks as IP fragments` : ''}; below: ${failing
                  .slice(0, 8)
                  .map((f) => `${f.where} ${fmt(f.ratio)}×`)
                  .join('; ')}${failing.length > 8 ? ` and ${failing.length - 8} more` : ''}`
              : ''),
    });
  }
  const linkScenarios = scenarios.filter((s) => s.link === 'link');
  const details: string[] = [];
  let pass: boolean | undefined;
  for (const scenario of linkScenarios) {
    const ours = rate(results.find(scenario, { client: 'atftp', blksize: 1468, windowsize: 16 }, 'smeltd'));
    const theirs = rate(results.find(scenario, { client: 'curl', blksize: 1468, windowsize: 1 }, 'tftpd-hpa'));
    const ratio = ours / theirs;
    if (!Number.isFinite(ratio)) continue;
    pass = (pass ?? true) && ratio >= 8;
    details.push(
      `${scenario.sizeMiB} MiB ×${scenario.clients}: ${fmt(ours)} vs ${fmt(theirs)} MiB/s = ${fmt(ratio)}× ${ratio >= 8 ? '✓' : '✗'}`,
    );
  }
  lines.push({
    name: '1 ms link, blksize 1468: smeltd windowsize 16 (atftp) ≥ 8× tftpd-hpa lock-step (curl)',
    pass,
    detail: details.length > 0 ? details.join('; ') : 'not measured',
  });
  return lines;
}

/** FIELD-NOTES.md's loopback reference figures (30 MiB, 1 client), to check this run's machine against. */
const fieldNotes: { server: ServerId; combo: Combo; figure: number }[] = [
  { server: 'tftpd-hpa', combo: { client: 'curl', blksize: 512, windowsize: 1 }, figure: 8.8 },
  { server: 'tftpd-hpa', combo: { client: 'curl', blksize: 1468, windowsize: 1 }, figure: 23 },
  { server: 'tftpd-hpa', combo: { client: 'curl', blksize: 8192, windowsize: 1 }, figure: 125 },
  { server: 'tftpd-hpa', combo: { client: 'curl', blksize: 65464, windowsize: 1 }, figure: 700 },
  { server: 'atftpd', combo: { client: 'curl', blksize: 512, windowsize: 1 }, figure: 8.8 },
  { server: 'atftpd', combo: { client: 'curl', blksize: 1468, windowsize: 1 }, figure: 23.5 },
  { server: 'atftpd', combo: { client: 'curl', blksize: 8192, windowsize: 1 }, figure: 119 },
  { server: 'atftpd', combo: { client: 'curl', blksize: 65464, windowsize: 1 }, figure: 939 },
  { server: 'atftpd', combo: { client: 'atftp', blksize: 1468, windowsize: 4 }, figure: 94 },
  { server: 'atftpd', combo: { client: 'atftp', blksize: 1468, windowsize: 16 }, figure: 154 },
  { server: 'atftpd', combo: { client: 'atftp', blksize: 1468, windowsize: 64 }, figure: 207 },
];

function fieldNotesTable(results: Results, scenarios: Scenario[]): string | undefined {
  const scenario = scenarios.find((s) => s.link === 'loopback' && s.sizeMiB === 30 && s.clients === 1);
  if (!scenario) return undefined;
  const rows = fieldNotes
    .map(({ server, combo, figure }) => ({ server, combo, figure, here: rate(results.find(scenario, combo, server)) }))
    .filter((row) => Number.isFinite(row.here))
    .map((row) => [
      `${row.server}, ${row.combo.client} blksize ${row.combo.blksize}${row.combo.client === 'atftp' ? ` window ${row.combo.windowsize}` : ''}`,
      fmt(row.figure),
      fmt(row.here),
    ]);
  if (rows.length === 0) return undefined;
  return markdownTable(['reference server, 30 MiB, 1 client, loopback', 'FIELD-NOTES MiB/s', 'this run MiB/s'], rows, [
    'left',
    'right',
    'right',
  ]);
}

export function renderReport(results: Results, scenarios: Scenario[], combos: Combo[], info: RunInfo): string {
  const out: string[] = [];
  const when = info.started
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  out.push(`## TFTP run of ${when}`, '');
  out.push(`Command: \`${info.command}\` — took ${duration(info.elapsedS)}.`, '');
  out.push(`- Machine: ${info.machine}; load average ${fmt(info.load.before)} before, ${fmt(info.load.after)} after.`);
  out.push(`- CPU placement: ${info.placement}.`);
  if (info.quiet.runs > 0) {
    out.push(
      `- Other work on the machine: each run waited for < ${info.quiet.threshold * 100}% CPU busy (up to ${info.quiet.waitS} s; ${duration(info.quiet.waitedS)} waited in all); ${info.quiet.busyStarts} of ${info.quiet.runs} runs started busy anyway.` +
        (info.cpuPressure === undefined
          ? ''
          : ` CPU pressure (PSI some) over the run: ${(info.cpuPressure * 100).toFixed(0)}% of the time.`) +
        (info.steal === undefined
          ? ''
          : ` CPU time taken by the hypervisor for other VMs (steal): ${(info.steal * 100).toFixed(1)}% of the CPUs' time.`),
    );
  }
  out.push(
    `- Figures: median MiB/s (1 MiB = 2^20 bytes) of ${info.runsWanted} runs; a combination whose first run took longer than ${info.repeatUnderS} s was run once (marked n=1); combinations estimated above ${info.maxRunS} s per run were skipped.`,
  );
  for (const line of info.versions) out.push(`- ${line}`);
  for (const line of info.missing) out.push(`- Not measured: ${line}`);
  out.push('', 'Servers (each in the foreground, pinned, inside the benchmark namespace):', '');
  for (const line of info.serverCommands) out.push(`- ${line}`);
  out.push('', 'Clients:', '');
  for (const line of info.clientCommands) out.push(`- ${line}`);
  out.push('', 'Links:', '');
  for (const line of info.linkSetup) out.push(`- ${line}`);
  for (const [link, byServer] of Object.entries(info.rttMs)) {
    const parts = Object.entries(byServer).map(([server, ms]) => `${server} ${ms.toFixed(2)} ms`);
    out.push(`- Request → first answer (probe) on ${link}: ${parts.join(', ')}.`);
  }
  for (const note of info.notes) out.push(`- ${note}`);
  out.push('');
  out.push('### Targets (issue 8)', '');
  for (const line of targets(results, scenarios, combos, info)) {
    const mark = line.pass === undefined ? '–' : line.pass ? 'PASS' : 'FAIL';
    out.push(`- **${mark}** ${line.name}: ${line.detail}.`);
  }
  out.push('');
  for (const scenario of scenarios) {
    const used = combos.filter((combo) => info.servers.some((server) => results.find(scenario, combo, server)));
    if (used.length === 0) continue;
    out.push(`### ${scenario.title}`, '');
    out.push(scenarioTable(results, scenario, used, info), '');
    const notes = scenarioNotes(results, scenario, used, info);
    for (const note of notes) out.push(`- ${note}`);
    if (notes.length > 0) out.push('');
  }
  const reference = fieldNotesTable(results, scenarios);
  if (reference) {
    out.push('### The reference servers against FIELD-NOTES.md', '', reference, '');
  }
  return out.join('\n');
}
