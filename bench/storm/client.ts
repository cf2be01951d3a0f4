/**
 * The boot-storm simulator: N machines in one process, each with its own MAC and UUID, powered on within a short
 * ramp and doing what a BIOS PXE ROM and then iPXE do (bench/storm/firmware.ts has the timeouts):
 *
 *   1. DHCP as the PXE ROM (DISCOVER/OFFER/REQUEST/ACK) → an address and a boot file (undionly.kpxe) on siaddr
 *   2. TFTP of that file, from the leased address, every byte checked against the file the server was given
 *   3. DHCP again as iPXE (user class iPXE, option 175) → the URL of the machine's iPXE script as boot file
 *   4. HTTP GET of the script; its `kernel` and `initrd` URLs are taken from it
 *   5. HTTP GET of the kernel, then of the initrd, over the same keep-alive connection, every byte checked
 *
 * All machines share one DHCP socket on 0.0.0.0:68 (requests carry the broadcast flag, so replies are broadcast;
 * they are told apart by xid and chaddr). TFTP and HTTP are sent from the address the machine was leased: the
 * client namespace holds every pool address (bench/storm/topology.ts), so each machine is a distinct peer to the
 * server, as on a real segment. Run inside the client namespace by bench/storm/main.ts:
 *
 *     ip netns exec NS node bench/storm/client.ts --config FILE
 *
 * Prints one JSON line (StormResult) on stdout; progress on stderr. A machine that has not booted when the run's
 * deadline passes counts as failed in the stage it was in.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, get, type ClientRequest as HttpRequest } from 'node:http';
import type { Socket as TcpSocket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
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
  /** The bytes each server was given: the first stage, the kernel, the initrd. */
  files: { firstStage: string; kernel: string; initrd: string };
  /** Where to write the first iPXE script received (for the report and the reference's static copy). */
  scriptOut?: string;
  progressS: number;
  firmware: Firmware;
}

export interface StageSummary {
  /** Machines that finished / failed this stage. */
  completed: number;
  failed: number;
  /** Retransmissions (DHCP, TFTP) or repeated requests (HTTP) in this stage, over all machines. */
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

export interface StormResult {
  label: string;
  clients: number;
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
  /** This process's CPU time over its wall time (1 = one core saturated: the simulator may be the bottleneck). */
  cpuShare: number;
  rssPeakBytes: number;
  recvBufferBytes: number;
  /**
   * How late this process's event loop ran callbacks (p99 and max, ms): when it is behind by a large part of a
   * timeout, the simulator itself causes retransmissions, and the figures say more about it than about the server.
   */
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

export function runStorm(config: StormConfig): Promise<StormResult> {
  const f = config.firmware;
  const n = config.clients;
  const expected = {
    firstStage: readFileSync(config.files.firstStage),
    kernel: readFileSync(config.files.kernel),
    initrd: readFileSync(config.files.initrd),
  };
  const macs = Array.from({ length: n }, (_, i) =>
    Uint8Array.of(0x02, 0x53, config.group & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255),
  );
  const macHex = macs.map((mac) => Buffer.from(mac).toString('hex'));
  const uuids = macs.map((mac) => Uint8Array.of(0x53, 0x4d, 0x45, 0x4c, 0x54, 0x00, 0x40, 0x00, 0x80, 0, ...mac));
  const poweredOn = new Float64Array(n);
  const bootedAt = new Float64Array(n);
  const stageStart = Object.fromEntries(stageNames.map((s) => [s, new Float64Array(n)])) as Record<
    StageName,
    Float64Array
  >;
  const stageEnd = Object.fromEntries(stageNames.map((s) => [s, new Float64Array(n)])) as Record<
    StageName,
    Float64Array
  >;
  /** Index in stageNames of the stage a machine is in; -1 before power-on; stageNames.length once booted. */
  const current = new Int8Array(n).fill(-1);
  const failedIn = new Int8Array(n).fill(-1);
  const retries = Object.fromEntries(stageNames.map((s) => [s, 0])) as Record<StageName, number>;
  const failures = new Map<string, FailureCount>();
  const agents: (Agent | undefined)[] = [];
  const r: StormResult = {
    label: config.label,
    clients: n,
    booted: 0,
    failed: 0,
    allBootedS: Number.NaN,
    lastBootS: Number.NaN,
    bootP50Ms: Number.NaN,
    bootP99Ms: Number.NaN,
    bootMaxMs: Number.NaN,
    stages: {} as Record<StageName, StageSummary>,
    failures: [],
    unfinished: 0,
    retries: 0,
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
    cpuShare: Number.NaN,
    rssPeakBytes: 0,
    recvBufferBytes: 0,
    loopDelayP99Ms: Number.NaN,
    loopDelayMaxMs: Number.NaN,
  };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let scriptWritten = config.scriptOut === undefined;
  /** Set once the result is taken: nothing counts after that. */
  let finished = false;

  // ---- DHCP: one socket for every machine ----------------------------------------------------------------------
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
      mac: macs[ex.i] ?? new Uint8Array(6),
      uuid: uuids[ex.i] ?? new Uint8Array(16),
      secs: Math.floor((performance.now() - (poweredOn[ex.i] ?? 0)) / 1000),
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
    retries[ex.stage]++;
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
      r.dhcpMalformed++;
      return;
    }
    const ex = pending.get(reply.xid);
    if (!ex || macHex[ex.i] !== reply.macHex) {
      r.dhcpUnmatched++;
      return;
    }
    if (reply.type === MessageType.OFFER && ex.state === 'discover') {
      if (reply.bootFile === '') {
        r.offersWithoutBootFile++; // not a PXE offer: a PXE ROM keeps waiting for one
        return;
      }
      ex.offer = reply;
      const elapsed = performance.now() - ex.startedAt;
      const pxeServer = reply.vendorClass?.startsWith('PXEClient') === true;
      if (ex.kind === 'ipxe' && !pxeServer && !reply.noProxyDhcp && elapsed < f.ipxeProxyWaitMs) {
        r.proxyWaits++;
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
      r.naks++;
      retries[ex.stage]++;
      discover(ex);
    } else {
      r.dhcpDuplicates++;
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
        startedAt: performance.now(),
        resolve,
        reject,
      };
      discover(ex);
    });

  // ---- HTTP ------------------------------------------------------------------------------------------------------
  const seenSockets = new WeakSet<TcpSocket>();
  /** One attempt: the body (when expected is undefined) or the byte count; rejects with a StageFailure. */
  const fetchOnce = (i: number, url: string, local: string, want: Buffer | undefined) =>
    new Promise<Buffer>((resolve, reject) => {
      let agent = agents[i];
      if (!agent) {
        agent = new Agent({ keepAlive: true, maxSockets: 1 });
        agents[i] = agent;
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
            r.bytes.http += chunk.length;
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
          r.httpConnections++;
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
        retries[stage]++;
        await delay(f.httpPauseMs);
      }
    }
  };

  // ---- one machine -----------------------------------------------------------------------------------------------
  const enter = (i: number, stage: StageName) => {
    current[i] = stageNames.indexOf(stage);
    stageStart[stage][i] = performance.now();
  };
  const leave = (i: number, stage: StageName) => {
    stageEnd[stage][i] = performance.now();
  };

  const boot = async (i: number) => {
    poweredOn[i] = performance.now();
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
    retries.tftp += tftp.retries;
    r.tftpDuplicates += tftp.duplicates;
    if (!tftp.ok) throw new StageFailure(tftp.reason ?? 'failed', `${first.bootFile}: ${tftp.detail ?? ''}`);
    r.bytes.tftp += tftp.bytes;
    r.tftpBlksizes[String(tftp.blksize)] = (r.tftpBlksizes[String(tftp.blksize)] ?? 0) + 1;
    leave(i, 'tftp');

    enter(i, 'dhcpIpxe');
    const second = await dhcp(i, 'ipxe', 'dhcpIpxe');
    if (second.address !== first.address) r.addressChanged++;
    if (!/^https?:\/\//.test(second.bootFile))
      throw new StageFailure('the iPXE ACK has no HTTP boot file', second.bootFile);
    leave(i, 'dhcpIpxe');

    enter(i, 'script');
    const scriptUrl = second.bootFile;
    const script = (await fetch(i, 'script', scriptUrl, second.address)).toString('utf8');
    if (!scriptWritten && config.scriptOut !== undefined) {
      scriptWritten = true;
      writeFileSync(config.scriptOut, script);
    }
    r.scriptBytes ||= Buffer.byteLength(script);
    const parsed = parseScript(script, scriptUrl);
    if (parsed.kernel === undefined) {
      const held = /^\s*chain\b/m.test(script);
      throw new StageFailure(held ? 'a hold script (machine not deployed)' : 'a script without a kernel', scriptUrl);
    }
    if (parsed.initrds.length !== 1)
      throw new StageFailure('the script does not name exactly one initrd', parsed.initrds.join(' '));
    leave(i, 'script');

    enter(i, 'files');
    await fetch(i, 'files', parsed.kernel, second.address, expected.kernel);
    await fetch(i, 'files', parsed.initrds[0] ?? '', second.address, expected.initrd);
    leave(i, 'files');
    agents[i]?.destroy(); // the kernel starts: iPXE's connection goes away
    if (finished) return;
    current[i] = stageNames.length;
    bootedAt[i] = performance.now();
    r.booted++;
  };

  return new Promise((resolve) => {
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    let progress: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    let rss: NodeJS.Timeout | undefined;
    let settledCount = 0;

    const record = (i: number, error: unknown) => {
      const stageIndex = current[i] ?? 0;
      const stage = stageNames[stageIndex] ?? 'dhcpPxe';
      failedIn[i] = stageIndex;
      current[i] = stageNames.length + 1;
      r.failed++;
      const { reason, detail } = errorText(error);
      const key = `${stage}\0${reason}`;
      const entry = failures.get(key);
      if (entry) entry.count++;
      else failures.set(key, { stage, reason, count: 1, example: detail });
    };

    const finish = (atDeadline: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(progress);
      clearInterval(rss);
      clearTimeout(deadline);
      if (atDeadline) {
        for (let i = 0; i < n; i++) {
          const at = current[i] ?? -1;
          if (at >= stageNames.length) continue;
          r.unfinished++;
          record(i, new StageFailure(`unfinished at the ${config.deadlineS} s deadline`));
        }
      }
      for (const ex of pending.values()) clearTimeout(ex.timer);
      socket.close();
      for (const agent of agents) agent?.destroy();
      const cpu = process.cpuUsage(cpu0);
      const wallMs = Math.max(1, performance.now() - t0);
      r.cpuShare = (cpu.user + cpu.system) / 1000 / wallMs;
      r.rssPeakBytes = Math.max(r.rssPeakBytes, process.memoryUsage.rss());
      loopDelay.disable();
      r.loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
      r.loopDelayMaxMs = loopDelay.max / 1e6;
      const boots = new Float64Array(r.booted);
      let k = 0;
      let lastBoot = 0;
      for (let i = 0; i < n; i++) {
        if (current[i] !== stageNames.length) continue;
        const at = bootedAt[i] ?? 0;
        boots[k++] = at - (poweredOn[i] ?? at);
        lastBoot = Math.max(lastBoot, at);
      }
      boots.sort();
      r.bootP50Ms = percentile(boots, 0.5);
      r.bootP99Ms = percentile(boots, 0.99);
      r.bootMaxMs = boots[boots.length - 1] ?? Number.NaN;
      if (r.booted > 0) r.lastBootS = (lastBoot - t0) / 1000;
      if (r.booted === n) r.allBootedS = r.lastBootS;
      for (const [s, stage] of stageNames.entries()) {
        const times: number[] = [];
        const starts = stageStart[stage];
        const ends = stageEnd[stage];
        let failed = 0;
        for (let i = 0; i < n; i++) {
          const end = ends[i] ?? 0;
          if (end > 0) times.push(end - (starts[i] ?? end));
          else if (failedIn[i] === s) failed++;
        }
        const sorted = Float64Array.from(times).sort();
        r.stages[stage] = {
          completed: sorted.length,
          failed,
          retries: retries[stage],
          p50Ms: percentile(sorted, 0.5),
          p99Ms: percentile(sorted, 0.99),
          maxMs: sorted[sorted.length - 1] ?? Number.NaN,
        };
        r.retries += retries[stage];
      }
      r.failures = [...failures.values()].sort((a, b) => b.count - a.count);
      resolve(r);
    };

    socket.once('error', (error) => {
      process.stderr.write(`storm: DHCP socket: ${error.message}\n`);
      finish(false);
    });
    socket.bind({ port: 68, address: '0.0.0.0', exclusive: true }, () => {
      socket.setBroadcast(true);
      try {
        socket.setRecvBufferSize(8 * 1024 * 1024); // capped by net.core.rmem_max
      } catch {
        // keep the default
      }
      r.recvBufferBytes = socket.getRecvBufferSize();
      t0 = performance.now();
      cpu0 = process.cpuUsage();
      loopDelay.enable();
      deadline = setTimeout(() => {
        finish(true);
      }, config.deadlineS * 1000);
      rss = setInterval(() => {
        r.rssPeakBytes = Math.max(r.rssPeakBytes, process.memoryUsage.rss());
      }, 500);
      if (config.progressS > 0) {
        progress = setInterval(() => {
          const counts = stageNames.map((stage, s) => {
            let inStage = 0;
            for (let i = 0; i < n; i++) if (current[i] === s) inStage++;
            return `${stage} ${inStage}`;
          });
          const s = (performance.now() - t0) / 1000;
          process.stderr.write(
            `storm: ${s.toFixed(0)} s: ${r.booted} booted, ${r.failed} failed; in ${counts.join(', ')}\n`,
          );
        }, config.progressS * 1000);
      }
      for (let i = 0; i < n; i++) {
        setTimeout(
          () => {
            boot(i).then(
              () => {
                if (++settledCount === n) finish(false);
              },
              (error: unknown) => {
                if (finished) return;
                record(i, error);
                agents[i]?.destroy();
                if (++settledCount === n) finish(false);
              },
            );
          },
          n > 1 ? (i * config.rampMs) / (n - 1) : 0,
        );
      }
    });
  });
}

/** The `kernel` and `initrd` URLs of an iPXE script (options like `--name x` skipped), resolved against its URL. */
export function parseScript(text: string, base: string): { kernel?: string; initrds: string[] } {
  const result: { kernel?: string; initrds: string[] } = { initrds: [] };
  for (const raw of text.split('\n')) {
    const words = raw.trim().split(/\s+/);
    const command = words[0];
    if (command !== 'kernel' && command !== 'initrd' && command !== 'imgfetch' && command !== 'module') continue;
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
    else result.initrds.push(absolute);
  }
  return result;
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } } });
  if (values.config === undefined) {
    process.stderr.write('usage: node bench/storm/client.ts --config FILE (written by bench/storm/main.ts)\n');
    return 2;
  }
  const config = JSON.parse(readFileSync(values.config, 'utf8')) as StormConfig;
  const result = await runStorm(config);
  // JSON has no NaN: main.ts reads null back as NaN.
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

if (import.meta.main) {
  const code = await cli(process.argv.slice(2));
  // Sockets of machines abandoned at the deadline may still be open: leave now.
  process.exit(code);
}
