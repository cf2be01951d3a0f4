import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.ts';

let built = false;

/**
 * The daemon as it ships, for `node ARGS...`: the V8 flags bin/smeltd gives it (packages/daemon/node-options) and
 * the plain-JavaScript build (scripts/build-js.ts), made fresh from the sources once per bench run — what bin/smeltd
 * runs after the set-up — so a benchmark measures the memory and start-up of the real thing, never a stale build.
 */
export function smeltdEntry(): string[] {
  if (!built) {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build-js.ts'), '--quiet'], { stdio: 'inherit' });
    built = true;
  }
  const options = readFileSync(join(repoRoot, 'packages/daemon/node-options'), 'utf8').split(/\s+/);
  return [...options.filter((flag) => flag !== ''), join(repoRoot, 'packages/daemon/dist/main.js')];
}
