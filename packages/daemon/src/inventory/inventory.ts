import type { Store } from '../store/store.ts';
import { createBootInventory } from './boots.ts';
import { createInventoryContext } from './context.ts';
import { createDefaultsInventory } from './defaults.ts';
import { createDeploymentInventory } from './deployments.ts';
import { createMachineInventory } from './machines.ts';

/** Boots, deployments, machines and defaults, with the rules that tie them together, over one store. */
export function createInventory(store: Store, now: () => Date = () => new Date()) {
  const ctx = createInventoryContext(store, now);
  return {
    boots: createBootInventory(ctx),
    deployments: createDeploymentInventory(ctx),
    machines: createMachineInventory(ctx),
    defaults: createDefaultsInventory(ctx),
  };
}
export type Inventory = ReturnType<typeof createInventory>;
