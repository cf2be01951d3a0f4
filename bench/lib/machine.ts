import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';

/** One line about this machine for a report: CPU model and count, memory, kernel, Node. */
export function describeMachine(): string {
  let model = 'unknown CPU';
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {
    // not Linux
  }
  const gib = (totalmem() / 2 ** 30).toFixed(0);
  return `${availableParallelism()} × ${model}, ${gib} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

/** The 1-minute load average. */
export function load1(): number {
  return loadavg()[0] ?? 0;
}

function cpuTimes(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { idle, total: fields.reduce((sum, value) => sum + value, 0) };
}

/** The share of all CPUs busy over the next `ms` milliseconds (0..1). */
export async function busyFraction(ms = 250): Promise<number> {
  const before = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = cpuTimes();
  const total = after.total - before.total;
  return total > 0 ? 1 - (after.idle - before.idle) / total : 0;
}

/**
 * Waits (up to maxWaitMs) until the machine is quiet — less than `threshold` of its CPU time busy over a short
 * sample — so that a measurement does not start while other work (another engineer's test suite) holds the CPUs.
 * Between measurements the benchmark's own servers are idle, so what is busy is someone else.
 */
export async function waitForQuiet(threshold: number, maxWaitMs: number): Promise<{ busy: number; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const busy = await busyFraction();
    if (busy < threshold || Date.now() - started >= maxWaitMs) return { busy, waitedMs: Date.now() - started };
    await new Promise((resolve) => setTimeout(resolve, 750));
  }
}

/** Microseconds some task waited for a CPU (Linux PSI, /proc/pressure/cpu "some total"); undefined without PSI. */
export function cpuPressureUs(): number | undefined {
  try {
    const total = /some .*total=(\d+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1];
    return total === undefined ? undefined : Number(total);
  } catch {
    return undefined;
  }
}
