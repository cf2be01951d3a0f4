import {
  deploymentSchema,
  type Deployment,
  type DeploymentPatch,
  type DeploymentSpec,
  type deploymentStates,
  type deploymentTypes,
} from '@smelt/shared/deployment';
import { macToDashes, tryParseMac } from '@smelt/shared/mac';
import type { MachineRecord } from '@smelt/shared/machine';
import { applyMergePatch } from '@smelt/shared/patch';
import { fieldErrorsFromZod } from '@smelt/shared/problem';
import { conflict, invalidField, notFound, SmeltError } from '../errors.ts';
import type { BatchOp, Versioned } from '../store/store.ts';
import { transition, type LifecycleEvent } from '../boot/lifecycle.ts';
import { newToken, tokenMatches } from './tokens.ts';
import type { InventoryContext } from './context.ts';
import { paginate } from './page.ts';

export interface DeploymentListQuery {
  limit: number;
  cursor?: string | undefined;
  boot?: string | undefined;
  state?: (typeof deploymentStates)[number] | undefined;
  type?: (typeof deploymentTypes)[number] | undefined;
}

export function createDeploymentInventory(ctx: InventoryContext) {
  /** A deployment is named by its name or by its machine's MAC in any accepted spelling. */
  async function find(ref: string): Promise<Versioned<Deployment>> {
    const mac = tryParseMac(ref);
    const row = mac
      ? await ctx.deployments.get(mac)
      : (await ctx.deployments.all()).find((candidate) => candidate.value.name === ref);
    if (!row) throw notFound('deployment', ref);
    return row;
  }

  /**
   * A disk the daemon makes (live.iscsi.base) is exported at the daemon's portal as the machine's own target, LUN 1
   * (tgtd's LUN 0 is its controller): those fields are the daemon's, whatever the request said.
   */
  function withIscsiTarget(deployment: Deployment): Deployment {
    const iscsi = deployment.live?.iscsi;
    if (deployment.type !== 'live' || !deployment.live || iscsi?.base === undefined) return deployment;
    if (!ctx.iscsi) {
      throw invalidField(
        'body',
        'live.iscsi.base',
        'this daemon makes no iSCSI disks: set iscsi.enabled in its config (and run tgtd), or name an existing target',
      );
    }
    const target = { ...iscsi, server: ctx.iscsi.portal, target: ctx.iscsi.targetOf(deployment.mac), lun: 1 };
    return { ...deployment, live: { ...deployment.live, iscsi: target } };
  }

  /** Rules against the other deployments and the boots: one name, one address, an existing boot. */
  async function checkAgainstOthers(deployment: Deployment): Promise<void> {
    checkLive(deployment);
    if (deployment.type === 'image' && !deployment.image)
      throw invalidField('body', 'image', 'an image deployment needs an image URL');
    if (deployment.type !== 'image' && deployment.image)
      throw invalidField('body', 'image', 'an image needs type "image"');
    if (!(await ctx.boots.get(deployment.boot))) {
      const names = (await ctx.boots.all()).map((b) => b.value.name);
      throw invalidField(
        'body',
        'boot',
        `no boot named "${deployment.boot}" (boots: ${names.join(', ') || 'none yet'})`,
      );
    }
    for (const { value: other } of await ctx.deployments.all()) {
      if (other.mac === deployment.mac) continue;
      if (other.name === deployment.name) {
        throw conflict(`the name "${deployment.name}" is taken by the deployment of ${other.mac}`);
      }
      if (deployment.address !== undefined && other.address === deployment.address) {
        throw conflict(`the address ${deployment.address} is taken by deployment "${other.name}" (${other.mac})`);
      }
    }
  }

  /** Operators may deploy a machine before it has ever been seen; it is registered then. */
  async function ensureMachine(mac: string, now: string): Promise<void> {
    if (await ctx.machines.get(mac)) return;
    const machine: MachineRecord = { mac, labels: {}, createdAt: now, updatedAt: now };
    await ctx.machines.put(mac, machine, 0);
  }

  return {
    get: async (ref: string) => (await find(ref)).value,

    async list(query: DeploymentListQuery) {
      const all = (await ctx.deployments.all()).map((row) => row.value);
      const matching = all.filter(
        (d) =>
          (query.boot === undefined || d.boot === query.boot) &&
          (query.state === undefined || d.state === query.state) &&
          (query.type === undefined || d.type === query.type),
      );
      return paginate(matching, (d) => d.name, query);
    },

    create: (spec: DeploymentSpec) =>
      ctx.exclusive(async () => {
        const existing = await ctx.deployments.get(spec.mac);
        if (existing) {
          throw conflict(
            `machine ${spec.mac} already has deployment "${existing.value.name}"; update or delete it first`,
          );
        }
        const now = ctx.timestamp();
        const name = spec.name ?? defaultName(spec);
        const deployment = withIscsiTarget({ ...spec, name, state: 'provisioning', createdAt: now, updatedAt: now });
        await checkAgainstOthers(deployment);
        await ensureMachine(spec.mac, now);
        // The deployment and its phone-home token appear together or not at all.
        await ctx.store.batch([
          { collection: 'deployments', key: spec.mac, value: deployment, ifVersion: 0 },
          { collection: 'tokens', key: spec.mac, value: newToken(now) },
        ]);
        ctx.record('deployment.created', {
          mac: spec.mac,
          subject: name,
          message: `deployment "${name}" created (boot ${deployment.boot}); provisioning`,
        });
        return deployment;
      }),

    update: (ref: string, patch: DeploymentPatch) =>
      ctx.exclusive(async () => {
        const row = await find(ref);
        const parsed = deploymentSchema.safeParse({ ...applyMergePatch(row.value, patch), updatedAt: ctx.timestamp() });
        if (!parsed.success) {
          throw new SmeltError(
            'invalid_request',
            'the deployment would not be valid after this change',
            fieldErrorsFromZod(parsed.error, 'body'),
          );
        }
        const deployment = withIscsiTarget(parsed.data);
        await checkAgainstOthers(deployment);
        await ctx.deployments.put(row.key, deployment, row.version);
        return deployment;
      }),

    delete: (ref: string) =>
      ctx.exclusive(async () => {
        const row = await find(ref);
        await remove(row);
        ctx.record('deployment.deleted', {
          mac: row.key,
          subject: row.value.name,
          message: `deployment "${row.value.name}" deleted; the machine is free`,
        });
      }),

    /** The phone-home token of a machine's deployment, for its answer files and scripts. */
    tokenOf: async (mac: string) => (await ctx.tokens.get(mac))?.value.token,

    /**
     * A report from the machine (DESIGN.md §3): "installed" when the installer or OS phones home, "failed" when
     * it reports a failure. The token must match (constant time); a repeated report is idempotent. On a wiping
     * machine "installed" means the wipe finished, and the machine becomes free.
     */
    report: (mac: string, token: string, outcome: 'installed' | 'failed', detail?: string) =>
      ctx.exclusive(async () => {
        const row = await ctx.deployments.get(mac);
        const stored = await ctx.tokens.get(mac);
        if (!row || !stored || !tokenMatches(stored.value.token, token)) {
          throw new SmeltError('forbidden', 'no deployment of this machine has that token');
        }
        const event: LifecycleEvent = row.value.state === 'wiping' && outcome === 'installed' ? 'wiped' : outcome;
        return move(row, event, detail);
      }),

    /** An image writer's progress report: bytes written so far, kept on the machine for `describe machine`. */
    progress: (mac: string, token: string, bytes: number, total?: number) =>
      ctx.exclusive(async () => {
        const stored = await ctx.tokens.get(mac);
        if (!stored || !tokenMatches(stored.value.token, token)) {
          throw new SmeltError('forbidden', 'no deployment of this machine has that token');
        }
        const row = await ctx.machines.get(mac);
        if (!row) throw notFound('machine', mac);
        const at = ctx.timestamp();
        await ctx.machines.put(
          mac,
          { ...row.value, progress: { bytes, ...(total !== undefined && { total }), at } },
          row.version,
        );
      }),

    /** `smeltctl release MAC [--wipe]`: free the machine, or wipe it first. */
    release: (mac: string, wipe: boolean) =>
      ctx.exclusive(async () => move(await deployed(mac, 'release'), wipe ? 'release-wipe' : 'release')),

    /** `smeltctl reinstall MAC`: back to provisioning, with a new token (old installers cannot report). */
    reinstall: (mac: string) => ctx.exclusive(async () => move(await deployed(mac, 'reinstall'), 'reinstall')),

    /** Provisioning that has not finished within `seconds` fails (the daemon's sweep calls this). */
    expire: (seconds: number) =>
      ctx.exclusive(async () => {
        const cutoff = Date.parse(ctx.timestamp()) - seconds * 1000;
        const failed: string[] = [];
        for (const row of await ctx.deployments.all()) {
          if (row.value.state === 'provisioning' && Date.parse(row.value.updatedAt) < cutoff) {
            await move(row, 'timeout', `no phone-home within ${seconds} s`);
            failed.push(row.key);
          }
        }
        return failed;
      }),
  };

  /** The deployment of a machine a lifecycle command names: unknown machine 404, free machine 409. */
  async function deployed(mac: string, what: string): Promise<Versioned<Deployment>> {
    const row = await ctx.deployments.get(mac);
    if (row) return row;
    if (!(await ctx.machines.get(mac))) throw notFound('machine', mac);
    throw conflict(`machine ${mac} is free: nothing to ${what}${what === 'reinstall' ? '; deploy it instead' : ''}`);
  }

  async function remove(row: Versioned<Deployment>): Promise<void> {
    await ctx.store.batch([
      { collection: 'deployments', key: row.key, ifVersion: row.version },
      { collection: 'tokens', key: row.key },
    ]);
  }

  /** Applies a lifecycle event to a deployment: the pure table decides, this writes it and records it. */
  async function move(row: Versioned<Deployment>, event: LifecycleEvent, detail?: string) {
    const outcome = transition(row.value.state, event, row.value.type);
    if (!outcome.ok) throw conflict(`deployment "${row.value.name}": ${outcome.reason}`);
    const { mac, name } = row.value;
    const note = detail ? `: ${detail.slice(0, 500)}` : '';
    if (outcome.next === 'free') {
      await remove(row);
      ctx.record(event === 'wiped' ? 'machine.wiped' : 'machine.released', {
        mac,
        subject: name,
        message: `${event === 'wiped' ? 'wiped and released' : 'released'}; deployment "${name}" removed, the machine is free`,
      });
      return { state: 'free' as const, deployment: null };
    }
    if (!outcome.changed) return { state: outcome.next, deployment: row.value };
    const now = ctx.timestamp();
    const updated: Deployment = { ...row.value, state: outcome.next, updatedAt: now };
    const ops: BatchOp[] = [{ collection: 'deployments', key: mac, value: updated, ifVersion: row.version }];
    if (event === 'reinstall') ops.push({ collection: 'tokens', key: mac, value: newToken(now) });
    await ctx.store.batch(ops);
    ctx.record(eventTypeOf(event), { mac, subject: name, message: `${row.value.state} → ${outcome.next}${note}` });
    return { state: outcome.next, deployment: updated };
  }
}

/** Without a name, a deployment is called by its hostname's first label, else by its MAC in dash form. */
function defaultName(spec: DeploymentSpec): string {
  const label = spec.hostname?.split('.')[0]?.toLowerCase();
  return label && /^[a-z0-9][a-z0-9-]{0,62}$/.test(label) ? label : macToDashes(spec.mac);
}

function eventTypeOf(event: LifecycleEvent) {
  switch (event) {
    case 'installed':
      return 'machine.installed' as const;
    case 'failed':
    case 'timeout':
      return 'machine.failed' as const;
    case 'release-wipe':
      return 'machine.wiping' as const;
    case 'reinstall':
      return 'machine.reinstalling' as const;
    default:
      return 'deployment.updated' as const;
  }
}

/** A live (diskless) deployment names exactly one root; live settings on another type would be ignored: refused. */
function checkLive(deployment: Deployment): void {
  const live = deployment.live;
  if (deployment.type !== 'live') {
    if (live) throw invalidField('body', 'live', 'diskless settings (nfsRoot, rootfs, iscsi) need type "live"');
    return;
  }
  const roots = [live?.nfsRoot, live?.rootfs, live?.iscsi].filter((root) => root !== undefined).length;
  if (roots !== 1) {
    throw invalidField('body', 'live', 'a live deployment needs exactly one root: nfsRoot, rootfs or iscsi');
  }
  const iscsi = live?.iscsi;
  if (iscsi && iscsi.base === undefined && (iscsi.server === undefined || iscsi.target === undefined)) {
    throw invalidField('body', 'live.iscsi', 'name an existing target (server and target), or a base image');
  }
}
