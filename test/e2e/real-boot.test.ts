/**
 * The machine lifecycle with real firmware: a diskless QEMU VM network-boots from smeltd (DHCP server mode,
 * HTTP, TFTP) inside a namespace this file makes, and every step is checked from the outside — smeltctl, the
 * daemon's debug log, the VM's serial console:
 *
 *   power on → the firmware's iPXE DHCPs, gets its per-MAC script URL → held (kind hold) → discovered (free,
 *   arch from option 93, a lease)
 *   → smeltctl deploy --deploymentType preseed → the held script's next poll gets the installer (kind installer)
 *   → iPXE fetches the kernel and initrd over HTTP → the guest (test/harness/guest/init) DHCPs, fetches the
 *   preseed file from url=, POSTs the phone-home URL in its late_command → deployed, event machine.installed
 *   → the guest reboots, iPXE asks again → kind local ("booting from the local disk"; no disk: back to the BIOS).
 *
 * One BIOS VM by default (SeaBIOS + the e1000's iPXE ROM; 25-30 s for the file). SMELT_E2E_FULL=1 adds a UEFI
 * VM beside it (OVMF's own PXE on virtio-net → ipxe.efi over TFTP → the same flow): ~50 s for both on 2 CPUs,
 * ~58 s beside two other suites, too close to a minute for the default run.
 * Each VM is killed by its PID after at most 90 s; a failed step prints the serial console, the firmware's and
 * the daemon's log tails, and the steps after it are skipped rather than left to time out one by one. The
 * preseed step is the exception: if the answer file is not served, the guest says so on its console and
 * phones home by the URL scheme instead, so that step fails alone and the rest still runs.
 * A router-advertisement responder answers iPXE's router solicitations, which it otherwise waits ~15 s for on
 * every boot (qemu.ts, routerAdvertiserArgv).
 *
 * Network safety: the bridge, the tap and smeltd live in a namespace of this file's own; nothing touches the
 * machine's interfaces.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLab, logLines, smeltctlIn, smeltctlJson, waitUntil, type Lab } from '../harness/dhcp-lab.ts';
import { guestFiles, type GuestFiles } from '../harness/guest.ts';
import type { Netns } from '../harness/netns.ts';
import { startVm, vmBridge, type Firmware, type RunningVm } from '../harness/qemu.ts';
import type { RunningSmeltd } from '../harness/smeltd.ts';

const SERVER = '10.92.0.2';
const VM_TIMEOUT_MS = 90_000;
const POLL_SECONDS = 2;
const FULL = process.env.SMELT_E2E_FULL === '1';

interface Machine {
  mac: string;
  state: string;
  arch?: string;
  uuid?: string;
  vendorClass?: string;
  lastLease?: string;
}
interface SmeltEvent {
  type: string;
  mac?: string;
  message: string;
}
type LogLine = Record<string, unknown> & { msg?: string; time?: string | number };

/** One VM's walk through the lifecycle. */
interface Scenario {
  firmware: Firmware;
  mac: string;
  tap: string;
  /** What smeltd learns from option 93. */
  arch: string;
  vm?: RunningVm;
  /** When the VM was powered on; every step is timed from here. */
  t0: number;
  /** The step that failed; the later ones are skipped. */
  broken?: string;
  timings: { step: string; at: number; took: number }[];
  /** Index into the daemon's log lines where the current step starts looking. */
  logFrom: number;
  /** When the current step's events happened, per the daemon's log (happened()); the step took until the last. */
  events: number[];
  problems: string[];
}

function scenario(firmware: Firmware, mac: string, arch: string): Scenario {
  return { firmware, mac, tap: `tap-${firmware}`, arch, t0: 0, timings: [], logFrom: 0, events: [], problems: [] };
}

const scenarios: Scenario[] = [
  // SeaBIOS runs the e1000's iPXE ROM: DHCP hands iPXE its script URL directly.
  scenario('bios', '52:54:00:92:00:01', 'x86'),
  // OVMF's own PXE on virtio-net: DHCP (arch 7) → snponly.efi/ipxe.efi over TFTP → iPXE → its script URL.
  ...(FULL ? [scenario('uefi', '52:54:00:92:00:02', 'x86_64-efi')] : []),
];

let lab: Lab;
let ns: Netns;
let daemon: RunningSmeltd;
let guest: GuestFiles;
const started = Date.now();

const dashes = (mac: string) => mac.replaceAll(':', '-');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function log(): LogLine[] {
  return logLines(daemon);
}

/** The first log line from index `from` on that matches, with its index. */
function findLog(from: number, match: (line: LogLine) => boolean): { line: LogLine; index: number } | undefined {
  const lines = log();
  for (let index = from; index < lines.length; index++) {
    const line = lines[index];
    if (line && match(line)) return { line, index };
  }
  return undefined;
}

function scriptServed(s: Scenario, kind: string) {
  return (line: LogLine) => line.msg === 'iPXE script' && line.mac === s.mac && line.kind === kind;
}

/** Records when the event of the current step happened, by the log line's own time. */
function happened(s: Scenario, line: LogLine): void {
  const at = typeof line.time === 'string' ? Date.parse(line.time) : line.time;
  if (at !== undefined && !Number.isNaN(at)) s.events.push(at);
}

function remaining(s: Scenario): number {
  return Math.max(1000, s.t0 + VM_TIMEOUT_MS - Date.now() - 2000);
}

async function ctl(args: string[]): Promise<string> {
  const result = await smeltctlIn(lab, ns, daemon, args);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}`);
  return result.stdout;
}

async function machine(mac: string): Promise<Machine | undefined> {
  const list = await smeltctlJson<Machine[]>(lab, ns, daemon, ['get', 'machines']);
  return list.find((m) => m.mac === mac);
}

function tail(text: string, lines: number): string {
  return text.replaceAll('\r', '').trimEnd().split('\n').slice(-lines).join('\n');
}

function diagnostics(s: Scenario): string {
  const vm = s.vm;
  const parts = [
    `---- ${s.firmware} VM ${s.mac}: serial console (last 40 lines) ----`,
    vm ? vm.serialTail(40) : '(no VM)',
  ];
  if (vm) {
    parts.push('---- firmware debug log (last 15 lines) ----', tail(vm.firmwareLog(), 15));
    parts.push('---- QEMU ----', vm.command.join(' '), tail(vm.qemuOutput(), 15));
  }
  parts.push('---- smeltd log (last 40 lines) ----', tail(daemon.output(), 40));
  return parts.join('\n');
}

/**
 * One step of a scenario, as a test of its own: timed from the VM's power-on and printed as it passes. A failure
 * prints the diagnostics and skips the scenario's later steps. A `soft` step's failure is reported but does not
 * stop the others (the guest works around it).
 */
function step(s: Scenario, name: string, body: () => Promise<void>, options: { soft?: boolean } = {}): void {
  test(name, async (t) => {
    if (s.broken !== undefined) {
      t.skip(`skipped: "${s.broken}" failed`);
      return;
    }
    const begun = Date.now();
    s.events.length = 0;
    try {
      await body();
    } catch (error) {
      if (!options.soft) s.broken = name;
      else s.problems.push(`${name}: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`);
      console.log(`[${s.firmware} +${seconds(Date.now() - s.t0)}] FAILED: ${name}\n${diagnostics(s)}`);
      throw error;
    }
    // The event's own time where the daemon logged it, else when the test saw it (serial console, smeltctl).
    const noticed = Date.now() - s.t0;
    const logged = s.events.length > 0;
    const at = logged ? Math.max(...s.events) - s.t0 : noticed;
    s.timings.push({ step: name, at, took: Date.now() - begun });
    const seen = logged ? `, per the daemon's log; checked by +${seconds(noticed)}` : '';
    console.log(`[${s.firmware} +${seconds(at)}] ${name}${seen}`);
  });
}

before(async () => {
  lab = createLab('realboot');
  const note = (line: string) => {
    console.log(`[guest] ${line}`);
  };
  // The guest's files (a kernel download the first time) while the namespace and the daemon come up.
  const files = guestFiles(note);
  ns = await lab.netns('qvm');
  // Pinned: with SMELT_E2E_FULL=1 the VM that stops first must not take the bridge's MAC with its tap.
  await vmBridge(lab, ns, SERVER, { pin: true });
  daemon = await lab.smeltd(ns, {
    interface: 'br0',
    address: SERVER,
    dhcp: {
      mode: 'server',
      subnet: '10.92.0.0/24',
      pool: { start: '10.92.0.100', end: '10.92.0.149' },
      gateway: '10.92.0.1',
      dns: ['10.92.0.1'],
    },
    // iPXE is told http://SERVER/boot/<mac>.ipxe: port 80, inside the namespace only.
    http: { listen: `${SERVER}:80` },
    tftp: { listen: `${SERVER}:69` },
    lifecycle: { pollSeconds: POLL_SECONDS },
    log: { level: 'debug' },
  });
  guest = await files;
  console.log(`[setup +${seconds(Date.now() - started)}] smeltd up; guest ${guest.kernelPackage}, ${guest.initrd}`);
  await ctl([
    'create',
    'boot',
    '--name',
    'guest',
    '--kernel',
    guest.kernel,
    '--initrd',
    guest.initrd,
    '--cmdline',
    'console=ttyS0',
  ]);
});

after(async () => {
  for (const s of scenarios) await s.vm?.stop();
  const lines = scenarios.flatMap((s) => [
    `${s.firmware} VM ${s.mac}:`,
    ...s.timings.map((t) => `  +${seconds(t.at).padStart(7)}  (${seconds(t.took).padStart(7)})  ${t.step}`),
    ...s.problems.map((p) => `  problem: ${p}`),
  ]);
  console.log(`timings from power-on (step duration in brackets):\n${lines.join('\n')}`);
  console.log(`whole file: ${seconds(Date.now() - started)}`);
  await lab.close();
});

// The scenarios (BIOS; and UEFI with SMELT_E2E_FULL=1) run side by side, each one's steps in order.
describe('real firmware', { concurrency: true }, () => {
  for (const s of scenarios) {
    describe(
      `${s.firmware} VM ${s.mac}: free → held → preseed installer → phone-home → local disk`,
      { concurrency: 1 },
      () => {
        step(s, 'power on → the firmware DHCPs and its iPXE fetches the per-MAC script: held (kind hold)', async () => {
          s.t0 = Date.now();
          s.vm = await startVm({
            netns: ns.name,
            bridge: 'br0',
            tap: s.tap,
            mac: s.mac,
            firmware: s.firmware,
            dir: lab.dir,
            timeoutMs: VM_TIMEOUT_MS,
          });
          const held = await waitUntil(
            `the ${s.firmware} VM's first iPXE script (kind hold)`,
            () => findLog(0, scriptServed(s, 'hold')),
            remaining(s),
            200,
          );
          s.logFrom = held.index + 1;
          happened(s, held.line);
          if (s.vm.nic === 'virtio-pxe') {
            // OVMF's PXE got iPXE from smeltd's TFTP server first (it reads tsize, aborts, then downloads).
            const tftp = findLog(
              0,
              (line) => line.msg === 'transfer complete' && typeof line.file === 'string' && line.file.endsWith('.efi'),
            );
            assert.ok(tftp, 'no "transfer complete" of an .efi file over TFTP before the first script');
            console.log(`[${s.firmware}] TFTP: ${String(tftp.line.file)}, ${String(tftp.line.size)} bytes`);
          }
        });

        step(
          s,
          `discovered: get machines shows ${s.mac} free, arch ${s.arch}, with a lease; it keeps polling`,
          async () => {
            const seen = await waitUntil('the machine in get machines', () => machine(s.mac), 10_000, 300);
            assert.equal(seen.state, 'free', JSON.stringify(seen));
            assert.equal(seen.arch, s.arch, JSON.stringify(seen));
            // Option 97 carries the SMBIOS UUID with its first three fields little-endian: read back as QEMU set it.
            assert.equal(seen.uuid, s.vm?.uuid, JSON.stringify(seen));
            assert.match(seen.lastLease ?? '', /^10\.92\.0\.1[0-4]\d$/, JSON.stringify(seen));
            const poll = await waitUntil(
              'a second hold script (the poll)',
              () => findLog(s.logFrom, scriptServed(s, 'hold')),
              (POLL_SECONDS + 8) * 1000,
              200,
            );
            s.logFrom = poll.index + 1;
          },
        );

        step(s, 'deploy --deploymentType preseed → the next poll gets the installer (kind installer)', async () => {
          const out = await ctl(['deploy', '--MAC', s.mac, '--boot', 'guest', '--deploymentType', 'preseed']);
          assert.match(out, new RegExp(s.mac));
          const installer = await waitUntil(
            'the installer script',
            () => findLog(s.logFrom, scriptServed(s, 'installer')),
            (POLL_SECONDS + 8) * 1000,
            200,
          );
          s.logFrom = installer.index + 1;
          happened(s, installer.line);
          assert.equal((await machine(s.mac))?.state, 'provisioning');
        });

        step(s, 'iPXE fetches the kernel and the initrd over HTTP', async () => {
          const fetched = (prefix: string) => (line: LogLine) =>
            line.msg === 'http' && typeof line.url === 'string' && line.url.startsWith(prefix) && line.status === 200;
          const kernel = await waitUntil(
            'GET /boots/guest/kernel/... → 200',
            () => findLog(s.logFrom, fetched('/boots/guest/kernel/')),
            remaining(s),
            200,
          );
          const initrd = await waitUntil(
            'GET /boots/guest/initrd/0/... → 200',
            () => findLog(s.logFrom, fetched('/boots/guest/initrd/0/')),
            remaining(s),
            200,
          );
          s.logFrom = Math.max(kernel.index, initrd.index) + 1;
          happened(s, kernel.line);
          happened(s, initrd.line);
          console.log(
            `[${s.firmware}] kernel ${String(kernel.line.url)} in ${String(kernel.line.ms)} ms, initrd in ${String(initrd.line.ms)} ms`,
          );
        });

        step(s, 'the guest kernel boots, loads its NIC driver and gets a lease from smeltd', async () => {
          await s.vm?.waitForSerial(/SMELT-GUEST: init started/, remaining(s));
          const lease = await s.vm?.waitForSerial(/SMELT-GUEST: lease (\S+) from (\S+)/, remaining(s));
          assert.equal(lease?.[2], SERVER);
        });

        step(
          s,
          'the guest fetches its preseed file (url=) and finds the phone-home URL in it',
          async () => {
            const outcome = await s.vm?.waitForSerial(
              /SMELT-GUEST: (phone-home URL from the answer file: \S+|PROBLEM: .*)/,
              remaining(s),
            );
            const served = findLog(
              0,
              (line) =>
                line.msg === 'http' &&
                typeof line.url === 'string' &&
                line.url.startsWith(`/answers/${dashes(s.mac)}/`) &&
                line.url.endsWith('/preseed.cfg'),
            );
            // smeltd logs a served file at debug level, a 404 not at all: the guest's own words say what went wrong.
            assert.equal(
              served?.line.status,
              200,
              `GET /answers/${dashes(s.mac)}/<token>/preseed.cfg was not served; the guest says: ${outcome?.[0] ?? '(nothing)'}`,
            );
            happened(s, served.line);
            assert.match(outcome?.[0] ?? '', new RegExp(`/hooks/${dashes(s.mac)}/[^/]+/installed$`));
          },
          { soft: true },
        );

        step(s, 'the guest phones home → deployed, event machine.installed', async () => {
          await s.vm?.waitForSerial(/SMELT-GUEST: phoned home deployed/, remaining(s));
          const hook = findLog(0, (line) => line.msg === 'phone-home' && line.mac === s.mac);
          assert.equal(hook?.line.outcome, 'installed', JSON.stringify(hook?.line));
          assert.equal((await machine(s.mac))?.state, 'deployed');
          const events = await smeltctlJson<SmeltEvent[]>(lab, ns, daemon, ['get', 'events', '--MAC', s.mac]);
          assert.deepEqual(
            events
              .map((e) => e.type)
              .filter((type) => type.startsWith('machine.installed') || type === 'deployment.created'),
            ['deployment.created', 'machine.installed'],
            JSON.stringify(events),
          );
          s.logFrom = hook.index + 1;
          happened(s, hook.line);
        });

        step(s, 'the guest reboots; iPXE asks again and is told to boot the local disk (kind local)', async () => {
          await s.vm?.waitForSerial(/SMELT-GUEST: rebooting/, remaining(s));
          const local = await waitUntil(
            'the script after the reboot (kind local)',
            () => findLog(s.logFrom, scriptServed(s, 'local')),
            remaining(s),
            200,
          );
          happened(s, local.line);
          // Never the installer again after the phone-home.
          assert.equal(findLog(s.logFrom, scriptServed(s, 'installer')), undefined);
          assert.equal((await machine(s.mac))?.state, 'deployed');
          if (s.firmware === 'bios') {
            // No disk: sanboot fails, iPXE exits, and SeaBIOS has nothing left to boot.
            await waitUntil(
              'SeaBIOS giving up after iPXE exits',
              () => ((s.vm?.firmwareLog() ?? '').includes('No bootable device') ? true : undefined),
              10_000,
              200,
            );
          }
          // Done: the CPU goes to the other VM, if any.
          await s.vm?.stop();
        });
      },
    );
  }
});
