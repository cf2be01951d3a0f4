/**
 * The DHCP load generator: N simulated clients with distinct MACs, each doing DISCOVER → OFFER → REQUEST (option 50
 * the offered address, option 54 the server) → ACK, with a bounded number in flight. Run inside the client
 * namespace by bench/dhcp/main.ts (one process per measurement); usable by hand too:
 *
 *     ip netns exec NS node bench/dhcp/generator.ts --clients 1000 --concurrency 128 [--mode relay ...]
 *
 * Modes. `broadcast` (default): binds 0.0.0.0:68, sends from there to 255.255.255.255:67 with the broadcast flag
 * (0x8000) set, so servers answer to 255.255.255.255:68; replies are matched to clients by xid (and chaddr).
 * `relay`: acts as a relay agent — giaddr = its own address, hops 1, unicast from its port 67 to the server's port
 * 67 — and receives the servers' unicast replies on port 67, as a large site's relays would.
 *
 * Timing. A DORA's latency is from its first DISCOVER to its ACK (retransmissions included, as a client sees
 * it). Retransmission: after --timeout-ms without the next reply the same message is sent again (same xid), the
 * wait doubling each time, up to --retries times per step; then the client counts as failed. A NAK restarts the
 * client at DISCOVER (up to 3 times). The rate is ACKs over first DISCOVER → last ACK.
 *
 * --check FILE (lines `MAC ADDRESS`): instead of DORA, each listed client sends one DISCOVER and the OFFER's address
 * is compared with the listed one — after a server restart, whether it still knows every lease it granted.
 *
 * Prints one JSON line (GeneratorResult) on stdout; progress on stderr; --leases-out FILE gets `MAC ADDRESS` per ACK.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  decodeServerReply,
  encodeClientMessage,
  ipv4ToNumber,
  MalformedReply,
  MessageType,
  numberToIpv4,
  type ClientMessage,
} from './wire.ts';

export const generatorModes = ['broadcast', 'relay'] as const;
export type GeneratorMode = (typeof generatorModes)[number];

export interface GeneratorOptions {
  mode: GeneratorMode;
  /** The server's address (relay mode sends to it; broadcast mode only reports it). */
  server: string;
  /** Relay mode: the relay's own address (giaddr, and the address it binds). */
  relayAddress: string;
  clients: number;
  /** A byte of every MAC (02:73:GROUP:xx:xx:xx), so that different client sets never collide. */
  group: number;
  concurrency: number;
  timeoutMs: number;
  retries: number;
  /** Stop starting new clients after this many seconds (those in flight finish or time out). */
  maxSeconds: number;
  /** Give up when not a single reply came within this many seconds. */
  noReplyAbortS: number;
  /** Give up (clients in flight fail, no new ones start) when nothing completed for this many seconds. */
  stallS: number;
  /** Check mode: the MAC → address pairs to ask about. */
  check?: [string, string][];
  leasesOut?: string;
  /**
   * Per completed DORA, a CSV line "start,offer,ack" (ms since the first DISCOVER of the run): where in a run the
   * slow ones are, and which half of the exchange made them slow.
   */
  traceOut?: string;
  /** Progress line on stderr every this many seconds (0: none). */
  progressS: number;
}

export interface GeneratorResult {
  mode: GeneratorMode | 'check';
  clients: number;
  concurrency: number;
  /** Clients that were started / completed (ACK, or in check mode OFFER) / failed after all retries. */
  started: number;
  completed: number;
  failed: number;
  /** Clients never started because --max-seconds passed (or no server answered). */
  notStarted: number;
  retries: number;
  naks: number;
  /** DORA (or, in check mode, DISCOVER → OFFER) per second, over first send → last completion. */
  rate: number;
  seconds: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Rate over the first and over the last tenth of the completions (how it holds up as leases accumulate). */
  firstTenthRate: number;
  lastTenthRate: number;
  /** Replies that did not decode, that matched no client, or that came for a step the client had passed. */
  malformed: number;
  unmatched: number;
  duplicates: number;
  /** ACKs whose address differs from the OFFER's; addresses ACKed to two different clients. */
  ackDiffersFromOffer: number;
  addressConflicts: number;
  /** Check mode: OFFERs with the address listed / another address. */
  sameAddress: number;
  otherAddress: number;
  sendErrors: number;
  firstSendError?: string;
  /** The first few NAKs: the address requested and the server's message (option 56). */
  nakExamples: string[];
  /** The socket's receive buffer as the kernel granted it. */
  recvBufferBytes: number;
  /** The generator's own CPU time over the run's wall time (1 = one core saturated: it may be the bottleneck). */
  cpuShare: number;
  stoppedAtLimit: boolean;
  noReplies: boolean;
  /** Nothing completed for --stall-s seconds: the rest was abandoned (a stuck server). */
  stalled: boolean;
  /** The unmeasured warm-up that ran first in the same process (--warmup). */
  warmup?: GeneratorResult;
  firstMalformed?: string;
}

const DISCOVERING = 1;
const REQUESTING = 2;
const DONE = 3;
const FAILED = 4;
/** Written on stderr once the warm-up is over, just before the measured run's first DISCOVER. */
export const MEASURED_RUN_STARTS = 'generator: warm-up done, measured run starts';
/** A client NAKed more often than this fails. */
export const MAX_NAKS = 3;

function macOf(group: number, index: number): Uint8Array {
  return Uint8Array.of(0x02, 0x73, group & 255, (index >>> 16) & 255, (index >>> 8) & 255, index & 255);
}

function macText(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

export function runGenerator(o: GeneratorOptions): Promise<GeneratorResult> {
  const checking = o.check !== undefined;
  const n = o.check ? o.check.length : o.clients;
  const macs: Uint8Array[] = [];
  const expected = new Uint32Array(n); // check mode: the address each client should be offered
  for (let i = 0; i < n; i++) {
    const pair = o.check?.[i];
    if (pair) {
      const bytes = Uint8Array.from(pair[0].split(':').map((h) => Number.parseInt(h, 16)));
      if (bytes.length !== 6) throw new Error(`not a MAC: ${pair[0]}`);
      macs.push(bytes);
      expected[i] = ipv4ToNumber(pair[1]);
    } else macs.push(macOf(o.group, i));
  }
  const macHex = macs.map((mac) => Buffer.from(mac).toString('hex'));
  const state = new Uint8Array(n);
  const attempts = new Uint8Array(n);
  const naks = new Uint8Array(n);
  const startedAt = new Float64Array(n);
  const deadline = new Float64Array(n);
  const offered = new Uint32Array(n);
  const serverIds = new Uint32Array(n);
  const acked = new Uint32Array(n);
  const latencies = new Float64Array(n);
  const completedAt = new Float64Array(n);
  const offeredAt = new Float64Array(n);
  const order = new Uint32Array(n);
  let completed = 0;
  const salt = (Math.random() * 2 ** 32) >>> 0;
  const relay = o.mode === 'relay';
  const giaddr = relay ? ipv4ToNumber(o.relayAddress) : 0;
  const target = relay ? o.server : '255.255.255.255';

  const r: GeneratorResult = {
    mode: checking ? 'check' : o.mode,
    clients: n,
    concurrency: o.concurrency,
    started: 0,
    completed: 0,
    failed: 0,
    notStarted: 0,
    retries: 0,
    naks: 0,
    rate: Number.NaN,
    seconds: Number.NaN,
    p50Ms: Number.NaN,
    p90Ms: Number.NaN,
    p99Ms: Number.NaN,
    maxMs: Number.NaN,
    firstTenthRate: Number.NaN,
    lastTenthRate: Number.NaN,
    malformed: 0,
    unmatched: 0,
    duplicates: 0,
    ackDiffersFromOffer: 0,
    addressConflicts: 0,
    sameAddress: 0,
    otherAddress: 0,
    sendErrors: 0,
    nakExamples: [],
    recvBufferBytes: 0,
    cpuShare: Number.NaN,
    stoppedAtLimit: false,
    noReplies: false,
    stalled: false,
  };

  return new Promise((resolve, reject) => {
    const socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });
    const inFlight = new Set<number>();
    let next = 0;
    let stopStarting = false;
    let replies = 0;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    let lastCompletion = 0;
    let finished = false;
    let ticker: NodeJS.Timeout | undefined;
    let progress: NodeJS.Timeout | undefined;

    const send = (i: number) => {
      const message: ClientMessage = {
        type: state[i] === REQUESTING ? MessageType.REQUEST : MessageType.DISCOVER,
        xid: (salt + i) >>> 0,
        mac: macs[i] ?? new Uint8Array(6),
        broadcast: true,
        giaddr,
        hops: relay ? 1 : 0,
        secs: Math.min(65535, Math.floor((performance.now() - (startedAt[i] ?? 0)) / 1000)),
      };
      if (state[i] === REQUESTING) {
        message.requestedAddress = offered[i] ?? 0;
        message.serverId = serverIds[i] ?? 0;
      }
      socket.send(encodeClientMessage(message), 67, target, (error) => {
        if (!error) return;
        r.sendErrors++;
        r.firstSendError ??= error.message;
      });
    };

    const start = (i: number) => {
      const now = performance.now();
      if (t0 === 0) {
        t0 = now;
        cpu0 = process.cpuUsage();
      }
      state[i] = DISCOVERING;
      attempts[i] = 0;
      startedAt[i] = now;
      deadline[i] = now + o.timeoutMs;
      inFlight.add(i);
      r.started++;
      send(i);
    };

    const fill = () => {
      while (!stopStarting && inFlight.size < o.concurrency && next < n) start(next++);
      if (inFlight.size === 0 && (next >= n || stopStarting)) finish();
    };

    const end = (i: number, outcome: typeof DONE | typeof FAILED) => {
      state[i] = outcome;
      inFlight.delete(i);
      if (outcome === FAILED) r.failed++;
      else {
        const now = performance.now();
        latencies[completed] = now - (startedAt[i] ?? now);
        completedAt[completed] = now;
        order[completed] = i;
        completed++;
        lastCompletion = now;
      }
    };

    const restart = (i: number, now: number, phase: typeof DISCOVERING | typeof REQUESTING) => {
      state[i] = phase;
      attempts[i] = 0;
      deadline[i] = now + o.timeoutMs;
      send(i);
    };

    socket.on('message', (bytes) => {
      replies++;
      let reply;
      try {
        reply = decodeServerReply(bytes);
      } catch (error) {
        if (!(error instanceof MalformedReply)) throw error;
        r.malformed++;
        r.firstMalformed ??= error.message;
        return;
      }
      const i = (reply.xid - salt) >>> 0;
      if (i >= n || macHex[i] !== reply.macHex) {
        r.unmatched++;
        return;
      }
      const now = performance.now();
      const s = state[i];
      if (reply.type === MessageType.OFFER && s === DISCOVERING) {
        if (checking) {
          if (reply.yiaddr === expected[i]) r.sameAddress++;
          else r.otherAddress++;
          end(i, DONE);
        } else {
          offered[i] = reply.yiaddr;
          offeredAt[i] = now;
          serverIds[i] = reply.serverId ?? ipv4ToNumber(o.server);
          restart(i, now, REQUESTING);
          return;
        }
      } else if (reply.type === MessageType.ACK && s === REQUESTING) {
        acked[i] = reply.yiaddr;
        if (reply.yiaddr !== offered[i]) r.ackDiffersFromOffer++;
        end(i, DONE);
      } else if (reply.type === MessageType.NAK && s === REQUESTING) {
        r.naks++;
        naks[i] = (naks[i] ?? 0) + 1;
        if (r.nakExamples.length < 3)
          r.nakExamples.push(`${numberToIpv4(offered[i] ?? 0)}: ${reply.message ?? '(no message)'}`);
        if ((naks[i] ?? 0) > MAX_NAKS) end(i, FAILED);
        else {
          restart(i, now, DISCOVERING);
          return;
        }
      } else {
        r.duplicates++; // a second OFFER/ACK for a step already answered (a retransmission crossed the reply)
        return;
      }
      fill();
    });

    const tick = () => {
      const now = performance.now();
      for (const i of inFlight) {
        if ((deadline[i] ?? Infinity) > now) continue;
        const tried = attempts[i] ?? 0;
        if (tried >= o.retries) {
          end(i, FAILED);
          continue;
        }
        attempts[i] = tried + 1;
        r.retries++;
        deadline[i] = now + o.timeoutMs * 2 ** (tried + 1);
        send(i);
      }
      if (!stopStarting && t0 > 0 && now - t0 > o.maxSeconds * 1000 && next < n) {
        stopStarting = true;
        r.stoppedAtLimit = true;
      }
      if (!stopStarting && replies === 0 && t0 > 0 && now - t0 > o.noReplyAbortS * 1000) {
        stopStarting = true;
        r.noReplies = true;
        for (const i of [...inFlight]) end(i, FAILED);
      }
      const progressAt = lastCompletion > 0 ? lastCompletion : t0;
      if (!stopStarting && t0 > 0 && inFlight.size > 0 && now - progressAt > o.stallS * 1000) {
        stopStarting = true;
        r.stalled = true;
        for (const i of [...inFlight]) end(i, FAILED);
      }
      fill();
    };

    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      clearInterval(progress);
      socket.close();
      r.notStarted = n - r.started;
      const cpu = process.cpuUsage(cpu0);
      r.cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, performance.now() - t0);
      r.completed = completed;
      const sorted = latencies.slice(0, completed).sort();
      r.p50Ms = percentile(sorted, 0.5);
      r.p90Ms = percentile(sorted, 0.9);
      r.p99Ms = percentile(sorted, 0.99);
      r.maxMs = sorted[sorted.length - 1] ?? Number.NaN;
      if (completed > 0) {
        r.seconds = (lastCompletion - t0) / 1000;
        r.rate = completed / r.seconds;
        const tenth = Math.floor(completed / 10);
        if (tenth >= 10) {
          r.firstTenthRate = tenth / (((completedAt[tenth - 1] ?? 0) - t0) / 1000);
          r.lastTenthRate =
            tenth / (((completedAt[completed - 1] ?? 0) - (completedAt[completed - 1 - tenth] ?? 0)) / 1000);
        }
      }
      if (!checking) {
        const owners = new Map<number, number>();
        const lines: string[] = [];
        for (let i = 0; i < n; i++) {
          if (state[i] !== DONE) continue;
          const address = acked[i] ?? 0;
          const owner = owners.get(address);
          if (owner !== undefined && owner !== i) r.addressConflicts++;
          owners.set(address, i);
          lines.push(`${macText(macs[i] ?? new Uint8Array(6))} ${numberToIpv4(address)}`);
        }
        if (o.traceOut !== undefined) {
          // The first line gives the run's t0 as a wall-clock time (ms since the epoch), to line the trace up with a server's log.
          const rows = [`# t0 ${(performance.timeOrigin + t0).toFixed(3)}`, 'start,offer,ack'];
          for (let k = 0; k < completed; k++) {
            const i = order[k] ?? 0;
            const at = (x: number | undefined) => ((x ?? 0) - t0).toFixed(3);
            rows.push(`${at(startedAt[i])},${at(offeredAt[i])},${at(completedAt[k])}`);
          }
          writeFileSync(o.traceOut, `${rows.join('\n')}\n`);
        }
        if (o.leasesOut !== undefined) writeFileSync(o.leasesOut, lines.length > 0 ? `${lines.join('\n')}\n` : '');
      }
      resolve(r);
    };

    socket.once('error', (error) => {
      if (!finished) reject(error);
    });
    const bindAddress = relay ? o.relayAddress : '0.0.0.0';
    socket.bind({ port: relay ? 67 : 68, address: bindAddress, exclusive: true }, () => {
      socket.setBroadcast(true);
      try {
        socket.setRecvBufferSize(8 * 1024 * 1024); // capped by net.core.rmem_max
      } catch {
        // keep the default
      }
      r.recvBufferBytes = socket.getRecvBufferSize();
      ticker = setInterval(tick, 10);
      if (o.progressS > 0) {
        progress = setInterval(() => {
          const s = (performance.now() - t0) / 1000;
          process.stderr.write(
            `generator: ${s.toFixed(0)} s: ${completed} done, ${r.failed} failed, ${inFlight.size} in flight, ${r.retries} retries, ${(completed / s).toFixed(0)}/s\n`,
          );
        }, o.progressS * 1000);
      }
      fill();
    });
  });
}

const usage = `usage: node bench/dhcp/generator.ts [options]
  --mode broadcast|relay   (broadcast)        --server ADDR         (10.64.0.1)
  --relay-address ADDR     (10.64.0.2)        --clients N           (1000)
  --concurrency N          (128)              --group BYTE          (1) MACs are 02:73:GROUP:xx:xx:xx
  --timeout-ms MS          (1000, doubling)   --retries N           (4)
  --max-seconds S          (300)              --no-reply-abort-s S  (10)
  --stall-s S              (30) give up when nothing completed for S seconds
  --check FILE             DISCOVER each "MAC ADDRESS" in FILE and compare the OFFER's address
  --leases-out FILE        "MAC ADDRESS" per ACK
  --trace FILE             "start,offer,ack" (ms) per completed DORA
  --progress-s S           (5; 0: none)
  --warmup N               (0) first N unmeasured clients (MACs 02:73:fe:...) in the same process
  --settle-ms MS           (0) pause between the warm-up and the measured run`;

async function cli(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string', default: 'broadcast' },
      server: { type: 'string', default: '10.64.0.1' },
      'relay-address': { type: 'string', default: '10.64.0.2' },
      clients: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '128' },
      group: { type: 'string', default: '1' },
      'timeout-ms': { type: 'string', default: '1000' },
      retries: { type: 'string', default: '4' },
      'max-seconds': { type: 'string', default: '300' },
      'no-reply-abort-s': { type: 'string', default: '10' },
      'stall-s': { type: 'string', default: '30' },
      check: { type: 'string' },
      'leases-out': { type: 'string' },
      trace: { type: 'string' },
      'progress-s': { type: 'string', default: '5' },
      warmup: { type: 'string', default: '0' },
      'settle-ms': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const mode = v.mode as GeneratorMode;
  if (!generatorModes.includes(mode)) {
    process.stderr.write(`generator: --mode is broadcast or relay\n${usage}\n`);
    return 2;
  }
  const check = v.check
    ? readFileSync(v.check, 'utf8')
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((parts): parts is [string, string] => parts.length === 2)
    : undefined;
  const options: GeneratorOptions = {
    mode,
    server: v.server,
    relayAddress: v['relay-address'],
    clients: Number(v.clients),
    group: Number(v.group),
    concurrency: Number(v.concurrency),
    timeoutMs: Number(v['timeout-ms']),
    retries: Number(v.retries),
    maxSeconds: Number(v['max-seconds']),
    noReplyAbortS: Number(v['no-reply-abort-s']),
    stallS: Number(v['stall-s']),
    ...(check && { check }),
    ...(v['leases-out'] !== undefined && { leasesOut: v['leases-out'] }),
    ...(v.trace !== undefined && { traceOut: v.trace }),
    progressS: Number(v['progress-s']),
  };
  const warmupClients = Number(v.warmup);
  if (warmupClients > 0 && !check) {
    // Same process, other MACs (group 0xfe), short timeouts: warms the JIT of the generator (and of a JIT-compiled
    // server) and finds a server that does not answer at all within seconds.
    const { check: _check, leasesOut: _leasesOut, traceOut: _traceOut, ...rest } = options;
    const warmup = await runGenerator({
      ...rest,
      clients: warmupClients,
      group: 0xfe,
      timeoutMs: 1000,
      retries: 2,
      noReplyAbortS: 5,
      progressS: 0,
    });
    if (warmup.completed === 0) {
      const notRun = { ...warmup, clients: options.clients, started: 0, failed: 0, notStarted: options.clients };
      process.stdout.write(`${JSON.stringify({ ...notRun, warmup })}\n`);
      return 0;
    }
    // The server finishes what the warm-up left it (deferred writes, compiles, a collection) before the run, as a
    // server does between the bursts of a real site.
    const settleMs = Number(v['settle-ms']);
    if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
    // bench/dhcp/measure.ts starts the server's CPU count for the measured run when it reads this line.
    process.stderr.write(`${MEASURED_RUN_STARTS}\n`);
    process.stdout.write(`${JSON.stringify({ ...(await runGenerator(options)), warmup })}\n`);
    return 0;
  }
  process.stdout.write(`${JSON.stringify(await runGenerator(options))}\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await cli(process.argv.slice(2));
