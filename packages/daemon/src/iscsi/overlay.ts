import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool } from './run-tool.ts';

/** The files of one machine's copy-on-write disk, named after its MAC in the overlays directory. */
export interface OverlayFiles {
  /** qcow2 over the base image: only the blocks this machine wrote. */
  overlay: string;
  /** The overlay as a plain file of the disk's size (qemu-storage-daemon's FUSE export): what tgtd serves. */
  disk: string;
  /** qemu-storage-daemon's pid file: it outlives smeltd, so a restart of the daemon never cuts a running machine. */
  pid: string;
  /** Which base the overlay was made over (JSON): a deployment moved to another base gets a fresh overlay. */
  meta: string;
}

export function overlayFiles(dir: string, mac: string): OverlayFiles {
  const name = mac.replaceAll(':', '-');
  const at = (suffix: string) => join(dir, `${name}.${suffix}`);
  return { overlay: at('qcow2'), disk: at('disk'), pid: at('pid'), meta: at('json') };
}

/** The base an overlay was made over, or undefined when there is none (or its record is unreadable). */
export async function overlayBase(files: OverlayFiles): Promise<string | undefined> {
  try {
    const meta = JSON.parse(await readFile(files.meta, 'utf8')) as { base?: unknown };
    return typeof meta.base === 'string' ? meta.base : undefined;
  } catch {
    return undefined;
  }
}

/** A new, empty overlay over `base` (raw or qcow2, as qemu-img finds it); the base is only ever read. */
export async function createOverlay(files: OverlayFiles, base: string, qemuImg = 'qemu-img'): Promise<void> {
  const info = JSON.parse(await runTool(qemuImg, ['info', '--output=json', base])) as { format?: unknown };
  const format = typeof info.format === 'string' ? info.format : 'raw';
  await rm(files.overlay, { force: true });
  await runTool(qemuImg, ['create', '-q', '-f', 'qcow2', '-b', base, '-F', format, files.overlay]);
  await writeFile(files.meta, JSON.stringify({ base, format }) + '\n');
}

/** qemu's option syntax doubles a comma inside a value. */
const optionValue = (text: string) => text.replaceAll(',', ',,');

/**
 * Exposes the overlay at files.disk through qemu-storage-daemon's FUSE export, daemonized: the call returns once
 * the export is up (qemu-storage-daemon's parent waits for it), and the process stays when smeltd stops.
 */
export async function exportOverlay(files: OverlayFiles, storageDaemon = 'qemu-storage-daemon'): Promise<void> {
  // A FUSE export mounts over an existing regular file.
  await writeFile(files.disk, '', { flag: 'a' });
  await runTool(storageDaemon, [
    '--daemonize',
    '--pidfile',
    files.pid,
    '--blockdev',
    `driver=file,node-name=file,filename=${optionValue(files.overlay)}`,
    '--blockdev',
    'driver=qcow2,node-name=disk,file=file',
    '--export',
    `type=fuse,id=disk,node-name=disk,mountpoint=${optionValue(files.disk)},writable=on`,
  ]);
}

async function pidOf(files: OverlayFiles): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(files.pid, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Running, not exited: a daemonized process is reaped by init, and until then it is a zombie that kill(0) finds. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

/** The FUSE mount points now (/proc/self/mountinfo: the mount point is field 5, the type follows " - "). */
export async function fuseMounts(): Promise<Set<string>> {
  const points = new Set<string>();
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const fields = line.split(' ');
    const type = fields[fields.indexOf('-') + 1] ?? '';
    if (type.startsWith('fuse') && fields[4] !== undefined) points.add(fields[4]);
  }
  return points;
}

/** The export is up: its qemu-storage-daemon lives and the disk file is its mount (`mounts`: fuseMounts()). */
export async function isExported(files: OverlayFiles, mounts: ReadonlySet<string>): Promise<boolean> {
  const pid = await pidOf(files);
  return pid !== undefined && mounts.has(files.disk) && (await alive(pid));
}

/** Stops the export (SIGTERM; qemu-storage-daemon unmounts and flushes the overlay), waiting up to 10 s. */
export async function unexportOverlay(files: OverlayFiles): Promise<void> {
  const pid = await pidOf(files);
  if (pid !== undefined && (await alive(pid))) {
    process.kill(pid, 'SIGTERM');
    for (let waited = 0; (await alive(pid)) && waited < 10_000; waited += 50) await sleep(50);
    if (await alive(pid)) throw new Error(`qemu-storage-daemon ${String(pid)} did not stop within 10 s`);
  }
  // A daemon that died without unmounting leaves a dead FUSE mount ("transport endpoint is not connected").
  if ((await fuseMounts()).has(files.disk)) await runTool('umount', ['-l', files.disk]);
  await rm(files.pid, { force: true });
}

/** Discards the machine's writes: the overlay, its record and the mount point file. */
export async function removeOverlay(files: OverlayFiles): Promise<void> {
  await Promise.all([files.overlay, files.disk, files.meta, files.pid].map((path) => rm(path, { force: true })));
}
