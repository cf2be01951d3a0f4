/**
 * Debian's own amd64 kernel, for the small initramfs environments Smelt builds: the image writer
 * (scripts/image-writer.ts) and the QEMU lab's guest (test/harness/guest.ts). The kernel is never installed on
 * this machine: `apt-get download` of the package the metapackage linux-image-amd64 depends on, `dpkg -x` into a
 * scratch directory, keep what is needed, delete the rest (unpacked ~400 MB).
 *
 * What is kept, under one cache directory (default .tools/kernel/, gitignored), idempotently:
 *   debs/                       the kernel package as downloaded (~70 MB, kept: another module set needs no network)
 *   <package>/<set>/            per module set (a name: "guest", "image-writer"):
 *     vmlinuz-<release>           the kernel image (bzImage)
 *     modules/<path>              the set's modules and their dependencies as plain .ko files (busybox's insmod
 *                                 reads no compressed modules), at their paths inside lib/modules/<release>
 *     modules.dep, modules.alias  depmod's lines for exactly those modules, so that busybox's modprobe can load
 *                                 them by name or by a device's modalias
 *     kernel.json                 release, package, what was asked for, the load order; written last
 * A set lists the modules it must have and those it takes when the kernel has them (as loadable modules; a
 * built-in one needs nothing, one the kernel lacks is skipped and named in kernel.json). Everything is built in a
 * temporary directory and renamed into place, so an interrupted build leaves nothing half-made and two concurrent
 * builds do not clash. A newer kernel package replaces the older ones (kept until then for offline runs).
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk } from './run.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Where the kernel package and the module sets are kept unless a caller says otherwise. */
export const kernelCacheDir = join(repoRoot, '.tools/kernel');

export interface KernelRequest {
  /** The module set's name: a directory name under <package>/. */
  set: string;
  /** Modules the set must have (an error when the kernel has none of that name), by name. */
  modules: readonly string[];
  /** Modules taken when the kernel has them as loadable modules, by name. */
  optional?: readonly string[];
  /** Default: kernelCacheDir. */
  cacheDir?: string;
  /** More directories where an earlier build may have kept the package's .deb (looked at before downloading). */
  debDirs?: readonly string[];
  /** Hears about slow work (a download, an unpack). */
  note?: (line: string) => void;
}

export interface DebianKernel {
  /** The set's directory. */
  dir: string;
  kernelPackage: string;
  /** e.g. 6.1.0-56-amd64 */
  release: string;
  /** The kernel image. */
  vmlinuz: string;
  /** Module paths relative to `${dir}/modules` (= inside lib/modules/<release>), dependencies first. */
  modules: string[];
  /** Asked-for modules the kernel has built in. */
  builtin: string[];
  /** Optional modules this kernel does not have. */
  absent: string[];
  /** depmod's modules.dep and modules.alias for `modules` (paths relative to lib/modules/<release>). */
  modulesDep: string;
  modulesAlias: string;
}

/** What kernel.json says of what was asked for: a set built for another request is rebuilt. */
function wantedOf(request: KernelRequest): { modules: string[]; optional: string[] } {
  return { modules: [...request.modules], optional: [...(request.optional ?? [])] };
}

/**
 * The kernel and the set's modules, fetched and unpacked on first use and reused afterwards. Offline, or when the
 * apt lists name a package the mirror no longer has, any kernel fetched for this set before will do.
 */
export async function debianKernel(request: KernelRequest): Promise<DebianKernel> {
  const kernelsDir = request.cacheDir ?? kernelCacheDir;
  const note = request.note ?? (() => undefined);
  mkdirSync(kernelsDir, { recursive: true });
  const wanted = await currentKernelPackage();
  if (wanted !== undefined) {
    const cached = readSetDir(join(kernelsDir, wanted, request.set), request);
    if (cached) return cached;
    try {
      return await fetchKernel(kernelsDir, wanted, request, note);
    } catch (error) {
      const fallback = newestCachedSet(kernelsDir, request);
      if (!fallback) throw error;
      note(`could not fetch ${wanted} (${String(error).split('\n')[0] ?? ''}); using ${fallback.kernelPackage}`);
      return fallback;
    }
  }
  const fallback = newestCachedSet(kernelsDir, request);
  if (!fallback) {
    throw new Error(
      `apt-cache depends linux-image-amd64 named no kernel package (run apt-get update?), and none is cached in ${kernelsDir}`,
    );
  }
  return fallback;
}

/** The versioned kernel package the metapackage linux-image-amd64 depends on, per this machine's apt lists. */
async function currentKernelPackage(): Promise<string | undefined> {
  const result = await run('apt-cache', ['depends', 'linux-image-amd64'], { timeoutMs: 30_000 }).catch(() => undefined);
  if (result?.code !== 0) return undefined;
  return /^\s*Depends:\s*(linux-image-\S+)$/m.exec(result.stdout)?.[1];
}

interface KernelJson {
  kernelPackage: string;
  release: string;
  set: string;
  wanted: { modules: string[]; optional: string[] };
  modules: string[];
  builtin: string[];
  absent: string[];
}

/** The set in `dir`, if it is complete and was built for this request. */
function readSetDir(dir: string, request: KernelRequest): DebianKernel | undefined {
  const stamp = join(dir, 'kernel.json');
  if (!existsSync(stamp)) return undefined;
  let meta: KernelJson;
  try {
    meta = JSON.parse(readFileSync(stamp, 'utf8')) as KernelJson;
  } catch {
    return undefined;
  }
  if (JSON.stringify(meta.wanted) !== JSON.stringify(wantedOf(request))) return undefined;
  return {
    dir,
    kernelPackage: meta.kernelPackage,
    release: meta.release,
    vmlinuz: join(dir, `vmlinuz-${meta.release}`),
    modules: meta.modules,
    builtin: meta.builtin,
    absent: meta.absent,
    modulesDep: join(dir, 'modules.dep'),
    modulesAlias: join(dir, 'modules.alias'),
  };
}

function newestCachedSet(kernelsDir: string, request: KernelRequest): DebianKernel | undefined {
  return readdirSync(kernelsDir)
    .filter((name) => name.startsWith('linux-image-'))
    .map((name) => readSetDir(join(kernelsDir, name, request.set), request))
    .filter((kernel): kernel is DebianKernel => kernel !== undefined)
    .sort((a, b) => statSync(b.dir).mtimeMs - statSync(a.dir).mtimeMs)[0];
}

/**
 * The package's .deb: from debs/ (or another directory an earlier build kept it in, hard-linked into debs/) when
 * there is one, else by `apt-get download` into a scratch directory, then moved there.
 */
async function kernelDeb(
  kernelsDir: string,
  kernelPackage: string,
  request: KernelRequest,
  note: (line: string) => void,
): Promise<string> {
  const debs = join(kernelsDir, 'debs');
  mkdirSync(debs, { recursive: true });
  const isOurs = (name: string) => name.startsWith(`${kernelPackage}_`) && name.endsWith('.deb');
  for (const dir of [debs, ...(request.debDirs ?? [])]) {
    const kept = existsSync(dir) ? readdirSync(dir).find(isOurs) : undefined;
    if (kept === undefined) continue;
    if (dir === debs) return join(debs, kept);
    const scratch = mkdtempSync(join(kernelsDir, '.copy-'));
    try {
      try {
        linkSync(join(dir, kept), join(scratch, kept));
      } catch {
        copyFileSync(join(dir, kept), join(scratch, kept)); // another file system
      }
      renameSync(join(scratch, kept), join(debs, kept));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    note(`using ${kept} kept in ${dir}`);
    return join(debs, kept);
  }
  note(`fetching ${kernelPackage} with apt-get download (once; kept in ${debs})`);
  const scratch = mkdtempSync(join(kernelsDir, '.download-'));
  try {
    // apt's _apt user cannot write here; apt says so on stderr and downloads as root instead.
    await runOk('apt-get', ['download', kernelPackage], { cwd: scratch, timeoutMs: 900_000 });
    const deb = readdirSync(scratch).find((name) => name.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${kernelPackage} left no .deb in ${scratch}`);
    renameSync(join(scratch, deb), join(debs, deb));
    return join(debs, deb);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function fetchKernel(
  kernelsDir: string,
  kernelPackage: string,
  request: KernelRequest,
  note: (line: string) => void,
): Promise<DebianKernel> {
  const started = Date.now();
  const deb = await kernelDeb(kernelsDir, kernelPackage, request, note);
  const scratch = mkdtempSync(join(kernelsDir, '.scratch-'));
  const staging = mkdtempSync(join(kernelsDir, '.staging-'));
  try {
    const root = join(scratch, 'root');
    await runOk('dpkg', ['-x', deb, root], { timeoutMs: 600_000 });
    const image = readdirSync(join(root, 'boot')).find((name) => name.startsWith('vmlinuz-'));
    if (image === undefined) throw new Error(`${deb} has no boot/vmlinuz-*`);
    const release = image.slice('vmlinuz-'.length);
    copyFileSync(join(root, 'boot', image), join(staging, image));

    // Debian ships no modules.dep (depmod makes it on installation); make it inside the unpacked tree.
    const modulesRoot = [join(root, 'lib/modules', release), join(root, 'usr/lib/modules', release)].find((dir) =>
      existsSync(dir),
    );
    if (modulesRoot === undefined) throw new Error(`${deb} has no lib/modules/${release}`);
    if (!existsSync(join(modulesRoot, 'modules.dep')) || !existsSync(join(modulesRoot, 'modules.alias'))) {
      const base = modulesRoot.endsWith(join('usr/lib/modules', release)) ? join(root, 'usr') : root;
      await runOk('depmod', ['-b', base, release], { timeoutMs: 300_000 });
    }
    const depText = readFileSync(join(modulesRoot, 'modules.dep'), 'utf8');
    const dependencies = parseModulesDep(depText);
    const builtinNames = readBuiltin(join(modulesRoot, 'modules.builtin'));
    const selection = selectModules(dependencies, builtinNames, request);

    const modules: string[] = [];
    for (const path of selection.order) {
      const plain = plainPath(path);
      const target = join(staging, 'modules', plain);
      mkdirSync(dirname(target), { recursive: true });
      await decompressModule(join(modulesRoot, path), target);
      modules.push(plain);
    }
    // depmod's own lines for the chosen modules (their dependencies are chosen too), with plain .ko paths.
    const chosen = new Set(selection.order);
    const depLines = depText
      .split('\n')
      .filter((line) => chosen.has(line.slice(0, line.indexOf(':')).trim()))
      .map((line) => line.replace(/\.ko\.(xz|zst|gz)\b/g, '.ko'));
    writeFileSync(join(staging, 'modules.dep'), depLines.length === 0 ? '' : `${depLines.join('\n')}\n`);
    const names = new Set(selection.order.map(moduleName));
    const aliasLines = readFileSync(join(modulesRoot, 'modules.alias'), 'utf8')
      .split('\n')
      .filter((line) => {
        const fields = line.split(/\s+/);
        return fields[0] === 'alias' && fields[2] !== undefined && names.has(fields[2].replaceAll('-', '_'));
      });
    writeFileSync(join(staging, 'modules.alias'), aliasLines.length === 0 ? '' : `${aliasLines.join('\n')}\n`);

    const meta: KernelJson & { deb: string } = {
      kernelPackage,
      release,
      deb: basename(deb),
      set: request.set,
      wanted: wantedOf(request),
      modules,
      builtin: selection.builtin,
      absent: selection.absent,
    };
    writeFileSync(join(staging, 'kernel.json'), `${JSON.stringify(meta, null, 2)}\n`);
    chmodSync(staging, 0o755);
    const packageDir = join(kernelsDir, kernelPackage);
    mkdirSync(packageDir, { recursive: true });
    const dir = join(packageDir, request.set);
    if (existsSync(dir) && !readSetDir(dir, request)) rmSync(dir, { recursive: true, force: true }); // stale
    try {
      renameSync(staging, dir);
    } catch (error) {
      // Another build got there first: use its result.
      if (!readSetDir(dir, request)) throw error;
    }
    note(
      `${kernelPackage}: kernel ${release}, ${request.set} modules ${modules.map((m) => basename(m, '.ko')).join(' ')}` +
        (selection.builtin.length > 0 ? `; built in: ${selection.builtin.join(' ')}` : '') +
        (selection.absent.length > 0 ? `; not in this kernel: ${selection.absent.join(' ')}` : '') +
        ` (${String(Date.now() - started)} ms)`,
    );
    const kernel = readSetDir(dir, request);
    if (!kernel) throw new Error(`${dir} has no kernel.json`);
    // A newer kernel replaces the older ones (kept until now for offline runs), for every set.
    for (const name of readdirSync(kernelsDir)) {
      if (name.startsWith('linux-image-') && name !== kernelPackage)
        rmSync(join(kernelsDir, name), { recursive: true });
    }
    for (const name of readdirSync(join(kernelsDir, 'debs'))) {
      if (name !== basename(deb)) rmSync(join(kernelsDir, 'debs', name), { force: true });
    }
    return kernel;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The asked-for modules and their dependencies in load order; which are built in, which the kernel lacks. */
function selectModules(
  dependencies: ReadonlyMap<string, { path: string; deps: string[] }>,
  builtin: ReadonlySet<string>,
  request: KernelRequest,
): { order: string[]; builtin: string[]; absent: string[] } {
  const loadable: string[] = [];
  const inKernel: string[] = [];
  const absent: string[] = [];
  for (const [name, required] of [
    ...request.modules.map((m) => [m, true] as const),
    ...(request.optional ?? []).map((m) => [m, false] as const),
  ]) {
    const key = name.replaceAll('-', '_');
    if (dependencies.has(key)) loadable.push(name);
    else if (builtin.has(key)) inKernel.push(name);
    else if (required) throw new Error(`module ${name} is neither in modules.dep nor built into the kernel`);
    else absent.push(name);
  }
  return { order: loadOrder(dependencies, loadable), builtin: inKernel, absent };
}

/** modules.builtin: one path per line (kernel/drivers/...ko) → the module names. */
function readBuiltin(path: string): Set<string> {
  if (!existsSync(path)) return new Set();
  return new Set(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(moduleName),
  );
}

/** modules.dep: `path: dependency-path ...` per line → a map from module name to its path and its dependencies. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const byName = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((dep) => dep !== '');
    byName.set(moduleName(path), { path, deps: deps.map(moduleName) });
  }
  return byName;
}

/** kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz → e1000 (dashes and underscores are the same to the kernel). */
export function moduleName(path: string): string {
  return basename(path.trim())
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replaceAll('-', '_');
}

/** A module's path without its compression suffix: what decompressModule writes. */
export function plainPath(path: string): string {
  return path.replace(/\.ko\.(xz|zst|gz)$/, '.ko');
}

/** The paths to insmod, dependencies before what needs them, each once. */
export function loadOrder(
  dependencies: ReadonlyMap<string, { path: string; deps: string[] }>,
  wanted: readonly string[],
): string[] {
  const order: string[] = [];
  const visit = (name: string, chain: readonly string[]) => {
    const entry = dependencies.get(name.replaceAll('-', '_'));
    if (!entry)
      throw new Error(`module ${name} is not in modules.dep (needed by ${chain.join(' → ') || 'the initramfs'})`);
    if (order.includes(entry.path) || chain.includes(name)) return;
    for (const dep of entry.deps) visit(dep, [...chain, name]);
    order.push(entry.path);
  };
  for (const name of wanted) visit(name, []);
  return order;
}

/** busybox insmod reads plain .ko files only: xz and zstd modules are decompressed here, at build time. */
export async function decompressModule(source: string, target: string): Promise<void> {
  if (source.endsWith('.ko')) {
    copyFileSync(source, target);
    return;
  }
  const tool = source.endsWith('.xz') ? 'xz' : source.endsWith('.zst') ? 'zstd' : 'gzip';
  const result = await run('sh', ['-c', `${tool} -dc "$1" > "$2"`, 'sh', source, target], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`${tool} -dc ${source}: ${result.stderr}`);
}
