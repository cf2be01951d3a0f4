import type { Deployment } from '@smelt/shared/deployment';
import type { Machine, MachinePatch, MachineRecord, MachineSpec, machineStates } from '@smelt/shared/machine';
import { conflict, notFound } from '../errors.ts';
import type { InventoryContext } from './context.ts';
import { paginate } from './page.ts';

/** The API's view of a machine: its record plus the state derived from its deployment. */
function present(record: MachineRecord, deployment: Deployment | undefined): Machine {
  return { ...record, state: deployment?.state ?? 'free', deployment: deployment?.name ?? null };
}

/** What the wire said about a machine at one moment (DHCP discovery); absent fields leave stored ones alone. */
export interface Sighting {
  mac: string;
  at: string;
  arch?: string | undefined;
  vendorClass?: string | undefined;
  userClass?: string | undefined;
  uuid?: string | undefined;
  relay?: string | undefined;
  lastLease?: string | undefined;
  vendor?: string | undefined;
}

function wrap(record: MachineRecord | undefined): { value: MachineRecord } | undefined {
  return record && { value: record };
}

/** The fields that have a value. A loop, not Object.entries: a DHCP storm sends every new machine through here. */
function defined<T extends object>(value: T): Partial<T> {
  const result: Partial<T> = {};
  for (const key in value) {
    if (Object.hasOwn(value, key) && value[key] !== undefined) result[key] = value[key];
  }
  return result;
}

export function createMachineInventory(ctx: InventoryContext) {
  async function deploymentOf(mac: string): Promise<Deployment | undefined> {
    return (await ctx.deployments.get(mac))?.value;
  }

  return {
    async get(mac: string): Promise<Machine> {
      const row = await ctx.machines.get(mac);
      if (!row) throw notFound('machine', mac);
      return present(row.value, await deploymentOf(mac));
    },

    async list(query: {
      limit: number;
      cursor?: string | undefined;
      state?: (typeof machineStates)[number] | undefined;
      arch?: string | undefined;
    }) {
      const deployments = new Map((await ctx.deployments.all()).map((row) => [row.key, row.value]));
      const machines = (await ctx.machines.all())
        .map((row) => present(row.value, deployments.get(row.key)))
        .filter(
          (m) =>
            (query.state === undefined || m.state === query.state) &&
            (query.arch === undefined || m.arch === query.arch),
        );
      return paginate(machines, (m) => m.mac, query);
    },

    create: (spec: MachineSpec) =>
      ctx.exclusive(async () => {
        if (await ctx.machines.get(spec.mac)) throw conflict(`machine ${spec.mac} is already registered`);
        const now = ctx.timestamp();
        const record: MachineRecord = { mac: spec.mac, labels: spec.labels ?? {}, createdAt: now, updatedAt: now };
        await ctx.machines.put(spec.mac, record, 0);
        return present(record, await deploymentOf(spec.mac));
      }),

    update: (mac: string, patch: MachinePatch) =>
      ctx.exclusive(async () => {
        const row = await ctx.machines.get(mac);
        if (!row) throw notFound('machine', mac);
        const record: MachineRecord = {
          ...row.value,
          ...(patch.labels && { labels: patch.labels }),
          updatedAt: ctx.timestamp(),
        };
        await ctx.machines.put(mac, record, row.version);
        return present(record, await deploymentOf(mac));
      }),

    /**
     * Records sightings from the wire in one batch: new machines are created (free), known ones get the new facts
     * merged over what is stored, so labels and other operator-set fields are never lost. Returns the MACs that
     * were new.
     */
    observe: (sightings: readonly Sighting[], known?: (mac: string) => MachineRecord | undefined) =>
      ctx.exclusive(async () => {
        const created: string[] = [];
        const ops = [];
        for (const sighting of sightings) {
          // The daemon's in-memory view saves a read per machine (DESIGN.md §5.3); without one, the store.
          const row = known ? wrap(known(sighting.mac)) : await ctx.machines.get(sighting.mac);
          const { at, ...facts } = sighting;
          const record: MachineRecord = row
            ? { ...row.value, ...defined(facts), lastSeen: at, updatedAt: at }
            : {
                ...defined(facts),
                mac: sighting.mac,
                firstSeen: at,
                lastSeen: at,
                labels: {},
                createdAt: at,
                updatedAt: at,
              };
          if (!row) created.push(sighting.mac);
          ops.push({ key: sighting.mac, value: record });
        }
        // Through the journal's group commit when there is one: the rows ride on the next lease commit instead of
        // costing a commit of their own, and the events recorded about them (after this resolves) follow them.
        // Awaited inside exclusive(): an API write must not read a row this is about to overwrite.
        const commit = ctx.events?.commit;
        if (commit) await commit.ride(ops.map(({ key, value }) => ({ collection: 'machines' as const, key, value })));
        else await ctx.machines.putMany(ops);
        return created;
      }),

    delete: (mac: string) =>
      ctx.exclusive(async () => {
        const row = await ctx.machines.get(mac);
        if (!row) throw notFound('machine', mac);
        const deployment = await deploymentOf(mac);
        if (deployment) throw conflict(`machine ${mac} has deployment "${deployment.name}"; delete it first`);
        await ctx.machines.delete(mac, row.version);
      }),
  };
}
