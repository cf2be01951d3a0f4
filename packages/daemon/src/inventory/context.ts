import { bootSchema } from '@smelt/shared/boot';
import { globalDefaultsSchema } from '@smelt/shared/defaults';
import { deploymentSchema } from '@smelt/shared/deployment';
import { machineRecordSchema } from '@smelt/shared/machine';
import type { IsoCache } from '../iso/cache.ts';
import type { Store } from '../store/store.ts';
import { typedCollection } from './collection.ts';
import { createMutex } from './mutex.ts';
import { tokenSchema } from './tokens.ts';
import type { EventJournal } from '../events/journal.ts';

/** What every inventory module shares: the typed collections, one write lock, and the clock. */
/** The daemon's own iSCSI disks (config `iscsi`), which a deployment's live.iscsi.base asks for. */
export interface ManagedIscsi {
  /** HOST:PORT machines reach tgtd at. */
  portal: string;
  /** The target a machine's disk is exported as. */
  targetOf(mac: string): string;
}

export function createInventoryContext(
  store: Store,
  isos: IsoCache,
  now: () => Date,
  events?: EventJournal,
  iscsi?: ManagedIscsi,
) {
  return {
    iscsi,
    boots: typedCollection(store, 'boots', bootSchema),
    deployments: typedCollection(store, 'deployments', deploymentSchema),
    machines: typedCollection(store, 'machines', machineRecordSchema),
    defaults: typedCollection(store, 'defaults', globalDefaultsSchema),
    tokens: typedCollection(store, 'tokens', tokenSchema),
    isos,
    store,
    exclusive: createMutex(),
    timestamp: () => now().toISOString(),
    /** Records an event when the daemon has a journal (tests of the inventory alone may have none). */
    record: (...args: Parameters<EventJournal['record']>) => events?.record(...args),
    events,
  };
}
export type InventoryContext = ReturnType<typeof createInventoryContext>;
