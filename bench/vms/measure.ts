/**
 * One measured run against one server: a fresh lab, the server, N diskless BIOS VMs powered on at once, watched
 * on their serial consoles until each has booted (the guest's phone-home answered) or failed, then the packet
 * capture and the server's HTTP log read for retries.
 *
 * A VM's milestones, from its serial console, polled every 100 ms:
 *   linux   "Linux version ..."          — the kernel's first line: the firmware, DHCP (iPXE), the script, the kernel
 *                                          and initrd over HTTP, and the kernel's decompression are done
 *   kernel  "SMELT-GUEST: init started"  — the kernel's boot is done (test/harness/guest/init prints the rest)
 *   lease   "SMELT-GUEST: lease ..."     — the guest's own DHCP
 *   booted  "SMELT-GUEST: phoned home"   — the answer file fetched and the phone-home POST answered
 * A VM fails on "SMELT-GUEST: FAILED", on a kernel panic, on SeaBIOS's "No bootable device" (iPXE gave up), when
 * QEMU exits before it booted, or when the run's bound passes. A booted VM is stopped at once (by its PID), on both sides alike: left
 * running it would reboot into another network boot and take CPU from the VMs still booting.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { guestFiles } from '../../test/harness/guest.ts';
import { startVm, type RunningVm } from '../../test/harness/qemu.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { cpuSeconds, otherBenchmarks, processTree } from '../lib/proc.ts';
import { createVmLab } from './lab.ts';
import { readCapture, summarizeDhcp, synRetransmissions, type DhcpSummary } from './pcap.ts';
import { startServers, type ServerContext, type ServerId } from './servers.ts';

export const MILESTONES = {
  linux: /Linux version /,
  kernel: /SMELT-GUEST: init started/,
  lease: /SMELT-GUEST: lease \S+ from \S+/,
  booted: /SMELT-GUEST: phoned home/,
} as const;
type Milestone = keyof typeof MILESTONES;

export interface VmResult {
  mac: string;
  /** Seconds from this VM's power-on (QEMU spawned) to each milestone it reached. */
  at: Partial<Record<Milestone, number>>;
  /**
   * From the capture, seconds: power-on to iPXE's first DISCOVER (the firmware's own time, the same for both
   * servers), iPXE's first DISCOVER to its ACK, and the guest's first DISCOVER to its ACK.
   */
  dhcp: { firstDiscover?: number; ipxe?: number; guest?: number };
  failed?: string;
  /** The serial console's last lines, for a failed VM. */
  tail?: string;
}

export interface Measurement {
  server: ServerId;
  run: number;
  vms: VmResult[];
  booted: number;
  failed: number;
  /** Seconds from the first VM's power-on to the last VM's boot (NaN unless all booted). */
  allBootedS: number;
  /** Seconds from the first power-on to the last power-on (the spread of starting N QEMUs). */
  powerOnSpreadS: number;
  dhcp: DhcpSummary;
  tftpRequests: number;
  httpRequests: number;
  /** The server's time per HTTP request (ms), by what was asked for. */
  httpMs: Record<HttpKind, number[]>;
  /** HTTP requests beyond the five each VM needs (script, kernel, initrd, answer file, phone-home). */
  httpExtra: number;
  httpNon2xx: number;
  /** SYNs to port 80 sent again, and of those the ones sent before any SYN-ACK. */
  syns: { resent: number; unanswered: number };
  /**
   * Every retry a VM made: DHCP and SYN retransmissions, restarts after a NAK, HTTP requests beyond the five a
   * boot needs.
   */
  retries: number;
  /**
   * The retries a server can be blamed for: retransmissions sent before the server had replied at all, NAKs, and
   * extra or failed HTTP requests. (A guest starved of CPU under TCG resends a DISCOVER whose OFFER reached it in a
   * millisecond: a retry, but not the server's.)
   */
  retriesUnanswered: number;
  serverCpuS: number;
  /**
   * User + system CPU seconds of the VMs' QEMU processes from power-on until each was stopped: the guests' own work,
   * which software emulation makes the bulk of a run (the same on both sides when they do the same).
   */
  vmCpuS: number;
  /** CPU busy share when the run started, and other benchmarks or QEMU guests seen during it. */
  busyAtStart: number;
  othersDuring: string[];
  /**
   * CPU time others used during the run (all CPUs' busy time less this benchmark's own process tree: the bench, its
   * VMs and servers), as a share of the machine (wall time × CPUs). VMs emulated in software are CPU-bound: work
   * beside them slows their boot, whichever server they boot from.
   */
  foreignCpuShare: number;
  /** The same in CPU seconds: with five CPU-bound VMs on two CPUs, each of them costs the VMs ~1/2 s of wall time. */
  foreignCpuS: number;
  complaints: string[];
  deployMs?: number;
  error?: string;
}

export const HTTP_PER_VM = 5;

export const httpKinds = ['script', 'kernel', 'initrd', 'answers', 'hook', 'other'] as const;
export type HttpKind = (typeof httpKinds)[number];

/** What a request was for, by smeltd's URL scheme (the reference serves the same paths). */
export function httpKind(url: string): HttpKind {
  if (/^\/boot\/[^/]+\.ipxe$/.test(url)) return 'script';
  if (url.includes('/kernel/')) return 'kernel';
  if (url.includes('/initrd/')) return 'initrd';
  if (url.startsWith('/answers/')) return 'answers';
  if (url.startsWith('/hooks/')) return 'hook';
  return 'other';
}

export interface MeasureOptions {
  server: ServerId;
  run: number;
  macs: string[];
  maxRunS: number;
  memoryMb: number;
  scratch: string;
  /** Capture every HTTP packet too (headers only), for a look at the transfers afterwards. */
  captureHttp: boolean;
  context: Omit<ServerContext, 'ns' | 'ifname' | 'dir'>;
  /** Waits for a quiet machine; the CPU share busy at the start. */
  beforeRun: () => Promise<number>;
  say: (line: string) => void;
}

/** Seconds all CPUs were busy since boot (/proc/stat: user, nice, system, irq, softirq, steal; USER_HZ 100). */
export function machineBusySeconds(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * CPU seconds of this process's tree: itself and its live descendants, plus its reaped children (cutime, cstime:
 * a VM stopped during the run, and what its children had reaped in turn).
 */
export function ownCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const reaped = (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) / 100;
  return cpuSeconds(processTree(process.pid)) + reaped;
}

const reached = (result: VmResult, milestone: Milestone) => result.at[milestone] !== undefined;

const tail = (text: string, lines: number) => text.replaceAll('\r', '').trimEnd().split('\n').slice(-lines).join('\n');

export async function measureServer(o: MeasureOptions): Promise<Measurement> {
  const dir = join(o.scratch, `run${o.run + 1}-${o.server}`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const m: Measurement = {
    server: o.server,
    run: o.run,
    vms: o.macs.map((mac) => ({ mac, at: {}, dhcp: {} })),
    booted: 0,
    failed: 0,
    allBootedS: Number.NaN,
    powerOnSpreadS: 0,
    dhcp: {
      sent: { iPXE: 0, udhcp: 0, other: 0 },
      resent: { iPXE: 0, udhcp: 0, other: 0 },
      resentUnanswered: 0,
      naks: 0,
      offers: 0,
      acks: 0,
    },
    tftpRequests: 0,
    httpRequests: 0,
    httpMs: { script: [], kernel: [], initrd: [], answers: [], hook: [], other: [] },
    httpExtra: 0,
    httpNon2xx: 0,
    syns: { resent: 0, unanswered: 0 },
    retries: 0,
    retriesUnanswered: 0,
    serverCpuS: 0,
    vmCpuS: 0,
    busyAtStart: 0,
    othersDuring: [],
    foreignCpuShare: 0,
    foreignCpuS: 0,
    complaints: [],
  };
  await guestFiles(o.say);
  const lab = await createVmLab(`v${o.run + 1}${o.server === 'smeltd' ? 's' : 'r'}`, dir, {
    captureHttp: o.captureHttp,
  });
  const removeLab = onCleanup(`the VM lab of ${o.server} run ${o.run + 1}`, () => lab.remove());
  const vms: RunningVm[] = [];
  const stopVms: (() => Promise<void>)[] = [];
  try {
    const { servers, deployMs } = await startServers(
      o.server,
      { ...o.context, ns: lab.ns, ifname: lab.bridge, dir },
      o.macs,
    );
    if (deployMs !== undefined) m.deployMs = deployMs;
    const stopServers = onCleanup(`${o.server} of run ${o.run + 1}`, () => servers.stop());
    try {
      m.busyAtStart = await o.beforeRun();
      const cpuBefore = servers.cpuSeconds();
      const machineBefore = machineBusySeconds();
      const mineBefore = ownCpuSeconds();
      const wallBefore = performance.now();
      const others = new Set<string>();
      const poweredOn: number[] = [];
      const poweredOnWall: number[] = [];
      const stops: Promise<void>[] = [];
      // Each VM's CPU seconds, read just before it is stopped (a stopped QEMU's /proc entry is gone).
      const vmCpu: number[] = o.macs.map(() => 0);
      const stop = (k: number, vm: RunningVm) => {
        vmCpu[k] = cpuSeconds([vm.pid]);
        stops.push(vm.stop());
      };
      for (const [k, mac] of o.macs.entries()) {
        const vm = await startVm({
          netns: lab.ns.name,
          bridge: lab.bridge,
          tap: `tap${k}`,
          mac,
          firmware: 'bios',
          dir,
          timeoutMs: (o.maxRunS + 30) * 1000,
          memoryMb: o.memoryMb,
        });
        poweredOn.push(performance.now());
        poweredOnWall.push(Date.now() / 1000);
        vms.push(vm);
        stopVms.push(onCleanup(`VM ${mac} (pid ${String(vm.pid)})`, () => vm.stop()));
      }
      const first = poweredOn[0] ?? performance.now();
      m.powerOnSpreadS = ((poweredOn.at(-1) ?? first) - first) / 1000;
      o.say(`  ${o.macs.length} VMs powered on within ${m.powerOnSpreadS.toFixed(2)} s`);
      const deadline = first + o.maxRunS * 1000;
      let lastOthersCheck = 0;
      for (;;) {
        const now = performance.now();
        let pending = 0;
        for (const [k, vm] of vms.entries()) {
          const result = m.vms[k];
          if (!result || result.failed !== undefined || result.at.booted !== undefined) continue;
          const since = (now - (poweredOn[k] ?? first)) / 1000;
          const serial = vm.serial();
          for (const [name, pattern] of Object.entries(MILESTONES) as [Milestone, RegExp][]) {
            if (result.at[name] === undefined && pattern.test(serial)) result.at[name] = since;
          }
          // (A function: TypeScript would take result.at.booted for still undefined after the loop above.)
          if (reached(result, 'booted')) {
            stop(k, vm);
            continue;
          }
          const failedLine = /SMELT-GUEST: FAILED.*/.exec(serial)?.[0];
          // A panicked kernel never gets further (and spins its vCPU, taking CPU from the others): failed at once.
          const panic = /Kernel panic - not syncing: (.*)/.exec(serial)?.[1];
          if (failedLine) result.failed = failedLine.replace('SMELT-GUEST: ', '');
          else if (panic !== undefined) result.failed = `the guest kernel panicked: ${panic.trim().slice(0, 120)}`;
          else if (vm.firmwareLog().includes('No bootable device'))
            result.failed = 'iPXE gave up (SeaBIOS: No bootable device)';
          else if (!vm.running()) result.failed = `QEMU exited: ${tail(vm.qemuOutput(), 3)}`;
          else if (now > deadline) result.failed = `not booted within ${o.maxRunS} s`;
          if (result.failed !== undefined) {
            result.tail = tail(serial, 8);
            stop(k, vm);
          } else pending++;
        }
        if (now - lastOthersCheck > 5000) {
          lastOthersCheck = now;
          for (const other of otherBenchmarks()) others.add(other);
        }
        if (pending === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await Promise.all(stops);
      m.serverCpuS = servers.cpuSeconds() - cpuBefore;
      const foreign = machineBusySeconds() - machineBefore - (ownCpuSeconds() - mineBefore);
      m.foreignCpuS = Math.max(0, foreign);
      m.foreignCpuShare = m.foreignCpuS / (((performance.now() - wallBefore) / 1000) * availableParallelism());
      m.vmCpuS = vmCpu.reduce((sum, x) => sum + x, 0);
      m.othersDuring = [...others];
      m.booted = m.vms.filter((vm) => vm.at.booted !== undefined).length;
      m.failed = m.vms.length - m.booted;
      if (m.failed === 0) {
        const last = Math.max(...m.vms.map((vm, k) => (poweredOn[k] ?? first) - first + (vm.at.booted ?? 0) * 1000));
        m.allBootedS = last / 1000;
      }
      // A moment for the last packets and log lines, then the capture is complete.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await lab.stopCapture();
      const capture = readCapture(lab.pcap);
      m.dhcp = summarizeDhcp(capture.dhcp, o.macs);
      for (const [k, vm] of m.vms.entries()) {
        const mine = capture.dhcp.filter((p) => p.chaddr === vm.mac);
        const ipxeDiscover = mine.find((p) => p.op === 1 && p.client === 'iPXE' && p.type === 'discover')?.at;
        const guestDiscover = mine.find((p) => p.op === 1 && p.client === 'udhcp' && p.type === 'discover')?.at;
        const acks = mine.filter((p) => p.op === 2 && p.type === 'ack');
        const firstAck = acks[0]?.at;
        const guestAck = guestDiscover === undefined ? undefined : acks.find((p) => p.at > guestDiscover)?.at;
        const on = poweredOnWall[k];
        if (ipxeDiscover !== undefined && on !== undefined) vm.dhcp.firstDiscover = ipxeDiscover - on;
        if (ipxeDiscover !== undefined && firstAck !== undefined) vm.dhcp.ipxe = firstAck - ipxeDiscover;
        if (guestDiscover !== undefined && guestAck !== undefined) vm.dhcp.guest = guestAck - guestDiscover;
      }
      m.tftpRequests = capture.tftpRequests;
      m.syns = synRetransmissions(capture.syns);
      const requests = servers.httpRequests();
      m.httpRequests = requests.length;
      for (const request of requests) m.httpMs[httpKind(request.url)].push(request.ms);
      m.httpNon2xx = requests.filter((r) => r.status < 200 || r.status > 299).length;
      // Per VM powered on, not per VM booted: a VM that failed half-way (a guest kernel panic after its downloads)
      // made fewer than five requests, none of them a retry.
      m.httpExtra = Math.max(0, requests.length - HTTP_PER_VM * m.vms.length);
      const resent = m.dhcp.resent.iPXE + m.dhcp.resent.udhcp + m.dhcp.resent.other;
      m.retries = resent + m.dhcp.naks + m.syns.resent + m.httpExtra + m.httpNon2xx;
      m.retriesUnanswered = m.dhcp.resentUnanswered + m.dhcp.naks + m.syns.unanswered + m.httpExtra + m.httpNon2xx;
      m.complaints = servers.complaints().slice(0, 10);
    } finally {
      await stopServers();
    }
  } catch (error) {
    m.error = error instanceof Error ? error.message : String(error);
  } finally {
    for (const stop of stopVms) await stop();
    await removeLab();
  }
  return m;
}
