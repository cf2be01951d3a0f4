import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pin } from '../lib/cpu.ts';
import { cpuPressureUs } from '../lib/machine.ts';
import { sha256File } from '../lib/hash.ts';
import type { Netns } from '../lib/netns.ts';
import type { Payload } from '../lib/payload.ts';
import { run } from '../lib/process.ts';
import { MiB } from '../lib/stats.ts';
import { downloadCommand, type ClientId } from './clients.ts';

export interface Measurement {
  /** Downloads that finished with the right bytes / with wrong bytes (the client said it succeeded) / failed. */
  ok: number;
  corrupt: number;
  failed: number;
  /** MiB/s: one client's rate, or for concurrent clients all bytes over first start to last end; NaN on failure. */
  mibps: number;
  seconds: number;
  /** Retransmission timeouts the clients reported (atftp prints "timeout: retrying"). */
  timeouts: number;
  /** Datagrams the client namespace's kernel dropped because a client's socket buffer was full. */
  rcvbufErrors: number;
  /** Share of the run's wall time some task on the machine waited for a CPU (PSI "some"); NaN without PSI. */
  pressure: number;
  /**
   * Share of the CPUs' time over the run that the hypervisor gave to others while this VM wanted it (steal, from
   * /proc/stat); NaN where unknown. PSI does not see it: a stolen vCPU is simply slower.
   */
  steal: number;
  /** First error line of each failed download. */
  errors: string[];
}

/** CPU time stolen by the hypervisor, all CPUs, seconds (/proc/stat "cpu" steal, USER_HZ 100); undefined if unknown. */
export function stealSeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/) ?? [];
    const steal = Number(fields[8]);
    return fields[0] === 'cpu' && Number.isFinite(steal) ? steal / 100 : undefined;
  } catch {
    return undefined;
  }
}

/** UDP RcvbufErrors of a namespace (/proc/net/snmp is per namespace). */
async function rcvbufErrors(ns: Netns): Promise<number> {
  const [header, values] = (await ns.exec(['cat', '/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  const index = header?.split(/\s+/).indexOf('RcvbufErrors') ?? -1;
  return index < 0 ? 0 : Number(values?.split(/\s+/)[index] ?? 0);
}

export interface MeasureOptions {
  ns: Netns;
  cpu?: string;
  client: ClientId;
  clients: number;
  host: string;
  port: number;
  payload: Payload;
  blksize: number;
  windowsize: number;
  outDir: string;
  limitS: number;
}

/**
 * Runs `clients` downloads at once (one bash, pinned to the client CPUs, starts them all and stamps each one's
 * start and end with $EPOCHREALTIME), then checks every downloaded file's SHA-256 and deletes it.
 */
export async function measure(o: MeasureOptions): Promise<Measurement> {
  rmSync(o.outDir, { recursive: true, force: true });
  mkdirSync(o.outDir, { recursive: true });
  const lines = [`cd '${o.outDir}' || exit 1`];
  for (let i = 0; i < o.clients; i++) {
    const command = downloadCommand(o.client, {
      host: o.host,
      port: o.port,
      file: o.payload.name,
      out: `out${i}`,
      blksize: o.blksize,
      windowsize: o.windowsize,
      limitS: o.limitS,
    });
    lines.push(`( s=$EPOCHREALTIME; ${command} >c${i}.log 2>&1; rc=$?; e=$EPOCHREALTIME; echo "R ${i} $rc $s $e" ) &`);
  }
  lines.push('wait');
  const [command, ...args] = o.ns.wrap(pin(o.cpu, ['bash', '-c', lines.join('\n')]));
  const dropsBefore = await rcvbufErrors(o.ns);
  const pressureBefore = cpuPressureUs();
  const stealBefore = stealSeconds();
  const result = await run(command ?? 'ip', args, { timeoutMs: (o.limitS + 15) * 1000 });
  const pressureAfter = cpuPressureUs();
  const stealAfter = stealSeconds();
  const steal =
    stealBefore === undefined || stealAfter === undefined
      ? Number.NaN
      : (stealAfter - stealBefore) / (availableParallelism() * (result.ms / 1000));
  const pressure =
    pressureBefore === undefined || pressureAfter === undefined
      ? Number.NaN
      : (pressureAfter - pressureBefore) / 1000 / result.ms;
  const drops = (await rcvbufErrors(o.ns)) - dropsBefore;

  const stamps = new Map<number, { rc: number; start: number; end: number }>();
  for (const line of result.stdout.split('\n')) {
    const match = /^R (\d+) (\d+) ([\d.]+) ([\d.]+)$/.exec(line);
    if (match) stamps.set(Number(match[1]), { rc: Number(match[2]), start: Number(match[3]), end: Number(match[4]) });
  }
  const m: Measurement = {
    ok: 0,
    corrupt: 0,
    failed: 0,
    mibps: Number.NaN,
    seconds: Number.NaN,
    timeouts: 0,
    rcvbufErrors: drops,
    pressure,
    steal,
    errors: [],
  };
  let first = Infinity;
  let last = 0;
  let single = Number.NaN;
  for (let i = 0; i < o.clients; i++) {
    const stamp = stamps.get(i);
    const logPath = join(o.outDir, `c${i}.log`);
    const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
    m.timeouts += log.split('timeout: retrying').length - 1;
    const out = join(o.outDir, `out${i}`);
    if (stamp?.rc !== 0) {
      m.failed++;
      const why = stamp ? `exit ${stamp.rc}` : result.timedOut ? 'killed at the time limit' : 'no result';
      const detail = log
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('Option ') && !l.includes('wrong block'))
        .pop();
      m.errors.push(`${why}${detail ? `: ${detail.trim()}` : ''}`);
      continue;
    }
    first = Math.min(first, stamp.start);
    last = Math.max(last, stamp.end);
    single = stamp.end - stamp.start;
    if (o.client === 'curl') {
      const total = /curl_time_total=([\d.]+)/.exec(log)?.[1];
      if (total !== undefined) single = Number(total);
    }
    const good =
      existsSync(out) && statSync(out).size === o.payload.bytes && (await sha256File(out)) === o.payload.sha256;
    if (good) m.ok++;
    else m.corrupt++;
  }
  rmSync(o.outDir, { recursive: true, force: true });
  if (m.failed === 0) {
    m.seconds = o.clients === 1 ? single : last - first;
    m.mibps = (o.clients * o.payload.bytes) / MiB / m.seconds;
  }
  return m;
}
