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
import { alive, createLab, smeltctlIn, smeltctlJson, waitUntil, type Lab } from '../harness/dhcp-lab.ts';
import {
  initiatorOf,
  qemuIo as qemuIoIn,
  qemuIoOk as qemuIoOkIn,
  startTgtd,
  stopStorageDaemons,
  storageDaemonPids as pidsIn,
  targetOf,
  type RunningTgtd,
} from '../harness/iscsi.ts';
import type { Netns } from '../harness/netns.ts';
import { startSmeltd, type RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.74.0.1';
const PORTAL = `${SERVER}:3260`;
const MACS = ['52:54:00:74:00:01', '52:54:00:74:00:02'] as const;

let lab: Lab | undefined;
let server: Netns | undefined;
let machine: Netns | undefined;
let tgtd: RunningTgtd | undefined;
const daemons: RunningSmeltd[] = [];
let daemon: RunningSmeltd | undefined;
let base = '';

function ready(): { lab: Lab; server: Netns; machine: Netns; daemon: RunningSmeltd; tgtd: RunningTgtd } {
  if (!lab || !server || !machine || !daemon || !tgtd) throw new Error('the lab did not come up');
  return { lab, server, machine, daemon, tgtd };
}

const targets = () => ready().tgtd.targets();
const qemuIo = (target: string, initiator: string, commands: string[]) =>
  qemuIoIn(ready().machine, PORTAL, target, initiator, commands);
const qemuIoOk = (mac: string, commands: string[]) => qemuIoOkIn(ready().machine, PORTAL, mac, commands);
const storageDaemonPids = () => pidsIn(ready().daemon.dataDir);

/** `smeltctl deploy --MAC mac --boot b --deploymentType live --iscsiBase path [extra...]`; its result. */
function deployOnIscsi(mac: string, iscsiBase: string, extra: readonly string[] = []) {
  const { lab, server, daemon } = ready();
  const args = ['deploy', '--MAC', mac, '--boot', 'b', '--deploymentType', 'live', '--iscsiBase', iscsiBase];
  return smeltctlIn(lab, server, daemon, [...args, ...extra]);
}

/** smeltd in the server's namespace, making iSCSI disks; a restart when given the last one's data directory. */
async function smeltd(dataDir?: string): Promise<RunningSmeltd> {
  const started = await startSmeltd({
    netns: server?.name ?? '',
    // As tgtd (harness/iscsi.ts): the network namespace alone, so that tgtd sees the FUSE mounts.
    hostMounts: true,
    dataDir: dataDir ?? join(lab?.dir ?? '', 'data'),
    config: {
      address: SERVER,
      interface: 'is0',
      dhcp: { mode: 'off' },
      iscsi: { enabled: true, control: tgtd?.control ?? 0 },
    },
  });
  daemons.push(started);
  return started;
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
  tgtd = await startTgtd(server, PORTAL);
  daemon = await smeltd();
  const boot = await smeltctlIn(lab, server, daemon, [
    'create',
    'boot',
    '--name',
    'b',
    '--kernel',
    `http://${SERVER}/k`,
    '--initrd',
    `http://${SERVER}/i`,
  ]);
  assert.equal(boot.code, 0, boot.stderr);
});

after(async () => {
  for (const started of daemons) await started.stop();
  if (daemon && lab) await stopStorageDaemons(daemon.dataDir, lab.dir);
  await tgtd?.stop();
  await lab?.close();
});

test('two machines over one base each get a disk of their own; a target admits only its machine', async () => {
  const { lab, server, daemon } = ready();
  for (const [i, mac] of MACS.entries()) {
    const deploy = await deployOnIscsi(mac, base, ['--name', `d${String(i)}`]);
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
  const deploy = await deployOnIscsi(MACS[0], base);
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
  const both = await deployOnIscsi('52:54:00:74:00:09', base, [
    '--iscsiTarget',
    'iqn.2026-11.example:x',
    '--iscsiServer',
    'san',
  ]);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /--iscsiBase/);
  const relative = await deployOnIscsi('52:54:00:74:00:09', 'base.img');
  assert.equal(relative.code, 2, relative.stderr); // the daemon's 400: invalid_request
  assert.match(relative.stderr, /absolute path/);
});
