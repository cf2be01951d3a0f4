import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, waitUntil } from './dhcp-lab.ts';
import type { Netns } from './netns.ts';
import { exited, run } from './process.ts';

/** The daemon's default target prefix (config iscsi.iqn) and the initiator names iPXE is given (boot/policy.ts). */
export const TARGET_PREFIX = 'iqn.2026-11.org.smelt:disk';
export const initiatorOf = (mac: string) => `iqn.2026-11.org.smelt:${mac.replaceAll(':', '-')}`;
export const targetOf = (mac: string) => `${TARGET_PREFIX}-${mac.replaceAll(':', '-')}`;

export interface RunningTgtd {
  /** tgtd's control port (`-C`), for the daemon's config iscsi.control. */
  control: number;
  /** The names of the targets tgtd has now. */
  targets(): Promise<string[]>;
  /** Shuts tgtd down (it ignores SIGTERM while it has targets) and waits for it. */
  stop(): Promise<void>;
}

/**
 * tgtd in a namespace of the test's, serving iSCSI on `portal`. It enters the network namespace alone
 * (`nsenter --net`): it must see the FUSE mounts smeltd's storage daemons make, as on a host, and `ip netns exec`
 * would give it a mount namespace of its own. Its control socket (/var/run/tgtd/socket.N) is not namespaced, so
 * the port is this process's own (tgtd takes 0-32767).
 */
export async function startTgtd(ns: Netns, portal: string): Promise<RunningTgtd> {
  const control = 1000 + (process.pid % 30_000);
  const tgtadm = (...args: string[]) => run('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...args]);
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${ns.name}`, '--', 'tgtd', '-f', '-C', String(control), '--iscsi', `portal=${portal}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await tgtadm('--mode', 'system', '--op', 'delete', '--force');
      child.kill('SIGKILL'); // if the shutdown above did not end it; nothing when it did
    }
    await exited(child);
  };
  try {
    await waitUntil(
      'tgtd',
      async () => ((await tgtadm('--mode', 'target', '--op', 'show')).code === 0 ? true : undefined),
      30_000,
    );
  } catch (error) {
    await stop();
    throw new Error(`tgtd did not come up (exit ${String(child.exitCode)}): ${output}`, { cause: error });
  }
  return {
    control,
    async targets() {
      const listing = await tgtadm('--mode', 'target', '--op', 'show');
      assert.equal(listing.code, 0, listing.stderr);
      return [...listing.stdout.matchAll(/^Target \d+: (\S+)$/gm)].map((match) => match[1] ?? '');
    },
    stop,
  };
}

/** The pids of the storage daemons (qemu-storage-daemon) a daemon's iSCSI disks run on, from their pid files. */
export function storageDaemonPids(dataDir: string): number[] {
  const dir = join(dataDir, 'iscsi');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.pid'))
    .map((name) => Number(readFileSync(join(dir, name), 'utf8').trim()))
    .filter((pid) => pid > 0);
}

/**
 * Ends the storage daemons of `dataDir` (they outlive smeltd by design) and lazily unmounts any FUSE mount still
 * under `root` (one whose daemon was killed with SIGKILL keeps it), so that the test's directory can go.
 */
export async function stopStorageDaemons(dataDir: string, root: string): Promise<void> {
  for (const pid of storageDaemonPids(dataDir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await waitUntil('a storage daemon to stop', () => (alive(pid) ? undefined : true), 10_000).catch(() => undefined);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const point of mounts.map((line) => line.split(' ')[4] ?? '')) {
    if (point.startsWith(`${root}/`)) await run('umount', ['-l', point]);
  }
}

/** qemu-io in `ns` as an iSCSI initiator (libiscsi) named `initiator`, on `target` LUN 1 at `portal`. */
export async function qemuIo(
  ns: Netns,
  portal: string,
  target: string,
  initiator: string,
  commands: readonly string[],
): Promise<{ code: number | null; output: string }> {
  const image = `driver=iscsi,transport=tcp,portal=${portal},target=${target},lun=1,initiator-name=${initiator}`;
  const args = ['netns', 'exec', ns.name, 'qemu-io', '--image-opts', image];
  for (const command of commands) args.push('-c', command);
  const result = await run('ip', args, { timeoutMs: 30_000 });
  return { code: result.code, output: result.stdout + result.stderr };
}

/** qemu-io commands that must all succeed as `mac`'s own initiator (a `read -P` finding another pattern fails). */
export async function qemuIoOk(ns: Netns, portal: string, mac: string, commands: readonly string[]): Promise<void> {
  const { code, output } = await qemuIo(ns, portal, targetOf(mac), initiatorOf(mac), commands);
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /fail|error|mismatch/i, output);
}
