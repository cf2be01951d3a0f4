import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import { cpuPressureUs } from '../lib/machine.ts';
import type { Netns } from '../lib/netns.ts';
import { run } from '../lib/process.ts';
import { MiB } from '../lib/stats.ts';

/**
 * How each client treats the bytes it receives:
 * - raw: curl -o /dev/null — the transfer rate; status and byte count checked, the bytes not;
 * - sha256: curl | openssl dgst -sha256 — every byte checked against the source's SHA-256 (costs client CPU:
 *   OpenSSL's SHA-256 with SHA-NI does ~1.5 GB/s per core here; coreutils' sha256sum only ~0.2);
 * - cmp: curl (from a Range offset, up to a time limit) | cmp - SOURCE 0 OFFSET — every byte received compared
 *   with the source at that offset; a transfer cut by the time limit is a checked prefix ("stopped").
 */
export type CheckMode = 'raw' | 'sha256' | 'cmp';

export interface TransferOptions {
  ns: Netns;
  cpu?: string;
  url: string;
  clients: number;
  /** The whole file's size (what a complete transfer from its offset must deliver). */
  fileBytes: number;
  mode: CheckMode;
  sha256?: string;
  /** cmp: the regular file with the same bytes, and each client's start offset (Range: bytes=OFFSET-). */
  source?: string;
  offsets?: number[];
  /** Each curl's --max-time. */
  maxTimeS: number;
  /** In cmp mode a client stopped by --max-time is the plan, not a failure. */
  stopAtMaxTime?: boolean;
  outDir: string;
}

export type Verdict = 'ok' | 'stopped' | 'corrupt' | 'failed';

export interface Transfer {
  verdict: Verdict;
  status: number;
  bytes: number;
  /** curl's %{time_total}: the request's own time, without curl's start-up. */
  seconds: number;
  detail?: string;
}

export interface TransferRun {
  transfers: Transfer[];
  /** All bytes received over first client start to last client end (1 client: its own time_total); MiB/s. */
  mibps: number;
  seconds: number;
  bytes: number;
  counts: Record<Verdict, number>;
  /** Share of the run's wall time some task waited for a CPU (PSI some); NaN without PSI. */
  pressure: number;
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
const writeOut = 'W %{http_code} %{size_download} %{time_total}\\n';

function clientLine(o: TransferOptions, i: number): string {
  const offset = o.offsets?.[i] ?? 0;
  const curl = [
    'curl -sS',
    `--max-time ${o.maxTimeS}`,
    ...(offset > 0 ? [`-H 'Range: bytes=${offset}-'`] : []),
    quote(o.url),
  ].join(' ');
  const stamp = (rc: string) => `e=$EPOCHREALTIME; echo "R ${i} ${rc} $s $e"`;
  switch (o.mode) {
    case 'raw':
      return `( s=$EPOCHREALTIME; ${curl} -o /dev/null -w '${writeOut}' >w${i} 2>&1; rc=$?; ${stamp('$rc')} ) &`;
    case 'sha256':
      return (
        `( s=$EPOCHREALTIME; ${curl} -w '%{stderr}${writeOut}' 2>w${i} | openssl dgst -sha256 -r >h${i} 2>&1; ` +
        `rc=\${PIPESTATUS[0]}; ${stamp('$rc')} ) &`
      );
    case 'cmp':
      return (
        `( s=$EPOCHREALTIME; ${curl} -w '%{stderr}${writeOut}' 2>w${i} | cmp - ${quote(o.source ?? '')} 0 ${offset} >c${i} 2>&1; ` +
        `rc=\${PIPESTATUS[0]}; ${stamp('$rc')} ) &`
      );
  }
}

/** The command one client runs, as a person would type it (for BENCHMARKS.md). */
export function exampleCommand(mode: CheckMode): string {
  switch (mode) {
    case 'raw':
      return `curl -sS -o /dev/null -w '${writeOut}' URL`;
    case 'sha256':
      return `curl -sS -w '%{stderr}${writeOut}' URL | openssl dgst -sha256 -r`;
    case 'cmp':
      return `curl -sS --max-time T -H 'Range: bytes=OFFSET-' URL | cmp - SOURCE 0 OFFSET`;
  }
}

/** Runs o.clients transfers at once (one bash starts them all, each stamped with $EPOCHREALTIME) and checks each. */
export async function transfer(o: TransferOptions): Promise<TransferRun> {
  rmSync(o.outDir, { recursive: true, force: true });
  mkdirSync(o.outDir, { recursive: true });
  const lines = [`cd ${quote(o.outDir)} || exit 1`];
  for (let i = 0; i < o.clients; i++) lines.push(clientLine(o, i));
  lines.push('wait');
  const [command, ...args] = o.ns.wrap(pin(o.cpu, ['bash', '-c', lines.join('\n')]));
  const pressureBefore = cpuPressureUs();
  const result = await run(command ?? 'ip', args, { timeoutMs: (o.maxTimeS + 20) * 1000 });
  const pressureAfter = cpuPressureUs();
  const pressure =
    pressureBefore === undefined || pressureAfter === undefined
      ? Number.NaN
      : (pressureAfter - pressureBefore) / 1000 / result.ms;

  const stamps = new Map<number, { rc: number; start: number; end: number }>();
  for (const line of result.stdout.split('\n')) {
    const match = /^R (\d+) (\d+) ([\d.]+) ([\d.]+)$/.exec(line);
    if (match) stamps.set(Number(match[1]), { rc: Number(match[2]), start: Number(match[3]), end: Number(match[4]) });
  }
  const read = (name: string) => {
    const path = join(o.outDir, name);
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  };
  const transfers: Transfer[] = [];
  let first = Infinity;
  let last = 0;
  for (let i = 0; i < o.clients; i++) {
    const stamp = stamps.get(i);
    const log = read(`w${i}`);
    const w = /^W (\d+) (\d+) ([\d.]+)$/m.exec(log);
    const status = Number(w?.[1] ?? 0);
    const bytes = Number(w?.[2] ?? 0);
    const seconds = Number(w?.[3] ?? Number.NaN);
    const expected = o.fileBytes - (o.offsets?.[i] ?? 0);
    const curlError = log
      .split('\n')
      .find((line) => line.startsWith('curl:'))
      ?.trim();
    if (stamp) {
      first = Math.min(first, stamp.start);
      last = Math.max(last, stamp.end);
    }
    const t = (verdict: Verdict, detail?: string): Transfer => ({
      verdict,
      status,
      bytes,
      seconds,
      ...(detail === undefined ? {} : { detail }),
    });
    if (!stamp) {
      transfers.push(t('failed', result.timedOut ? 'killed at the time limit' : 'no result'));
      continue;
    }
    const cmpSaid = o.mode === 'cmp' ? read(`c${i}`).trim() : '';
    if (o.mode === 'cmp' && cmpSaid.includes('differ')) {
      transfers.push(t('corrupt', `cmp: ${cmpSaid}`));
      continue;
    }
    const timedOut = stamp.rc === 28;
    if (stamp.rc !== 0 && !(timedOut && o.stopAtMaxTime)) {
      transfers.push(t('failed', `curl exit ${stamp.rc}${curlError ? `: ${curlError}` : ''}`));
      continue;
    }
    if (status !== 200 && status !== 206) {
      transfers.push(t('failed', `HTTP ${status}`));
      continue;
    }
    if (timedOut) {
      // cmp stopped at EOF on the pipe: every byte that came matched (it says "EOF on -" and nothing else).
      transfers.push(t('stopped', cmpSaid));
      continue;
    }
    if (bytes !== expected) {
      transfers.push(t('corrupt', `${bytes} bytes, expected ${expected}`));
      continue;
    }
    if (o.mode === 'sha256') {
      const got = read(`h${i}`).trim().split(/\s/)[0] ?? '';
      if (got !== o.sha256) {
        transfers.push(t('corrupt', `SHA-256 ${got.slice(0, 16)}…, expected ${(o.sha256 ?? '').slice(0, 16)}…`));
        continue;
      }
    }
    if (o.mode === 'cmp' && cmpSaid !== '') {
      transfers.push(t('corrupt', `cmp: ${cmpSaid}`));
      continue;
    }
    transfers.push(t('ok'));
  }
  rmSync(o.outDir, { recursive: true, force: true });
  const counts: Record<Verdict, number> = { ok: 0, stopped: 0, corrupt: 0, failed: 0 };
  for (const x of transfers) counts[x.verdict]++;
  const bytes = transfers.reduce((sum, x) => sum + x.bytes, 0);
  const only = transfers[0];
  const seconds = o.clients === 1 && only ? only.seconds : last - first;
  return {
    transfers,
    mibps: counts.failed > 0 ? Number.NaN : bytes / MiB / seconds,
    seconds,
    bytes,
    counts,
    pressure,
  };
}

/** Nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? Number.NaN;
}
