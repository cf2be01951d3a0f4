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
import { xidsFor, type Xids } from './xid.ts';

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

function emptyResult(o: GeneratorOptions, n: number): GeneratorResult {
  return {
    mode: o.check !== undefined ? 'check' : o.mode,
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
}

export function runGenerator(o: GeneratorOptions): Promise<GeneratorResult> {
  return new Promise((resolve, reject) => {
    new DoraRun(o, resolve, reject).begin();
  });
}

/**
 * One run of clients on one socket. Its steps are methods, not closures made per run: the warm-up and the measured
 * run that follows it in the same process then share their optimised code. With closures, V8 compiled the measured
 * run's own copies in its first milliseconds (--trace-opt: `fill` 25.6 ms and `send` 5.8 ms of TurboFan on the
 * generator's only CPU), and the first replies waited unread: the first wave of every measured run looked slow.
 */
class DoraRun {
  private readonly checking: boolean;
  private readonly n: number;
  private readonly macs: Uint8Array[] = [];
  private readonly macHex: string[];
  /** Check mode: the address each client should be offered. */
  private readonly expected: Uint32Array;
  private readonly state: Uint8Array;
  private readonly attempts: Uint8Array;
  private readonly naks: Uint8Array;
  private readonly startedAt: Float64Array;
  private readonly deadline: Float64Array;
  private readonly offered: Uint32Array;
  private readonly serverIds: Uint32Array;
  private readonly acked: Uint32Array;
  private readonly latencies: Float64Array;
  private readonly completedAt: Float64Array;
  private readonly offeredAt: Float64Array;
  private readonly order: Uint32Array;
  private readonly xids: Xids;
  private readonly giaddr: number;
  private readonly target: string;
  private readonly r: GeneratorResult;
  private readonly socket: Socket;
  private readonly inFlight = new Set<number>();
  private completed = 0;
  private next = 0;
  private stopStarting = false;
  private replies = 0;
  private t0 = 0;
  private cpu0 = process.cpuUsage();
  private lastCompletion = 0;
  private finished = false;
  private ticker: NodeJS.Timeout | undefined;
  private progress: NodeJS.Timeout | undefined;
  /** The socket's callbacks, bound once: the methods behind them are the same functions in every run. */
  private readonly afterSend: (error: Error | null) => void;

  private readonly o: GeneratorOptions;
  private readonly resolve: (result: GeneratorResult) => void;
  private readonly reject: (error: unknown) => void;

  constructor(o: GeneratorOptions, resolve: (result: GeneratorResult) => void, reject: (error: unknown) => void) {
    this.o = o;
    this.resolve = resolve;
    this.reject = reject;
    this.checking = o.check !== undefined;
    const n = o.check ? o.check.length : o.clients;
    this.n = n;
    this.expected = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const pair = o.check?.[i];
      if (pair) {
        const bytes = Uint8Array.from(pair[0].split(':').map((h) => Number.parseInt(h, 16)));
        if (bytes.length !== 6) throw new Error(`not a MAC: ${pair[0]}`);
        this.macs.push(bytes);
        this.expected[i] = ipv4ToNumber(pair[1]);
      } else this.macs.push(macOf(o.group, i));
    }
    this.macHex = this.macs.map((mac) => Buffer.from(mac).toString('hex'));
    this.state = new Uint8Array(n);
    this.attempts = new Uint8Array(n);
    this.naks = new Uint8Array(n);
    this.startedAt = new Float64Array(n);
    this.deadline = new Float64Array(n);
    this.offered = new Uint32Array(n);
    this.serverIds = new Uint32Array(n);
    this.acked = new Uint32Array(n);
    this.latencies = new Float64Array(n);
    this.completedAt = new Float64Array(n);
    this.offeredAt = new Float64Array(n);
    this.order = new Uint32Array(n);
    this.xids = xidsFor((Math.random() * 2 ** 32) >>> 0);
    const relay = o.mode === 'relay';
    this.giaddr = relay ? ipv4ToNumber(o.relayAddress) : 0;
    this.target = relay ? o.server : '255.255.255.255';
    this.r = emptyResult(o, n);
    this.socket = createSocket({ type: 'udp4', reuseAddr: true });
    this.afterSend = this.sent.bind(this);
  }

  begin(): void {
    const { o, r, socket } = this;
    socket.on('message', this.onMessage.bind(this));
    socket.once('error', (error) => {
      if (!this.finished) this.reject(error);
    });
    const relay = o.mode === 'relay';
    socket.bind({ port: relay ? 67 : 68, address: relay ? o.relayAddress : '0.0.0.0', exclusive: true }, () => {
      socket.setBroadcast(true);
      try {
        socket.setRecvBufferSize(8 * 1024 * 1024); // capped by net.core.rmem_max
      } catch {
        // keep the default
      }
      r.recvBufferBytes = socket.getRecvBufferSize();
      this.ticker = setInterval(this.tick.bind(this), 10);
      if (o.progressS > 0) this.progress = setInterval(this.report.bind(this), o.progressS * 1000);
      this.fill();
    });
  }

  private send(i: number): void {
    const requesting = this.state[i] === REQUESTING;
    const message: ClientMessage = {
      type: requesting ? MessageType.REQUEST : MessageType.DISCOVER,
      xid: this.xids.of(i),
      mac: this.macs[i] ?? new Uint8Array(6),
      broadcast: true,
      giaddr: this.giaddr,
      hops: this.o.mode === 'relay' ? 1 : 0,
      secs: Math.min(65535, Math.floor((performance.now() - (this.startedAt[i] ?? 0)) / 1000)),
    };
    if (requesting) {
      message.requestedAddress = this.offered[i] ?? 0;
      message.serverId = this.serverIds[i] ?? 0;
    }
    this.socket.send(encodeClientMessage(message), 67, this.target, this.afterSend);
  }

  private sent(error: Error | null): void {
    if (!error) return;
    this.r.sendErrors++;
    this.r.firstSendError ??= error.message;
  }

  private start(i: number): void {
    const now = performance.now();
    if (this.t0 === 0) {
      this.t0 = now;
      this.cpu0 = process.cpuUsage();
    }
    this.state[i] = DISCOVERING;
    this.attempts[i] = 0;
    this.startedAt[i] = now;
    this.deadline[i] = now + this.o.timeoutMs;
    this.inFlight.add(i);
    this.r.started++;
    this.send(i);
  }

  private fill(): void {
    while (!this.stopStarting && this.inFlight.size < this.o.concurrency && this.next < this.n) this.start(this.next++);
    if (this.inFlight.size === 0 && (this.next >= this.n || this.stopStarting)) this.finish();
  }

  private end(i: number, outcome: typeof DONE | typeof FAILED): void {
    this.state[i] = outcome;
    this.inFlight.delete(i);
    if (outcome === FAILED) this.r.failed++;
    else {
      const now = performance.now();
      this.latencies[this.completed] = now - (this.startedAt[i] ?? now);
      this.completedAt[this.completed] = now;
      this.order[this.completed] = i;
      this.completed++;
      this.lastCompletion = now;
    }
  }

  private restart(i: number, now: number, phase: typeof DISCOVERING | typeof REQUESTING): void {
    this.state[i] = phase;
    this.attempts[i] = 0;
    this.deadline[i] = now + this.o.timeoutMs;
    this.send(i);
  }

  private onMessage(bytes: Buffer): void {
    const r = this.r;
    this.replies++;
    let reply;
    try {
      reply = decodeServerReply(bytes);
    } catch (error) {
      if (!(error instanceof MalformedReply)) throw error;
      r.malformed++;
      r.firstMalformed ??= error.message;
      return;
    }
    const i = this.xids.client(reply.xid);
    if (i >= this.n || this.macHex[i] !== reply.macHex) {
      r.unmatched++;
      return;
    }
    const now = performance.now();
    const s = this.state[i];
    if (reply.type === MessageType.OFFER && s === DISCOVERING) {
      if (this.checking) {
        if (reply.yiaddr === this.expected[i]) r.sameAddress++;
        else r.otherAddress++;
        this.end(i, DONE);
      } else {
        this.offered[i] = reply.yiaddr;
        this.offeredAt[i] = now;
        this.serverIds[i] = reply.serverId ?? ipv4ToNumber(this.o.server);
        this.restart(i, now, REQUESTING);
        return;
      }
    } else if (reply.type === MessageType.ACK && s === REQUESTING) {
      this.acked[i] = reply.yiaddr;
      if (reply.yiaddr !== this.offered[i]) r.ackDiffersFromOffer++;
      this.end(i, DONE);
    } else if (reply.type === MessageType.NAK && s === REQUESTING) {
      r.naks++;
      const naks = (this.naks[i] ?? 0) + 1;
      this.naks[i] = naks;
      if (r.nakExamples.length < 3)
        r.nakExamples.push(`${numberToIpv4(this.offered[i] ?? 0)}: ${reply.message ?? '(no message)'}`);
      if (naks > MAX_NAKS) this.end(i, FAILED);
      else {
        this.restart(i, now, DISCOVERING);
        return;
      }
    } else {
      r.duplicates++; // a second OFFER/ACK for a step already answered (a retransmission crossed the reply)
      return;
    }
    this.fill();
  }

  private tick(): void {
    const { o, r } = this;
    const now = performance.now();
    for (const i of this.inFlight) {
      if ((this.deadline[i] ?? Infinity) > now) continue;
      const tried = this.attempts[i] ?? 0;
      if (tried >= o.retries) {
        this.end(i, FAILED);
        continue;
      }
      this.attempts[i] = tried + 1;
      r.retries++;
      this.deadline[i] = now + o.timeoutMs * 2 ** (tried + 1);
      this.send(i);
    }
    const running = !this.stopStarting && this.t0 > 0;
    if (running && now - this.t0 > o.maxSeconds * 1000 && this.next < this.n) {
      this.stopStarting = true;
      r.stoppedAtLimit = true;
    }
    if (!this.stopStarting && this.replies === 0 && this.t0 > 0 && now - this.t0 > o.noReplyAbortS * 1000) {
      this.stopStarting = true;
      r.noReplies = true;
      for (const i of [...this.inFlight]) this.end(i, FAILED);
    }
    const progressAt = this.lastCompletion > 0 ? this.lastCompletion : this.t0;
    if (!this.stopStarting && this.t0 > 0 && this.inFlight.size > 0 && now - progressAt > o.stallS * 1000) {
      this.stopStarting = true;
      r.stalled = true;
      for (const i of [...this.inFlight]) this.end(i, FAILED);
    }
    this.fill();
  }

  private report(): void {
    const s = (performance.now() - this.t0) / 1000;
    process.stderr.write(
      `generator: ${s.toFixed(0)} s: ${this.completed} done, ${this.r.failed} failed, ${this.inFlight.size} in flight, ${this.r.retries} retries, ${(this.completed / s).toFixed(0)}/s\n`,
    );
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.ticker);
    clearInterval(this.progress);
    this.socket.close();
    const { o, r, n, completed, t0, completedAt } = this;
    r.notStarted = n - r.started;
    const cpu = process.cpuUsage(this.cpu0);
    r.cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, performance.now() - t0);
    r.completed = completed;
    const sorted = this.latencies.slice(0, completed).sort();
    r.p50Ms = percentile(sorted, 0.5);
    r.p90Ms = percentile(sorted, 0.9);
    r.p99Ms = percentile(sorted, 0.99);
    r.maxMs = sorted[sorted.length - 1] ?? Number.NaN;
    if (completed > 0) {
      r.seconds = (this.lastCompletion - t0) / 1000;
      r.rate = completed / r.seconds;
      const tenth = Math.floor(completed / 10);
      if (tenth >= 10) {
        r.firstTenthRate = tenth / (((completedAt[tenth - 1] ?? 0) - t0) / 1000);
        r.lastTenthRate =
          tenth / (((completedAt[completed - 1] ?? 0) - (completedAt[completed - 1 - tenth] ?? 0)) / 1000);
      }
    }
    if (!this.checking) {
      if (o.traceOut !== undefined) writeFileSync(o.traceOut, this.trace());
      if (o.leasesOut !== undefined) writeFileSync(o.leasesOut, this.leases());
    }
    this.resolve(r);
  }

  /** "MAC ADDRESS" per ACKed client; counts addresses ACKed to two clients on the way. */
  private leases(): string {
    const owners = new Map<number, number>();
    const lines: string[] = [];
    for (let i = 0; i < this.n; i++) {
      if (this.state[i] !== DONE) continue;
      const address = this.acked[i] ?? 0;
      const owner = owners.get(address);
      if (owner !== undefined && owner !== i) this.r.addressConflicts++;
      owners.set(address, i);
      lines.push(`${macText(this.macs[i] ?? new Uint8Array(6))} ${numberToIpv4(address)}`);
    }
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  private trace(): string {
    const t0 = this.t0;
    // The first line: the run's t0 as a wall-clock time (ms since the epoch), to line the trace up with a server's log.
    const rows = [`# t0 ${(performance.timeOrigin + t0).toFixed(3)}`, 'start,offer,ack'];
    const at = (x: number | undefined) => ((x ?? 0) - t0).toFixed(3);
    for (let k = 0; k < this.completed; k++) {
      const i = this.order[k] ?? 0;
      rows.push(`${at(this.startedAt[i])},${at(this.offeredAt[i])},${at(this.completedAt[k])}`);
    }
    return `${rows.join('\n')}\n`;
  }
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
