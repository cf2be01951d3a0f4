import { availableParallelism } from 'node:os';

/** Which CPUs the server and the clients run on (taskset -c LIST); undefined when there is nothing to split. */
export interface Placement {
  server?: string;
  client?: string;
  describe: string;
}

export const pinModes = ['split', 'shared', 'none'] as const;
export type PinMode = (typeof pinModes)[number];

/**
 * split: server and clients on disjoint CPUs (the default); shared: everything on CPU 0 (no cross-CPU wake-ups,
 * but one core for both); none: the scheduler decides.
 */
export function placement(mode: PinMode = 'split'): Placement {
  if (mode === 'none') return { describe: 'nothing pinned (the scheduler places server and clients)' };
  if (mode === 'shared') return { server: '0', client: '0', describe: 'server and clients all on CPU 0 (taskset)' };
  const cpus = availableParallelism();
  if (cpus < 2) return { describe: `${cpus} CPU: nothing pinned` };
  if (cpus === 2) return { server: '0', client: '1', describe: 'server on CPU 0, clients on CPU 1 (taskset)' };
  const half = Math.floor(cpus / 2);
  return {
    server: `0-${half - 1}`,
    client: `${half}-${cpus - 1}`,
    describe: `server on CPUs 0-${half - 1}, clients on CPUs ${half}-${cpus - 1} (taskset)`,
  };
}

/** argv prefixed with `taskset -c cpus` (when cpus is set). */
export function pin(cpus: string | undefined, argv: readonly string[]): string[] {
  return cpus === undefined ? [...argv] : ['taskset', '-c', cpus, ...argv];
}
