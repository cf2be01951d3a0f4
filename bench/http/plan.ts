import { MiB } from '../lib/stats.ts';

/** What a run measures; --quick and the full run differ only in these (each can be overridden by a flag). */
export interface Plan {
  /** Size of the random file inside the ISO (the big-file case). */
  sizeMiB: number;
  /** Concurrent clients per big-file scenario; each client downloads the whole file once per run. */
  clients: number[];
  /** Measured runs per big-file scenario and per wrk setting (median reported). */
  runs: number;
  /** wrk: connections per setting, seconds per run. */
  wrkConnections: number[];
  wrkSeconds: number;
  /** The memory check: 50 clients streaming from a 5 GiB ISO for this many seconds per server; 0 = not run. */
  rssSeconds: number;
  rssClients: number;
  rssGiB: number;
}

export const fullPlan: Plan = {
  sizeMiB: 300,
  clients: [1, 50],
  runs: 3,
  wrkConnections: [16, 256],
  wrkSeconds: 10,
  rssSeconds: 40,
  rssClients: 50,
  rssGiB: 5,
};

export const quickPlan: Plan = {
  sizeMiB: 300,
  clients: [1, 10],
  runs: 3,
  wrkConnections: [256],
  wrkSeconds: 5,
  rssSeconds: 0,
  rssClients: 50,
  rssGiB: 5,
};

/**
 * Rough seconds for the whole plan on this 2-vCPU machine, from rates measured here (nginx ~1.5-3 GiB/s, smeltd
 * roughly half; the sha256-verified pass is client-bound at ~1.2 GiB/s), plus set-up. For --plan and the progress
 * line; every step has its own hard time limit.
 */
export function estimateSeconds(plan: Plan): { total: number; lines: string[] } {
  const lines: string[] = [];
  const bytes = plan.sizeMiB * MiB;
  let total = 20; // namespace, servers, fixtures (the payload is cached), warm-up
  if (plan.rssSeconds > 0) total += 15; // the sparse 5 GiB ISO: xorriso | dd conv=sparse
  for (const clients of plan.clients) {
    const gib = (clients * bytes) / 2 ** 30;
    const raw = plan.runs * (gib / 2 + gib / 1) + 2 * plan.runs; // nginx + smeltd
    const verified = 2 * (gib / 1.2) + 2;
    lines.push(`  ${plan.sizeMiB} MiB × ${clients} clients: ~${Math.round(raw + verified)} s`);
    total += raw + verified;
  }
  for (const connections of plan.wrkConnections) {
    const seconds = 2 * (plan.runs * (plan.wrkSeconds + 1) + 3);
    lines.push(`  wrk ${connections} connections: ~${seconds} s`);
    total += seconds;
  }
  if (plan.rssSeconds > 0) {
    const seconds = 2 * (plan.rssSeconds + 5);
    lines.push(`  memory: ${plan.rssClients} clients streaming from a ${plan.rssGiB} GiB ISO: ~${seconds} s`);
    total += seconds;
  }
  return { total, lines };
}
