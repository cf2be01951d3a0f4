import { readdirSync, readFileSync } from 'node:fs';

/** /proc/PID/stat after the command name (which may hold spaces and parentheses), split on spaces; [] when gone. */
function statFields(pid: number): string[] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return [];
  }
}

/** The pids of `root` and every process below it (nginx's workers under its master). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = Number(statFields(Number(entry))[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
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

/** User + system CPU seconds of the processes (USER_HZ is 100 on Linux); those gone count 0. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100;
}

/** Summed VmRSS of the processes, bytes. */
export function rssOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      total += kib === undefined ? 0 : Number(kib) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * Other benchmarks or heavy test runs on the machine that are not this process, its ancestors or its descendants
 * (pid and the start of the command line): another `bench/run.ts`, Kea, perfdhcp, a master nginx, a QEMU guest.
 */
export function otherBenchmarks(pattern = /bench\/run\.ts|kea-dhcp4|perfdhcp|nginx: master|qemu-system/): string[] {
  const mine = new Set<number>();
  for (let pid = process.pid; pid > 1;) {
    mine.add(pid);
    const parent = Number(statFields(pid)[1]);
    if (!Number.isInteger(parent) || parent <= 0) break;
    pid = parent;
  }
  for (const pid of processTree(process.pid)) mine.add(pid);
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (pattern.test(cmdline) && !cmdline.includes('grep')) found.push(`${entry} ${cmdline.slice(0, 100)}`);
  }
  return found;
}
