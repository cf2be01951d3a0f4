/**
 * The project's image writer: the in-memory environment an image deployment boots (DESIGN.md §2, kind `image`).
 * Debian's own kernel (scripts/lib/debian-kernel.ts: `apt-get download`, unpacked, never installed) and a small
 * initramfs: busybox-static, the NIC and disk drivers of that kernel with their dependencies, modules.dep and
 * modules.alias so that its /init (scripts/image-writer/init) loads the drivers of the hardware it finds, and zstd
 * and sfdisk with their shared libraries when this machine has them. The init fetches the job smeltd renders for
 * the machine (smelt.job=URL on the kernel command line) and runs it with sh; see the init for the rest.
 *
 * Output, in one directory (default .tools/image-writer/): `vmlinuz`, `initrd.img`, and `image-writer.json` (what
 * went in, the files' SHA-256, the smeltctl command that registers them), written last. The build is reproducible
 * (the same inputs give the same bytes) and cached by a hash of its inputs: the kernel image, the modules, the
 * init, busybox and the copied programs and libraries. An unchanged build does nothing; a changed one is made in a
 * temporary directory and renamed into place.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { debianKernel, moduleName, repoRoot, type DebianKernel } from './debian-kernel.ts';
import {
  addConsole,
  copyAtSamePaths,
  hashFiles,
  inputHash,
  install,
  makeSkeleton,
  packInitramfs,
  programWithLibraries,
} from './initramfs.ts';

export const imageWriterInit = join(repoRoot, 'scripts/image-writer/init');
export const imageWriterDir = join(repoRoot, '.tools/image-writer');
/** busybox-static's binary: the writer's userland (sh, wget, udhcpc, gunzip, sha256sum, dd, modprobe). */
export const BUSYBOX = '/bin/busybox';
/** Bump when the layout of the initramfs changes in a way the hashed inputs do not show. */
const FORMAT = '1';

/** The drivers QEMU's machines need (the e2e suite boots one): the build fails without them. */
export const REQUIRED_MODULES = ['e1000', 'virtio_pci', 'virtio_net', 'virtio_blk'] as const;
/**
 * Drivers of common server hardware, taken when the kernel has them as modules. NICs: Intel e1000e, igb, igc,
 * ixgbe, i40e; Realtek r8169; Broadcom tg3, bnx2, bnxt_en. Disks: AHCI SATA (with sd_mod), legacy IDE (ata_piix),
 * NVMe, virtio-scsi; SAS HBAs and RAID controllers are left out (add them with --modules). Firmware files are not
 * included: NICs that need them to start (some bnx2, r8169 PHYs) need a writer of the operator's own.
 */
export const OPTIONAL_MODULES = [
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'r8169',
  'tg3',
  'bnx2',
  'bnxt_en',
  'ahci',
  'ata_piix',
  'sd_mod',
  'nvme',
  'virtio_scsi',
] as const;
/** Programs copied in with their libraries when this machine has them: what busybox lacks. */
export const TOOLS = [
  { name: 'zstd', path: '/usr/bin/zstd', package: 'zstd', for: '.img.zst images (zstd -dc)' },
  { name: 'sfdisk', path: '/usr/sbin/sfdisk', package: 'fdisk', for: 'growing the last partition (sfdisk -N)' },
] as const;

export interface ImageWriterOptions {
  /** Output directory; default .tools/image-writer. */
  out?: string;
  /** More modules (by name) to take when the kernel has them, e.g. mlx5_core, megaraid_sas. */
  extraModules?: readonly string[];
  /** Build even when the output looks up to date. */
  force?: boolean;
  /** Hears about slow work (a download, a build). */
  note?: (line: string) => void;
}

export interface ImageWriter {
  /** Absolute paths: for `smeltctl create boot --kernel`, `--initrd`. */
  kernel: string;
  initrd: string;
  kernelPackage: string;
  release: string;
  /** Module names in the initramfs, in load order. */
  modules: string[];
  /** Asked-for modules this kernel has built in; optional ones it does not have. */
  builtin: string[];
  absent: string[];
  /** Programs included (zstd, sfdisk), and those this machine lacks (with their Debian package). */
  tools: string[];
  missingTools: { name: string; package: string; for: string }[];
  /** The hash of the inputs. */
  hash: string;
  /** False when the output was already up to date. */
  built: boolean;
  /** smeltctl's arguments that register the writer as a boot. */
  createBoot: string[];
}

interface Stamp extends Omit<ImageWriter, 'kernel' | 'initrd' | 'built'> {
  files: Record<'vmlinuz' | 'initrd.img', { bytes: number; sha256: string }>;
}

export function createBootArgs(kernel: string, initrd: string, name = 'image-writer'): string[] {
  return [
    'create',
    'boot',
    '--name',
    name,
    '--kind',
    'image',
    '--kernel',
    kernel,
    '--initrd',
    initrd,
    '--cmdline',
    'console=ttyS0',
  ];
}

/** The writer in `options.out`, built when its inputs changed (or it is not there), else left as it is. */
export async function buildImageWriter(options: ImageWriterOptions = {}): Promise<ImageWriter> {
  const out = resolve(options.out ?? imageWriterDir);
  const note = options.note ?? (() => undefined);
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: the image writer needs the busybox-static package`);
  const extra = [...new Set(options.extraModules ?? [])].sort();
  // A set of its own for extra modules: switching between builds with and without them unpacks nothing again.
  const set =
    extra.length === 0
      ? 'image-writer'
      : `image-writer-${createHash('sha256').update(extra.join(',')).digest('hex').slice(0, 8)}`;
  const kernel = await debianKernel({
    set,
    modules: REQUIRED_MODULES,
    optional: [...OPTIONAL_MODULES, ...extra.filter((name) => !(OPTIONAL_MODULES as readonly string[]).includes(name))],
    note,
  });
  const init = readFileSync(imageWriterInit);
  const busybox = readFileSync(BUSYBOX);
  const tools: { name: string; files: string[] }[] = [];
  const missingTools: ImageWriter['missingTools'] = [];
  for (const tool of TOOLS) {
    if (existsSync(tool.path)) tools.push({ name: tool.name, files: await programWithLibraries(tool.path) });
    else missingTools.push({ name: tool.name, package: tool.package, for: tool.for });
  }

  const hash = inputHash();
  hash.part('format', FORMAT);
  hash.part('init', init);
  hash.part('busybox', busybox);
  hash.part('kernel-package', kernel.kernelPackage);
  hash.part('release', kernel.release);
  hash.part('vmlinuz', readFileSync(kernel.vmlinuz));
  for (const module of kernel.modules) {
    hash.part('module', module);
    hash.part('module-bytes', readFileSync(join(kernel.dir, 'modules', module)));
  }
  hash.part('modules.dep', readFileSync(kernel.modulesDep));
  hash.part('modules.alias', readFileSync(kernel.modulesAlias));
  for (const tool of tools) {
    hash.part('tool', tool.name);
    hashFiles(hash, 'tool-file', tool.files);
  }
  const digest = hash.digest(16);

  const files = { kernel: join(out, 'vmlinuz'), initrd: join(out, 'initrd.img') };
  const stampPath = join(out, 'image-writer.json');
  const describe = (built: boolean): ImageWriter => ({
    ...files,
    kernelPackage: kernel.kernelPackage,
    release: kernel.release,
    modules: kernel.modules.map(moduleName),
    builtin: kernel.builtin,
    absent: kernel.absent,
    tools: tools.map((tool) => tool.name),
    missingTools,
    hash: digest,
    built,
    createBoot: createBootArgs(files.kernel, files.initrd),
  });
  if (options.force !== true && upToDate(stampPath, digest, files)) return describe(false);

  const started = Date.now();
  mkdirSync(out, { recursive: true });
  const staging = mkdtempSync(join(out, '.build-'));
  try {
    const tree = join(staging, 'tree');
    await buildTree(tree, kernel, init, busybox, tools, digest);
    await packInitramfs(tree, join(staging, 'initrd.img'));
    copyFileSync(kernel.vmlinuz, join(staging, 'vmlinuz'));
    const result = describe(true);
    const { kernel: _kernel, initrd: _initrd, built: _built, ...rest } = result;
    const stamp: Stamp = {
      ...rest,
      files: { vmlinuz: fileFacts(join(staging, 'vmlinuz')), 'initrd.img': fileFacts(join(staging, 'initrd.img')) },
    };
    writeFileSync(join(staging, 'image-writer.json'), `${JSON.stringify(stamp, null, 2)}\n`);
    // The stamp goes last: a build interrupted between the renames is redone next time.
    rmSync(stampPath, { force: true });
    renameSync(join(staging, 'vmlinuz'), files.kernel);
    renameSync(join(staging, 'initrd.img'), files.initrd);
    renameSync(join(staging, 'image-writer.json'), stampPath);
    note(
      `built the image writer in ${out}: initrd.img ${(stamp.files['initrd.img'].bytes / 1e6).toFixed(1)} MB ` +
        `(${String(kernel.modules.length)} modules; ${tools.map((t) => t.name).join(', ') || 'no extra tools'}), ` +
        `${String(Date.now() - started)} ms`,
    );
    return result;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function buildTree(
  tree: string,
  kernel: DebianKernel,
  init: Buffer,
  busybox: Buffer,
  tools: readonly { name: string; files: string[] }[],
  digest: string,
): Promise<void> {
  makeSkeleton(tree);
  install(init, tree, 'init', 0o755);
  install(busybox, tree, 'bin/busybox', 0o755);
  const modulesDir = join('lib/modules', kernel.release);
  for (const module of kernel.modules) {
    install(join(kernel.dir, 'modules', module), tree, join(modulesDir, module), 0o644);
  }
  install(kernel.modulesDep, tree, join(modulesDir, 'modules.dep'), 0o644);
  install(kernel.modulesAlias, tree, join(modulesDir, 'modules.alias'), 0o644);
  // Every module by name, for the init's fallback when no driver matched a device.
  const names = kernel.modules.map(moduleName);
  install(Buffer.from(`${names.join('\n')}\n`), tree, 'etc/smelt-modules', 0o644);
  const tooled = tools.map((tool) => tool.name).join(',');
  install(
    Buffer.from(`${digest} (${kernel.kernelPackage}${tooled === '' ? '' : `; ${tooled}`})\n`),
    tree,
    'etc/smelt-writer',
    0o644,
  );
  for (const tool of tools) copyAtSamePaths(tool.files, tree);
  await addConsole(tree);
}

function fileFacts(path: string): { bytes: number; sha256: string } {
  const bytes = readFileSync(path);
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function upToDate(stampPath: string, digest: string, files: { kernel: string; initrd: string }): boolean {
  if (!existsSync(stampPath) || !existsSync(files.kernel) || !existsSync(files.initrd)) return false;
  try {
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as Partial<Stamp>;
    if (stamp.hash !== digest) return false;
    // Sizes only (cheap): a file replaced by hand is noticed in most cases; `force` rebuilds regardless.
    return (
      statSync(files.kernel).size === stamp.files?.vmlinuz.bytes &&
      statSync(files.initrd).size === stamp.files['initrd.img'].bytes
    );
  } catch {
    return false;
  }
}
