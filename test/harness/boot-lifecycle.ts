/**
 * One diskless QEMU VM through the whole machine lifecycle against the real smeltd, as a list of steps that an
 * end-to-end test runs as tests and `pnpm demo` (scripts/demo.ts) runs with a line per step for people:
 *
 *   lab       a namespace of its own with a bridge, smeltd on it (DHCP server mode; or proxy mode beside dnsmasq
 *             as the site's DHCP server), the guest's kernel and initramfs (guest.ts)
 *   iso       (source "iso") a test ISO built with xorriso holding them as casper/vmlinuz and casper/initrd
 *   boot      smeltctl create boot --name guest ... --flavour preseed (from the ISO: --isoPath --isoPrefix guest)
 *   held      power on → the firmware's iPXE DHCPs and fetches its per-MAC script: held; get machines: free
 *   deploy    smeltctl deploy --MAC ... --boot guest → the held script's next poll gets the installer
 *   files     iPXE fetches the kernel and initrd over HTTP (from inside the ISO: /guest/casper/...)
 *   guest     the guest kernel boots and gets a lease (from smeltd, or from dnsmasq in proxy mode)
 *   installed it fetches its preseed file and phones home → get machines: deployed, get events: machine.installed
 *   local     it reboots; its next network boot is told to boot the local disk (no disk: SeaBIOS gives up)
 *
 * Every action on smeltd and every check of its state goes through the real smeltctl. What a machine was told
 * (which iPXE script, which file) is visible to smeltctl only as its effect, so the steps also read the daemon's
 * debug log for it ("iPXE script" lines with their kind, "http" lines with URL and status), and the VM's own
 * serial console and SeaBIOS debug port for what the machine did.
 *
 * The lab is this process's alone (namespace names carry the PID) and close() undoes all of it: the VM by its
 * PID, smeltd, dnsmasq and the router-advertisement responder by theirs, the namespaces, the temporary directory.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLab,
  logLines,
  pinBridge,
  smeltctlIn,
  smeltctlJson,
  waitUntil,
  type Background,
  type Lab,
} from './dhcp-lab.ts';
import { guestFiles, type GuestFiles } from './guest.ts';
import type { Netns } from './netns.ts';
import { runOk } from './process.ts';
import { routerAdvertiserArgv, startVm, type RunningVm } from './qemu.ts';
import type { RunningSmeltd } from './smeltd.ts';

export type DhcpSetup = 'server' | 'proxy';
export type BootSource = 'files' | 'iso';
export type StepId = 'lab' | 'iso' | 'boot' | 'held' | 'deploy' | 'files' | 'guest' | 'installed' | 'local';

export interface LifecycleOptions {
  /** Prefix of the lab's temporary directory. */
  name: string;
  /**
   * Namespace tags (3 characters, distinct from every other test file's): the segment (the bridge, the VM, and in
   * proxy mode dnsmasq) and, in proxy mode only, smeltd's own namespace, plugged into that bridge by a veth pair.
   */
  tags: { segment: string; smeltd?: string };
  /** The lab's /24 as its first three octets ("10.98.0"): .1 the site's DHCP server (proxy), .2 smeltd. */
  net: string;
  dhcp: DhcpSetup;
  source: BootSource;
  /** The VM's MAC. */
  mac: string;
  /** How often a held machine polls (lifecycle.pollSeconds); default 2. */
  pollSeconds?: number;
  /** The VM is killed after this long whatever happens; default 90 s. */
  vmTimeoutMs?: number;
  /** Slow work in the set-up (a kernel download, an initramfs build). */
  note?: (line: string) => void;
}

export interface StepResult {
  /** What happened, in a line for people. */
  summary: string;
  /** The smeltctl command lines the step ran, as typed (without the server and token, which come from env). */
  commands: string[];
  /**
   * When the step's event happened (ms since the epoch), by the daemon's log line for it, where there is one: a
   * step may see it a while later (it checks more afterwards, or an earlier step's wait already covered it).
   */
  at?: number;
}

export interface LifecycleStep {
  id: StepId;
  /** The step as a test names it. */
  title: string;
  run(): Promise<StepResult>;
}

export type LogLine = Record<string, unknown> & { msg?: string; time?: string | number };

export interface Machine {
  mac: string;
  state: string;
  arch?: string;
  uuid?: string;
  lastLease?: string;
  deployment?: string | null;
}

/** smeltctl describe boot NAME -o json: the boot and its details (getBootDetails). */
interface DescribedBoot {
  name: string;
  flavour?: string;
  isoPath?: string;
  isoPrefix?: string;
  details: {
    iso?: { volumeId: string; files: number; names: string };
    urls: { kernel?: string; initrd: string[] };
  };
}

export interface SmeltEvent {
  seq: number;
  type: string;
  mac?: string;
  message: string;
}

export interface Lifecycle {
  readonly options: Readonly<LifecycleOptions>;
  /** smeltd's address (the boot server). */
  readonly server: string;
  /** Who hands out addresses: smeltd (server mode) or dnsmasq (proxy mode). */
  readonly dhcpServer: string;
  readonly steps: readonly LifecycleStep[];
  /** Set by the "lab" step. */
  lab(): Lab;
  daemon(): RunningSmeltd;
  /** The namespace smeltd runs in (the segment's own in server mode). */
  smeltdNs(): Netns;
  /** The namespace of the bridge br0 the VM is plugged into. */
  segmentNs(): Netns;
  /** dnsmasq, in proxy mode. */
  dnsmasq(): { process: Background; leaseFile: string } | undefined;
  /**
   * In proxy mode, the bridge port (in the segment's namespace) that smeltd's veth ends in: every frame arriving
   * there is one smeltd sent. (A watcher on smeltd's own eth0 would not do: scapy's L2 sockets skip outgoing frames.)
   */
  smeltdPort(): string | undefined;
  vm(): RunningVm | undefined;
  iso(): string | undefined;
  /** The daemon's JSON log lines so far. */
  log(): LogLine[];
  /** When the VM was powered on (0 before). */
  poweredOnAt(): number;
  /** The serial console, the firmware log, QEMU's output and the daemon's log tails: for a failure message. */
  diagnostics(): string;
  /** Stops the VM (by its PID) and undoes the lab. Safe to call more than once, and before "lab" ran. */
  close(): Promise<void>;
}

const dashes = (mac: string) => mac.replaceAll(':', '-');

function tail(text: string, lines: number): string {
  return text.replaceAll('\r', '').trimEnd().split('\n').slice(-lines).join('\n');
}

/** A command line as someone would type it: arguments with spaces or quotes quoted. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(' ');
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const proxy = options.dhcp === 'proxy';
  const site = `${options.net}.1`;
  const server = `${options.net}.2`;
  const pollSeconds = options.pollSeconds ?? 2;
  const vmTimeoutMs = options.vmTimeoutMs ?? 90_000;
  const note = options.note ?? (() => undefined);
  const mac = options.mac;
  const dhcpServer = proxy ? site : server;

  let lab: Lab | undefined;
  let segment: Netns | undefined;
  let smeltNs: Netns | undefined;
  let daemon: RunningSmeltd | undefined;
  let dnsmasq: { process: Background; leaseFile: string } | undefined;
  let smeltdPort: string | undefined;
  /** The kernel and initrd URLs describe boot promised. */
  let bootUrls: { kernel: string; initrd: string[] } | undefined;
  let guest: GuestFiles | undefined;
  let iso: string | undefined;
  let vm: RunningVm | undefined;
  let t0 = 0;
  /** Where in the daemon's log the next step starts looking. */
  let logFrom = 0;
  /** The step that is running: the smeltctl commands it ran, and when its event happened (happened()). */
  let current: { commands: string[]; at?: number } = { commands: [] };
  let closed = false;

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not there: an earlier step did not run`);
    return value;
  };

  function log(): LogLine[] {
    return daemon ? logLines(daemon) : [];
  }

  function findLog(from: number, match: (line: LogLine) => boolean): { line: LogLine; index: number } | undefined {
    const lines = log();
    for (let index = from; index < lines.length; index++) {
      const line = lines[index];
      if (line && match(line)) return { line, index };
    }
    return undefined;
  }

  /** The current step's event happened at this log line's time (the latest of several). */
  function happened(line: LogLine): void {
    const time = typeof line.time === 'string' ? Date.parse(line.time) : line.time;
    if (time !== undefined && !Number.isNaN(time)) current.at = Math.max(current.at ?? 0, time);
  }

  const script = (kind: string) => (line: LogLine) =>
    line.msg === 'iPXE script' && line.mac === mac && line.kind === kind;

  /** Time left before the VM's own deadline, less a margin for the failure message. */
  function remaining(): number {
    return Math.max(1000, t0 + vmTimeoutMs - Date.now() - 2000);
  }

  async function ctlResult(args: readonly string[]) {
    current.commands.push(`smeltctl ${shellLine(args)}`);
    return smeltctlIn(need(lab, 'the lab'), need(smeltNs, 'the lab'), need(daemon, 'smeltd'), args);
  }

  /** smeltctl ARGS, which must exit 0; its stdout. */
  async function ctl(args: readonly string[]): Promise<string> {
    const result = await ctlResult(args);
    assert.equal(result.code, 0, `smeltctl ${shellLine(args)} exited ${String(result.code)}: ${result.stderr}`);
    return result.stdout;
  }

  /** smeltctl ARGS -o json, parsed. */
  async function ctlJson<T>(args: readonly string[]): Promise<T> {
    current.commands.push(`smeltctl ${shellLine([...args, '-o', 'json'])}`);
    return smeltctlJson<T>(need(lab, 'the lab'), need(smeltNs, 'the lab'), need(daemon, 'smeltd'), args);
  }

  /** smeltctl get machines MAC: with a MAC, -o json prints the one machine, not a list. */
  const machine = async () => ctlJson<Machine | undefined>(['get', 'machines', mac]);

  // ---- the steps -------------------------------------------------------------------------------------------------

  async function setUpLab(): Promise<string> {
    lab = createLab(options.name);
    // The guest's files (built and cached by `./run.sh setup`) while the network and the daemon come up.
    const files = guestFiles(note);
    // Awaited below; until then a failure must not count as an unhandled rejection (which ends the process).
    files.catch(() => undefined);
    if (proxy) {
      // The site: a switch namespace whose bridge carries the site's DHCP server (dnsmasq, no PXE configuration)
      // and the VM; smeltd in a namespace of its own on the same segment, as a PXE server beside a router.
      const sw = await lab.switch(options.tags.segment);
      segment = sw.ns;
      await segment.exec(['ip', 'link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0']);
      await segment.exec(['sysctl', '-qw', 'net.ipv6.conf.br0.disable_ipv6=1']);
      await segment.exec(['ip', 'addr', 'add', `${site}/24`, 'dev', 'br0']);
      smeltNs = await lab.netns(need(options.tags.smeltd, 'tags.smeltd (proxy mode)'));
      await sw.attach({ ns: smeltNs, name: 'eth0', address: `${server}/24` });
      // The bridge's only port so far: the far end of smeltd's veth (`p<n>@if<m>: ...`).
      const ports = await segment.exec(['ip', '-o', 'link', 'show', 'master', 'br0']);
      smeltdPort = /^\d+: ([^:@]+)/.exec(ports)?.[1];
      const leaseFile = join(lab.dir, 'dnsmasq.leases');
      const child = lab.spawn(segment, [
        'dnsmasq',
        '--no-daemon',
        '--conf-file=/dev/null',
        '--bind-interfaces',
        '--interface=br0',
        '--port=0',
        `--dhcp-range=${options.net}.100,${options.net}.149,255.255.255.0,10m`,
        `--dhcp-option=option:router,${site}`,
        `--dhcp-leasefile=${leaseFile}`,
        `--pid-file=${join(lab.dir, 'dnsmasq.pid')}`,
        '--user=root',
        '--no-ping',
        '--log-dhcp',
        '--log-facility=-',
      ]);
      await child.waitFor(/DHCP, IP range/, 10_000);
      dnsmasq = { process: child, leaseFile };
    } else {
      segment = await lab.netns(options.tags.segment);
      smeltNs = segment;
      await segment.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0']);
      // Its MAC fixed (the 2-VM case: the first VM to stop must not take the server's MAC with its tap).
      await pinBridge(segment, { anchor: true });
      await segment.exec(['sysctl', '-qw', 'net.ipv6.conf.br0.disable_ipv6=1']);
      await segment.exec(['ip', 'addr', 'add', `${server}/24`, 'dev', 'br0']);
      await segment.exec(['ip', 'link', 'set', 'br0', 'up']);
    }
    // Without an answer to its router solicitations iPXE idles ~15 s per boot (qemu.ts, routerAdvertiserArgv).
    await lab.spawn(segment, routerAdvertiserArgv('br0')).waitFor(/^ready$/m, 20_000);
    daemon = await lab.smeltd(smeltNs, {
      interface: proxy ? 'eth0' : 'br0',
      address: server,
      dhcp: proxy
        ? { mode: 'proxy' }
        : {
            mode: 'server',
            subnet: `${options.net}.0/24`,
            pool: { start: `${options.net}.100`, end: `${options.net}.149` },
            gateway: `${options.net}.1`,
            dns: [`${options.net}.1`],
          },
      // iPXE is told http://SERVER/boot/<mac>.ipxe: port 80, inside the namespace only.
      http: { listen: `${server}:80` },
      tftp: { listen: `${server}:69` },
      lifecycle: { pollSeconds },
      log: { level: 'debug' },
    });
    guest = await files;
    const where = proxy
      ? `smeltd (ProxyDHCP, ${server}) beside dnsmasq (the site's DHCP server, ${site})`
      : `smeltd (DHCP server, HTTP, TFTP) at ${server}`;
    return `started ${where} on a bridge in namespace ${segment.name}; guest kernel ${guest.release}`;
  }

  async function buildIso(): Promise<string> {
    const files = need(guest, 'the guest');
    iso = join(need(lab, 'the lab').dir, 'guest.iso');
    // Rock Ridge and Joliet, as distribution ISOs have; xorriso wants a UTF-8 locale for its file names.
    await runOk(
      'xorriso',
      [
        '-no_rc',
        '-as',
        'mkisofs',
        '-quiet',
        '-R',
        '-J',
        '-V',
        'SMELT_GUEST',
        '-o',
        iso,
        '-graft-points',
        `casper/vmlinuz=${files.kernel}`,
        `casper/initrd=${files.initrd}`,
      ],
      { env: { ...process.env, LC_ALL: 'C.UTF-8' } },
    );
    const mb = (statSync(iso).size / 1e6).toFixed(1);
    return `built a ${mb} MB test ISO with xorriso: the guest's kernel and initrd as casper/vmlinuz, casper/initrd`;
  }

  async function createBoot(): Promise<string> {
    const files = need(guest, 'the guest');
    const source =
      options.source === 'iso'
        ? [
            '--isoPath',
            need(iso, 'the ISO'),
            '--isoPrefix',
            'guest',
            '--kernel',
            'casper/vmlinuz',
            '--initrd',
            'casper/initrd',
          ]
        : ['--kernel', files.kernel, '--initrd', files.initrd];
    const out = await ctl([
      'create',
      'boot',
      '--name',
      'guest',
      ...source,
      '--cmdline',
      'console=ttyS0',
      '--flavour',
      'preseed',
    ]);
    assert.match(out, /boot "guest" created/);
    // describe boot: the boot as stored, and what smeltd reads from the ISO and the URLs a machine will be given.
    const boot = await ctlJson<DescribedBoot>(['describe', 'boot', 'guest']);
    assert.equal(boot.flavour, 'preseed', JSON.stringify(boot));
    if (options.source === 'iso') {
      assert.equal(boot.isoPath, iso);
      assert.equal(boot.isoPrefix, 'guest');
      assert.equal(boot.details.iso?.volumeId, 'SMELT_GUEST', JSON.stringify(boot.details));
      assert.equal(boot.details.iso.files, 2, JSON.stringify(boot.details));
      assert.equal(boot.details.urls.kernel, `http://${server}/guest/casper/vmlinuz`);
      assert.deepEqual(boot.details.urls.initrd, [`http://${server}/guest/casper/initrd`]);
    }
    bootUrls = { kernel: boot.details.urls.kernel ?? '', initrd: boot.details.urls.initrd };
    return options.source === 'iso'
      ? `registered the ISO as boot "guest" (a preseed installer); smeltd reads it: volume ${boot.details.iso?.volumeId ?? '?'}, ${String(boot.details.iso?.files ?? '?')} files`
      : 'registered boot "guest", a preseed installer (kernel and initrd from files)';
  }

  async function powerOn(): Promise<string> {
    const ns = need(segment, 'the lab');
    t0 = Date.now();
    vm = await startVm({
      netns: ns.name,
      bridge: 'br0',
      tap: 'tap-vm',
      mac,
      firmware: 'bios',
      dir: need(lab, 'the lab').dir,
      timeoutMs: vmTimeoutMs,
    });
    const held = await waitUntil(
      "the VM's first iPXE script (kind hold)",
      () => {
        const served = findLog(0, script('hold'));
        if (served) return served;
        // iPXE gave up (no boot file, or its script failed) and SeaBIOS has nothing else to boot: say so now,
        // with what smeltd decided on each of the VM's DHCP requests, rather than wait for the VM's deadline.
        if (vm?.firmwareLog().includes('No bootable device')) {
          const decided = log()
            .filter((line) => line.msg === 'dhcp' && line.mac === mac)
            .map((line) =>
              [line.time, line.type, line.decision, line.reply, line.yiaddr, line.to]
                .map((part) => (typeof part === 'string' || typeof part === 'number' ? String(part) : ''))
                .map((part, index) => (index === 4 && part !== '' ? `yiaddr ${part}` : part))
                .filter((part) => part !== '')
                .join(' '),
            );
          throw new Error(
            `the VM's iPXE gave up before fetching its script (SeaBIOS: "No bootable device"); ` +
              `smeltd's DHCP decisions for ${mac}:\n  ${decided.join('\n  ') || '(none)'}`,
          );
        }
        return undefined;
      },
      remaining(),
      200,
    );
    logFrom = held.index + 1;
    happened(held.line);
    // Discovery is written in batches (every 250 ms): the machine may need a moment to show up.
    const seen = await waitUntil(
      `${mac} in smeltctl get machines`,
      async () => {
        const list = await ctlJson<Machine[]>(['get', 'machines']);
        return list.find((m) => m.mac === mac);
      },
      10_000,
      500,
    );
    assert.equal(seen.state, 'free', JSON.stringify(seen));
    assert.equal(seen.arch, 'x86', JSON.stringify(seen));
    // Option 97 carries the SMBIOS UUID: read back as QEMU set it.
    assert.equal(seen.uuid, vm.uuid, JSON.stringify(seen));
    if (!proxy) assert.match(seen.lastLease ?? '', /\.1[0-4]\d$/, JSON.stringify(seen));
    const address = proxy ? 'from dnsmasq' : `${seen.lastLease ?? '?'} from smeltd`;
    return `powered on the VM: it asked for an address (${address}) and was held, polling (get machines: ${seen.state})`;
  }

  async function deploy(): Promise<string> {
    const out = await ctl(['deploy', '--MAC', mac, '--boot', 'guest']);
    assert.match(out, new RegExp(mac));
    const installer = await waitUntil(
      'the installer script at the next poll',
      () => findLog(logFrom, script('installer')),
      Math.min(remaining(), (pollSeconds + 10) * 1000),
      200,
    );
    logFrom = installer.index + 1;
    happened(installer.line);
    const now = await machine();
    assert.equal(now?.state, 'provisioning', JSON.stringify(now));
    return `deployed it: at its next poll (no power cycle) it was told to install (get machines: ${now.state})`;
  }

  async function fetchFiles(): Promise<string> {
    // The URLs describe boot gave, as paths: what the installer script told iPXE to fetch.
    const urls = need(bootUrls, 'the boot');
    const pathOf = (url: string) => new URL(url).pathname;
    const [kernelPath, initrdPath] = [pathOf(urls.kernel), pathOf(urls.initrd[0] ?? '')];
    if (options.source === 'iso') {
      assert.deepEqual([kernelPath, initrdPath], ['/guest/casper/vmlinuz', '/guest/casper/initrd']);
    }
    const fetched = (path: string) => (line: LogLine) =>
      line.msg === 'http' && line.url === path && line.status === 200;
    const kernel = await waitUntil(
      `GET ${kernelPath} → 200`,
      () => findLog(logFrom, fetched(kernelPath)),
      remaining(),
      200,
    );
    const initrd = await waitUntil(
      `GET ${initrdPath} → 200`,
      () => findLog(logFrom, fetched(initrdPath)),
      remaining(),
      200,
    );
    logFrom = Math.max(kernel.index, initrd.index) + 1;
    happened(kernel.line);
    happened(initrd.line);
    const ms = (line: LogLine) => (typeof line.ms === 'number' ? `${String(Math.round(line.ms))} ms` : '?');
    const from = options.source === 'iso' ? 'from inside the ISO' : 'from its files';
    return `its iPXE fetched the kernel (${ms(kernel.line)}) and the initrd (${ms(initrd.line)}) ${from} over HTTP: GET ${kernelPath}, ${initrdPath}`;
  }

  async function bootGuest(): Promise<string> {
    const running = need(vm, 'the VM');
    await running.waitForSerial(/SMELT-GUEST: init started/, remaining());
    const lease = await running.waitForSerial(/SMELT-GUEST: lease (\S+) from (\S+)/, remaining());
    assert.equal(lease[2], dhcpServer, `the guest's lease came from ${lease[2] ?? '?'}, not ${dhcpServer}`);
    const who = proxy ? 'dnsmasq' : 'smeltd';
    return `the installer (the guest kernel) booted and got ${lease[1] ?? '?'} from ${who}`;
  }

  async function phoneHome(): Promise<string> {
    const running = need(vm, 'the VM');
    const answer = await running.waitForSerial(
      /SMELT-GUEST: (phone-home URL from the answer file: \S+|PROBLEM: .*|FAILED .*)/,
      remaining(),
    );
    assert.match(
      answer[0],
      new RegExp(`from the answer file: http://${server.replaceAll('.', '\\.')}/hooks/${dashes(mac)}/[^/]+/installed$`),
      'the guest did not find the phone-home URL in its preseed file',
    );
    const phoned = await running.waitForSerial(/SMELT-GUEST: (phoned home deployed|FAILED .*)/, remaining());
    assert.match(phoned[0], /phoned home deployed/);
    const hook = findLog(0, (line) => line.msg === 'phone-home' && line.mac === mac);
    assert.equal(hook?.line.outcome, 'installed', JSON.stringify(hook?.line));
    logFrom = Math.max(logFrom, hook.index + 1);
    happened(hook.line);
    const now = await machine();
    assert.equal(now?.state, 'deployed', JSON.stringify(now));
    const events = await ctlJson<SmeltEvent[]>(['get', 'events', '--MAC', mac]);
    const story = events.map((e) => e.type).filter((t) => t === 'deployment.created' || t === 'machine.installed');
    assert.deepEqual(story, ['deployment.created', 'machine.installed'], JSON.stringify(events));
    return `it fetched its preseed answer file and phoned home: get machines shows it ${now.state}, get events machine.installed`;
  }

  async function bootLocal(): Promise<string> {
    const running = need(vm, 'the VM');
    await running.waitForSerial(/SMELT-GUEST: rebooting/, remaining());
    const local = await waitUntil(
      'the script after the reboot (kind local)',
      () => findLog(logFrom, script('local')),
      remaining(),
      200,
    );
    assert.equal(findLog(logFrom, script('installer')), undefined, 'the installer was served again');
    // No disk: sanboot fails, iPXE exits, SeaBIOS has nothing left to boot; the installer never ran a second time.
    await waitUntil(
      'SeaBIOS giving up after iPXE exits',
      () => (running.firmwareLog().includes('No bootable device') ? true : undefined),
      Math.min(remaining(), 15_000),
      200,
    );
    assert.equal(running.serial().match(/SMELT-GUEST: init started/g)?.length, 1, 'the installer booted again');
    logFrom = local.index + 1;
    happened(local.line);
    const now = await machine();
    assert.equal(now?.state, 'deployed', JSON.stringify(now));
    await running.stop();
    return `it rebooted, and its next network boot was told to boot from the local disk, not to reinstall (get machines: ${now.state})`;
  }

  const all: [StepId, string, () => Promise<string>][] = [
    [
      'lab',
      proxy
        ? `set up: dnsmasq on a bridge as the site's DHCP server (${site}), smeltd in proxy mode on it (${server})`
        : `set up: smeltd in DHCP server mode on a bridge (${server}), the guest's kernel and initramfs`,
      setUpLab,
    ],
    ['iso', 'a test ISO with xorriso: casper/vmlinuz and casper/initrd', buildIso],
    [
      'boot',
      options.source === 'iso'
        ? 'smeltctl create boot --isoPath --isoPrefix guest --kernel casper/vmlinuz --initrd casper/initrd --flavour preseed'
        : 'smeltctl create boot --kernel --initrd --flavour preseed',
      createBoot,
    ],
    [
      'held',
      'power on → the firmware DHCPs, its iPXE fetches the per-MAC script: held (kind hold); get machines: free',
      powerOn,
    ],
    ['deploy', 'smeltctl deploy --MAC --boot guest → the next poll gets the installer (kind installer)', deploy],
    [
      'files',
      options.source === 'iso'
        ? 'iPXE fetches the kernel and initrd from inside the ISO: GET /guest/casper/vmlinuz, /guest/casper/initrd'
        : 'iPXE fetches the kernel and initrd over HTTP',
      fetchFiles,
    ],
    ['guest', `the guest kernel boots and gets a lease from ${proxy ? 'dnsmasq, not smeltd' : 'smeltd'}`, bootGuest],
    [
      'installed',
      'the guest fetches its preseed file and phones home → get machines: deployed; get events: machine.installed',
      phoneHome,
    ],
    ['local', 'the guest reboots; its next network boot is told to boot the local disk (kind local)', bootLocal],
  ];
  const steps: LifecycleStep[] = all
    .filter(([id]) => id !== 'iso' || options.source === 'iso')
    .map(([id, title, body]) => ({
      id,
      title,
      async run() {
        current = { commands: [] };
        const summary = await body();
        return { summary, ...current };
      },
    }));

  return {
    options,
    server,
    dhcpServer,
    steps,
    lab: () => need(lab, 'the lab'),
    daemon: () => need(daemon, 'smeltd'),
    smeltdNs: () => need(smeltNs, 'the lab'),
    segmentNs: () => need(segment, 'the lab'),
    dnsmasq: () => dnsmasq,
    smeltdPort: () => smeltdPort,
    vm: () => vm,
    iso: () => iso,
    log,
    poweredOnAt: () => t0,
    diagnostics() {
      const parts: string[] = [];
      if (vm) {
        parts.push(`---- VM ${mac}: serial console (last 40 lines) ----`, vm.serialTail(40));
        parts.push('---- SeaBIOS debug log (last 15 lines) ----', tail(vm.firmwareLog(), 15));
        parts.push('---- QEMU ----', vm.command.join(' '), tail(vm.qemuOutput(), 15));
      }
      if (dnsmasq) parts.push('---- dnsmasq (last 20 lines) ----', tail(dnsmasq.process.output(), 20));
      if (daemon) parts.push('---- smeltd log (last 40 lines) ----', tail(daemon.output(), 40));
      return parts.join('\n');
    },
    async close() {
      if (closed) return;
      closed = true;
      await vm?.stop();
      await lab?.close();
    },
  };
}
