import { mkdir, readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import { initiatorIqn } from '../boot/policy.ts';
import {
  createOverlay,
  exportOverlay,
  fuseMounts,
  isExported,
  overlayBase,
  overlayFiles,
  removeOverlay,
  unexportOverlay,
} from './overlay.ts';
import type { TgtAdmin, TgtTarget } from './tgt.ts';

/** A machine that should have a copy-on-write disk over `base`. */
export interface WantedDisk {
  mac: string;
  base: string;
}

export interface CowTargetsOptions {
  /** Where the overlays, their mount points and pid files live. */
  dir: string;
  /** Target names: PREFIX-<mac with dashes>. */
  iqn: string;
  firstTid: number;
  tgt: TgtAdmin;
  /** The disks the deployments ask for now (read at every pass). */
  wanted: () => Iterable<WantedDisk>;
  log: Logger;
  /** A pass that failed is tried again after this long. */
  retryMs?: number;
  qemuImg?: string;
  storageDaemon?: string;
}

/** What one pass found: tgtd's targets of our prefix by name, every target id in use, the files, the mounts. */
interface PassState {
  ours: Map<string, TgtTarget>;
  tids: Set<number>;
  names: ReadonlySet<string>;
  mounts: ReadonlySet<string>;
}

/** PREFIX-52-54-00-12-34-56: the target a machine's disk is exported as. */
export function targetIqnOf(prefix: string, mac: string): string {
  return `${prefix}-${mac.replaceAll(':', '-')}`;
}

const fileMac = /^((?:[0-9a-f]{2}-){5}[0-9a-f]{2})\.(?:qcow2|json|pid|disk)$/;

/**
 * Keeps tgtd's targets and the overlays in line with the deployments (DESIGN.md: decide, then act): each pass
 * compares what is wanted with what exists — overlay files in `dir`, tgtd's targets of our prefix — and makes,
 * restarts or removes the difference. So a daemon restart, a tgtd restart or a qemu-storage-daemon that died are
 * all mended by the next pass, and a released machine's disk is removed (its writes discarded). Exports outlive
 * the daemon: stopping smeltd never takes a running machine's disk away.
 */
export function createCowTargets(options: CowTargetsOptions) {
  const { dir, tgt, log } = options;
  const retryMs = options.retryMs ?? 30_000;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function pass(): Promise<boolean> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const wanted = new Map([...options.wanted()].map((disk) => [disk.mac, disk.base]));
    const targets = await tgt.targets();
    const ours = new Map(targets.filter((t) => t.iqn.startsWith(`${options.iqn}-`)).map((t) => [t.iqn, t]));
    const tids = new Set(targets.map((t) => t.tid));
    // Read once a pass, not once a disk: the directory and the mount table.
    const names = new Set(await readdir(dir));
    const mounts = await fuseMounts();
    let failed = false;
    for (const [mac, base] of wanted) {
      try {
        await ensure(mac, base, { ours, tids, names, mounts });
      } catch (error) {
        failed = true;
        log.error({ err: error, mac, base }, 'could not export the iSCSI disk; trying again later');
      }
    }
    const present = new Set<string>();
    for (const name of names) {
      const match = fileMac.exec(name);
      if (match?.[1]) present.add(match[1].replaceAll('-', ':'));
    }
    for (const target of ours.values()) present.add(target.iqn.slice(options.iqn.length + 1).replaceAll('-', ':'));
    for (const mac of present) {
      if (wanted.has(mac)) continue;
      try {
        await teardown(mac, ours.get(targetIqnOf(options.iqn, mac)));
      } catch (error) {
        failed = true;
        log.error({ err: error, mac }, 'could not remove the iSCSI disk; trying again later');
      }
    }
    return !failed;
  }

  async function ensure(mac: string, base: string, seen: PassState): Promise<void> {
    const { ours, tids, names, mounts } = seen;
    const files = overlayFiles(dir, mac);
    const iqn = targetIqnOf(options.iqn, mac);
    const dropTarget = async () => {
      const target = ours.get(iqn);
      if (target) await tgt.remove(target.tid);
      ours.delete(iqn);
    };
    if ((await overlayBase(files)) !== base || !names.has(basename(files.overlay))) {
      // A new deployment, or one moved to another base: a fresh overlay; nothing may serve the old one meanwhile.
      await dropTarget();
      await unexportOverlay(files);
      await createOverlay(files, base, options.qemuImg);
      log.info({ mac, base, overlay: files.overlay }, 'made a copy-on-write disk');
    }
    if (!(await isExported(files, mounts))) {
      // tgtd keeps the file it opened: a target over a dead mount must be made again over the new one.
      await dropTarget();
      await unexportOverlay(files);
      await exportOverlay(files, options.storageDaemon);
    }
    if (!ours.has(iqn)) {
      let tid = options.firstTid;
      while (tids.has(tid)) tid += 1;
      await tgt.create(tid, iqn, files.disk, initiatorIqn(mac));
      tids.add(tid);
      ours.set(iqn, { tid, iqn });
      log.info({ mac, iqn, tid }, 'iSCSI disk exported');
    }
  }

  async function teardown(mac: string, target: TgtTarget | undefined): Promise<void> {
    const files = overlayFiles(dir, mac);
    if (target) await tgt.remove(target.tid);
    await unexportOverlay(files);
    await removeOverlay(files);
    log.info({ mac }, 'iSCSI disk removed; its writes are discarded');
  }

  const isClosed = () => closed;

  function schedule(): Promise<void> {
    if (closed) return Promise.resolve();
    if (running) {
      // The pass in progress may have read the deployments before this change: one more pass after it.
      again = true;
      return running;
    }
    clearTimeout(retry);
    running = (async () => {
      // Read through a call: `again` and `closed` change while a pass awaits.
      const anotherPass = () => again && !closed;
      const attempt = () =>
        pass().catch((error: unknown) => {
          log.error({ err: error }, 'iSCSI disks: tgtd or the overlays directory is not usable; trying again later');
          return false;
        });
      again = false;
      let ok = await attempt();
      while (anotherPass()) {
        again = false;
        ok = await attempt();
      }
      if (!ok && !isClosed()) {
        retry = setTimeout(() => void schedule(), retryMs);
        retry.unref();
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    /** Brings the disks in line with the deployments; resolves when a pass that saw the current ones is done. */
    reconcile: schedule,
    /** Stops reconciling; the exports stay (machines keep their disks while the daemon is down). */
    async close(): Promise<void> {
      closed = true;
      clearTimeout(retry);
      await running;
    },
  };
}
export type CowTargets = ReturnType<typeof createCowTargets>;
