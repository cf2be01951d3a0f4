import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup } from './cleanup.ts';
import { repoRoot } from './paths.ts';

let snapshot: string | undefined;

/**
 * The daemon as it ships, for `node ARGS...`: the V8 flags bin/smeltd gives it (packages/daemon/node-options) and
 * the plain-JavaScript build (scripts/build-js.ts), made fresh from the sources once per bench run — what bin/smeltd
 * runs after the set-up — so a benchmark measures the memory and start-up of the real thing, never a stale build.
 *
 * Every instance of one bench run starts from a copy of that build taken when it was made (packages/daemon/
 * dist-bench-PID, beside dist so that its imports resolve alike; removed when the bench ends): a build or an edit
 * of the sources by someone else during a long run must not change the code measured halfway through (bin/smeltd
 * itself runs the sources when dist is older than them; a DHCP run of 2026-11-21 switched to them mid-run).
 */
export function smeltdEntry(): string[] {
  if (snapshot === undefined) {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build-js.ts'), '--quiet'], { stdio: 'inherit' });
    const dir = join(repoRoot, `packages/daemon/dist-bench-${String(process.pid)}`);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(repoRoot, 'packages/daemon/dist'), dir, { recursive: true });
    onCleanup(`the build snapshot ${dir}`, () => {
      rmSync(dir, { recursive: true, force: true });
    });
    snapshot = dir;
  }
  const options = readFileSync(join(repoRoot, 'packages/daemon/node-options'), 'utf8').split(/\s+/);
  return [...options.filter((flag) => flag !== ''), join(snapshot, 'main.js')];
}
