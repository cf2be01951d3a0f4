import { duration, fmt, median } from '../lib/stats.ts';
import { markdownTable, type Align } from '../lib/table.ts';
import { MAX_NAKS } from './generator.ts';
import type { Measurement } from './measure.ts';
import type { Scenario } from './plan.ts';
import type { ServerId } from './servers.ts';

export interface RunInfo {
  command: string;
  started: Date;
  elapsedS: number;
  machine: string;
  placement: string;
  load: { before: number; after: number };
  quiet: { threshold: number; waitS: number; runs: number; busyStarts: number; waitedS: number };
  cpuPressure?: number;
  versions: string[];
  serverCommands: string[];
  generator: string[];
  topology: string;
  runsWanted: number;
  repeatUnderS: number;
  maxRunS: number;
  servers: ServerId[];
  missing: string[];
  notes: string[];
}

/** A run during which tasks waited for a CPU more than this share of the time is flagged. */
const CONTENDED = 0.25;

export class Results {
  readonly measurements: Measurement[] = [];
  of(scenario: Scenario, server: ServerId): Measurement[] {
    return this.measurements.filter((m) => m.scenario === scenario.key && m.server === server);
  }
}

/** The runs that produced a rate. */
function good(ms: Measurement[]): Measurement[] {
  return ms.filter((m) => m.result !== undefined && m.result.completed > 0 && !m.result.noReplies);
}

export function rateOf(ms: Measurement[]): number {
  return median(good(ms).map((m) => m.result?.rate ?? Number.NaN));
}

export function p99Of(ms: Measurement[]): number {
  return median(good(ms).map((m) => m.result?.p99Ms ?? Number.NaN));
}

const sum = (ms: Measurement[], pick: (m: Measurement) => number | undefined) =>
  ms.reduce((total, m) => total + (pick(m) ?? 0), 0);

/** Leases missing from (or wrong in) the store before and after the restart, over every run. */
export function lostOf(ms: Measurement[]): {
  before: number;
  after: number;
  reask: number;
  restartFailures: number;
  checked: boolean;
} {
  return {
    restartFailures: ms.filter((m) => m.restart?.error !== undefined).length,
    before: sum(ms, (m) => (m.store ? m.store.missing + m.store.wrongAddress : 0)),
    after: sum(ms, (m) => (m.restart?.store ? m.restart.store.missing + m.restart.store.wrongAddress : 0)),
    reask: sum(ms, (m) => (m.restart ? m.restart.other + m.restart.unanswered : 0)),
    checked: ms.some((m) => m.store !== undefined && m.store.error === undefined),
  };
}

function ms1(value: number): string {
  return Number.isFinite(value) ? (value < 10 ? value.toFixed(1) : value.toFixed(0)) : '–';
}

function rateCell(ms: Measurement[], runsWanted: number): string {
  const ok = good(ms);
  if (ok.length === 0) {
    const error = ms.find((m) => m.error)?.error;
    return error?.includes('no DHCP replies') ? 'no DHCP replies' : ms.length > 0 ? 'FAILED' : '';
  }
  let text = fmt(rateOf(ms));
  const partial = ok.find((m) => m.result?.stoppedAtLimit);
  if (partial?.result)
    text += ` (time limit: ${partial.result.completed.toLocaleString('en')} of ${partial.result.clients.toLocaleString('en')})`;
  if (ok.some((m) => m.result?.stalled)) text += ' (STALLED)';
  if (ok.length < runsWanted && ok.length > 1) text += ` (n=${ok.length})`;
  else if (ok.length === 1 && runsWanted > 1) text += ' (n=1)';
  return text;
}

function storeCell(ms: Measurement[]): string {
  const stored = ms.filter((m) => m.store);
  if (stored.length === 0) return '–';
  const errors = stored.filter((m) => m.store?.error);
  if (errors.length === stored.length) return 'unreadable';
  const acked = sum(stored, (m) => m.store?.acked);
  const lost = sum(stored, (m) => (m.store ? m.store.missing + m.store.wrongAddress : 0));
  return lost === 0 ? `all ${acked.toLocaleString('en')} ✓` : `**${lost} LOST** of ${acked.toLocaleString('en')}`;
}

function restartCell(ms: Measurement[]): string {
  const restarted = ms.filter((m) => m.restart);
  if (restarted.length === 0) return '–';
  const failed = restarted.find((m) => m.restart?.error);
  if (failed?.restart?.error && restarted.every((m) => m.restart?.error)) return 'restart failed';
  const lost = sum(restarted, (m) => (m.restart?.store ? m.restart.store.missing + m.restart.store.wrongAddress : 0));
  const asked = sum(restarted, (m) => m.restart?.asked);
  const same = sum(restarted, (m) => m.restart?.same);
  const storeText = lost === 0 ? 'store ✓' : `store **${lost} LOST**`;
  const failures = restarted.filter((m) => m.restart?.error).length;
  return (
    `${storeText}; re-asked ${same.toLocaleString('en')}/${asked.toLocaleString('en')} same${same === asked ? ' ✓' : ' ✗'}` +
    (failures > 0 ? `; **${failures} of ${restarted.length} restarts FAILED**` : '')
  );
}

/** The unmeasured warm-up before the runs (medians): for smeltd, what a daemon just started does. */
function warmupCell(ok: Measurement[]): string {
  const warm = ok.map((m) => m.result?.warmup).filter((w) => w !== undefined);
  if (warm.length === 0) return '–';
  const clients = ok[0]?.warmupClients ?? 0;
  return `${clients.toLocaleString('en')}: ${fmt(median(warm.map((w) => w.rate)))}, ${ms1(median(warm.map((w) => w.p99Ms)))}`;
}

export function scenarioTable(results: Results, scenario: Scenario, info: RunInfo): string {
  const header = [
    'server',
    'DORA/s',
    'p50 ms',
    'p99 ms',
    'server CPU µs/DORA',
    'first → last 10 % /s',
    'warm-up: clients, DORA/s, p99 ms',
    'retries',
    'NAKs',
    'failed',
    'ACKed leases in store',
    'after kill -9 + restart',
  ];
  const rows = info.servers.map((server) => {
    const ms = results.of(scenario, server);
    const ok = good(ms);
    const first = median(ok.map((m) => m.result?.firstTenthRate ?? Number.NaN));
    const last = median(ok.map((m) => m.result?.lastTenthRate ?? Number.NaN));
    return [
      server,
      rateCell(ms, info.runsWanted),
      ms1(median(ok.map((m) => m.result?.p50Ms ?? Number.NaN))),
      ms1(p99Of(ms)),
      fmt(median(ok.map((m) => m.serverCpuUsPerDora ?? Number.NaN))),
      Number.isFinite(first) ? `${fmt(first)} → ${fmt(last)}` : '–',
      warmupCell(ok),
      ok.length > 0 ? String(sum(ok, (m) => m.result?.retries)) : '–',
      ok.length > 0 ? String(sum(ok, (m) => m.result?.naks)) : '–',
      ok.length > 0 ? String(sum(ok, (m) => m.result?.failed)) : '–',
      storeCell(ms),
      restartCell(ms),
    ];
  });
  const align: Align[] = [
    'left',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'left',
    'left',
  ];
  return markdownTable(header, rows, align);
}

function scenarioNotes(results: Results, scenario: Scenario, info: RunInfo): string[] {
  const notes: string[] = [];
  const contended: string[] = [];
  for (const server of info.servers) {
    const ms = results.of(scenario, server);
    const what = server;
    for (const m of ms) {
      const run = ms.length > 1 ? ` run ${m.run + 1}` : '';
      if (m.error) {
        const error = m.error.split('\n')[0] ?? '';
        notes.push(error.startsWith(`${server}:`) && !run ? error : `${what}${run}: ${error}`);
      }
      const r = m.result;
      if (r) {
        if (r.malformed > 0) notes.push(`${what}${run}: ${r.malformed} malformed replies (${r.firstMalformed ?? ''})`);
        if (r.unmatched > 0) notes.push(`${what}${run}: ${r.unmatched} replies matched no client (xid/chaddr)`);
        if (r.ackDiffersFromOffer > 0)
          notes.push(`${what}${run}: ${r.ackDiffersFromOffer} ACKs for another address than offered`);
        if (r.addressConflicts > 0)
          notes.push(`${what}${run}: **${r.addressConflicts} addresses ACKed to two clients**`);
        if (r.sendErrors > 0) notes.push(`${what}${run}: ${r.sendErrors} send errors (${r.firstSendError ?? ''})`);
        if (r.naks > 0)
          notes.push(
            `${what}${run}: ${r.naks} NAKs — REQUESTs for the offered address refused, e.g. ${r.nakExamples.join('; ')}; a client NAKed ${MAX_NAKS + 1} times fails`,
          );
        if (r.cpuShare > 0.85)
          notes.push(
            `${what}${run}: the generator kept its CPU ${(r.cpuShare * 100).toFixed(0)}% busy: the figure may be the generator's limit, not the server's`,
          );
        if (r.stoppedAtLimit)
          notes.push(
            `${what}${run}: stopped starting clients at the ${info.maxRunS} s limit: ${r.completed.toLocaleString('en')} ACKed, ${r.notStarted.toLocaleString('en')} never started`,
          );
      }
      const drops = m.drops;
      if (drops && drops.server.udpRcvbuf + drops.server.packetSocket + drops.client.udpRcvbuf > 0) {
        const parts = [];
        if (drops.server.packetSocket > 0)
          parts.push(`${drops.server.packetSocket} at the server's packet (raw) socket`);
        if (drops.server.udpRcvbuf > 0) parts.push(`${drops.server.udpRcvbuf} at the server's UDP socket`);
        if (drops.client.udpRcvbuf > 0) parts.push(`${drops.client.udpRcvbuf} at the generator's socket`);
        notes.push(`${what}${run}: the kernel dropped datagrams for full receive buffers: ${parts.join(', ')}`);
      }
      if (m.store?.error) notes.push(`${what}${run}: lease store unreadable: ${m.store.error}`);
      if (m.store && m.store.examples.length > 0)
        notes.push(`${what}${run}: lost, e.g. ${m.store.examples.join('; ')}`);
      if (m.restart?.error) notes.push(`${what}${run}: after kill -9: ${m.restart.error.split('\n')[0] ?? ''}`);
      else if (m.restart && m.restart.other + m.restart.unanswered > 0)
        notes.push(
          `${what}${run}: after kill -9 + restart, of ${m.restart.asked} clients asking again ${m.restart.other} were offered another address and ${m.restart.unanswered} got no offer`,
        );
      if (m.serverSaid) notes.push(`${what}${run} said last: ${m.serverSaid}`);
      if (m.killedAtStop) notes.push(`${what}${run}: did not exit within 3 s of SIGTERM; killed`);
      if (m.pressure > CONTENDED && (m.result?.completed ?? 0) > 0)
        contended.push(`${what}${run} ${(m.pressure * 100).toFixed(0)}%`);
    }
  }
  if (contended.length > 0)
    notes.push(
      `CPU contention (PSI: some task waited for a CPU more than ${CONTENDED * 100}% of the run, other work on the machine): ${contended.join(', ')}`,
    );
  return notes;
}

interface TargetLine {
  name: string;
  pass: boolean | undefined;
  detail: string;
}

/** Rate and p99 against Kea's single-threaded figures, for one smeltd variant (smeltd, smeltd-os). */
function againstKea(results: Results, scenarios: Scenario[], server: ServerId, what: string): TargetLine[] {
  const rateDetails: string[] = [];
  const p99Details: string[] = [];
  let ratePass: boolean | undefined;
  let p99Pass: boolean | undefined;
  for (const scenario of scenarios) {
    const ours = results.of(scenario, server);
    const kea = results.of(scenario, 'kea');
    const [r, k] = [rateOf(ours), rateOf(kea)];
    if (Number.isFinite(k)) {
      const pass = Number.isFinite(r) && r >= k;
      ratePass = (ratePass ?? true) && pass;
      rateDetails.push(`${scenario.key}: ${Number.isFinite(r) ? fmt(r) : 'none'} vs ${fmt(k)}/s ${pass ? '✓' : '✗'}`);
      const [p, q] = [p99Of(ours), p99Of(kea)];
      const p99ok = Number.isFinite(p) && p <= q;
      p99Pass = (p99Pass ?? true) && p99ok;
      p99Details.push(`${scenario.key}: ${ms1(p)} vs ${ms1(q)} ms ${p99ok ? '✓' : '✗'}`);
    }
  }
  return [
    {
      name: `${server} ≥ Kea's single-threaded DORA/s, ${what}`,
      pass: ratePass,
      detail: rateDetails.length > 0 ? rateDetails.join('; ') : 'not measured',
    },
    {
      name: `${server}'s p99 ≤ Kea's (same run)`,
      pass: p99Pass,
      detail: p99Details.length > 0 ? p99Details.join('; ') : 'not measured',
    },
  ];
}

function targets(results: Results, scenarios: Scenario[], info: RunInfo): TargetLine[] {
  const lines: TargetLine[] = [];
  const ours = info.servers.includes('smeltd');
  if (ours) lines.push(...againstKea(results, scenarios, 'smeltd', 'leases persisted (fsync before the ACK)'));
  // The like-for-like comparison: Kea's memfile write()s each lease before its reply and never fsyncs.
  if (info.servers.includes('smeltd-os')) {
    lines.push(
      ...againstKea(results, scenarios, 'smeltd-os', "leases written to the kernel before the ACK, as Kea's are"),
    );
  }
  for (const mode of [...new Set(scenarios.map((s) => s.mode))]) {
    const sizes = scenarios.filter((s) => s.mode === mode);
    const rates = sizes.map((s) => ({ clients: s.clients, rate: rateOf(results.of(s, 'smeltd')) }));
    const measured = rates.filter((x) => Number.isFinite(x.rate));
    const flat =
      measured.length >= 2
        ? Math.min(...measured.map((x) => x.rate)) / Math.max(...measured.map((x) => x.rate))
        : Number.NaN;
    lines.push({
      name: `Flat as the lease count grows (${mode}): smeltd's slowest size ≥ 0.8× its fastest`,
      pass: Number.isFinite(flat) ? flat >= 0.8 : undefined,
      detail:
        measured.length >= 2
          ? `${rates.map((x) => `${x.clients.toLocaleString('en')}: ${fmt(x.rate)}/s`).join(', ')} → ${fmt(flat)}×`
          : 'needs two client counts (the full run)',
    });
  }
  const lossDetails: string[] = [];
  let lossPass: boolean | undefined;
  for (const server of info.servers) {
    const ms = scenarios.flatMap((s) => results.of(s, server));
    const lost = lostOf(ms);
    if (!lost.checked) continue;
    const total = lost.before + lost.after + lost.reask;
    if (server === 'smeltd') lossPass = total === 0 && lost.restartFailures === 0;
    lossDetails.push(
      `${server}: ${total === 0 ? 'none' : `${lost.before} missing from the store, ${lost.after} after kill -9 + restart, ${lost.reask} re-asking clients not offered their address`}` +
        (lost.restartFailures > 0 ? ` (${lost.restartFailures} restarts failed: not checked there)` : ''),
    );
  }
  lines.push({
    name: 'Zero lost leases (every ACK in the store, also after kill -9 + restart)',
    pass: ours ? lossPass : undefined,
    detail: lossDetails.length > 0 ? lossDetails.join('; ') : 'not checked',
  });
  return lines;
}

/** The issue's reference figures (a Node load generator, this kind of machine), to compare this run against. */
function referenceTable(results: Results, scenarios: Scenario[]): string | undefined {
  const reference: { server: ServerId; clients: number; figure: string }[] = [
    { server: 'kea', clients: 1000, figure: '5.6–6.2k' },
    { server: 'kea', clients: 10_000, figure: '5.6–6.2k' },
    { server: 'kea', clients: 50_000, figure: '5.6–6.2k' },
    { server: 'kea-mt', clients: 1000, figure: '9.1–9.6k' },
    { server: 'kea-mt', clients: 50_000, figure: '9.1–9.6k' },
    { server: 'dnsmasq', clients: 1000, figure: '1.2k' },
    { server: 'dnsmasq', clients: 10_000, figure: '194' },
    { server: 'dnsmasq', clients: 50_000, figure: '81' },
  ];
  const rows = reference
    .map((ref) => {
      const scenario = scenarios.find((s) => s.mode === 'broadcast' && s.clients === ref.clients);
      const here = scenario ? rateOf(results.of(scenario, ref.server)) : Number.NaN;
      return { ...ref, here };
    })
    .filter((row) => Number.isFinite(row.here))
    .map((row) => [`${row.server}, ${row.clients.toLocaleString('en')} clients`, row.figure, fmt(row.here)]);
  if (rows.length === 0) return undefined;
  return markdownTable(['reference server', "the issue's DORA/s", 'this run DORA/s'], rows, ['left', 'right', 'right']);
}

export function renderReport(results: Results, scenarios: Scenario[], info: RunInfo): string {
  const out: string[] = [];
  const when = info.started
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  out.push(`### DHCP run of ${when}`, '');
  out.push(`Command: \`${info.command}\` — took ${duration(info.elapsedS)}.`, '');
  out.push(`- Machine: ${info.machine}; load average ${fmt(info.load.before)} before, ${fmt(info.load.after)} after.`);
  out.push(`- CPU placement: ${info.placement}.`);
  if (info.quiet.runs > 0) {
    out.push(
      `- Other work on the machine: each measured run waited for < ${info.quiet.threshold * 100}% CPU busy (up to ${info.quiet.waitS} s; ${duration(info.quiet.waitedS)} waited in all); ${info.quiet.busyStarts} of ${info.quiet.runs} runs started busy anyway.` +
        (info.cpuPressure === undefined
          ? ''
          : ` CPU pressure (PSI some) over the whole bench: ${(info.cpuPressure * 100).toFixed(0)}% of the time.`),
    );
  }
  out.push(
    `- Figures: median of ${info.runsWanted} runs (a fresh server with an empty lease store each), a run longer than ${info.repeatUnderS} s done once (n=1); retries, NAKs, failed and lease counts are totals over the runs. Runs stop starting clients after ${info.maxRunS} s.`,
  );
  for (const line of info.versions) out.push(`- ${line}`);
  for (const line of info.missing) out.push(`- Not measured: ${line}`);
  out.push('', 'Servers (each in the foreground, inside the server namespace):', '');
  for (const line of info.serverCommands) out.push(`- ${line}`);
  out.push('', 'Load generator and network:', '');
  for (const line of info.generator) out.push(`- ${line}`);
  out.push(`- ${info.topology}`);
  for (const server of info.servers) {
    const source = results.measurements.find((m) => m.server === server && m.store)?.store?.source;
    if (source) out.push(`- ${server}'s leases were read from ${source}.`);
  }
  for (const note of info.notes) out.push(`- ${note}`);
  out.push('', '#### Targets', '');
  for (const line of targets(results, scenarios, info)) {
    const mark = line.pass === undefined ? '–' : line.pass ? 'PASS' : 'FAIL';
    out.push(`- **${mark}** ${line.name}: ${line.detail}.`);
  }
  out.push('');
  for (const scenario of scenarios) {
    if (!info.servers.some((server) => results.of(scenario, server).length > 0)) continue;
    out.push(`#### ${scenario.title}`, '');
    out.push(scenarioTable(results, scenario, info), '');
    const notes = scenarioNotes(results, scenario, info);
    for (const note of notes) out.push(`- ${note}`);
    if (notes.length > 0) out.push('');
  }
  const reference = referenceTable(results, scenarios);
  if (reference) out.push("#### The reference servers against the issue's figures", '', reference, '');
  return out.join('\n');
}
