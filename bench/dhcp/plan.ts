import { UsageError } from '../lib/cli.ts';
import type { GeneratorMode } from './generator.ts';
import type { ServerId } from './servers.ts';

/** What is measured; --quick and the full run differ in the client counts and the time bound. */
export interface Matrix {
  servers: ServerId[];
  /** Distinct clients per measurement, each a fresh server with an empty lease store. */
  clients: number[];
  modes: GeneratorMode[];
}

export const fullMatrix: Matrix = {
  servers: ['smeltd', 'kea', 'kea-mt', 'dnsmasq'],
  clients: [1000, 10_000, 50_000],
  modes: ['broadcast'],
};

export const quickMatrix: Matrix = { ...fullMatrix, clients: [1000] };

export interface Scenario {
  mode: GeneratorMode;
  clients: number;
  key: string;
  title: string;
}

export function scenariosOf(matrix: Matrix): Scenario[] {
  return matrix.modes.flatMap((mode) =>
    matrix.clients.map((clients) => ({
      mode,
      clients,
      key: `${mode}-${clients}`,
      title: `${mode === 'relay' ? 'relayed (giaddr, unicast 67 ↔ 67)' : 'broadcast'} · ${clients.toLocaleString('en')} clients`,
    })),
  );
}

/**
 * Rough seconds for N DORAs from an empty lease store, from runs on this 2-vCPU VM: Kea ~5-6k/s whatever the
 * lease count; dnsmasq rewrites (and fsyncs) its whole lease file per lease, so a lease costs ~1.6 ms + ~1.8 µs
 * per lease already held (quadratic overall); smeltd is a guess until measured.
 */
export function estimateSeconds(server: ServerId, clients: number): number {
  switch (server) {
    case 'kea':
      return clients / 5000;
    case 'kea-mt':
      return clients / 5500;
    case 'dnsmasq':
      return clients * 1.6e-3 + (clients * clients * 1.8e-6) / 2;
    case 'smeltd':
    case 'smeltd-os':
      return clients / 4000;
  }
}

/** Per instance: start, warm-up, store check, kill -9 and restart, the re-ask check, stop. */
export const OVERHEAD_S = 6;

/**
 * Each server's warm-up leases stay in its store through the run: with the largest run's clients they must fit the
 * pool, or that run measures a full pool (a UsageError before anything starts).
 */
export function checkPoolFits(clients: readonly number[], warmups: readonly number[], poolSize: number): void {
  const most = Math.max(0, ...clients) + Math.max(0, ...warmups);
  if (most > poolSize) {
    throw new UsageError(
      `warm-up and clients together (${String(most)}) exceed the pool's ${String(poolSize)} addresses`,
    );
  }
}
