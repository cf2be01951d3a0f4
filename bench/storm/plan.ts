import type { ServerId } from './servers.ts';

/** What one `pnpm bench storm` does; --quick and the full run differ in size, not in kind. */
export interface Plan {
  servers: ServerId[];
  clients: number;
  /** Runs per server (alternating which goes first); the median run is compared. */
  runs: number;
  kernelMiB: number;
  initrdMiB: number;
  /** All machines power on within this many seconds. */
  rampS: number;
  /** A storm is over this many seconds after the first power-on; machines not booted by then failed. */
  maxRunS: number;
  /** Unmeasured machines (other MACs) booted first, one by one's worth: a server that has served before. */
  warmup: number;
}

/**
 * Full: 1,000 machines, an 8 MiB kernel and a 16 MiB initrd each (~24 GB over the veth pair per server; a real
 * Debian netboot kernel + initrd is ~40 MB). Quick: 100 machines and a quarter of the sizes.
 */
export const fullPlan: Plan = {
  servers: ['smeltd', 'reference'],
  clients: 1000,
  runs: 1,
  kernelMiB: 8,
  initrdMiB: 16,
  rampS: 2,
  maxRunS: 600,
  warmup: 10,
};

export const quickPlan: Plan = {
  ...fullPlan,
  clients: 100,
  runs: 1,
  kernelMiB: 2,
  initrdMiB: 4,
  maxRunS: 180,
};

/** Seconds per server run, roughly: set-up (namespaces, start, deploying on smeltd, warm-up) plus the storm. */
export function estimateSeconds(plan: Plan): number {
  const perServer = (id: ServerId) => {
    const setup = 8 + (id === 'smeltd' ? plan.clients / 100 : 0);
    // ~1 GB/s through the simulator's one core, plus the ramp and the DHCP/TFTP stages.
    const storm = plan.rampS + 3 + (plan.clients * (plan.kernelMiB + plan.initrdMiB) * 1.05) / 1000;
    return setup + Math.min(plan.maxRunS, storm);
  };
  return plan.runs * plan.servers.reduce((sum, id) => sum + perServer(id), 0);
}
