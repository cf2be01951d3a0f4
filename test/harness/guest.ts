/**
 * The QEMU lab's guest: Debian's own amd64 kernel and a small busybox initramfs whose /init
 * (test/harness/guest/init) acts as a preseed installer — DHCP, fetch the answer file from url=, POST the
 * phone-home URL it finds there, reboot.
 *
 * Both are built here and cached under .tools/guest/ (gitignored), idempotently:
 *   kernel/debs/             the kernel package as downloaded (kept: a new module list needs no network)
 *   kernel/<package>/        vmlinuz-<release>, the NIC drivers and their dependencies as plain .ko files
 *                            (modules/<path in lib/modules/<release>>), and kernel.json (release, load order)
 *   initramfs-<hash>.gz      named by a hash of everything packed into it (init, busybox, modules), so
 *                            editing the init script gives a new file and an unchanged one is reused
 * The kernel is never installed on this machine: `apt-get download` of the package linux-image-amd64 depends
 * on, `dpkg -x` into a scratch directory, keep what the guest needs, delete the rest (unpacked ~400 MB). Everything is built in a temporary directory and renamed into place, so an interrupted
 * build leaves nothing half-made and two concurrent builds do not clash.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
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
import { repoRoot } from './paths.ts';
import { run, runOk } from './process.ts';

export const guestCacheDir = join(repoRoot, '.tools/guest');
export const guestInit = join(repoRoot, 'test/harness/guest/init');
/** busybox-static's binary (the guest has no libc). */
export const BUSYBOX = '/bin/busybox';
/**
 * The drivers of the lab's NICs (qemu.ts): e1000, and virtio-net (virtio_pci binds the device, virtio_net
 * drives it). Debian builds them as modules; their dependencies come from modules.dep.
 */
export const NIC_MODULES = ['e1000', 'virtio_pci', 'virtio_net'] as const;
/** Bump when the layout of the initramfs changes in a way the hashed inputs do not show. */
const INITRAMFS_FORMAT = '1';

export interface GuestFiles {
  /** Path of the kernel image (bzImage), to give to `smeltctl create boot --kernel`. */
  kernel: string;
  /** Path of the gzipped newc initramfs, for `--initrd`. */
  initrd: string;
  /** The kernel's release, e.g. 6.1.0-56-amd64. */
  release: string;
  /** The Debian package the kernel came from. */
  kernelPackage: string;
}

interface CachedKernel {
  dir: string;
  kernelPackage: string;
  release: string;
  vmlinuz: string;
  /** Module paths relative to `${dir}/modules`, in load order. */
  modules: string[];
}

/**
 * The kernel and initramfs, built on first use and reused afterwards. `note` hears about slow work (a
 * download, a build) so that a test can say why its set-up takes a while.
 */
export async function guestFiles(note: (line: string) => void = () => undefined): Promise<GuestFiles> {
  mkdirSync(guestCacheDir, { recursive: true });
  const kernel = await cachedKernel(note);
  const initrd = buildInitramfs(kernel, note);
  return { kernel: kernel.vmlinuz, initrd: await initrd, release: kernel.release, kernelPackage: kernel.kernelPackage };
}

// ---- the kernel --------------------------------------------------------------------------------------------------

/** The versioned kernel package the metapackage linux-image-amd64 depends on, per this machine's apt lists. */
async function currentKernelPackage(): Promise<string | undefined> {
  const result = await run('apt-cache', ['depends', 'linux-image-amd64'], { timeoutMs: 30_000 });
  if (result.code !== 0) return undefined;
  return /^\s*Depends:\s*(linux-image-\S+)$/m.exec(result.stdout)?.[1];
}

/** The cached kernel in `dir`, if it is complete and carries the modules NIC_MODULES names. */
function readKernelDir(dir: string): CachedKernel | undefined {
  const stamp = join(dir, 'kernel.json');
  if (!existsSync(stamp)) return undefined;
  const meta = JSON.parse(readFileSync(stamp, 'utf8')) as {
    kernelPackage: string;
    release: string;
    wanted?: string[];
    modules: string[];
  };
  if (meta.wanted?.join(' ') !== NIC_MODULES.join(' ')) return undefined;
  return {
    dir,
    kernelPackage: meta.kernelPackage,
    release: meta.release,
    vmlinuz: join(dir, `vmlinuz-${meta.release}`),
    modules: meta.modules,
  };
}

async function cachedKernel(note: (line: string) => void): Promise<CachedKernel> {
  const kernelsDir = join(guestCacheDir, 'kernel');
  mkdirSync(kernelsDir, { recursive: true });
  const wanted = await currentKernelPackage();
  if (wanted !== undefined) {
    const cached = readKernelDir(join(kernelsDir, wanted));
    if (cached) return cached;
    try {
      return await fetchKernel(kernelsDir, wanted, note);
    } catch (error) {
      // Offline, or the apt lists name a package the mirror no longer has: any kernel fetched before will do.
      const fallback = newestCachedKernel(kernelsDir);
      if (!fallback) throw error;
      note(`could not fetch ${wanted} (${String(error).split('\n')[0] ?? ''}); using ${fallback.kernelPackage}`);
      return fallback;
    }
  }
  const fallback = newestCachedKernel(kernelsDir);
  if (!fallback) {
    throw new Error(`apt-cache depends linux-image-amd64 named no kernel package, and none is cached in ${kernelsDir}`);
  }
  return fallback;
}

function newestCachedKernel(kernelsDir: string): CachedKernel | undefined {
  return readdirSync(kernelsDir)
    .map((name) => readKernelDir(join(kernelsDir, name)))
    .filter((kernel): kernel is CachedKernel => kernel !== undefined)
    .sort((a, b) => statSync(b.dir).mtimeMs - statSync(a.dir).mtimeMs)[0];
}

/**
 * The package's .deb, from kernel/debs/ when an earlier run downloaded it (kept, ~70 MB, so that a change of
 * NIC_MODULES needs no network), else by `apt-get download` (into a scratch directory, then moved there).
 */
async function kernelDeb(kernelsDir: string, kernelPackage: string, note: (line: string) => void): Promise<string> {
  const debs = join(kernelsDir, 'debs');
  mkdirSync(debs, { recursive: true });
  const kept = readdirSync(debs).find((name) => name.startsWith(`${kernelPackage}_`) && name.endsWith('.deb'));
  if (kept !== undefined) return join(debs, kept);
  note(`fetching ${kernelPackage} with apt-get download (once; kept in ${debs})`);
  const scratch = mkdtempSync(join(kernelsDir, '.download-'));
  try {
    // apt's _apt user cannot write here; apt says so on stderr and downloads as root instead.
    await runOk('apt-get', ['download', kernelPackage], { cwd: scratch });
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
  note: (line: string) => void,
): Promise<CachedKernel> {
  const started = Date.now();
  const deb = await kernelDeb(kernelsDir, kernelPackage, note);
  const scratch = mkdtempSync(join(kernelsDir, '.scratch-'));
  const staging = mkdtempSync(join(kernelsDir, '.staging-'));
  try {
    const root = join(scratch, 'root');
    await runOk('dpkg', ['-x', deb, root]);
    const image = readdirSync(join(root, 'boot')).find((name) => name.startsWith('vmlinuz-'));
    if (image === undefined) throw new Error(`${deb} has no boot/vmlinuz-*`);
    const release = image.slice('vmlinuz-'.length);
    copyFileSync(join(root, 'boot', image), join(staging, image));

    // Debian ships no modules.dep (depmod makes it on installation); make it inside the unpacked tree.
    const modulesRoot = [join(root, 'lib/modules', release), join(root, 'usr/lib/modules', release)].find((dir) =>
      existsSync(dir),
    );
    if (modulesRoot === undefined) throw new Error(`${deb} has no lib/modules/${release}`);
    if (!existsSync(join(modulesRoot, 'modules.dep'))) {
      const base = modulesRoot.endsWith(join('usr/lib/modules', release)) ? join(root, 'usr') : root;
      await runOk('depmod', ['-b', base, release]);
    }
    const dependencies = parseModulesDep(readFileSync(join(modulesRoot, 'modules.dep'), 'utf8'));
    const modules: string[] = [];
    for (const path of loadOrder(dependencies, NIC_MODULES)) {
      const plain = path.replace(/\.ko\.(xz|zst|gz)$/, '.ko');
      const target = join(staging, 'modules', plain);
      mkdirSync(dirname(target), { recursive: true });
      await decompressModule(join(modulesRoot, path), target);
      modules.push(plain);
    }
    const meta = { kernelPackage, release, deb: basename(deb), wanted: NIC_MODULES, modules };
    writeFileSync(join(staging, 'kernel.json'), `${JSON.stringify(meta, null, 2)}\n`);
    chmodSync(staging, 0o755);
    const dir = join(kernelsDir, kernelPackage);
    if (existsSync(dir) && !readKernelDir(dir)) rmSync(dir, { recursive: true, force: true }); // stale
    try {
      renameSync(staging, dir);
    } catch (error) {
      // Another build got there first: use its result.
      if (!readKernelDir(dir)) throw error;
    }
    note(
      `${kernelPackage}: kernel ${release}, modules ${modules.map((m) => basename(m)).join(' ')} (${String(Date.now() - started)} ms)`,
    );
    const kernel = readKernelDir(dir);
    if (!kernel) throw new Error(`${dir} has no kernel.json`);
    // A newer kernel replaces the older ones (kept until now for offline runs).
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
function moduleName(path: string): string {
  return basename(path)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replaceAll('-', '_');
}

/** The paths to insmod, dependencies before what needs them, each once. */
export function loadOrder(
  dependencies: ReadonlyMap<string, { path: string; deps: string[] }>,
  wanted: readonly string[],
): string[] {
  const order: string[] = [];
  const visit = (name: string, chain: readonly string[]) => {
    const entry = dependencies.get(name.replaceAll('-', '_'));
    if (!entry) throw new Error(`module ${name} is not in modules.dep (needed by ${chain.join(' → ') || 'the guest'})`);
    if (order.includes(entry.path) || chain.includes(name)) return;
    for (const dep of entry.deps) visit(dep, [...chain, name]);
    order.push(entry.path);
  };
  for (const name of wanted) visit(name, []);
  return order;
}

/** busybox insmod reads plain .ko files only: xz and zstd modules are decompressed here, at build time. */
async function decompressModule(source: string, target: string): Promise<void> {
  if (source.endsWith('.ko')) {
    copyFileSync(source, target);
    return;
  }
  const tool = source.endsWith('.xz') ? 'xz' : source.endsWith('.zst') ? 'zstd' : 'gzip';
  const result = await run('sh', ['-c', `${tool} -dc "$1" > "$2"`, 'sh', source, target], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`${tool} -dc ${source}: ${result.stderr}`);
}

// ---- the initramfs -----------------------------------------------------------------------------------------------

function hashInputs(kernel: CachedKernel, init: Buffer, busybox: Buffer): string {
  const hash = createHash('sha256');
  const part = (label: string, value: string | Buffer) => {
    hash.update(`${label}\0${String(value.length)}\0`);
    hash.update(value);
  };
  part('format', INITRAMFS_FORMAT);
  part('init', init);
  part('busybox', busybox);
  part('release', kernel.release);
  for (const module of kernel.modules) {
    part('module', module);
    part('module-bytes', readFileSync(join(kernel.dir, 'modules', module)));
  }
  return hash.digest('hex').slice(0, 16);
}

async function buildInitramfs(kernel: CachedKernel, note: (line: string) => void): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: the guest needs the busybox-static package`);
  const init = readFileSync(guestInit);
  const busybox = readFileSync(BUSYBOX);
  const target = join(guestCacheDir, `initramfs-${hashInputs(kernel, init, busybox)}.gz`);
  if (existsSync(target)) return target;

  const started = Date.now();
  const staging = mkdtempSync(join(guestCacheDir, '.initramfs-'));
  try {
    const tree = join(staging, 'tree');
    for (const dir of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'run', 'sbin', 'usr/bin', 'usr/sbin']) {
      mkdirSync(join(tree, dir), { recursive: true });
    }
    writeFileSync(join(tree, 'init'), init);
    chmodSync(join(tree, 'init'), 0o755);
    writeFileSync(join(tree, 'bin/busybox'), busybox);
    chmodSync(join(tree, 'bin/busybox'), 0o755);
    chmodSync(join(tree, 'tmp'), 0o1777);
    const loadList: string[] = [];
    for (const module of kernel.modules) {
      const inImage = join(kernel.release, module);
      mkdirSync(dirname(join(tree, 'lib/modules', inImage)), { recursive: true });
      copyFileSync(join(kernel.dir, 'modules', module), join(tree, 'lib/modules', inImage));
      loadList.push(inImage);
    }
    writeFileSync(join(tree, 'etc/smelt-modules'), `${loadList.join('\n')}\n`);
    // The kernel's built-in initramfs has /dev/console already; this one is for kernels without it (root only).
    await run('mknod', ['-m', '600', join(tree, 'dev/console'), 'c', '5', '1']);
    // newc, owned by root, in a stable order, without timestamps in the gzip header: the same inputs give the
    // same bytes.
    const packed = join(staging, 'initramfs.gz');
    await runOk(
      'sh',
      [
        '-c',
        'cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 -n > "$2"',
        'sh',
      ].concat([tree, packed]),
    );
    renameSync(packed, target);
    note(`built ${basename(target)} (${String(statSync(target).size)} bytes, ${String(Date.now() - started)} ms)`);
    pruneInitramfs(target);
    return target;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Initramfs images of earlier inputs (an edited init), once no test started within the last hour can use them. */
function pruneInitramfs(current: string): void {
  const hourAgo = Date.now() - 3_600_000;
  for (const name of readdirSync(guestCacheDir)) {
    const path = join(guestCacheDir, name);
    if (/^initramfs-[0-9a-f]+\.gz$/.test(name) && path !== current && statSync(path).mtimeMs < hourAgo) {
      rmSync(path, { force: true });
    }
  }
}
