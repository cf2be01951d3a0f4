/**
 * A QEMU VM for the end-to-end suites (diskless unless given one): real firmware network-booting from smeltd.
 *
 * The VM runs inside a network namespace the test made, on a tap device this module creates there and
 * attaches to a bridge of that namespace; nothing touches the machine's own interfaces. Two NICs, two paths:
 *   - `e1000-ipxe` (the default for BIOS): QEMU's e1000 with the iPXE option ROM QEMU ships (ipxe-qemu,
 *     efi-e1000.rom, BIOS and UEFI images in one). The firmware runs the ROM's iPXE, which DHCPs with user
 *     class "iPXE" and fetches its per-MAC script over HTTP straight away.
 *   - `virtio-pxe` (the default for UEFI): virtio-net with no option ROM, so OVMF's own network stack does
 *     PXE (option 93 = 7, no iPXE user class), fetches ipxe.efi or snponly.efi over TFTP, and that iPXE DHCPs
 *     again and fetches the script. SeaBIOS has no PXE of its own: BIOS needs the ROM.
 * By default there is no disk: a "boot from the local disk" script ends in the firmware's "no bootable device"
 * (BIOS) or its next boot option (UEFI). With `disk`, a raw image file is the VM's virtio disk (/dev/vda in the
 * guest, drive 0x80 to SeaBIOS and iPXE's sanboot), next in the boot order after the NIC.
 *
 * Software emulation only (`-accel tcg`): KVM here cannot run the ROMs (FIELD-NOTES.md). The serial console
 * (the guest kernel's console=ttyS0) goes to a file, the firmware's debug port 0x402 (SeaBIOS) to another;
 * iPXE itself prints to the VGA console only, which is not captured. The VM is bounded: killed with SIGKILL
 * after `timeoutMs` whatever happens, and when this process exits; stop() ends it by its PID (SIGTERM, then
 * SIGKILL after 3 s) and removes the tap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinBridge, type Lab } from './dhcp-lab.ts';
import type { Netns } from './netns.ts';
import { exited, run, runOk } from './process.ts';

export const QEMU = 'qemu-system-x86_64';
/** The e1000's option ROM, iPXE for BIOS and UEFI (Debian package ipxe-qemu). */
export const E1000_ROM = '/usr/lib/ipxe/qemu/efi-e1000.rom';
/** OVMF without Secure Boot (Debian package ovmf), and the template of its variable store. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export type Firmware = 'bios' | 'uefi';
export type Nic = 'e1000-ipxe' | 'virtio-pxe';

/** The Python with scapy (Debian's python3-scapy), as in dhcp-lab.ts. */
const PYTHON = '/usr/bin/python3';

/**
 * A router-advertisement responder (scapy) for the lab's bridge: it answers every router solicitation with a
 * router advertisement that announces nothing (router lifetime 0, no prefix, no DHCPv6 flags).
 *
 * Why: iPXE configures IPv4 and IPv6 at once and waits for both. With nothing answering its router
 * solicitations, the iPXE of Debian's ipxe-qemu ROMs spends ~15 s on them (RS at 0, 0.25, 0.8, 1.8, 3.8, 7.9 s,
 * then it gives up) after DHCP has long finished — on every boot, BIOS and UEFI alike. One answer ends it. Print
 * "ready" once sniffing; then a line per answer.
 */
const RA_RESPONDER = `
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, get_if_hwaddr, sendp, sniff
iface = sys.argv[1]
mac = get_if_hwaddr(iface)
b = [int(x, 16) for x in mac.split(':')]
b[0] ^= 2
link_local = 'fe80::%02x%02x:%02xff:fe%02x:%02x%02x' % tuple(b)
ra = (Ether(src=mac, dst='33:33:00:00:00:01') / IPv6(src=link_local, dst='ff02::1', hlim=255)
      / ICMPv6ND_RA(routerlifetime=0) / ICMPv6NDOptSrcLLAddr(lladdr=mac))
def answer(packet):
    sendp(ra, iface=iface, verbose=False)
    print('answered a router solicitation from', packet[Ether].src, flush=True)
print('ready', flush=True)
sniff(iface=iface, filter='icmp6 and ip6[40] == 133', prn=answer, store=False)
`;

/** argv (to run inside the namespace) of the router-advertisement responder on `bridge`. */
export function routerAdvertiserArgv(bridge: string): string[] {
  return [PYTHON, '-u', '-c', RA_RESPONDER, bridge];
}

/**
 * The segment VMs boot on: bridge br0 in `ns` with the server's `address` (/24), no IPv6 of its own, and a
 * router-advertisement responder on it (without one iPXE idles ~15 s per boot: routerAdvertiserArgv). `pin`: the
 * bridge's MAC fixed and anchored by a veth (dhcp-lab.ts pinBridge), so that with two VMs the first to stop does not
 * take the server's MAC with its tap.
 */
export async function vmBridge(lab: Lab, ns: Netns, address: string, options: { pin: boolean }): Promise<void> {
  await ns.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0']);
  if (options.pin) await pinBridge(ns, { anchor: true });
  await ns.exec(['sysctl', '-qw', 'net.ipv6.conf.br0.disable_ipv6=1']);
  await ns.exec(['ip', 'addr', 'add', `${address}/24`, 'dev', 'br0']);
  await ns.exec(['ip', 'link', 'set', 'br0', 'up']);
  await lab.spawn(ns, routerAdvertiserArgv('br0')).waitFor(/^ready$/m, 20_000);
}

export interface VmOptions {
  /** The namespace QEMU runs in; the tap is made there. */
  netns: string;
  /** A bridge in that namespace the tap is attached to. */
  bridge: string;
  /** Name of the tap device to create (at most 15 characters). */
  tap: string;
  mac: string;
  firmware: Firmware;
  /** Default: e1000-ipxe for bios, virtio-pxe for uefi (see above). */
  nic?: Nic;
  /** The SMBIOS system UUID (DHCP option 97); default: vmUuid(mac). QEMU's own default is all zeros. */
  uuid?: string;
  /** Where the serial log, the firmware log and OVMF's variable store go. */
  dir: string;
  /** The VM is killed after this long, whatever happens. */
  timeoutMs: number;
  memoryMb?: number;
  /** A raw disk image file attached as a virtio-blk disk (writable, boot order after the NIC); default none. */
  disk?: string;
  /**
   * BIOS only: boot this image first with QEMU's -kernel, e.g. Debian's full iPXE (/usr/lib/ipxe/ipxe.lkrn),
   * which has iSCSI; QEMU's own NIC ROMs are built small, without it.
   */
  kernel?: string;
}

export interface RunningVm {
  pid: number;
  firmware: Firmware;
  nic: Nic;
  mac: string;
  uuid: string;
  /** QEMU's argv, as run inside the namespace. */
  command: string[];
  /** The serial console (ttyS0) as a file, and what it holds so far. */
  serialLog: string;
  serial(): string;
  /** SeaBIOS's debug output (port 0x402); OVMF's release build writes little or nothing there. */
  firmwareLog(): string;
  /** QEMU's own stdout and stderr. */
  qemuOutput(): string;
  /** The last `lines` lines of the serial log, for a failure message. */
  serialTail(lines?: number): string;
  /**
   * Resolves with the first match of `pattern` in the serial log's complete lines (a line still being written could
   * match `(\S+)` with half an address); rejects on timeout or when QEMU exits.
   */
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Resolves when QEMU has exited (it does when the guest powers off). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** Ends QEMU by its PID and removes the tap. Safe to call more than once. */
  stop(): Promise<void>;
}

/** A UUID of the VM's own, made from its MAC, so that every VM has a distinct one, as real machines do. */
export function vmUuid(mac: string): string {
  const hex = mac.replaceAll(':', '').toLowerCase();
  return `5e1f0000-${hex.slice(0, 4)}-4${hex.slice(4, 7)}-8${hex.slice(7, 10)}-00000000${hex.slice(10)}00`;
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'latin1') : '';
}

/** QEMU's arguments for these options and files. */
export function qemuArgs(options: VmOptions, files: { serial: string; firmware: string; vars: string }): string[] {
  const args = [
    '-name',
    `smelt-${options.firmware}-${options.mac}`,
    '-accel',
    'tcg',
    '-machine',
    'pc',
    '-m',
    String(options.memoryMb ?? 384),
    '-smp',
    '1',
    '-uuid',
    options.uuid ?? vmUuid(options.mac),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-serial',
    `file:${files.serial}`,
    '-chardev',
    `file,id=fwlog,path=${files.firmware}`,
    '-device',
    'isa-debugcon,iobase=0x402,chardev=fwlog',
    '-netdev',
    `tap,id=net0,ifname=${options.tap},script=no,downscript=no`,
    '-device',
    nicOf(options) === 'e1000-ipxe'
      ? `e1000,netdev=net0,mac=${options.mac},romfile=${E1000_ROM},bootindex=1`
      : // romfile= (empty): no iPXE ROM; OVMF's VirtioNetDxe and its PXE do the network boot.
        `virtio-net-pci,netdev=net0,mac=${options.mac},romfile=,bootindex=1`,
  ];
  if (options.kernel !== undefined) args.push('-kernel', options.kernel);
  if (options.disk !== undefined) {
    // QEMU's -drive splits on commas: a path with one would be misread.
    if (options.disk.includes(',')) throw new Error(`a disk path with a comma cannot go to -drive: ${options.disk}`);
    args.push(
      '-drive',
      `file=${options.disk},format=raw,if=none,id=disk0`,
      '-device',
      'virtio-blk-pci,drive=disk0,bootindex=2',
    );
  }
  if (options.firmware === 'uefi') {
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${files.vars}`,
    );
  }
  return args;
}

function nicOf(options: VmOptions): Nic {
  return options.nic ?? (options.firmware === 'bios' ? 'e1000-ipxe' : 'virtio-pxe');
}

export async function startVm(options: VmOptions): Promise<RunningVm> {
  const nic = nicOf(options);
  if (options.firmware === 'bios' && nic === 'virtio-pxe') {
    throw new Error('SeaBIOS has no PXE of its own: a BIOS VM needs the iPXE ROM (nic e1000-ipxe)');
  }
  const needed = [
    ...(nic === 'e1000-ipxe' ? [E1000_ROM] : []),
    ...(options.firmware === 'uefi' ? [OVMF_CODE, OVMF_VARS] : []),
  ];
  for (const file of needed) {
    if (!existsSync(file)) throw new Error(`${file} is missing (packages ipxe-qemu, ovmf)`);
  }
  const tag = `${options.firmware}-${options.mac.replaceAll(':', '')}`;
  const files = {
    serial: join(options.dir, `serial-${tag}.log`),
    firmware: join(options.dir, `firmware-${tag}.log`),
    vars: join(options.dir, `OVMF_VARS-${tag}.fd`),
  };
  if (options.firmware === 'uefi') copyFileSync(OVMF_VARS, files.vars);

  const ip = (args: string[]) => runOk('ip', ['-n', options.netns, ...args]);
  await ip(['tuntap', 'add', 'dev', options.tap, 'mode', 'tap']);
  await ip(['link', 'set', options.tap, 'master', options.bridge]);
  await ip(['link', 'set', options.tap, 'up']);

  // `ip netns exec` execs QEMU: the PID is QEMU's own.
  const command = [QEMU, ...qemuArgs(options, files)];
  const child: ChildProcess = spawn('ip', ['netns', 'exec', options.netns, ...command], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const pid = child.pid;
  if (pid === undefined) {
    await run('ip', ['-n', options.netns, 'link', 'del', options.tap]);
    throw new Error(`${QEMU} did not start`);
  }
  const done = exited(child);
  // Bounded whatever the test does; and never left behind by a test process that exits.
  const killer = setTimeout(() => {
    output += `\n[harness] killed after ${String(options.timeoutMs)} ms\n`;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  const onExit = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  void done.then(() => {
    clearTimeout(killer);
    process.off('exit', onExit);
  });
  let finished = false;
  void done.then(() => (finished = true));

  const vm: RunningVm = {
    pid,
    firmware: options.firmware,
    nic,
    mac: options.mac,
    uuid: options.uuid ?? vmUuid(options.mac),
    command,
    serialLog: files.serial,
    serial: () => readText(files.serial),
    firmwareLog: () => readText(files.firmware),
    qemuOutput: () => output,
    serialTail(lines = 40) {
      return vm.serial().replaceAll('\r', '').split('\n').slice(-lines).join('\n');
    },
    exited: done,
    running: () => !finished,
    waitForSerial(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const poll = () => {
          const serial = vm.serial();
          const match = pattern.exec(serial.slice(0, serial.lastIndexOf('\n') + 1));
          if (match) {
            resolve(match);
            return;
          }
          if (finished) {
            reject(new Error(`the ${options.firmware} VM exited before ${String(pattern)} on its console\n${output}`));
            return;
          }
          if (Date.now() > deadline) {
            reject(
              new Error(`no ${String(pattern)} on the ${options.firmware} VM's console within ${String(timeoutMs)} ms`),
            );
            return;
          }
          setTimeout(poll, 100);
        };
        poll();
      });
    },
    async stop() {
      if (!finished) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(hard);
      }
      await run('ip', ['-n', options.netns, 'link', 'del', options.tap]);
    },
  };
  return vm;
}
