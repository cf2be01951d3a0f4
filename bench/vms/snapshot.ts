/**
 * Which smeltd the VM benchmark runs, started the way operators start it (packages/daemon/bin/smeltd): Node with
 * the daemon's V8 flags (packages/daemon/node-options) on the plain-JavaScript build (scripts/build-js.ts), not
 * on the TypeScript sources, whose type stripping loads a WebAssembly compiler into the main thread and the
 * store's worker and compiles every file at start-up.
 *
 * With --smeltd-commit, from a snapshot of that commit (git archive) built in place, so that a working tree others
 * are editing changes nothing mid-run; without it, this checkout's build, made fresh (bench/lib/smeltd-entry.ts).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../lib/cli.ts';
import { repoRoot } from '../lib/paths.ts';
import { run } from '../lib/process.ts';
import { smeltdEntry } from '../lib/smeltd-entry.ts';

export interface SmeltdBuild {
  /** Node's arguments before smeltd's own: the V8 flags and the entry file. */
  entry: string[];
  /** For the report: the versions line of smeltd (bench/storm/servers.ts versions()), with where it came from. */
  describe(line: string): string;
}

/** Node's arguments for the build in `root`: its node-options, then its dist/main.js. */
function entryIn(root: string): string[] {
  const options = readFileSync(join(root, 'packages/daemon/node-options'), 'utf8').split(/\s+/);
  return [...options.filter((flag) => flag !== ''), join(root, 'packages/daemon/dist/main.js')];
}

export async function smeltdBuild(rev: string | undefined, scratch: string): Promise<SmeltdBuild> {
  if (rev === undefined) return { entry: smeltdEntry(), describe: (line) => `${line}; its JS build (dist/main.js)` };
  const snapshot = await snapshotOf(rev, join(scratch, 'smeltd-src'));
  const built = await run(process.execPath, [join(snapshot.root, 'scripts/build-js.ts'), '--quiet'], {
    timeoutMs: 120_000,
  });
  if (built.code !== 0) throw new Error(`building the snapshot of ${snapshot.commit} failed: ${built.stderr}`);
  return {
    entry: entryIn(snapshot.root),
    describe: (line) =>
      `${line.replace(/ \(.*?\)/, '')}: from a snapshot of commit ${snapshot.commit} (--smeltd-commit ${rev}), its JS build (dist/main.js)`,
  };
}

/**
 * The repository at `rev` (git archive) in `dir`, sharing this checkout's installed packages: the root node_modules
 * as a link, each package's node_modules copied as its links (pnpm's are relative, into the root's .pnpm).
 */
async function snapshotOf(rev: string, dir: string): Promise<{ root: string; commit: string }> {
  const commit = (await run('git', ['-C', repoRoot, 'rev-parse', '--short', `${rev}^{commit}`])).stdout.trim();
  if (commit === '') throw new UsageError(`not a commit: ${rev}`);
  mkdirSync(dir, { recursive: true });
  const archive = await run(
    'bash',
    ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'snapshot', repoRoot, commit, dir],
    { timeoutMs: 120_000 },
  );
  if (archive.code !== 0) throw new Error(`git archive ${commit} failed: ${archive.stderr}`);
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  for (const name of readdirSync(join(repoRoot, 'packages'))) {
    const modules = join(repoRoot, 'packages', name, 'node_modules');
    if (existsSync(modules) && existsSync(join(dir, 'packages', name)))
      cpSync(modules, join(dir, 'packages', name, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  }
  return { root: dir, commit };
}
