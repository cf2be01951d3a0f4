import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time used so far by every thread of every process in a process group (a server the bench started detached:
 * `ip netns exec` → taskset → the server, or its wrapper script and the node it runs), in nanoseconds, from
 * /proc/PID/task/TID/schedstat (time on a CPU, ns: proc(5)). Read before and after a run, the difference divided
 * by the DORAs done gives the server's CPU per DORA, a figure that moves less than the rate on a shared machine.
 * Threads that exit between the two readings are not counted (the servers here keep theirs).
 */
export function groupCpuNs(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 5 is the process group; the command name (field 2) may hold spaces, so count from its ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      for (const tid of readdirSync(`/proc/${entry}/task`)) {
        const schedstat = readFileSync(`/proc/${entry}/task/${tid}/schedstat`, 'utf8');
        total += Number(schedstat.split(' ')[0]);
      }
    } catch {
      // gone while we looked
    }
  }
  return total;
}
