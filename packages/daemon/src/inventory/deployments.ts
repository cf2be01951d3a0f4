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
import type { Versioned } from '../store/store.ts';
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

  /** Rules against the other deployments and the boots: one name, one address, an existing boot. */
  async function checkAgainstOthers(deployment: Deployment): Promise<void> {
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
        const deployment: Deployment = { ...spec, name, state: 'provisioning', createdAt: now, updatedAt: now };
        await checkAgainstOthers(deployment);
        await ensureMachine(spec.mac, now);
        await ctx.deployments.put(spec.mac, deployment, 0);
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
        await checkAgainstOthers(parsed.data);
        await ctx.deployments.put(row.key, parsed.data, row.version);
        return parsed.data;
      }),

    delete: (ref: string) =>
      ctx.exclusive(async () => {
        const row = await find(ref);
        await ctx.deployments.delete(row.key, row.version);
      }),
  };
}

/** Without a name, a deployment is called by its hostname's first label, else by its MAC in dash form. */
function defaultName(spec: DeploymentSpec): string {
  const label = spec.hostname?.split('.')[0]?.toLowerCase();
  return label && /^[a-z0-9][a-z0-9-]{0,62}$/.test(label) ? label : macToDashes(spec.mac);
}
