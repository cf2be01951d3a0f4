/**
 * The QEMU lab's guest: Debian's own amd64 kernel and a small busybox initramfs whose /init
 * (test/harness/guest/init) acts as a preseed installer — DHCP, fetch the answer file from url=, POST the
 * phone-home URL it finds there, reboot.
 *
 * The kernel comes from scripts/lib/debian-kernel.ts (shared with the image writer, scripts/image-writer.ts):
 * Debian's package, fetched once with `apt-get download` and unpacked, never installed; this file asks it for the
 * module set "guest" (the NIC drivers below and their dependencies), cached in .tools/kernel/<package>/guest/.
 * The initramfs is built here and cached under .tools/guest/ (gitignored), idempotently:
 *   initramfs-<hash>.gz      named by a hash of everything packed into it (init, busybox, modules), so
 *                            editing the init script gives a new file and an unchanged one is reused
 * Everything is built in a temporary directory and renamed into place, so an interrupted build leaves nothing
 * half-made and two concurrent builds do not clash.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { debianKernel, type DebianKernel } from '../../scripts/lib/debian-kernel.ts';
import { addConsole, inputHash, install, makeSkeleton, packInitramfs } from '../../scripts/lib/initramfs.ts';
import { repoRoot } from './paths.ts';

export { loadOrder, parseModulesDep } from '../../scripts/lib/debian-kernel.ts';

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

/**
 * The kernel and initramfs, built on first use and reused afterwards. `note` hears about slow work (a
 * download, a build) so that a test can say why its set-up takes a while.
 */
export async function guestFiles(note: (line: string) => void = () => undefined): Promise<GuestFiles> {
  mkdirSync(guestCacheDir, { recursive: true });
  const legacy = join(guestCacheDir, 'kernel');
  const kernel = await debianKernel({
    set: 'guest',
    modules: NIC_MODULES,
    // Where this file kept the package before the kernel cache was shared: no second download.
    debDirs: [join(legacy, 'debs')],
    note,
  });
  // That older cache (.tools/guest/kernel) is superseded by .tools/kernel.
  rmSync(legacy, { recursive: true, force: true });
  const initrd = await buildInitramfs(kernel, note);
  return { kernel: kernel.vmlinuz, initrd, release: kernel.release, kernelPackage: kernel.kernelPackage };
}

// ---- the initramfs -----------------------------------------------------------------------------------------------

function hashInputs(kernel: DebianKernel, init: Buffer, busybox: Buffer): string {
  const hash = inputHash();
  hash.part('format', INITRAMFS_FORMAT);
  hash.part('init', init);
  hash.part('busybox', busybox);
  hash.part('release', kernel.release);
  for (const module of kernel.modules) {
    hash.part('module', module);
    hash.part('module-bytes', readFileSync(join(kernel.dir, 'modules', module)));
  }
  return hash.digest(16);
}

async function buildInitramfs(kernel: DebianKernel, note: (line: string) => void): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: the guest needs the busybox-static package`);
  const init = readFileSync(guestInit);
  const busybox = readFileSync(BUSYBOX);
  const target = join(guestCacheDir, `initramfs-${hashInputs(kernel, init, busybox)}.gz`);
  if (existsSync(target)) return target;

  const started = Date.now();
  const staging = mkdtempSync(join(guestCacheDir, '.initramfs-'));
  try {
    const tree = join(staging, 'tree');
    makeSkeleton(tree);
    install(init, tree, 'init', 0o755);
    install(busybox, tree, 'bin/busybox', 0o755);
    const loadList: string[] = [];
    for (const module of kernel.modules) {
      const inImage = join(kernel.release, module);
      install(join(kernel.dir, 'modules', module), tree, join('lib/modules', inImage), 0o644);
      loadList.push(inImage);
    }
    install(Buffer.from(`${loadList.join('\n')}\n`), tree, 'etc/smelt-modules', 0o644);
    await addConsole(tree);
    // Reproducible (scripts/lib/initramfs.ts): the same inputs give the same bytes.
    const packed = join(staging, 'initramfs.gz');
    await packInitramfs(tree, packed);
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
