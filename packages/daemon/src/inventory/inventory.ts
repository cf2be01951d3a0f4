import type { IsoCache } from '../iso/cache.ts';
import type { Store } from '../store/store.ts';
import type { EventJournal } from '../events/journal.ts';
import { createBootInventory } from './boots.ts';
import { createInventoryContext, type ManagedIscsi } from './context.ts';
import { createDefaultsInventory } from './defaults.ts';
import { createDeploymentInventory } from './deployments.ts';
import { createLeaseInventory } from './leases.ts';
import { createMachineInventory } from './machines.ts';

/** Boots, deployments, machines, defaults and (read-only) leases, with the rules that tie them together, over one store. */
export function createInventory(
  store: Store,
  isos: IsoCache,
  now: () => Date = () => new Date(),
  events?: EventJournal,
  iscsi?: ManagedIscsi,
) {
  const ctx = createInventoryContext(store, isos, now, events, iscsi);
  return {
    boots: createBootInventory(ctx),
    deployments: createDeploymentInventory(ctx),
    machines: createMachineInventory(ctx),
    defaults: createDefaultsInventory(ctx),
    leases: createLeaseInventory(ctx),
  };
}
export type Inventory = ReturnType<typeof createInventory>;
