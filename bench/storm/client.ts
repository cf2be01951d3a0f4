/**
 * The boot-storm simulator: N machines, each with its own MAC and UUID, powered on within a short ramp and doing
 * what a BIOS PXE ROM and then iPXE do (bench/storm/firmware.ts has the timeouts):
 *
 *   1. DHCP as the PXE ROM (DISCOVER/OFFER/REQUEST/ACK) → an address and a boot file (undionly.kpxe) on siaddr
 *   2. TFTP of that file, from the leased address, every byte checked against the file the server was given
 *   3. DHCP again as iPXE (user class iPXE, option 175) → the URL of the machine's iPXE script as boot file
 *   4. HTTP GET of the script; its `kernel` and `initrd` URLs are taken from it
 *   5. HTTP GET of the kernel, then of the initrd, over one keep-alive connection, every byte checked (iPXE would
 *      reuse the script's connection; here the download process opens its own)
 *
 * Processes. The machines are spread over a few worker processes (every K-th machine in each; --workers, about
 * 125 machines per worker), all on the simulator's CPU, and each worker hands its machines' kernel and initrd
 * downloads to a download process of its own at a lower priority (nice 10). One event loop for 1,000 machines falls
 * seconds behind while their downloads run (libuv handles up to 48 × 1024 ready sockets before it looks at its
 * timers again), and 25 GB of downloads saturate the simulator's CPU: a machine whose DHCP or TFTP packets wait that
 * long in the simulator is not what a server does to it. Real machines do not share a CPU; this way the firmware
 * stages see little lag (reported: loopDelay*) while the downloads take what CPU is left. The coordinator (this
 * file without --worker) starts the workers, gives them a common start time, passes their progress on and merges
 * what they report.
 *
 * Sockets. Each worker binds 0.0.0.0:68 (SO_REUSEADDR): requests carry the broadcast flag, so every reply is a
 * broadcast and reaches every worker, which keeps those for its own machines (by xid and chaddr). TFTP and HTTP go
 * from the address the machine was leased: the client namespace holds every pool address (bench/storm/topology.ts),
 * so each machine is a distinct peer to the server, as on a real segment. Run inside the client namespace by
 * bench/storm/main.ts:
 *
 *     ip netns exec NS node bench/storm/client.ts --config FILE
 *
 * Prints one JSON line (StormResult) on stdout; progress on stderr. A machine that has not booted when the run's
 * deadline passes counts as failed in the stage it was in.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, get, type ClientRequest as HttpRequest } from 'node:http';
import type { Socket as TcpSocket } from 'node:net';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuSeconds } from '../lib/proc.ts';
import { stageNames, type Firmware, type StageName } from './firmware.ts';
import { tftpGet } from './tftp.ts';
import {
  decodeServerReply,
  encodeClientRequest,
  MalformedReply,
  MessageType,
  numberToIpv4,
  type ClientKind,
  type ServerReply,
} from './wire.ts';

export interface StormConfig {
  label: string;
  clients: number;
  /** A byte of every MAC (02:53:GROUP:xx:xx:xx), so that the warm-up and the storm never share a machine. */
  group: number;
  /** All machines power on within this many ms, evenly spread. */
  rampMs: number;
  /** Machines not booted this many seconds after the first power-on count as failed. */
  deadlineS: number;
  /** Worker processes; 0: one per 125 machines. */
  workers: number;
  /** The bytes each server was given: the first stage, the kernel, the initrd. */
  files: { firstStage: string; kernel: string; initrd: string };
  /** Where to write the first iPXE script received (for the report and the reference's static copy). */
  scriptOut?: string;
  progressS: number;
  firmware: Firmware;
}

export const MACHINES_PER_WORKER = 125;

const self = new URL(import.meta.url).pathname;

export function workersFor(config: StormConfig): number {
  const wanted = config.workers > 0 ? config.workers : Math.ceil(config.clients / MACHINES_PER_WORKER);
  return Math.max(1, Math.min(config.clients, wanted));
}

export interface StageSummary {
  /** Machines that finished / failed this stage. */
  completed: number;
  failed: number;
  /** Retransmissions (DHCP, TFTP), restarts after a NAK, or repeated requests (HTTP), over all machines. */
  retries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface FailureCount {
  stage: StageName;
  reason: string;
  count: number;
  /** The particulars of the first such failure. */
  example: string;
}

/** What the machines of one worker counted. */
interface Counters {
  retries: Record<StageName, number>;
  /** iPXE waits for ProxyDHCP (the offer said neither PXEClient nor 175.176). */
  proxyWaits: number;
  naks: number;
  /** DHCP offers without a boot file (ignored, as a PXE ROM ignores them). */
  offersWithoutBootFile: number;
  dhcpMalformed: number;
  dhcpUnmatched: number;
  dhcpDuplicates: number;
  /** TFTP DATA blocks received twice (the server retransmitted). */
  tftpDuplicates: number;
  /** blksize the TFTP transfers ran with, and how many. */
  tftpBlksizes: Record<string, number>;
  /** Machines whose second lease differs from the first. */
  addressChanged: number;
  /** TCP connections opened (1 per machine when nothing failed). */
  httpConnections: number;
  bytes: { tftp: number; http: number };
  scriptBytes: number;
  /** Scripts that said wait and ask again (smeltd's hold or busy script), and what they said (numbers blurred). */
  scriptPolls: number;
  scriptWaits: Record<string, number>;
  /** Why attempts were repeated: "stage: reason" → count. */
  retryReasons: Record<string, number>;
}

export interface StormResult extends Omit<Counters, 'retries'> {
  label: string;
  clients: number;
  workers: number;
  booted: number;
  failed: number;
  /** First power-on → last machine booted, when every machine booted (NaN otherwise). */
  allBootedS: number;
  /** First power-on → last machine booted, over those that did. */
  lastBootS: number;
  /** One machine's power-on → booted. */
  bootP50Ms: number;
  bootP99Ms: number;
  bootMaxMs: number;
  stages: Record<StageName, StageSummary>;
  failures: FailureCount[];
  /** Machines still under way at the deadline (counted in failed). */
  unfinished: number;
  retries: number;
  /** The workers' CPU time over the storm's wall time (1 = the simulator's CPU saturated: it may be the bottleneck). */
  cpuShare: number;
  /** Summed over the workers. */
  rssPeakBytes: number;
  recvBufferBytes: number;
  /**
   * How late the workers' event loops ran callbacks (the worst worker's p99 and max, ms): when it is a large part of
   * a timeout, the simulator itself delays packets, and the figures say more about it than about the server.
   */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** One machine as a worker reports it: epoch ms (0: not reached), and why it failed. */
interface MachineRecord {
  i: number;
  on: number;
  starts: number[];
  ends: number[];
  booted: number;
  failed?: { stage: number; reason: string; detail: string };
}

interface WorkerResult {
  machines: MachineRecord[];
  counters: Counters;
  cpuMs: number;
  rssPeakBytes: number;
  recvBufferBytes: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

class StageFailure extends Error {
  readonly reason: string;
  readonly detail: string;
  constructor(reason: string, detail = '') {
    super(reason);
    this.reason = reason;
    this.detail = detail;
  }
}

interface Lease {
  address: string;
  bootFile: string;
  nextServer: string;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

function errorText(error: unknown): { reason: string; detail: string } {
  if (error instanceof StageFailure) return { reason: error.reason, detail: error.detail };
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return { reason: typeof code === 'string' ? code : message, detail: message };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Wall-clock ms with sub-ms resolution: comparable across the worker processes. */
const now = () => performance.timeOrigin + performance.now();

export function macOf(group: number, index: number): Uint8Array {
  return Uint8Array.of(0x02, 0x53, group & 255, (index >>> 16) & 255, (index >>> 8) & 255, index & 255);
}

/** Runs the machines i with i % count === slice, the first powering on at startAt (epoch ms). */
function runWorker(
  config: StormConfig,
  configPath: string,
  slice: number,
  count: number,
  startAt: number,
): Promise<WorkerResult> {
  const f = config.firmware;
  const n = config.clients;
  const expected = { firstStage: readFileSync(config.files.firstStage) };
  const mine: number[] = [];
  for (let i = slice; i < n; i += count) mine.push(i);
  const macs = new Map<number, Uint8Array>(mine.map((i) => [i, macOf(config.group, i)]));
  const macHex = Object.fromEntries(mine.map((i) => [i, Buffer.from(macOf(config.group, i)).toString('hex')]));
  const groupPrefix = Buffer.from(macOf(config.group, 0).subarray(0, 3)).toString('hex');
  const ourGroup = (hex: string) => hex.startsWith(groupPrefix) && Number.parseInt(hex.slice(6), 16) < n;
  const uuidOf = (mac: Uint8Array) => Uint8Array.of(0x53, 0x4d, 0x45, 0x4c, 0x54, 0x00, 0x40, 0x00, 0x80, 0, ...mac);
  const uuids = new Map<number, Uint8Array>(mine.map((i) => [i, uuidOf(macOf(config.group, i))]));
  const poweredOn = new Map<number, number>();
  const records = new Map<number, MachineRecord>(
    mine.map((i) => [i, { i, on: 0, starts: stageNames.map(() => 0), ends: stageNames.map(() => 0), booted: 0 }]),
  );
  /** Index in stageNames of the stage a machine is in; -1 before power-on; stageNames.length once done. */
  const current = new Map<number, number>(mine.map((i) => [i, -1]));
  const agents = new Map<number, Agent>();
  const c: Counters = {
    retries: Object.fromEntries(stageNames.map((s) => [s, 0])) as Record<StageName, number>,
    proxyWaits: 0,
    naks: 0,
    offersWithoutBootFile: 0,
    dhcpMalformed: 0,
    dhcpUnmatched: 0,
    dhcpDuplicates: 0,
    tftpDuplicates: 0,
    tftpBlksizes: {},
    addressChanged: 0,
    httpConnections: 0,
    bytes: { tftp: 0, http: 0 },
    scriptBytes: 0,
    scriptPolls: 0,
    scriptWaits: {},
    retryReasons: {},
  };
  const w: WorkerResult = {
    machines: [],
    counters: c,
    cpuMs: 0,
    rssPeakBytes: 0,
    recvBufferBytes: 0,
    loopDelayP99Ms: Number.NaN,
    loopDelayMaxMs: Number.NaN,
  };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let scriptWritten = config.scriptOut === undefined || slice !== 0;
  /** Set once the result is taken: nothing counts after that. */
  let finished = false;

  // ---- DHCP: one socket for every machine of this worker ----------------------------------------------------------------------
  interface Exchange {
    i: number;
    kind: ClientKind;
    stage: StageName;
    xid: number;
    state: 'discover' | 'wait' | 'request';
    attempt: number;
    startedAt: number;
    timer?: NodeJS.Timeout;
    offer?: ServerReply;
    resolve: (lease: Lease) => void;
    reject: (error: StageFailure) => void;
  }
  const pending = new Map<number, Exchange>();
  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });

  const newXid = () => {
    for (;;) {
      const xid = (Math.random() * 2 ** 32) >>> 0;
      if (!pending.has(xid)) return xid;
    }
  };
  const schedule = (kind: ClientKind) => (kind === 'pxe' ? f.pxeDhcpMs : f.ipxeDhcpMs);
  const sendDhcp = (ex: Exchange) => {
    const request = ex.state === 'request';
    const bytes = encodeClientRequest({
      type: request ? MessageType.REQUEST : MessageType.DISCOVER,
      kind: ex.kind,
      xid: ex.xid,
      mac: macs.get(ex.i) ?? new Uint8Array(6),
      uuid: uuids.get(ex.i) ?? new Uint8Array(16),
      secs: Math.floor((now() - (poweredOn.get(ex.i) ?? now())) / 1000),
      ...(request && ex.offer && { requestedAddress: ex.offer.yiaddr }),
      ...(request && ex.offer?.serverId !== undefined && { serverId: ex.offer.serverId }),
    });
    socket.send(bytes, 67, '255.255.255.255', (error) => {
      if (error) fail(ex, 'DHCP send failed', error.message);
    });
  };
  const arm = (ex: Exchange) => {
    clearTimeout(ex.timer);
    ex.timer = setTimeout(
      () => {
        expire(ex);
      },
      schedule(ex.kind)[ex.attempt] ?? 1000,
    );
  };
  const fail = (ex: Exchange, reason: string, detail = '') => {
    clearTimeout(ex.timer);
    pending.delete(ex.xid);
    ex.reject(new StageFailure(reason, detail));
  };
  const expire = (ex: Exchange) => {
    const count = schedule(ex.kind).length;
    if (ex.attempt + 1 >= count) {
      fail(ex, ex.state === 'request' ? `no ACK (${count} REQUESTs)` : `no usable OFFER (${count} DISCOVERs)`);
      return;
    }
    ex.attempt++;
    c.retries[ex.stage]++;
    sendDhcp(ex);
    arm(ex);
  };
  const request = (ex: Exchange) => {
    ex.state = 'request';
    ex.attempt = 0;
    sendDhcp(ex);
    arm(ex);
  };
  const discover = (ex: Exchange) => {
    pending.delete(ex.xid);
    ex.xid = newXid();
    pending.set(ex.xid, ex);
    ex.state = 'discover';
    ex.attempt = 0;
    delete ex.offer;
    sendDhcp(ex);
    arm(ex);
  };
  socket.on('message', (bytes: Buffer) => {
    let reply: ServerReply;
    try {
      reply = decodeServerReply(bytes);
    } catch (error) {
      if (!(error instanceof MalformedReply)) throw error;
      c.dhcpMalformed++;
      return;
    }
    const ex = pending.get(reply.xid);
    if (!ex || macHex[ex.i] !== reply.macHex) {
      // Every worker sees every broadcast reply: one for another worker's machine (or a late one for an exchange
      // that moved on) is none of ours. Worker 0 counts replies for no machine of the storm at all.
      if (slice === 0 && !ourGroup(reply.macHex)) c.dhcpUnmatched++;
      return;
    }
    if (reply.type === MessageType.OFFER && ex.state === 'discover') {
      if (reply.bootFile === '') {
        c.offersWithoutBootFile++; // not a PXE offer: a PXE ROM keeps waiting for one
        return;
      }
      ex.offer = reply;
      const elapsed = now() - ex.startedAt;
      const pxeServer = reply.vendorClass?.startsWith('PXEClient') === true;
      if (ex.kind === 'ipxe' && !pxeServer && !reply.noProxyDhcp && elapsed < f.ipxeProxyWaitMs) {
        c.proxyWaits++;
        ex.state = 'wait';
        clearTimeout(ex.timer);
        ex.timer = setTimeout(() => {
          request(ex);
        }, f.ipxeProxyWaitMs - elapsed);
        return;
      }
      request(ex);
    } else if (reply.type === MessageType.ACK && ex.state === 'request') {
      clearTimeout(ex.timer);
      pending.delete(ex.xid);
      const offer = ex.offer;
      // The next server: siaddr of the ACK, else of the OFFER, else the server identifier (what a PXE ROM does).
      const siaddr = [reply.siaddr, offer?.siaddr ?? 0, reply.serverId ?? 0].find((value) => value !== 0) ?? 0;
      ex.resolve({
        address: numberToIpv4(reply.yiaddr),
        bootFile: reply.bootFile !== '' ? reply.bootFile : (offer?.bootFile ?? ''),
        nextServer: numberToIpv4(siaddr),
      });
    } else if (reply.type === MessageType.NAK && ex.state === 'request') {
      // RFC 2131 §4.4.1: start over at DISCOVER (a fresh retransmission schedule); firmware has no limit on NAKs,
      // the storm's deadline bounds it. The restart is counted as a retry of the stage.
      c.naks++;
      c.retries[ex.stage]++;
      discover(ex);
    } else {
      c.dhcpDuplicates++;
    }
  });

  const dhcp = (i: number, kind: ClientKind, stage: StageName) =>
    new Promise<Lease>((resolve, reject) => {
      const ex: Exchange = {
        i,
        kind,
        stage,
        xid: 0,
        state: 'discover',
        attempt: 0,
        startedAt: now(),
        resolve,
        reject,
      };
      discover(ex);
    });

  // ---- HTTP ------------------------------------------------------------------------------------------------------
  const http = httpFetcher(f, c, agents);
  const fetch = http.fetch;
  const downloader = startDownloader(configPath);

  // ---- one machine -----------------------------------------------------------------------------------------------
  const enter = (i: number, stage: StageName) => {
    const s = stageNames.indexOf(stage);
    current.set(i, s);
    const record = records.get(i);
    if (record) record.starts[s] = now();
  };
  const leave = (i: number, stage: StageName) => {
    const record = records.get(i);
    if (record) record.ends[stageNames.indexOf(stage)] = now();
  };

  const boot = async (i: number) => {
    const on = now();
    poweredOn.set(i, on);
    const record = records.get(i);
    if (record) record.on = on;
    enter(i, 'dhcpPxe');
    const first = await dhcp(i, 'pxe', 'dhcpPxe');
    leave(i, 'dhcpPxe');

    enter(i, 'tftp');
    const tftp = await tftpGet({
      local: first.address,
      server: first.nextServer,
      port: 69,
      file: first.bootFile,
      blksize: f.tftpBlksize,
      expected: expected.firstStage,
      schedule: f.tftpMs,
    });
    c.retries.tftp += tftp.retries;
    c.tftpDuplicates += tftp.duplicates;
    if (!tftp.ok) throw new StageFailure(tftp.reason ?? 'failed', `${first.bootFile}: ${tftp.detail ?? ''}`);
    c.bytes.tftp += tftp.bytes;
    c.tftpBlksizes[String(tftp.blksize)] = (c.tftpBlksizes[String(tftp.blksize)] ?? 0) + 1;
    leave(i, 'tftp');

    enter(i, 'dhcpIpxe');
    const second = await dhcp(i, 'ipxe', 'dhcpIpxe');
    if (second.address !== first.address) c.addressChanged++;
    if (!/^https?:\/\//.test(second.bootFile))
      throw new StageFailure('the iPXE ACK has no HTTP boot file', second.bootFile);
    leave(i, 'dhcpIpxe');

    enter(i, 'script');
    // A script that says wait (smeltd's hold or busy script: sleep, then chain to itself) is followed as iPXE
    // follows it, until one names a kernel or the deadline passes.
    let scriptUrl = second.bootFile;
    let parsed: ParsedScript;
    for (;;) {
      const script = (await fetch(i, 'script', scriptUrl, second.address)).toString('utf8');
      parsed = parseScript(script, scriptUrl);
      if (parsed.kernel !== undefined) {
        if (!scriptWritten && config.scriptOut !== undefined) {
          scriptWritten = true;
          writeFileSync(config.scriptOut, script);
        }
        c.scriptBytes ||= Buffer.byteLength(script);
        break;
      }
      if (parsed.chain === undefined)
        throw new StageFailure('a script without a kernel', `${scriptUrl}: ${parsed.says}`);
      c.scriptPolls++;
      const told = parsed.says.replace(/\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b/gi, 'MAC').replace(/\d+/g, 'N');
      c.scriptWaits[told] = (c.scriptWaits[told] ?? 0) + 1;
      await delay(parsed.sleepS * 1000);
      if (finished) return;
      scriptUrl = parsed.chain;
    }
    if (parsed.initrds.length !== 1)
      throw new StageFailure('the script does not name exactly one initrd', parsed.initrds.join(' '));
    leave(i, 'script');

    agents.get(i)?.destroy();
    agents.delete(i);

    enter(i, 'files');
    const job = await downloader.fetchFiles({
      i,
      local: second.address,
      files: [
        [parsed.kernel, 'kernel'],
        [parsed.initrds[0] ?? '', 'initrd'],
      ],
    });
    c.retries.files += job.retries;
    for (const [why, count] of Object.entries(job.retryReasons))
      c.retryReasons[why] = (c.retryReasons[why] ?? 0) + count;
    c.bytes.http += job.bytes;
    c.httpConnections += job.connections;
    if (!job.ok) throw new StageFailure(job.reason ?? 'failed', job.detail ?? '');
    leave(i, 'files');
    if (finished) return;
    current.set(i, stageNames.length);
    if (record) record.booted = now();
  };

  return new Promise((resolve) => {
    let cpu0 = process.cpuUsage();
    let downloaderCpu0 = 0;
    let progress: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let rss: NodeJS.Timeout | undefined;
    let settledCount = 0;

    const record = (i: number, error: unknown) => {
      const stage = Math.max(0, current.get(i) ?? 0);
      current.set(i, stageNames.length);
      const { reason, detail } = errorText(error);
      const entry = records.get(i);
      if (entry) entry.failed = { stage, reason, detail };
    };

    const finish = (atDeadline: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(progress);
      clearInterval(rss);
      clearTimeout(deadline);
      if (atDeadline) {
        for (const i of mine) {
          if ((current.get(i) ?? -1) >= stageNames.length) continue;
          record(i, new StageFailure(`unfinished at the ${config.deadlineS} s deadline`));
        }
      }
      for (const ex of pending.values()) clearTimeout(ex.timer);
      socket.close();
      for (const agent of agents.values()) agent.destroy();
      const cpu = process.cpuUsage(cpu0);
      w.cpuMs = (cpu.user + cpu.system) / 1000 + downloader.cpuMs() - downloaderCpu0;
      downloader.stop();
      w.rssPeakBytes = Math.max(w.rssPeakBytes, process.memoryUsage.rss());
      loopDelay.disable();
      w.loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
      w.loopDelayMaxMs = loopDelay.max / 1e6;
      w.machines = [...records.values()];
      resolve(w);
    };

    socket.once('error', (error) => {
      process.stderr.write(`storm worker ${slice}: DHCP socket: ${error.message}\n`);
      finish(false);
    });
    socket.bind({ port: 68, address: '0.0.0.0' }, () => {
      socket.setBroadcast(true);
      try {
        socket.setRecvBufferSize(8 * 1024 * 1024); // capped by net.core.rmem_max
      } catch {
        // keep the default
      }
      w.recvBufferBytes = socket.getRecvBufferSize();
      const begin = () => {
        cpu0 = process.cpuUsage();
        downloaderCpu0 = downloader.cpuMs();
        loopDelay.enable();
        deadline = setTimeout(
          () => {
            finish(true);
          },
          Math.max(0, startAt + config.deadlineS * 1000 - now()),
        );
        rss = setInterval(() => {
          w.rssPeakBytes = Math.max(w.rssPeakBytes, process.memoryUsage.rss());
        }, 500);
        if (config.progressS > 0) {
          progress = setInterval(() => {
            const inStage = stageNames.map(() => 0);
            let booted = 0;
            let failed = 0;
            for (const i of mine) {
              const s = current.get(i) ?? -1;
              if (s >= 0 && s < stageNames.length) inStage[s] = (inStage[s] ?? 0) + 1;
              const entry = records.get(i);
              if (entry?.failed) failed++;
              else if (entry && entry.booted > 0) booted++;
            }
            process.stderr.write(`@progress ${JSON.stringify({ slice, booted, failed, inStage })}\n`);
          }, config.progressS * 1000);
        }
        for (const i of mine) {
          const at = startAt + (n > 1 ? (i * config.rampMs) / (n - 1) : 0);
          setTimeout(
            () => {
              boot(i).then(
                () => {
                  if (++settledCount === mine.length) finish(false);
                },
                (error: unknown) => {
                  if (finished) return;
                  record(i, error);
                  agents.get(i)?.destroy();
                  if (++settledCount === mine.length) finish(false);
                },
              );
            },
            Math.max(0, at - now()),
          );
        }
        if (mine.length === 0) finish(false);
      };
      setTimeout(begin, Math.max(0, startAt - now() - 20));
    });
  });
}

/** What an HTTP fetcher counts. */
interface HttpCounters {
  retries: Record<StageName, number>;
  /** Why HTTP attempts were repeated: "stage: reason" → count. */
  retryReasons: Record<string, number>;
  httpConnections: number;
  bytes: { http: number };
}

/**
 * iPXE-like HTTP GETs: one keep-alive connection per machine (its agent), from the machine's address; an attempt
 * fails on a status other than 200, a wrong length or byte, a reset or `httpIdleMs` without a byte, and is tried
 * again after `httpPauseMs`, `httpAttempts` times in all.
 */
function httpFetcher(f: Firmware, c: HttpCounters, agents: Map<number, Agent>) {
  const seenSockets = new WeakSet<TcpSocket>();
  /** One attempt: the body (when expected is undefined) or the byte count; rejects with a StageFailure. */
  const fetchOnce = (i: number, url: string, local: string, want: Buffer | undefined) =>
    new Promise<Buffer>((resolve, reject) => {
      let agent = agents.get(i);
      if (!agent) {
        agent = new Agent({ keepAlive: true, maxSockets: 1 });
        agents.set(i, agent);
      }
      let settled = false;
      const settle = (error?: StageFailure, body?: Buffer) => {
        if (settled) return;
        settled = true;
        if (error) {
          req.destroy();
          reject(error);
        } else resolve(body ?? Buffer.alloc(0));
      };
      const req: HttpRequest = get(
        url,
        { agent, localAddress: local, headers: { 'User-Agent': 'iPXE/1.0.0+', Connection: 'keep-alive' } },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            settle(new StageFailure(`HTTP ${res.statusCode ?? '?'}`, url));
            return;
          }
          const length = Number(res.headers['content-length'] ?? Number.NaN);
          if (want && Number.isFinite(length) && length !== want.length) {
            settle(new StageFailure('wrong Content-Length', `${length}, the file has ${want.length} bytes`));
            return;
          }
          const parts: Buffer[] = [];
          let got = 0;
          res.on('data', (chunk: Buffer) => {
            if (settled) return;
            if (want) {
              if (got + chunk.length > want.length || !chunk.equals(want.subarray(got, got + chunk.length))) {
                settle(new StageFailure('content differs from the file', `${url} at byte ${got}`));
                return;
              }
            } else if (got + chunk.length <= 1 << 20) parts.push(chunk);
            got += chunk.length;
            c.bytes.http += chunk.length;
          });
          res.on('end', () => {
            if (want && got !== want.length) settle(new StageFailure('short body', `${got} of ${want.length} bytes`));
            else settle(undefined, want ? Buffer.alloc(0) : Buffer.concat(parts));
          });
          res.on('aborted', () => {
            settle(new StageFailure('response aborted', `${url} after ${got} bytes`));
          });
          res.on('error', (error) => {
            const e = errorText(error);
            settle(new StageFailure(e.reason, e.detail));
          });
        },
      );
      req.on('socket', (s: TcpSocket) => {
        if (!seenSockets.has(s)) {
          seenSockets.add(s);
          c.httpConnections++;
        }
      });
      req.setTimeout(f.httpIdleMs, () => {
        settle(new StageFailure(`no byte for ${f.httpIdleMs / 1000} s`, url));
      });
      req.on('error', (error) => {
        const e = errorText(error);
        settle(new StageFailure(e.reason, e.detail));
      });
    });

  const fetch = async (i: number, stage: StageName, url: string, local: string, want?: Buffer) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchOnce(i, url, local, want);
      } catch (error) {
        if (attempt >= f.httpAttempts || !(error instanceof StageFailure)) throw error;
        c.retries[stage]++;
        const why = `${stage}: ${error.reason}`;
        c.retryReasons[why] = (c.retryReasons[why] ?? 0) + 1;
        await delay(f.httpPauseMs);
      }
    }
  };
  return { fetch };
}

/** A machine's kernel and initrd, fetched for it by its worker's download process. */
interface FilesJob {
  i: number;
  local: string;
  files: [string, 'kernel' | 'initrd'][];
}

interface FilesReply {
  i: number;
  ok: boolean;
  reason?: string;
  detail?: string;
  retries: number;
  retryReasons: Record<string, number>;
  bytes: number;
  connections: number;
}

/**
 * Nice value of the download processes: at 10 a worker (nice 0) wanting the CPU gets ~90 % of it against them, so
 * that machines' DHCP, TFTP and script requests are handled at once while the downloads soak up the rest; lower
 * (19) would starve the downloads whenever anything else on the machine wants that CPU.
 */
const DOWNLOADER_NICE = 10;

/**
 * Starts the worker's download process: the same script with --downloader, at a lower priority on the same CPU.
 * The bulk of the bytes (kernels and initrds) is read there, so that the simulator's CPU, saturated by them, still
 * runs the machines' DHCP, TFTP and script requests at once: what the storm measures of those is then the server,
 * not a simulator whose loop is busy copying another machine's initrd.
 */
function startDownloader(configPath: string) {
  const child = spawn(process.execPath, [self, '--config', configPath, '--downloader'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, DOWNLOADER_NICE);
    } catch {
      // stays at the worker's priority
    }
  }
  const waiting = new Map<number, (reply: FilesReply) => void>();
  let gone: string | undefined;
  const fail = (why: string) => {
    gone = why;
    for (const [i, answer] of waiting)
      answer({
        i,
        ok: false,
        reason: 'simulator download process died',
        detail: why,
        retries: 0,
        retryReasons: {},
        bytes: 0,
        connections: 0,
      });
    waiting.clear();
  };
  child.on('message', (message: FilesReply) => {
    waiting.get(message.i)?.(message);
    waiting.delete(message.i);
  });
  child.on('exit', (code, signal) => {
    fail(`exited ${code ?? signal ?? '?'}`);
  });
  child.on('error', (error) => {
    fail(error.message);
  });
  return {
    fetchFiles: (job: FilesJob) =>
      new Promise<FilesReply>((resolve) => {
        if (gone !== undefined) {
          resolve({
            i: job.i,
            ok: false,
            reason: 'simulator download process died',
            detail: gone,
            retries: 0,
            retryReasons: {},
            bytes: 0,
            connections: 0,
          });
          return;
        }
        waiting.set(job.i, resolve);
        child.send(job);
      }),
    /** Its CPU time so far, ms (0 once it is gone). */
    cpuMs: () => (child.pid === undefined ? 0 : cpuSeconds([child.pid]) * 1000),
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

/** --downloader: fetches what its worker asks, one job per machine, and answers each. */
function runDownloader(config: StormConfig): void {
  const expected = { kernel: readFileSync(config.files.kernel), initrd: readFileSync(config.files.initrd) };
  const agents = new Map<number, Agent>();
  process.on('message', (job: FilesJob) => {
    const c: HttpCounters = {
      retries: Object.fromEntries(stageNames.map((s) => [s, 0])) as Record<StageName, number>,
      retryReasons: {},
      httpConnections: 0,
      bytes: { http: 0 },
    };
    const { fetch } = httpFetcher(config.firmware, c, agents);
    void (async () => {
      const reply: FilesReply = { i: job.i, ok: true, retries: 0, retryReasons: {}, bytes: 0, connections: 0 };
      try {
        for (const [url, which] of job.files) await fetch(job.i, 'files', url, job.local, expected[which]);
      } catch (error) {
        const { reason, detail } = errorText(error);
        reply.ok = false;
        reply.reason = reason;
        reply.detail = detail;
      }
      agents.get(job.i)?.destroy(); // the kernel starts: iPXE's connection goes away
      agents.delete(job.i);
      reply.retries = c.retries.files;
      reply.retryReasons = c.retryReasons;
      reply.bytes = c.bytes.http;
      reply.connections = c.httpConnections;
      process.send?.(reply);
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

/** The workers' reports as one result. */
export function merge(config: StormConfig, startAt: number, wallMs: number, results: WorkerResult[]): StormResult {
  const machines = results.flatMap((result) => result.machines);
  const sum = (pick: (c: Counters) => number) => results.reduce((total, result) => total + pick(result.counters), 0);
  const blksizes: Record<string, number> = {};
  for (const result of results)
    for (const [size, count] of Object.entries(result.counters.tftpBlksizes))
      blksizes[size] = (blksizes[size] ?? 0) + count;
  const waits: Record<string, number> = {};
  for (const result of results)
    for (const [said, count] of Object.entries(result.counters.scriptWaits)) waits[said] = (waits[said] ?? 0) + count;
  const reasons: Record<string, number> = {};
  for (const result of results)
    for (const [why, count] of Object.entries(result.counters.retryReasons)) reasons[why] = (reasons[why] ?? 0) + count;
  const booted = machines.filter((m) => m.booted > 0 && !m.failed);
  const boots = Float64Array.from(booted.map((m) => m.booted - m.on)).sort();
  const lastBoot = booted.reduce((latest, m) => Math.max(latest, m.booted), 0);
  const failures = new Map<string, FailureCount>();
  for (const m of machines) {
    if (!m.failed) continue;
    const stage = stageNames[m.failed.stage] ?? 'dhcpPxe';
    const key = `${stage}\0${m.failed.reason}`;
    const entry = failures.get(key);
    if (entry) entry.count++;
    else failures.set(key, { stage, reason: m.failed.reason, count: 1, example: m.failed.detail });
  }
  const stages = {} as Record<StageName, StageSummary>;
  for (const [s, stage] of stageNames.entries()) {
    const times = Float64Array.from(
      machines.filter((m) => (m.ends[s] ?? 0) > 0).map((m) => (m.ends[s] ?? 0) - (m.starts[s] ?? 0)),
    ).sort();
    stages[stage] = {
      completed: times.length,
      failed: machines.filter((m) => m.failed?.stage === s).length,
      retries: sum((c) => c.retries[stage]),
      p50Ms: percentile(times, 0.5),
      p99Ms: percentile(times, 0.99),
      maxMs: times[times.length - 1] ?? Number.NaN,
    };
  }
  const lastBootS = booted.length > 0 ? (lastBoot - startAt) / 1000 : Number.NaN;
  return {
    label: config.label,
    clients: config.clients,
    workers: results.length,
    booted: booted.length,
    failed: config.clients - booted.length,
    allBootedS: booted.length === config.clients ? lastBootS : Number.NaN,
    lastBootS,
    bootP50Ms: percentile(boots, 0.5),
    bootP99Ms: percentile(boots, 0.99),
    bootMaxMs: boots[boots.length - 1] ?? Number.NaN,
    stages,
    failures: [...failures.values()].sort((a, b) => b.count - a.count),
    unfinished: machines.filter((m) => m.failed?.reason.startsWith('unfinished')).length,
    retries: stageNames.reduce((total, stage) => total + stages[stage].retries, 0),
    proxyWaits: sum((c) => c.proxyWaits),
    naks: sum((c) => c.naks),
    offersWithoutBootFile: sum((c) => c.offersWithoutBootFile),
    dhcpMalformed: sum((c) => c.dhcpMalformed),
    dhcpUnmatched: sum((c) => c.dhcpUnmatched),
    dhcpDuplicates: sum((c) => c.dhcpDuplicates),
    tftpDuplicates: sum((c) => c.tftpDuplicates),
    tftpBlksizes: blksizes,
    addressChanged: sum((c) => c.addressChanged),
    httpConnections: sum((c) => c.httpConnections),
    bytes: { tftp: sum((c) => c.bytes.tftp), http: sum((c) => c.bytes.http) },
    scriptBytes: results.reduce((found, result) => found || result.counters.scriptBytes, 0),
    scriptPolls: sum((c) => c.scriptPolls),
    scriptWaits: waits,
    retryReasons: reasons,
    cpuShare: results.reduce((total, result) => total + result.cpuMs, 0) / Math.max(1, wallMs),
    rssPeakBytes: results.reduce((total, result) => total + result.rssPeakBytes, 0),
    recvBufferBytes: results[0]?.recvBufferBytes ?? 0,
    loopDelayP99Ms: Math.max(...results.map((result) => result.loopDelayP99Ms)),
    loopDelayMaxMs: Math.max(...results.map((result) => result.loopDelayMaxMs)),
  };
}

/** The `kernel` and `initrd` URLs of an iPXE script (options like `--name x` skipped), resolved against its URL. */
export interface ParsedScript {
  kernel?: string;
  initrds: string[];
  /** A script without a kernel that asks again: the URL it chains to and how long it sleeps first (hold/busy). */
  chain?: string;
  sleepS: number;
  /** What it tells the console (its first echo). */
  says: string;
}

/**
 * What the simulated iPXE does with a script: the `kernel` and `initrd` URLs (options like `--name x` skipped),
 * resolved against the script's URL; for a script without a kernel, its first `sleep` and the URL of its `chain`
 * (a hold or busy script that asks again).
 */
export function parseScript(text: string, base: string): ParsedScript {
  const result: ParsedScript = { initrds: [], sleepS: 0, says: '' };
  let slept = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const words = line.split(/\s+/);
    const command = words[0];
    if (command === 'echo' && result.says === '') result.says = line.slice(5);
    if (command === 'sleep' && !slept) {
      slept = true;
      result.sleepS = Number(words[1] ?? 0) || 0;
    }
    if (!['kernel', 'initrd', 'imgfetch', 'module', 'chain'].includes(command ?? '')) continue;
    let url: string | undefined;
    for (let k = 1; k < words.length; k++) {
      const word = words[k] ?? '';
      if (word.startsWith('--')) {
        if (!word.includes('=') && (word === '--name' || word === '--timeout')) k++;
        continue;
      }
      url = word;
      break;
    }
    if (url === undefined) continue;
    const absolute = new URL(url, base).toString();
    if (command === 'kernel') result.kernel = absolute;
    else if (command === 'chain') result.chain ??= absolute;
    else result.initrds.push(absolute);
  }
  return result;
}

/** Starts the workers (same CPU, same namespace: both are inherited), passes their progress on, merges them. */
async function coordinate(config: StormConfig, configPath: string): Promise<StormResult> {
  const count = workersFor(config);
  // Time for every worker to start and read its files before the first machine powers on.
  const startAt = Date.now() + 1500 + 150 * count;
  const latest = new Map<number, { booted: number; failed: number; inStage: number[] }>();
  const runs = Array.from({ length: count }, (_, k) => {
    const child = spawn(
      process.execPath,
      [self, '--config', configPath, '--worker', `${k}/${count}`, '--start-at', String(startAt)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line.startsWith('@progress ')) {
          const p = JSON.parse(line.slice('@progress '.length)) as {
            slice: number;
            booted: number;
            failed: number;
            inStage: number[];
          };
          latest.set(p.slice, p);
        } else if (line.trim() !== '') {
          stderr = `${stderr}${line}\n`.slice(-4000);
          process.stderr.write(`worker ${k}: ${line}\n`);
        }
      }
    });
    return new Promise<WorkerResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as WorkerResult);
        else reject(new Error(`worker ${k} exited ${code ?? '?'}: ${stderr.trim().split('\n').slice(-3).join(' ')}`));
      });
    });
  });
  const progress =
    config.progressS > 0
      ? setInterval(() => {
          if (latest.size === 0) return;
          const values = [...latest.values()];
          const booted = values.reduce((total, p) => total + p.booted, 0);
          const failed = values.reduce((total, p) => total + p.failed, 0);
          const inStage = stageNames.map(
            (stage, s) => `${stage} ${values.reduce((total, p) => total + (p.inStage[s] ?? 0), 0)}`,
          );
          const seconds = (Date.now() - startAt) / 1000;
          process.stderr.write(
            `storm: ${seconds.toFixed(0)} s: ${booted} booted, ${failed} failed; in ${inStage.join(', ')}\n`,
          );
        }, config.progressS * 1000)
      : undefined;
  try {
    const results = await Promise.all(runs);
    return merge(config, startAt, Date.now() - startAt, results);
  } finally {
    clearInterval(progress);
  }
}

/** The exit code, or undefined for a process that keeps running (the download process). */
async function cli(argv: string[]): Promise<number | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      worker: { type: 'string' },
      'start-at': { type: 'string' },
      downloader: { type: 'boolean', default: false },
    },
  });
  if (values.config === undefined) {
    process.stderr.write('usage: node bench/storm/client.ts --config FILE (written by bench/storm/main.ts)\n');
    return 2;
  }
  const config = JSON.parse(readFileSync(values.config, 'utf8')) as StormConfig;
  if (values.downloader) {
    runDownloader(config);
    return undefined;
  }
  if (values.worker !== undefined) {
    const [slice, count] = values.worker.split('/').map(Number);
    const startAt = Number(values['start-at'] ?? Date.now());
    const result = await runWorker(config, values.config, slice ?? 0, count ?? 1, startAt);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const result = await coordinate(config, values.config);
  // JSON has no NaN: main.ts reads null back as NaN.
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

if (import.meta.main) {
  const code = await cli(process.argv.slice(2));
  // Sockets of machines abandoned at the deadline may still be open: leave now.
  if (code !== undefined) process.exit(code);
}
