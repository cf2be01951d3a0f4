import { insertIntoSection } from '../lib/benchmarks-md.ts';
import { median } from '../lib/stats.ts';
import { markdownTable } from '../lib/table.ts';
import type { HttpKind, Measurement } from './measure.ts';
import { serverTitles, type ServerId } from './servers.ts';

export const SUBSECTION = '### Five real VMs';

export interface RunInfo {
  command: string;
  started: Date;
  elapsedS: number;
  vms: number;
  runs: number;
  maxRunS: number;
  memoryMb: number;
  machine: string;
  load: { before: number; after: number };
  versions: string[];
  guest: string;
  lab: string;
  vmCommand: string;
  serverCommands: string[];
  referenceFiles: string;
  notes: string[];
}

/** The subsection's text the first time it is made (method); runs are added under it. */
export const subsectionIntro = `${SUBSECTION}

**What.** \`pnpm bench vms\` (bench/vms/): 5 diskless QEMU VMs (BIOS: SeaBIOS and the iPXE option ROM of QEMU's e1000,
\`-accel tcg\`: KVM is not usable here; 1 vCPU, 384 MiB each) power on at once on one bridge and network-boot the guest
the end-to-end tests use (test/harness/guest.ts: Debian's 6.1 kernel, 8 MB, and a 1.2 MB busybox initramfs whose init
acts as a preseed installer: DHCP, fetch the answer file named by \`url=\`, POST the phone-home URL it finds there).
Against \`smeltd\` (DHCP server mode, HTTP, TFTP; the boot registered and the 5 MACs deployed through the API before
power-on, so each VM's iPXE gets its installer script; started as packages/daemon/bin/smeltd starts it: the JavaScript
build of scripts/build-js.ts with packages/daemon/node-options, from a snapshot of a commit with \`--smeltd-commit\`) and
against dnsmasq (DHCP + TFTP) + nginx (HTTP) serving the same: the kernel and initrd at smeltd's URL paths, a static
copy of the installer script smeltd rendered for a sixth machine deployed the same way, that machine's answer file as a
static file, and \`return 200 "deployed"\` for the phone-home POST — so the guest makes the same five HTTP requests on
both sides. In the same run, each server in a fresh namespace, the order of the servers alternating from run to run.

A VM has **booted** when its serial console shows the guest's \`SMELT-GUEST: phoned home\` (the phone-home POST answered;
on smeltd that is the machine becoming \`deployed\`); the table also gives the time to the guest's init (\`init started\`),
and "Where the time goes" splits that at the kernel's first line on the console (before it: the firmware, DHCP, the
downloads and the decompression of the kernel; after it: the kernel's boot). The CPU seconds used during a run are given
for the server (its processes, threads included), the VMs (their QEMU processes) and everything else on the machine
(others': all CPUs' busy time less this benchmark's own processes). A booted VM is stopped at once on both sides, so
that its reboot does not take CPU from the others. **Retries**: DHCP messages a VM sent again (the same xid and type,
from a tcpdump capture of the bridge), NAKs, TCP SYNs sent again, and HTTP requests beyond the five a boot needs or not
answered 2xx (smeltd's debug log, nginx's access log). They are counted twice: all of them, and only those sent before
the server had answered at all. The difference is the guest's: its busybox \`udhcpc -T 1\`, starved of CPU under TCG,
resends a DISCOVER whose OFFER had reached the bridge a millisecond after the first — a retry, but none a server could
have prevented.

**How.**

\`\`\`sh
pnpm bench vms --write            # 5 VMs × 2 servers × 2 runs, alternating order (~3.5 min here)
pnpm bench vms --quick            # 2 VMs, 1 run per server (~1 min)
pnpm bench vms --plan             # what it would do, with a time estimate
pnpm bench vms --help             # --vms N --runs N --servers --max-run-s --memory-mib ...
\`\`\`

Needs root, \`qemu-system-x86\`, \`ipxe-qemu\` (the e1000 ROM), \`python3-scapy\`, \`tcpdump\`, \`dnsmasq\`, \`nginx\`,
\`curl\`, and the guest files \`scripts/setup.sh\` builds into \`.tools/\`.

**Reading it.** Five VMs emulated in software on two cores are CPU-bound: together they need ~60 CPU-seconds (the
firmware, iPXE, the 9 MB download through an emulated e1000, the kernel's decompression and boot), so a run lasts about
(VMs' CPU + server CPU + others' CPU) / 2 seconds, and every CPU-second of other work costs the VMs about half a second
of wall time, whichever server they boot from (runs where others took more than 10 % of the machine are marked † and
left out of the time and retry targets). smeltd's own share is 0.3-0.4 CPU-s per run, nginx's and dnsmasq's ~0.02:
sending the 47 MB of kernels and initrds (through its event loop until 95ecc03, by sendfile(2) from a thread since:
about the same CPU), rendering the scripts and answer files and recording the phone-homes; idle, it uses none to speak
of. That is worth ~0.2 s of the VMs' time. What the
guests receive is the same where it matters (the same script but for the machine's own MAC, token and hostname; the same
kernel command line, headers, Content-Length and TCP window; smeltd's offers add the DNS server and PXE options 43, 60
and 97, which neither iPXE nor the guest waits on), the DHCP exchanges take ~1 s on both sides because iPXE sends its
REQUEST ~1 s after its DISCOVER whoever answers, and the downloads take 1-2 s of a 30 s boot. The rest is the guests'
own CPU work, and its spread from run to run (±2 s on a quiet machine; much more when others' CPU is seconds) is larger
than anything the servers do: read a difference of a second or two in "all booted after" together with the others' CPU
of the runs. The BIOS path does not use TFTP (the ROM is iPXE already); \`TFTP RRQs\` shows it.
`;

const s = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} s` : '–');
const n = (value: number) => value.toLocaleString('en');

/** Milliseconds, median / max: "12 ms / 40 ms", "1.2 s / 3.4 s" from a second up. */
function msPair(values: number[]): string {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return '–';
  const f = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`);
  return `${f(median(finite))} / ${f(Math.max(...finite))}`;
}

function pair(values: number[]): string {
  if (values.length === 0) return '–';
  return `${s(median(values))} / ${s(Math.max(...values))}`;
}

/** A per-VM figure, for the VMs that have it. */
function vmTimes(m: Measurement, of: (vm: Measurement['vms'][number]) => number | undefined): number[] {
  return m.vms.map(of).filter((value): value is number => value !== undefined && Number.isFinite(value));
}

export interface Verdicts {
  lines: string[][];
  allPass: boolean;
}

/** Other work took more than this share of the machine during a run: the run is marked contended. */
export const CONTENDED_SHARE = 0.1;

/** Whether other work shared the machine: busy at the start, another benchmark or guest seen, or its CPU share. */
export function contended(m: Measurement): boolean {
  return m.busyAtStart >= 0.2 || m.othersDuring.length > 0 || m.foreignCpuShare > CONTENDED_SHARE;
}

export function verdicts(measurements: readonly Measurement[], vms: number): Verdicts {
  const all = (id: ServerId) => measurements.filter((m) => m.server === id);
  const quiet = (id: ServerId) => all(id).filter((m) => !contended(m));
  // Time and retries are judged on the quiet runs when both servers have one (the failures on all runs).
  const onlyQuiet = quiet('smeltd').length > 0 && quiet('reference').length > 0;
  const of = (id: ServerId) => (onlyQuiet ? quiet(id) : all(id));
  const smeltd = of('smeltd');
  const reference = of('reference');
  const which =
    onlyQuiet && quiet('smeltd').length + quiet('reference').length < measurements.length ? ', quiet runs' : '';
  const failed = (ms: Measurement[]) => ms.reduce((sum, m) => sum + (m.error ? vms : m.failed), 0);
  const time = (ms: Measurement[]) => median(ms.map((m) => m.allBootedS));
  const retries = (ms: Measurement[]) => median(ms.map((m) => m.retries));
  const unanswered = (ms: Measurement[]) => median(ms.map((m) => m.retriesUnanswered));
  let allPass = true;
  const verdict = (ok: boolean | undefined, note = '') => {
    if (ok === undefined) return 'n/a';
    if (!ok) allPass = false;
    return `${ok ? 'PASS' : 'FAIL'}${note}`;
  };
  const both = smeltd.length > 0 && reference.length > 0;
  const lines: string[][] = [];
  const runs = Math.max(all('smeltd').length, all('reference').length);
  const sf = failed(all('smeltd'));
  lines.push([
    `${vms} VMs, zero failures${runs > 1 ? ` (failed VMs over ${runs} runs)` : ''}`,
    all('smeltd').length ? `${n(sf)} failed` : '–',
    all('reference').length ? `${n(failed(all('reference')))} failed` : '–',
    verdict(all('smeltd').length ? sf === 0 : undefined),
  ]);
  const st = time(smeltd);
  const rt = time(reference);
  lines.push([
    `all booted no later than dnsmasq + nginx${runs > 1 ? ` (median run${which})` : ''}`,
    s(st),
    reference.length === 0 ? '–' : Number.isFinite(rt) ? s(rt) : 'not all booted',
    verdict(both ? Number.isFinite(st) && (!Number.isFinite(rt) || st <= rt) : undefined),
  ]);
  for (const [what, of] of [
    ['all retries', retries],
    ['retries before any answer', unanswered],
  ] as const) {
    const sr = of(smeltd);
    const rr = of(reference);
    const none = sr === 0 && rr === 0;
    lines.push([
      `fewer retries than dnsmasq + nginx: ${what}${runs > 1 ? ` (median run${which})` : ''}`,
      Number.isFinite(sr) ? n(sr) : '–',
      Number.isFinite(rr) ? n(rr) : '–',
      verdict(both ? sr < rr || none : undefined, none ? ' (none on either side: cannot be fewer)' : ''),
    ]);
  }
  return { lines, allPass };
}

export function renderReport(measurements: readonly Measurement[], info: RunInfo): string {
  const out: string[] = [];
  const when = info.started
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  out.push(`#### Five real VMs: run of ${when}`, '');
  out.push(
    `\`${info.command}\` — ${info.vms} VMs at once per server, ${info.runs} run(s) per server (order alternating), ` +
      `bound ${info.maxRunS} s per run; done in ${(info.elapsedS / 60).toFixed(1)} min.`,
    '',
  );
  const v = verdicts(measurements, info.vms);
  out.push('**Targets**', '');
  out.push(
    markdownTable(['target', 'smeltd', 'dnsmasq + nginx', 'verdict'], v.lines, ['left', 'right', 'right', 'left']),
    '',
  );
  out.push(
    '**Runs** — per VM: median / max over the VMs, from its own power-on; in parentheses, the retries sent before ' +
      'the server had answered at all (NAKs and extra or failed HTTP requests count in both); † other work took ' +
      `more than ${CONTENDED_SHARE * 100} % of the machine during the run (Details), which slows software-emulated ` +
      'VMs whichever server they boot from: such runs are left out of the time and retry targets when both servers ' +
      'have a quiet run',
    '',
  );
  const rows = measurements.map((m) => {
    const at = (key: 'kernel' | 'booted') =>
      m.vms.map((vm) => vm.at[key]).filter((value): value is number => value !== undefined);
    return [
      `${serverTitles[m.server]} (run ${m.run + 1})${contended(m) ? ' †' : ''}`,
      m.error ? 'error' : `${m.booted}/${m.vms.length}`,
      s(m.allBootedS),
      pair(at('kernel')),
      pair(at('booted')),
      `${m.dhcp.sent.iPXE} + ${m.dhcp.sent.udhcp}`,
      `${m.dhcp.resent.iPXE} + ${m.dhcp.resent.udhcp} (${m.dhcp.resentUnanswered})`,
      String(m.dhcp.naks),
      String(m.tftpRequests),
      `${m.httpRequests} (${m.httpNon2xx} non-2xx)`,
      `${m.syns.resent} (${m.syns.unanswered})`,
      `${m.retries} (${m.retriesUnanswered})`,
      `${m.serverCpuS.toFixed(1)} s`,
      `${m.vmCpuS.toFixed(0)} s`,
      `${m.foreignCpuS.toFixed(1)} s`,
    ];
  });
  out.push(
    markdownTable(
      [
        'server',
        'booted',
        'all booted after',
        'init started p50 / max',
        'booted p50 / max',
        'DHCP sent (iPXE + guest)',
        'DHCP resent (iPXE + guest)',
        'NAKs',
        'TFTP RRQs',
        'HTTP requests',
        'SYNs resent',
        'retries',
        'server CPU',
        "VMs' CPU",
        "others' CPU",
      ],
      rows,
      [
        'left',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
      ],
    ),
    '',
  );
  out.push(
    "**Where the time goes** — median / max over the VMs (DHCP: from the capture; power-on to iPXE's first DISCOVER " +
      "is the firmware's own start) and over the requests (HTTP: the server's own time per request, smeltd's " +
      "`ms`, nginx's `$request_time`); last, the guest's own phases from its console: power-on to the kernel's " +
      'first line (the firmware, iPXE, the downloads and the decompression of the kernel) and from there to its ' +
      'init (the kernel booting)',
    '',
  );
  const timeRows = measurements.map((m) => {
    const dhcp = (key: 'firstDiscover' | 'ipxe' | 'guest') =>
      m.vms.map((vm) => vm.dhcp[key]).filter((value): value is number => value !== undefined);
    const http = (kind: HttpKind) => msPair(m.httpMs[kind]);
    return [
      `${serverTitles[m.server]} (run ${m.run + 1})`,
      pair(dhcp('firstDiscover')),
      msPair(dhcp('ipxe').map((x) => x * 1000)),
      http('script'),
      http('kernel'),
      http('initrd'),
      msPair(dhcp('guest').map((x) => x * 1000)),
      http('answers'),
      http('hook'),
      pair(vmTimes(m, (vm) => vm.at.linux)),
      pair(vmTimes(m, (vm) => (vm.at.linux === undefined ? undefined : (vm.at.kernel ?? NaN) - vm.at.linux))),
    ];
  });
  out.push(
    markdownTable(
      [
        'server',
        'power-on → DISCOVER',
        'iPXE DHCP',
        'HTTP script',
        'HTTP kernel',
        'HTTP initrd',
        'guest DHCP',
        'HTTP answer file',
        'HTTP phone-home',
        'power-on → kernel',
        'kernel → init',
      ],
      timeRows,
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
  );
  const details: string[] = [];
  for (const m of measurements) {
    const parts: string[] = [];
    if (m.error) parts.push(`error: ${m.error}`);
    for (const vm of m.vms.filter((x) => x.failed !== undefined))
      parts.push(
        `${vm.mac} failed: ${vm.failed ?? ''}; its console ended \`${(vm.tail ?? '').replaceAll('\n', ' ⏎ ')}\``,
      );
    if (m.complaints.length > 0) parts.push(`logged: ${m.complaints.map((c) => `\`${c.slice(0, 160)}\``).join(', ')}`);
    if (m.busyAtStart >= 0.2) parts.push(`the machine was ${Math.round(m.busyAtStart * 100)} % busy at the start`);
    if (m.othersDuring.length > 0) parts.push(`other work seen during the run: ${m.othersDuring.join('; ')}`);
    if (Number.isFinite(m.foreignCpuShare))
      parts.push(
        `other work's CPU during the run: ${m.foreignCpuS.toFixed(1)} s, ${Math.round(m.foreignCpuShare * 100)} % of the machine`,
      );
    if (m.deployMs !== undefined) parts.push(`registering the boot and deploying took ${Math.round(m.deployMs)} ms`);
    parts.push(
      `DHCP: ${m.dhcp.offers} offers, ${m.dhcp.acks} ACKs; QEMUs started within ${m.powerOnSpreadS.toFixed(2)} s`,
    );
    details.push(`- ${serverTitles[m.server]} run ${m.run + 1}: ${parts.join('; ')}.`);
  }
  out.push('**Details**', '', ...details, '');
  out.push('**Set-up**', '');
  out.push(
    `- Machine: ${info.machine}; load ${info.load.before.toFixed(2)} → ${info.load.after.toFixed(2)}; nothing pinned (the VMs and the server share both CPUs)`,
    `- Versions: ${info.versions.join('; ')}`,
    `- Guest: ${info.guest}`,
    `- Network: ${info.lab}`,
    `- Each VM: \`${info.vmCommand}\``,
    ...info.serverCommands.map((line) => `- ${line}`),
    `- The reference's files: ${info.referenceFiles}`,
    ...info.notes.map((line) => `- ${line}`),
  );
  return out.join('\n');
}

/**
 * BENCHMARKS.md with `report` added at the end of the "Five real VMs" subsection of "## Boot storm" (made, with its
 * method, the first time).
 */
export function insertIntoSubsection(text: string, report: string): string {
  const withSubsection = text.split('\n').some((line) => line.trim() === SUBSECTION)
    ? text
    : insertIntoSection(text, '## Boot storm', subsectionIntro);
  return insertIntoSection(withSubsection, SUBSECTION, report);
}
