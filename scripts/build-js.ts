/**
 * Builds the daemon as plain JavaScript: packages/shared/dist and packages/daemon/dist, every non-test source file
 * with its types stripped (node:module stripTypeScriptTypes, the same stripper Node runs on .ts files, so line and
 * column numbers stay those of the source) and its imports pointed at the built files.
 *
 * Why: Node strips a .ts file with a WebAssembly build of swc that it loads into every isolate that imports one —
 * about 17 MiB of resident memory in the main thread and again in the store's worker thread (measured: a worker
 * running a one-line .ts file costs 35 MiB, a .js one 18 MiB). bin/smeltd runs the built files when they are
 * newer than every source file and falls back to the sources otherwise, so an edit is never run stale.
 *
 *   node scripts/build-js.ts [--quiet]
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const packages = ['shared', 'daemon'] as const;
/** Written last: bin/smeltd trusts a dist only when this exists and no source file is newer. */
export const STAMP = '.built';

/** Source files of a package that the daemon runs: no tests, no test fixtures. */
function sources(dir: string, under = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(dir, under), { withFileTypes: true })) {
    const path = join(under, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testdata') found.push(...sources(dir, path));
    } else if (!entry.name.endsWith('.test.ts') && !entry.name.endsWith('.contract.ts')) {
      found.push(path);
    }
  }
  return found;
}

/**
 * The specifiers of static imports/exports and of `new URL('./x.ts', import.meta.url)`: relative `.ts` → `.js`;
 * `@smelt/shared/NAME` → the built shared file, relative (so no package condition is needed to find it).
 */
export function rewriteSpecifiers(code: string, fileInDist: string, sharedDist: string): string {
  const relativeTo = (target: string) => {
    const path = relative(dirname(fileInDist), target).split(sep).join('/');
    return path.startsWith('.') ? path : `./${path}`;
  };
  return code
    .replace(/(\bfrom\s*|\bimport\s*|\bnew URL\(\s*)'(\.{1,2}\/[^']*)\.ts'/g, "$1'$2.js'")
    .replace(
      /(\bfrom\s*|\bimport\s*)'@smelt\/shared\/([\w-]+)'/g,
      (_match, lead: string, name: string) => `${lead}'${relativeTo(join(sharedDist, `${name}.js`))}'`,
    );
}

/**
 * Builds packages/shared/OUT and packages/daemon/OUT (OUT = `dist` unless given: the tests build into a directory
 * of their own, so that they never pull the build from under a daemon the suite is running).
 */
export function buildJs(quiet = false, out = 'dist'): void {
  const sharedDist = join(root, 'packages/shared', out);
  for (const name of packages) {
    const src = join(root, 'packages', name, 'src');
    const dist = join(root, 'packages', name, out);
    // Built beside, then swapped in: a daemon starting meanwhile sees the old dist or the new one, never half.
    const next = `${dist}.next`;
    rmSync(next, { recursive: true, force: true });
    let files = 0;
    for (const path of sources(src)) {
      const from = join(src, path);
      if (path.endsWith('.ts')) {
        const to = join(next, path.replace(/\.ts$/, '.js'));
        mkdirSync(dirname(to), { recursive: true });
        const stripped = stripTypeScriptTypes(readFileSync(from, 'utf8'), { mode: 'strip' });
        writeFileSync(to, rewriteSpecifiers(stripped, join(dist, path), sharedDist));
      } else {
        const to = join(next, path);
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(from, to);
      }
      files++;
    }
    writeFileSync(join(next, STAMP), `${new Date().toISOString()}\n`);
    // Two renames, the old build removed after: the window without a build is one rename long.
    const old = `${dist}.old`;
    rmSync(old, { recursive: true, force: true });
    try {
      renameSync(dist, old);
    } catch {
      // no build yet
    }
    renameSync(next, dist);
    rmSync(old, { recursive: true, force: true });
    if (!quiet) process.stdout.write(`build-js: ${relative(root, dist)}: ${String(files)} files\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.removeAllListeners('warning'); // stripTypeScriptTypes is "experimental" in Node 24; it is what Node runs
  buildJs(process.argv.includes('--quiet'));
}
