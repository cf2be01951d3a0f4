import { smeltctlBin } from './paths.ts';
import { run, type RunResult } from './process.ts';

/**
 * Runs the real smeltctl binary. stdout is a pipe here, so it must behave as it does in scripts: no colours,
 * plain columns. Its own config file is kept in `configFile` so nothing of the user's is read or written.
 */
export function smeltctl(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(smeltctlBin, args, { env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env }, timeoutMs: 30_000 });
}
