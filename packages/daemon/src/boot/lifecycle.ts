import type { DeploymentState, DeploymentType } from '@smelt/shared/deployment';
import type { MachineState } from '@smelt/shared/machine';

/**
 * The machine lifecycle (DESIGN.md §3) as one pure table. A machine without a deployment is "free"; the state of
 * one with a deployment is the deployment's. Every transition the daemon makes goes through `transition`, and
 * each is recorded as an event by the caller.
 *
 *  free ──deploy──▶ provisioning ──installed──▶ deployed (diskless: running) ── later boots: local disk
 *                        │ failed / timeout                │ release [--wipe]
 *                        ▼                                 ▼
 *                      failed ◀──────────────────────── wiping ──wiped──▶ free
 */
export type LifecycleEvent =
  'deploy' | 'installed' | 'failed' | 'timeout' | 'release' | 'release-wipe' | 'wiped' | 'reinstall';

export type Outcome = { ok: true; next: MachineState; changed: boolean } | { ok: false; reason: string };

type Row = Partial<Record<MachineState, MachineState>>;

/** From-state → to-state per event. A transition that is absent is refused with a reason. */
const table: Record<LifecycleEvent, Row> = {
  deploy: { free: 'provisioning' },
  // A second phone-home is idempotent: deployed stays deployed.
  installed: { provisioning: 'deployed', deployed: 'deployed', running: 'running' },
  failed: { provisioning: 'failed', failed: 'failed', wiping: 'failed' },
  timeout: { provisioning: 'failed', wiping: 'failed' },
  release: { provisioning: 'free', deployed: 'free', running: 'free', failed: 'free', wiping: 'free' },
  'release-wipe': { provisioning: 'wiping', deployed: 'wiping', running: 'wiping', failed: 'wiping' },
  wiped: { wiping: 'free' },
  reinstall: {
    deployed: 'provisioning',
    running: 'provisioning',
    failed: 'provisioning',
    provisioning: 'provisioning',
  },
};

export function transition(from: MachineState, event: LifecycleEvent, type?: DeploymentType): Outcome {
  let next = table[event][from];
  if (next === undefined) return { ok: false, reason: refusal(from, event) };
  // A diskless machine boots from the network every time: its phone-home means running, not installed.
  if (event === 'installed' && next === 'deployed' && type === 'live') next = 'running';
  return { ok: true, next, changed: next !== from };
}

function refusal(from: MachineState, event: LifecycleEvent): string {
  switch (event) {
    case 'deploy':
      return `the machine is ${from}, not free: release it or update its deployment`;
    case 'installed':
    case 'failed':
      return `the machine is ${from}; it is not installing`;
    case 'wiped':
      return `the machine is ${from}, not wiping`;
    case 'reinstall':
      return from === 'free' ? 'the machine is free: deploy it instead' : `the machine is ${from}`;
    default:
      return `cannot ${event} a machine that is ${from}`;
  }
}

/** The deployment state after a transition; "free" means the deployment is removed. */
export function storedState(state: MachineState): DeploymentState | undefined {
  return state === 'free' ? undefined : state;
}
