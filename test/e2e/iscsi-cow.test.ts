/**
 * Diskless machines on copy-on-write iSCSI disks the daemon makes (config `iscsi`, deployments' live.iscsi.base):
 * a real tgtd in the server's namespace, smeltd driving it, and qemu-io's user-space iSCSI initiator (libiscsi)
 * in the machine's namespace as each machine. Two machines over one base image write, and each reads back only its
 * own writes, the base untouched; a target admits only its machine's initiator name; a daemon restart leaves the
 * disks as they were; release removes a machine's target and its writes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { alive, createLab, smeltctlIn, smeltctlJson, waitUntil, type Lab } from '../harness/dhcp-lab.ts';
import type { Netns } from '../harness/netns.ts';
import { exited, run } from '../harness/process.ts';
import { startSmeltd, type RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.74.0.1';
// tgtd's control socket (/var/run/tgtd/socket.N) is not in the network namespace: a number of this process's own.
const CONTROL = 1000 + (process.pid % 30_000); // tgtd takes 0-32767
const PREFIX = 'iqn.2026-11.org.smelt:disk';
const MACS = ['52:54:00:74:00:01', '52:54:00:74:00:02'] as const;
const initiatorOf = (mac: string) => `iqn.2026-11.org.smelt:${mac.replaceAll(':', '-')}`;
const targetOf = (mac: string) => `${PREFIX}-${mac.replaceAll(':', '-')}`;

let lab: Lab | undefined;
let server: Netns | undefined;
let machine: Netns | undefined;
let tgtd: ChildProcess | undefined;
const daemons: RunningSmeltd[] = [];
let daemon: RunningSmeltd | undefined;
let base = '';

function ready(): { lab: Lab; server: Netns; machine: Netns; daemon: RunningSmeltd } {
  if (!lab || !server || !machine || !daemon) throw new Error('the lab did not come up');
  return { lab, server, machine, daemon };
}

const tgtadm = (...args: string[]) => run('tgtadm', ['-C', String(CONTROL), '--lld', 'iscsi', ...args]);

async function targets(): Promise<string[]> {
  const listing = await tgtadm('--mode', 'target', '--op', 'show');
  assert.equal(listing.code, 0, listing.stderr);
  return [...listing.stdout.matchAll(/^Target \d+: (\S+)$/gm)].map((match) => match[1] ?? '');
}

/** qemu-io in the machine's namespace, logged in as `initiator` to `target` LUN 1; its output (exit status kept). */
async function qemuIo(target: string, initiator: string, commands: string[]) {
  const { machine } = ready();
  const image = `driver=iscsi,transport=tcp,portal=${SERVER}:3260,target=${target},lun=1,initiator-name=${initiator}`;
  const args = ['netns', 'exec', machine.name, 'qemu-io', '--image-opts', image];
  for (const command of commands) args.push('-c', command);
  const result = await run('ip', args, { timeoutMs: 30_000 });
  return { code: result.code, output: result.stdout + result.stderr };
}

/** Runs qemu-io commands that must all succeed (a `read -P` that finds another pattern prints a failure). */
async function qemuIoOk(mac: string, commands: string[]): Promise<void> {
  const { code, output } = await qemuIo(targetOf(mac), initiatorOf(mac), commands);
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /fail|error|mismatch/i, output);
}

/** smeltd in the server's namespace, making iSCSI disks; a restart when given the last one's data directory. */
async function smeltd(dataDir?: string): Promise<RunningSmeltd> {
  const started = await startSmeltd({
    netns: server?.name ?? '',
    hostMounts: true,
    dataDir: dataDir ?? join(lab?.dir ?? '', 'data'),
    config: { address: SERVER, interface: 'is0', dhcp: { mode: 'off' }, iscsi: { enabled: true, control: CONTROL } },
  });
  daemons.push(started);
  return started;
}

function storageDaemonPids(): number[] {
  const dir = join(ready().daemon.dataDir, 'iscsi');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.pid'))
    .map((name) => Number(readFileSync(join(dir, name), 'utf8').trim()));
}

before(async () => {
  lab = createLab('iscsi');
  server = await lab.netns('iss');
  machine = await lab.netns('ism');
  await lab.link(
    { ns: server, name: 'is0', address: `${SERVER}/24` },
    { ns: machine, name: 'is1', address: '10.74.0.50/24' },
  );
  // The base: 16 MiB of 0xbb with "BASE" at the start.
  base = join(lab.dir, 'base.img');
  const image = Buffer.alloc(16 * 1024 * 1024, 0xbb);
  image.write('BASE', 0);
  writeFileSync(base, image);
  // tgtd and smeltd enter the server's network namespace only: tgtd must see the FUSE mounts smeltd's
  // qemu-storage-daemons make, as on a host (`ip netns exec` would give each a private mount namespace).
  const started = spawn(
    'nsenter',
    [`--net=/run/netns/${server.name}`, '--', 'tgtd', '-f', '-C', String(CONTROL), '--iscsi', `portal=${SERVER}:3260`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  tgtd = started;
  let tgtdOutput = '';
  started.stdout.on('data', (chunk: Buffer) => (tgtdOutput += chunk.toString()));
  started.stderr.on('data', (chunk: Buffer) => (tgtdOutput += chunk.toString()));
  try {
    await waitUntil(
      'tgtd',
      async () => ((await tgtadm('--mode', 'target', '--op', 'show')).code === 0 ? true : undefined),
      30_000,
    );
  } catch (error) {
    throw new Error(`tgtd (exit ${String(started.exitCode)}): ${tgtdOutput}`, { cause: error });
  }
  daemon = await smeltd();
  const boot = await smeltctlIn(lab, server, daemon, [
    'create',
    'boot',
    '--name',
    'b',
    '--kernel',
    'http://10.74.0.1/k',
    '--initrd',
    'http://10.74.0.1/i',
  ]);
  assert.equal(boot.code, 0, boot.stderr);
});

after(async () => {
  for (const started of daemons) await started.stop();
  // The storage daemons outlive smeltd by design: end the ones this test's daemon started, by their pid files.
  for (const pid of daemon ? storageDaemonPids() : []) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await waitUntil('a storage daemon to stop', () => (alive(pid) ? undefined : true), 10_000).catch(() => undefined);
  }
  // A storage daemon killed with SIGKILL (the mending test) leaves its FUSE mount: none may outlive the lab.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  for (const point of mounts.map((line) => line.split(' ')[4] ?? '')) {
    if (lab && point.startsWith(`${lab.dir}/`)) await run('umount', ['-l', point]);
  }
  if (tgtd) {
    // tgtd ignores SIGTERM while it has targets (its own shutdown is `tgtadm --op delete --mode system`).
    await tgtadm('--mode', 'system', '--op', 'delete', '--force');
    if (tgtd.exitCode === null) tgtd.kill('SIGKILL');
    await exited(tgtd);
  }
  await lab?.close();
});

test('two machines over one base each get a disk of their own; a target admits only its machine', async () => {
  const { lab, server, daemon } = ready();
  for (const [i, mac] of MACS.entries()) {
    const deploy = await smeltctlIn(lab, server, daemon, [
      'deploy',
      '--MAC',
      mac,
      '--name',
      `d${String(i)}`,
      '--boot',
      'b',
      '--deploymentType',
      'live',
      '--iscsiBase',
      base,
    ]);
    assert.equal(deploy.code, 0, deploy.stderr);
  }
  const shown = await smeltctlJson<{ live: { iscsi: Record<string, unknown> } }>(lab, server, daemon, [
    'get',
    'deployment',
    'd0',
  ]);
  assert.deepEqual(shown.live.iscsi, { base, server: `${SERVER}:3260`, target: targetOf(MACS[0]), lun: 1 });
  await waitUntil('both targets', async () => ((await targets()).length === 2 ? true : undefined), 20_000);
  assert.deepEqual((await targets()).sort(), MACS.map(targetOf).sort());

  await qemuIoOk(MACS[0], ['read -P 0xbb 4096 4096', 'write -P 0x11 4096 4096']);
  await qemuIoOk(MACS[1], ['write -P 0x22 4096 4096', 'write -P 0x23 0 512']);
  await qemuIoOk(MACS[0], ['read -P 0x11 4096 4096', 'read -P 0xbb 8192 4096']);
  await qemuIoOk(MACS[1], ['read -P 0x22 4096 4096', 'read -P 0x23 0 512']);
  const baseNow = readFileSync(base);
  assert.equal(baseNow.subarray(0, 4).toString(), 'BASE', 'the base is only read');
  assert.ok(
    baseNow.subarray(4096, 8192).every((byte) => byte === 0xbb),
    'the base is only read',
  );

  const stranger = await qemuIo(targetOf(MACS[0]), initiatorOf(MACS[1]), ['read 0 512']);
  assert.ok(
    stranger.code !== 0 || /fail|error/i.test(stranger.output),
    `another machine logged in: ${stranger.output}`,
  );
});

test('a daemon restart keeps the disks, their writes and their storage daemons', async () => {
  const pids = storageDaemonPids().sort();
  assert.equal(pids.length, 2);
  const old = ready().daemon;
  await old.stop();
  daemon = await smeltd(old.dataDir);
  await qemuIoOk(MACS[0], ['read -P 0x11 4096 4096']);
  assert.deepEqual(storageDaemonPids().sort(), pids, 'the same exports, adopted');
  assert.deepEqual((await targets()).sort(), MACS.map(targetOf).sort());
});

test("release removes the machine's target and its writes; the other machine keeps its disk", async () => {
  const { lab, server, daemon } = ready();
  const release = await smeltctlIn(lab, server, daemon, ['release', MACS[0]]);
  assert.equal(release.code, 0, release.stderr);
  await waitUntil('the target gone', async () => ((await targets()).length === 1 ? true : undefined), 20_000);
  assert.deepEqual(await targets(), [targetOf(MACS[1])]);
  const dir = join(daemon.dataDir, 'iscsi');
  await waitUntil('the overlay gone', () => (existsSync(join(dir, '52-54-00-74-00-01.qcow2')) ? undefined : true));
  assert.deepEqual(
    readdirSync(dir).filter((name) => name.startsWith('52-54-00-74-00-01')),
    [],
  );
  await qemuIoOk(MACS[1], ['read -P 0x22 4096 4096']);

  // Deployed again over the same base: a fresh disk, the old writes gone.
  const deploy = await smeltctlIn(lab, server, daemon, [
    'deploy',
    '--MAC',
    MACS[0],
    '--boot',
    'b',
    '--deploymentType',
    'live',
    '--iscsiBase',
    base,
  ]);
  assert.equal(deploy.code, 0, deploy.stderr);
  await waitUntil('the target back', async () => ((await targets()).length === 2 ? true : undefined), 20_000);
  await qemuIoOk(MACS[0], ['read -P 0xbb 4096 4096']);
});

test('a storage daemon that died is started again over the same overlay at the next pass; the writes are kept', async () => {
  const { lab, server, daemon } = ready();
  const dir = join(daemon.dataDir, 'iscsi');
  const pidFile = join(dir, '52-54-00-74-00-02.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGKILL');
  await waitUntil('the storage daemon gone', () => (alive(pid) ? undefined : true));
  // Any change to the deployments runs a pass (and a failed one is retried every 30 s).
  const update = await smeltctlIn(lab, server, daemon, ['update', 'deployment', 'd1', '--hostname', 'm2']);
  assert.equal(update.code, 0, update.stderr);
  // The pass removes the dead daemon's pid file before the new daemon writes its own: absent for a moment.
  const pidNow = () => {
    try {
      return Number(readFileSync(pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
  };
  await waitUntil(
    'a new storage daemon',
    () => {
      const now = pidNow();
      return now !== undefined && now !== pid && now > 0 ? now : undefined;
    },
    20_000,
  );
  await waitUntil(
    'the disk back',
    async () => {
      const { code, output } = await qemuIo(targetOf(MACS[1]), initiatorOf(MACS[1]), ['read -P 0x22 4096 4096']);
      return code === 0 && !/fail|error/i.test(output) ? true : undefined;
    },
    20_000,
  );
});

test('bad input: a base with a target, or a relative base, is refused with what to do', async () => {
  const { lab, server, daemon } = ready();
  const both = await smeltctlIn(lab, server, daemon, [
    'deploy',
    '--MAC',
    '52:54:00:74:00:09',
    '--boot',
    'b',
    '--deploymentType',
    'live',
    '--iscsiBase',
    base,
    '--iscsiTarget',
    'iqn.2026-11.example:x',
    '--iscsiServer',
    'san',
  ]);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /--iscsiBase/);
  const relative = await smeltctlIn(lab, server, daemon, [
    'deploy',
    '--MAC',
    '52:54:00:74:00:09',
    '--boot',
    'b',
    '--deploymentType',
    'live',
    '--iscsiBase',
    'base.img',
  ]);
  assert.notEqual(relative.code, 0);
  assert.match(relative.stderr, /absolute path/);
});
