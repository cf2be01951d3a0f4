import { availableParallelism } from 'node:os';
import { pin } from '../lib/cpu.ts';
import type { Netns } from '../lib/netns.ts';
import { run } from '../lib/process.ts';

const script = new URL('wrk-report.lua', import.meta.url).pathname;

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles, milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Socket errors (connect, read, write), timeouts, and responses that were not 2xx/3xx. */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Bytes per response (headers included), from wrk's byte count. */
  bytesPerResponse: number;
  failed?: string;
}

interface WrkJson {
  requests: number;
  duration_us: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Reads the WRK_JSON line bench/http/wrk-report.lua prints. */
export function parseWrk(stdout: string): WrkResult | undefined {
  const line = /^WRK_JSON (\{.*\})$/m.exec(stdout)?.[1];
  if (line === undefined) return undefined;
  const j = JSON.parse(line) as WrkJson;
  const seconds = j.duration_us / 1e6;
  return {
    requests: j.requests,
    seconds,
    rps: seconds > 0 ? j.requests / seconds : Number.NaN,
    p50: j.p50 / 1000,
    p90: j.p90 / 1000,
    p99: j.p99 / 1000,
    max: j.max / 1000,
    errors: j.connect + j.read + j.write,
    timeouts: j.timeout,
    non2xx: j.status,
    bytesPerResponse: j.requests > 0 ? j.bytes / j.requests : Number.NaN,
  };
}

/** wrk's argv: one thread per CPU, keep-alive connections, latency percentiles, a 2 s timeout (wrk's default). */
export function wrkArgs(url: string, connections: number, seconds: number): string[] {
  const threads = Math.min(availableParallelism(), connections);
  return [
    'wrk',
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '2s',
    '-s',
    script,
    url,
  ];
}

export async function runWrk(o: {
  ns: Netns;
  cpu?: string;
  url: string;
  connections: number;
  seconds: number;
}): Promise<WrkResult> {
  const [command, ...args] = o.ns.wrap(pin(o.cpu, wrkArgs(o.url, o.connections, o.seconds)));
  const result = await run(command ?? 'ip', args, { timeoutMs: (o.seconds + 30) * 1000 });
  const parsed = parseWrk(result.stdout);
  if (parsed && result.code === 0) return parsed;
  const why = result.timedOut ? 'timed out' : `exit ${String(result.code ?? result.signal)}`;
  return {
    requests: 0,
    seconds: Number.NaN,
    rps: Number.NaN,
    p50: Number.NaN,
    p90: Number.NaN,
    p99: Number.NaN,
    max: Number.NaN,
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    bytesPerResponse: Number.NaN,
    failed: `wrk ${why}: ${`${result.stderr}${result.stdout}`.trim().split('\n').slice(-2).join(' / ')}`,
  };
}

export async function wrkVersion(): Promise<string> {
  const { stdout, stderr } = await run('wrk', ['--version']);
  return (
    `${stdout}${stderr}`
      .split('\n')[0]
      ?.replace(/ Copyright.*/, '')
      .trim() ?? '?'
  );
}
