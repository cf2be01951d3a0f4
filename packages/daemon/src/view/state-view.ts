import { bootSchema, type Boot } from '@smelt/shared/boot';
import { globalDefaultsSchema, type GlobalDefaults } from '@smelt/shared/defaults';
import { deploymentSchema, type Deployment } from '@smelt/shared/deployment';
import { machineRecordSchema, type MachineRecord } from '@smelt/shared/machine';
import type { Store } from '../store/store.ts';
import { tokenSchema, type DeploymentToken } from '../inventory/tokens.ts';

/**
 * The daemon's in-memory copy of what boot-time requests read (DESIGN.md §5.3): boots, deployments (by MAC),
 * machines, phone-home tokens and the global defaults, loaded once and kept current by the store's watch. DHCP replies and iPXE
 * scripts read this, never the disk. Values are parsed with the shared schemas; a row that does not parse is
 * left out (the API, which reads the store, reports it).
 */
export interface StateView {
  boot(name: string): Boot | undefined;
  boots(): IterableIterator<Boot>;
  deployment(mac: string): Deployment | undefined;
  deployments(): IterableIterator<Deployment>;
  machine(mac: string): MachineRecord | undefined;
  /** A deployment's phone-home token. */
  token(mac: string): string | undefined;
  defaults(): GlobalDefaults;
  /** Called after every change the view applied, with its collection (derived indexes use it). */
  onChange(listener: (collection: string) => void): () => void;
  close(): void;
}

export async function createStateView(store: Store): Promise<StateView> {
  const boots = new Map<string, Boot>();
  const deployments = new Map<string, Deployment>();
  // Machines are parsed when read, not when written: a storm writes thousands, and boot paths read few.
  const machines = new Map<string, { raw: unknown; parsed?: MachineRecord | null }>();
  const tokens = new Map<string, DeploymentToken>();
  let defaults: GlobalDefaults = {};
  const listeners = new Set<(collection: string) => void>();

  function apply(collection: string, key: string, value: unknown): void {
    switch (collection) {
      case 'boots':
        set(boots, key, bootSchema.safeParse(value));
        break;
      case 'deployments':
        set(deployments, key, deploymentSchema.safeParse(value));
        break;
      case 'machines':
        if (value === undefined) machines.delete(key);
        else machines.set(key, { raw: value });
        break;
      case 'tokens':
        set(tokens, key, tokenSchema.safeParse(value));
        break;
      case 'defaults': {
        const parsed = value === undefined ? undefined : globalDefaultsSchema.safeParse(value);
        defaults = parsed?.success ? parsed.data : {};
        break;
      }
    }
  }

  // Subscribe before reading, so that nothing written meanwhile is missed (applying a put twice is harmless).
  const stop = store.watch((event) => {
    apply(event.collection, event.key, event.kind === 'put' ? event.value : undefined);
    for (const listener of listeners) listener(event.collection);
  });
  for (const collection of ['boots', 'deployments', 'machines', 'defaults', 'tokens'] as const) {
    for (const row of await store.list(collection)) apply(collection, row.key, row.value);
  }

  return {
    boot: (name) => boots.get(name),
    boots: () => boots.values(),
    deployment: (mac) => deployments.get(mac),
    deployments: () => deployments.values(),
    machine(mac) {
      const entry = machines.get(mac);
      if (!entry) return undefined;
      if (entry.parsed === undefined) {
        const parsed = machineRecordSchema.safeParse(entry.raw);
        entry.parsed = parsed.success ? parsed.data : null;
      }
      return entry.parsed ?? undefined;
    },
    token: (mac) => tokens.get(mac)?.token,
    defaults: () => defaults,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: stop,
  };
}

function set<T>(map: Map<string, T>, key: string, parsed: { success: true; data: T } | { success: false } | undefined) {
  if (parsed?.success) map.set(key, parsed.data);
  else map.delete(key);
}
