/**
 * A real machine on a copy-on-write iSCSI disk of the daemon's: a QEMU VM (SeaBIOS, Debian's iPXE) DHCPs from
 * smeltd, its per-MAC script tells iPXE to `sanboot` the target smeltd made for its MAC (tgtd in this file's
 * namespace, admitting only that machine's initiator name), and the BIOS boots the base image's boot sector from
 * it over iSCSI. That sector (BOOT_SECTOR below) writes itself to sector 3 of its boot disk through INT 13h — iPXE
 * turns that into an iSCSI WRITE — and prints SMELT-SANBOOT-OK on the serial port. The write must be in the
 * machine's disk and not in the base.
 *
 * Network safety: the bridge, the tap, tgtd and smeltd live in a namespace of this file's own.
 */
import assert from 'node:assert/strict';
import { openSync, readSync, closeSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createLab, smeltctlIn, type Lab } from '../harness/dhcp-lab.ts';
import { qemuIoOk, startTgtd, stopStorageDaemons, type RunningTgtd } from '../harness/iscsi.ts';
import type { Netns } from '../harness/netns.ts';
import { startVm, vmBridge, type RunningVm } from '../harness/qemu.ts';
import { run } from '../harness/process.ts';
import { startSmeltd, type RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.93.0.2';
const PORTAL = `${SERVER}:3260`;
const MAC = '52:54:00:93:00:01';

/**
 * A boot sector, assembled once with GNU as (`.code16`, linked at 0x7c00) from:
 *   cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss; mov $0x7c00,%sp; sti
 *   mov $0x0301,%ax; mov $0x0003,%cx; xor %dh,%dh; mov $0x7c00,%bx; int $0x13   # write itself to CHS 0/0/3
 *   mov $ok,%si; jnc print; mov $bad,%si
 *   print: mov $0x3f8,%dx; 1: lodsb; test %al,%al; jz 2f; out %al,%dx; jmp 1b   # to COM1
 *   2: cli; hlt; jmp 2b
 *   ok: .asciz "SMELT-SANBOOT-OK wrote sector 3\r\n"; bad: .asciz "SMELT-SANBOOT-WRITE-FAILED\r\n"
 * and the 0x55 0xaa signature at 510.
 */
const BOOT_CODE =
  'fa31c08ed88ec08ed0bc007cfbb80103b9030030f6bb007ccd13be317c7303be537cbaf803ac84c07403eeebf8faf4ebfc534d454c542d' +
  '53414e424f4f542d4f4b2077726f746520736563746f7220330d0a00534d454c542d53414e424f4f542d57524954452d4641494c45440d0a00';

let lab: Lab | undefined;
let ns: Netns | undefined;
let tgtd: RunningTgtd | undefined;
let daemon: RunningSmeltd | undefined;
let vm: RunningVm | undefined;
let base = '';

before(async () => {
  lab = createLab('rbiscsi');
  ns = await lab.netns('qis');
  await vmBridge(lab, ns, SERVER, { pin: true });
  // The base: 64 MiB (sparse), the boot sector first, zeros after it. iPXE's INT 13h drive has 255 heads of 63
  // sectors: a base under one such cylinder (~8 MiB) never booted here (1 MiB: "no bootable device").
  base = join(lab.dir, 'base.img');
  const sector = Buffer.alloc(512);
  Buffer.from(BOOT_CODE, 'hex').copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  writeFileSync(base, sector);
  truncateSync(base, 64 * 1024 * 1024);
  tgtd = await startTgtd(ns, PORTAL);
  daemon = await startSmeltd({
    netns: ns.name,
    // As tgtd (harness/iscsi.ts): the network namespace alone, so that tgtd sees the FUSE mounts.
    hostMounts: true,
    dataDir: join(lab.dir, 'data'),
    config: {
      interface: 'br0',
      address: SERVER,
      dhcp: {
        mode: 'server',
        subnet: '10.93.0.0/24',
        pool: { start: '10.93.0.100', end: '10.93.0.149' },
        gateway: '10.93.0.1',
        dns: ['10.93.0.1'],
      },
      http: { listen: `${SERVER}:80` },
      tftp: { listen: `${SERVER}:69` },
      iscsi: { enabled: true, control: tgtd.control },
      log: { level: 'debug' },
    },
  });
  const boot = await smeltctlIn(lab, ns, daemon, [
    'create',
    'boot',
    '--name',
    'diskless',
    '--kernel',
    `http://${SERVER}/k`,
    '--initrd',
    `http://${SERVER}/i`,
  ]);
  assert.equal(boot.code, 0, boot.stderr);
  const deploy = await smeltctlIn(lab, ns, daemon, [
    'deploy',
    '--MAC',
    MAC,
    '--boot',
    'diskless',
    '--deploymentType',
    'live',
    '--iscsiBase',
    base,
  ]);
  assert.equal(deploy.code, 0, deploy.stderr);
});

after(async () => {
  await vm?.stop();
  await daemon?.stop();
  if (daemon && lab) await stopStorageDaemons(daemon.dataDir, lab.dir);
  await tgtd?.stop();
  await lab?.close();
});

/** What to read when the VM did not boot: its console, the firmware's log, tgtd's sessions, smeltd's exchanges. */
async function diagnosis(running: RunningVm, smeltd: RunningSmeltd, target: RunningTgtd): Promise<string> {
  const show = ['-C', String(target.control), '--lld', 'iscsi', '--mode', 'target', '--op', 'show'];
  const exchanges = smeltd
    .output()
    .split('\n')
    .filter((line) => /"msg":"(dhcp|http|iPXE script)"|iscsi/.test(line))
    .slice(-15);
  return [
    `serial:\n${running.serialTail(30)}`,
    `firmware:\n${running.firmwareLog().slice(-600)}`,
    `tgtd:\n${(await run('tgtadm', show)).stdout.slice(0, 1500)}`,
    `smeltd:\n${exchanges.join('\n')}`,
  ].join('\n\n');
}

test("iPXE sanboots the machine's own disk over iSCSI; its write lands in the overlay, not the base", async () => {
  if (!lab || !ns || !daemon || !tgtd) throw new Error('the lab did not come up');
  const running = await startVm({
    netns: ns.name,
    bridge: 'br0',
    tap: 'tap-isb',
    mac: MAC,
    firmware: 'bios',
    // Debian's full iPXE, booted by QEMU's -kernel: the iPXE of QEMU's NIC ROMs fetched the script and never
    // opened an iSCSI session (built without iSCSI, it seems); this one logs in with the script's initiator name.
    kernel: '/usr/lib/ipxe/ipxe.lkrn',
    dir: lab.dir,
    timeoutMs: 90_000,
  });
  vm = running;
  let line: string;
  try {
    line = (await running.waitForSerial(/SMELT-SANBOOT-\S+/, 80_000))[0];
  } catch (error) {
    throw new Error(`no boot from the iSCSI disk\n${await diagnosis(running, daemon, tgtd)}`, { cause: error });
  }
  assert.equal(line, 'SMELT-SANBOOT-OK', running.serialTail(30));
  await running.stop();
  // Sector 3 (bytes 1024-1535) of the machine's disk holds the boot sector; the base's is still zero.
  await qemuIoOk(ns, PORTAL, MAC, ['read -P 0xfa 1024 1', 'read -P 0x31 1025 1', 'read -P 0xaa 1535 1']);
  const fd = openSync(base, 'r');
  const sector3 = Buffer.alloc(512, 0xff);
  readSync(fd, sector3, 0, 512, 1024);
  closeSync(fd);
  assert.ok(
    sector3.every((byte) => byte === 0),
    'the base is only read',
  );
});
