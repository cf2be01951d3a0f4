import { readdirSync, readFileSync } from 'node:fs';

/** The pids of `root` and every process below it (nginx's workers under its master). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const result: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift();
    if (pid === undefined) break;
    result.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return result;
}

/** VmRSS of one process in bytes; 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? 0 : Number(kib) * 1024;
  } catch {
    return 0;
  }
}

/** The process's command line (/proc/PID/cmdline, arguments joined by spaces); '' when it is gone. */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export interface RssSampler {
  /** Starts a new phase: its peak is tracked from now on. */
  phase(name: string): void;
  /** The current RSS (summed over the tracked processes). */
  now(): number;
  /** Peak per phase so far, bytes. */
  peaks(): Map<string, number>;
  stop(): void;
}

/**
 * Samples VmRSS every intervalMs (summed over the pids `pids()` returns: the smeltd process, or nginx's master and
 * workers, whose shared pages are then counted once per process) and keeps the peak of each phase.
 */
export function sampleRss(pids: () => number[], intervalMs = 100): RssSampler {
  const peaks = new Map<string, number>();
  let current = '';
  const now = () => pids().reduce((sum, pid) => sum + rssBytes(pid), 0);
  const sample = () => {
    const value = now();
    if (current !== '') peaks.set(current, Math.max(peaks.get(current) ?? 0, value));
  };
  const timer = setInterval(sample, intervalMs);
  return {
    phase(name) {
      current = name;
      sample();
    },
    now,
    peaks: () => new Map(peaks),
    stop() {
      sample();
      clearInterval(timer);
    },
  };
}
