/**
 * The TFTP server: the only part of tftp/ that touches sockets (DESIGN.md §5.2).
 *
 * Sockets. node:dgram has no IP_PKTINFO, so a socket bound to 0.0.0.0 cannot tell which local address a request
 * was sent to, and a reply from an unbound socket leaves by whatever address the routing table picks. So a
 * wildcard listen host (0.0.0.0 or ::) means one listening socket per local address of that family, found when
 * the server starts (addresses added later are not served until a restart), and each transfer gets its own
 * socket, on an ephemeral port (its TID, RFC 1350 §4), bound to the address its request arrived on. Transfer
 * sockets stay unconnected so that a datagram from anyone but the peer reaches us and can be answered with
 * ERROR 5 (RFC 1350: "an error packet should be sent to the source of the incorrect packet, while not disturbing
 * the transfer"); a connected socket would have the kernel drop it instead. Requests are refused, and busy
 * clients told so, from the listening socket.
 *
 * Admission. At most `maxTransfers` transfers run at once and `maxPerPeer` per client address. A request beyond
 * either waits, first come first served, in a queue of at most `maxQueue` (beyond that: ERROR 0 "server busy");
 * when a transfer ends the oldest waiting request whose client is under its own cap starts. A client repeats its
 * RRQ while it waits (RFC 1350 clients retransmit on timeout); the repeat only refreshes its place, as does a
 * repeat that arrives while its transfer is starting and has not yet heard from the client. A waiting request
 * not repeated for QUEUE_STALE_MS is taken to be abandoned and dropped when its turn comes.
 *
 * Windows in one syscall. A windowed transfer (windowsize > 1, blksize ≥ 512) gets a socket with UDP_SEGMENT set to
 * blksize + 4 (gso-socket.ts), and its Transfer hands each group of consecutive blocks to one send, up to 16
 * blocks (GSO_MAX_GROUP; the kernel takes 64 and 65507 bytes): one sendmsg instead of 16. The segments are the
 * negotiated DATA size, so the MTU cap on blksize holds. Where the kernel refuses the option the transfer uses an
 * ordinary socket; where it refuses a send on such a socket (EINVAL, EIO, EMSGSIZE: a path that cannot take it, such
 * as IPsec or a route MTU below the segment) the option is cleared once nothing waits in libuv's queue and the
 * transfer goes on with one block per send, at once sending again what was in flight; both are logged once per
 * server and counted (smelt_tftp_gso_fallbacks_total). Config `tftp.gso: false` turns it off.
 *
 * Waiting for ACKs. Transfer sockets are opened through libc when it can (gso-socket.ts), so their descriptor is
 * known; after an ACK that sent more blocks, while at most SPIN_MAX_ACTIVE transfers run, the handler polls the
 * socket for the next datagram for up to SPIN_BUDGET_MS before returning to the event loop (ack-spin.ts): on a
 * fast path the ACK is then read without the process going to sleep and being woken for it, which was a fifth
 * of each window's round trip at blksize 1468, windowsize 16 on loopback. Slow peers turn it off by themselves.
 * For a peer whose ACK comes later than that but within 20 ms, the wait starts from a timer shortly before the ACK
 * is due instead (ack-spin.ts, "far peers"): over the benchmark's 1 ms link it cut the window period by 2.5%
 * (windowsize 16) and 5% (64), at ~0.2-0.4 ms of polling per window. An ACK from the peer that a wait saw is then
 * read and handled at once, with a recv of our own (ack-reader.ts), rather than from the event loop after the
 * wait returns (node:dgram's way to our handler was ~38 µs of the ~50-60 µs from ACK to next window).
 *
 * Nothing a peer sends can throw out of a handler: every socket handler, timer and promise continuation is
 * wrapped, and an unexpected exception is logged and counted (smelt_tftp_internal_errors_total).
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { splitListen } from '../config/schema.ts';
import { explainBindError, ListenError } from '../listen.ts';
import type { Counter, Gauge, Metrics } from '../metrics.ts';
import { PathRefusedError } from '../tree/tree.ts';
import type { FileTree, Peer, TreeFile } from '../tree/tree.ts';
import { peekReady } from '../net/libc.ts';
import { AckReader } from './ack-reader.ts';
import { AckSpin } from './ack-spin.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { MAX_GSO_BYTES, MAX_SEGMENTS, openUdpSocket, setSegmentSize } from './gso-socket.ts';
import { netasciiSource } from './netascii.ts';
import type { ByteSource } from './netascii.ts';
import { blksizeForMtu, checkOptions, negotiate } from './options.ts';
import {
  ERR_ACCESS,
  ERR_ILLEGAL,
  ERR_NOT_FOUND,
  ERR_UNDEFINED,
  ERR_UNKNOWN_TID,
  MalformedPacket,
  OP_ACK,
  OP_ERROR,
  decode,
  encode,
  errorPacket,
} from './packet.ts';
import type { RequestPacket } from './packet.ts';
import { Transfer } from './transfer.ts';
import type { TransferEnd } from './transfer.ts';

export type { Clock } from './clock.ts';

export interface TftpServerOptions {
  config: Config['tftp'];
  tree: FileTree;
  log: Logger;
  metrics: Metrics;
  /** MTU of the interface holding `address`, when known (caps blksize: MTU - 20 IPv4/40 IPv6 - 8 UDP - 4 TFTP). */
  mtuFor?: (address: string) => number | undefined;
  /** Injected for tests; defaults to the real clock. */
  clock?: Clock;
  /** Tests only: called with the file descriptor of each transfer socket once UDP_SEGMENT is set on it. */
  onGsoSocket?: (fd: number) => void;
}

export interface RunningTftpServer {
  addresses: { address: string; port: number }[];
  close(): Promise<void>;
}

/** A queued request not repeated by its client for this long is taken to be abandoned. */
export const QUEUE_STALE_MS = 30_000;

/**
 * The bounded wait for an ACK (ack-spin.ts): only while at most this many transfers run, for at most
 * SPIN_BUDGET_MS per window, and never more than SPIN_MAX_STREAK windows in a row without the event loop going
 * round.
 */
const SPIN_MAX_ACTIVE = 2;
const SPIN_BUDGET_MS = 0.2;
const SPIN_MAX_STREAK = 16;

/** A timer for AckSpin's delayed waits; it does not keep the process alive. */
function delayedWait(ms: number, run: () => void): () => void {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => {
    clearTimeout(timer);
  };
}

/** Below this blksize a window gains little from GSO, and OACK or ERROR packets could exceed a segment. */
const GSO_MIN_BLKSIZE = 512;

/** Errors of a send on a GSO socket that mean the path cannot take GSO: clear it, one datagram per send. */
const GSO_REFUSED = new Set(['EINVAL', 'EIO', 'EMSGSIZE', 'EOPNOTSUPP']);

/**
 * Most blocks per GSO send, below the kernel's limits. The datagrams of one send reach the path at once, and a
 * receiver (or a delay line, a router's queue) gets them as one burst that it works through after the last has
 * come, where smaller groups let it start on the first while the next are on their way. Over the benchmark's 1 ms
 * link (blksize 1468, windowsize 64: a lone first block, then 44 + 19 or 16 + 16 + 16 + 15), interleaved with
 * atftpd, the window period was 1960 µs with groups of 16 against 1986 µs (atftpd 2006), and 2049 against 2211
 * (2091) on a noisier run; the delay line released the window's last block 397-437 µs late instead of 490-539.
 * A window of 16 goes out as before.
 */
const GSO_MAX_GROUP = 16;

/**
 * How many DATA blocks of `blksize` one GSO send may carry: 0 when GSO is not worth it (lock-step, small or
 * huge blocks: at blksize above 32749 two blocks exceed a datagram), or when a non-DATA packet sent on the
 * socket (`longest`: the OACK) would exceed one segment and be cut.
 */
export function gsoBlocks(blksize: number, windowsize: number, longest = 0): number {
  if (windowsize < 2 || blksize < GSO_MIN_BLKSIZE || longest > blksize + 4) return 0;
  const blocks = Math.min(MAX_SEGMENTS, GSO_MAX_GROUP, windowsize, Math.floor(MAX_GSO_BYTES / (blksize + 4)));
  return blocks >= 2 ? blocks : 0;
}

/** Socket send buffer asked for a transfer: two windows, within reason (the kernel caps it at wmem_max). */
const MAX_SEND_BUFFER = 8 * 1024 * 1024;

/**
 * MTU of the interface that holds an address, from os.networkInterfaces() and /sys/class/net/NAME/mtu. The table is
 * built on the first call and, once older than `ttlMs`, rebuilt right after the call that noticed (setImmediate),
 * which gets the table as it was: the rebuild (a netlink dump and a file per interface, ~0.5 ms) is never on a
 * request's way to its first answer. An MTU changed since is seen by the requests after that one; a transfer that
 * still used the old one has its datagrams fragmented by the kernel, not lost.
 */
export function interfaceMtuLookup(
  options: {
    ttlMs?: number;
    interfaces?: typeof networkInterfaces;
    readMtu?: (name: string) => number | undefined;
  } = {},
): (address: string) => number | undefined {
  const ttlMs = options.ttlMs ?? 10_000;
  const interfaces = options.interfaces ?? networkInterfaces;
  const readMtu =
    options.readMtu ??
    ((name: string) => {
      try {
        const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
        return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
      } catch {
        return undefined;
      }
    });
  let table: Map<string, number | undefined> | undefined;
  let builtAt = -Infinity;
  let rebuilding = false;
  const build = () => {
    const next = new Map<string, number | undefined>();
    for (const [name, infos] of Object.entries(interfaces())) {
      if (name.includes('/')) continue;
      const mtu = readMtu(name);
      for (const info of infos ?? []) next.set(info.address, mtu);
    }
    table = next;
    builtAt = Date.now();
  };
  return (address) => {
    if (!table) build();
    else if (!rebuilding && Date.now() - builtAt > ttlMs) {
      rebuilding = true;
      setImmediate(() => {
        rebuilding = false;
        try {
          build();
        } catch {
          builtAt = Date.now(); // keep the old table; try again after another ttlMs
        }
      });
    }
    return table?.get(withoutScope(address));
  };
}

function withoutScope(address: string): string {
  const percent = address.indexOf('%');
  return percent < 0 ? address : address.slice(0, percent);
}

/** Local addresses of one family; IPv6 link-local ones carry their interface as a scope (fe80::1%eth0). */
export function localAddresses(family: 4 | 6, interfaces: typeof networkInterfaces = networkInterfaces): string[] {
  const addresses: string[] = [];
  for (const [name, infos] of Object.entries(interfaces())) {
    for (const info of infos ?? []) {
      if (info.family !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
      addresses.push(family === 6 && info.scopeid ? `${info.address}%${name}` : info.address);
    }
  }
  return addresses;
}

/**
 * dgram passes every send's address through a lookup function (dns.lookup by default, which answers a tick
 * later); ours are literal addresses of a known family, so answer at once.
 */
function literalLookup(family: 4 | 6): NonNullable<dgram.SocketOptions['lookup']> {
  return (hostname: string, _options: unknown, callback: (error: null, address: string, family: number) => void) => {
    callback(null, hostname, family);
  };
}
const lookup4 = literalLookup(4);
const lookup6 = literalLookup(6);

function bindSocket(family: 4 | 6, address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({
      type: family === 4 ? 'udp4' : 'udp6',
      lookup: family === 4 ? lookup4 : lookup6,
    });
    const onError = (error: Error) => {
      try {
        socket.close();
      } catch {
        // never bound
      }
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => {
        resolve();
      });
    } catch {
      resolve(); // already closed
    }
  });
}

/** The ACK waits of a transfer, for its log line. */
function ackWaits(
  spin: AckSpin,
  reader: AckReader | undefined,
): { hits: number; misses: number; delayed: number; ms: number; read: number } {
  const { hits, misses, delayed, spentMs } = spin.stats;
  return { hits, misses, delayed, ms: Math.round(spentMs * 10) / 10, read: reader?.stats.taken ?? 0 };
}

function describePeer(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

interface Listener {
  socket: dgram.Socket;
  address: string;
  family: 4 | 6;
  port: number;
}

interface Request {
  key: string;
  listener: Listener;
  peer: Peer;
  packet: RequestPacket;
  heardAt: number;
}

interface Session {
  request: Request;
  log: Logger;
  socket?: dgram.Socket;
  transfer?: Transfer;
  /** Still waiting for the first ACK or ERROR from the client: repeats of its RRQ are ignored meanwhile. */
  fresh: boolean;
  reported: { bytes: number; retransmissions: number; batches: number; readSplits: number };
  spin?: AckSpin;
  reader?: AckReader;
}

interface TftpMetrics {
  requests: Counter;
  refused: Counter;
  dropped: Counter;
  started: Counter;
  completed: Counter;
  failed: Counter;
  bytes: Counter;
  retransmissions: Counter;
  internalErrors: Counter;
  sendErrors: Counter;
  gsoSends: Counter;
  readSplits: Counter;
  gsoFallbacks: Counter;
  active: Gauge;
  queued: Gauge;
}

function tftpMetrics(metrics: Metrics): TftpMetrics {
  return {
    requests: metrics.counter('smelt_tftp_requests_total', 'TFTP requests received, by opcode (rrq, wrq)'),
    refused: metrics.counter(
      'smelt_tftp_requests_refused_total',
      'TFTP requests answered with an error instead of a transfer, by reason',
    ),
    dropped: metrics.counter('smelt_tftp_packets_dropped_total', 'TFTP datagrams dropped, by reason'),
    started: metrics.counter('smelt_tftp_transfers_started_total', 'TFTP transfers started'),
    completed: metrics.counter('smelt_tftp_transfers_completed_total', 'TFTP transfers acknowledged to the end'),
    failed: metrics.counter('smelt_tftp_transfers_failed_total', 'TFTP transfers that ended early, by reason'),
    bytes: metrics.counter('smelt_tftp_bytes_sent_total', 'Bytes of datagrams sent by TFTP transfers'),
    retransmissions: metrics.counter('smelt_tftp_retransmissions_total', 'TFTP DATA blocks and OACKs sent again'),
    internalErrors: metrics.counter(
      'smelt_tftp_internal_errors_total',
      'Unexpected exceptions caught in the TFTP server (bugs)',
    ),
    sendErrors: metrics.counter('smelt_tftp_send_errors_total', 'TFTP datagrams the kernel refused to send'),
    gsoSends: metrics.counter(
      'smelt_tftp_gso_sends_total',
      'TFTP sends that carried several DATA blocks at once (UDP GSO, one syscall)',
    ),
    readSplits: metrics.counter(
      'smelt_tftp_windows_split_by_reads_total',
      'TFTP windows sent in two parts because the rest of their data was still being read (the disk did not keep up)',
    ),
    gsoFallbacks: metrics.counter(
      'smelt_tftp_gso_fallbacks_total',
      'TFTP transfers that could not use UDP GSO and sent one block per syscall, by reason',
    ),
    active: metrics.gauge('smelt_tftp_transfers_active', 'TFTP transfers in flight'),
    queued: metrics.gauge('smelt_tftp_transfers_queued', 'TFTP requests waiting for a transfer slot'),
  };
}

export async function startTftpServer(options: TftpServerOptions): Promise<RunningTftpServer> {
  const { config, tree } = options;
  const log = options.log;
  const clock = options.clock ?? systemClock;
  const mtuFor = options.mtuFor ?? interfaceMtuLookup();
  const m = tftpMetrics(options.metrics);
  const gsoWanted = config.gso;
  /** GSO trouble is logged once per server (then only counted): it is a property of the kernel or the path. */
  let gsoWarned = false;

  let stopped = false;
  const queue = new Map<string, Request>();
  const freshByKey = new Map<string, Session>();
  const sessions = new Set<Session>();
  const running = new Set<Promise<void>>();
  const perPeer = new Map<string, number>();
  let activeCount = 0;
  let busyLoggedAt = -Infinity;
  let busyUnlogged = 0;

  function internalError(error: unknown, what: string, context: object = {}): void {
    m.internalErrors.inc();
    log.error({ err: error, ...context }, `unexpected error ${what}`);
  }

  function drop(reason: string, peer: string, detail?: string): void {
    m.dropped.inc({ reason });
    if (log.isLevelEnabled('debug')) log.debug({ peer, reason, detail }, 'datagram dropped');
  }

  function refuse(request: Request, code: number, message: string, reason: string): void {
    m.refused.inc({ reason });
    try {
      request.listener.socket.send(errorPacket(code, message), request.peer.port, request.peer.address);
    } catch (error) {
      log.debug({ err: error }, 'could not send a refusal');
    }
  }

  // ---- listening sockets ----

  function onRequestDatagram(listener: Listener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    try {
      handleRequest(listener, msg, rinfo);
    } catch (error) {
      internalError(error, 'handling a request', { peer: describePeer(rinfo.address, rinfo.port) });
    }
  }

  function handleRequest(listener: Listener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (stopped) return;
    const peerText = describePeer(rinfo.address, rinfo.port);
    const packet = decode(msg);
    if (packet instanceof MalformedPacket) {
      drop(packet.reason, peerText, packet.message);
      return;
    }
    if (packet.op !== 'rrq' && packet.op !== 'wrq') {
      // DATA, ACK, ERROR or OACK to the request port: not a request, and never worth an answer.
      drop('unexpected-opcode', peerText, packet.op);
      return;
    }
    m.requests.inc({ op: packet.op });
    const request: Request = {
      key: `${rinfo.address}\0${rinfo.port}\0${packet.filename}`,
      listener,
      peer: { address: rinfo.address, port: rinfo.port },
      packet,
      heardAt: clock.now(),
    };
    if (packet.op === 'wrq') {
      log.info({ peer: peerText, file: packet.filename }, 'write request refused: the server is read-only');
      refuse(request, ERR_ACCESS, 'read-only server: write requests are refused', 'write');
      return;
    }
    if (packet.mode !== 'octet' && packet.mode !== 'netascii') {
      log.info({ peer: peerText, file: packet.filename, mode: packet.mode }, 'request refused: unsupported mode');
      refuse(request, ERR_ILLEGAL, `unsupported mode "${packet.mode}"`, 'mode');
      return;
    }
    const invalid = checkOptions(packet.options);
    if (invalid) {
      drop(invalid.reason, peerText, invalid.message);
      return;
    }
    const waiting = queue.get(request.key);
    if (waiting) {
      waiting.heardAt = request.heardAt;
      drop('duplicate-request', peerText);
      return;
    }
    if (freshByKey.has(request.key)) {
      drop('duplicate-request', peerText);
      return;
    }
    if (activeCount < config.maxTransfers && (perPeer.get(rinfo.address) ?? 0) < config.maxPerPeer) {
      begin(request);
    } else if (queue.size < config.maxQueue) {
      queue.set(request.key, request);
      m.queued.set(queue.size);
      log.debug({ peer: peerText, file: packet.filename, queued: queue.size }, 'request queued');
    } else {
      refuse(request, ERR_UNDEFINED, 'server busy, try again later', 'busy');
      // A storm beyond the queue would write a line per request: one a second, saying how many it stands for.
      const now = clock.now();
      if (now - busyLoggedAt >= 1000) {
        log.warn(
          { peer: peerText, file: packet.filename, queued: queue.size, alsoRefused: busyUnlogged },
          'request refused: the queue is full (server busy)',
        );
        busyLoggedAt = now;
        busyUnlogged = 0;
      } else {
        busyUnlogged++;
      }
    }
  }

  /** Starts waiting requests while there are free slots, oldest first, skipping clients at their own cap. */
  function drain(): void {
    if (stopped) return;
    const now = clock.now();
    for (const [key, request] of queue) {
      if (activeCount >= config.maxTransfers) break;
      if ((perPeer.get(request.peer.address) ?? 0) >= config.maxPerPeer) continue;
      queue.delete(key);
      if (now - request.heardAt > QUEUE_STALE_MS) {
        drop('queue-expired', describePeer(request.peer.address, request.peer.port));
        continue;
      }
      begin(request);
    }
    m.queued.set(queue.size);
  }

  // ---- transfers ----

  function begin(request: Request): void {
    const { address } = request.peer;
    activeCount++;
    perPeer.set(address, (perPeer.get(address) ?? 0) + 1);
    m.active.set(activeCount);
    const session: Session = {
      request,
      log: log.child({ peer: describePeer(address, request.peer.port), file: request.packet.filename }),
      fresh: true,
      reported: { bytes: 0, retransmissions: 0, batches: 0, readSplits: 0 },
    };
    sessions.add(session);
    freshByKey.set(request.key, session);
    const run = serve(session)
      .catch((error: unknown) => {
        internalError(error, 'serving a transfer', { peer: describePeer(address, request.peer.port) });
      })
      .finally(() => {
        running.delete(run);
        sessions.delete(session);
        heard(session);
        activeCount--;
        const count = (perPeer.get(address) ?? 1) - 1;
        if (count > 0) perPeer.set(address, count);
        else perPeer.delete(address);
        m.active.set(activeCount);
        drain();
      });
    running.add(run);
  }

  function gsoFallback(session: Session, reason: string, error: unknown): void {
    m.gsoFallbacks.inc({ reason });
    if (gsoWarned) {
      if (session.log.isLevelEnabled('debug'))
        session.log.debug({ err: error, reason }, 'no UDP GSO for this transfer');
      return;
    }
    gsoWarned = true;
    session.log.warn(
      { err: error, reason },
      'UDP GSO unavailable: windows are sent one datagram per syscall (logged once; see smelt_tftp_gso_fallbacks_total)',
    );
  }

  /**
   * The transfer's socket, on the address the request arrived on, opened through libc so that its file
   * descriptor is known (`fd`: for the wait for ACKs, ack-spin.ts); with `blocks` > 0 it also gets UDP_SEGMENT =
   * blksize + 4 so a window can go out in one send (`segmented`). Where libc cannot open it, a dgram socket.
   */
  async function transferSocket(
    session: Session,
    blksize: number,
    blocks: number,
  ): Promise<{ socket: dgram.Socket; fd?: number; segmented: boolean }> {
    const { listener } = session.request;
    let opened: { socket: dgram.Socket; fd: number };
    try {
      opened = await openUdpSocket(listener.family, listener.address, listener.family === 4 ? lookup4 : lookup6);
    } catch (error) {
      // libc or koffi unusable here; an address that cannot be bound fails the same way with dgram below.
      if (blocks > 0) gsoFallback(session, 'socket', error);
      return { socket: await bindSocket(listener.family, listener.address, 0), segmented: false };
    }
    if (blocks === 0) return { ...opened, segmented: false };
    const refused = setSegmentSize(opened.fd, blksize + 4);
    if (refused) {
      gsoFallback(session, 'setsockopt', refused);
      return { ...opened, segmented: false };
    }
    options.onGsoSocket?.(opened.fd);
    return { ...opened, segmented: true };
  }

  function heard(session: Session): void {
    if (!session.fresh) return;
    session.fresh = false;
    if (freshByKey.get(session.request.key) === session) freshByKey.delete(session.request.key);
  }

  function report(session: Session): void {
    const stats = session.transfer?.stats;
    if (!stats) return;
    const bytes = stats.bytes - session.reported.bytes;
    const retransmissions = stats.retransmissions - session.reported.retransmissions;
    const batches = stats.batches - session.reported.batches;
    if (bytes > 0) m.bytes.inc(undefined, bytes);
    if (retransmissions > 0) m.retransmissions.inc(undefined, retransmissions);
    const readSplits = stats.readSplits - session.reported.readSplits;
    if (batches > 0) m.gsoSends.inc(undefined, batches);
    if (readSplits > 0) m.readSplits.inc(undefined, readSplits);
    session.reported = {
      bytes: stats.bytes,
      retransmissions: stats.retransmissions,
      batches: stats.batches,
      readSplits: stats.readSplits,
    };
  }

  async function open(session: Session): Promise<TreeFile | undefined> {
    const { request } = session;
    try {
      const file = await tree.resolve(request.packet.filename, request.peer);
      if (!file) {
        session.log.info('request refused: file not found');
        refuse(request, ERR_NOT_FOUND, 'file not found', 'not-found');
      }
      return file;
    } catch (error) {
      if (error instanceof PathRefusedError) {
        session.log.warn({ reason: error.reason }, 'request refused: access violation');
        refuse(request, ERR_ACCESS, `access violation: ${error.reason}`, 'access');
      } else {
        session.log.error({ err: error }, 'request failed: the file could not be opened');
        refuse(request, ERR_UNDEFINED, 'cannot open the file', 'error');
      }
      return undefined;
    }
  }

  async function serve(session: Session): Promise<void> {
    const file = await open(session);
    if (!file) return;
    try {
      if (stopped) return;
      await transfer(session, file);
    } finally {
      if (session.socket) await closeSocket(session.socket);
      try {
        await file.close();
      } catch (error) {
        session.log.warn({ err: error }, 'closing the file failed');
      }
    }
  }

  async function transfer(session: Session, file: TreeFile): Promise<void> {
    const { request } = session;
    const { listener, peer, packet } = request;
    let source: ByteSource;
    try {
      source = packet.mode === 'netascii' ? await netasciiSource(file) : file;
    } catch (error) {
      session.log.error({ err: error }, 'request failed: the file could not be read');
      refuse(request, ERR_UNDEFINED, 'cannot read the file', 'error');
      return;
    }
    const mtu = mtuFor(listener.address);
    const negotiated = negotiate(
      packet.options,
      {
        maxBlksize: config.maxBlksize,
        maxWindowsize: config.maxWindowsize,
        ...(mtu === undefined ? {} : { mtuBlksize: blksizeForMtu(mtu, listener.family) }),
      },
      source.size,
    );
    const oack = negotiated.oack ? encode({ op: 'oack', options: negotiated.oack }) : undefined;
    const blocks = gsoWanted ? gsoBlocks(negotiated.blksize, negotiated.windowsize, oack?.length) : 0;
    let socket: dgram.Socket;
    let fd: number | undefined;
    let segmented: boolean;
    try {
      ({ socket, fd, segmented } = await transferSocket(session, negotiated.blksize, blocks));
    } catch (error) {
      session.log.error({ err: error, address: listener.address }, 'request failed: no socket for the transfer');
      refuse(request, ERR_UNDEFINED, 'server error', 'error');
      return;
    }
    session.socket = socket;
    if (stopped) return;
    try {
      const wanted = Math.min(MAX_SEND_BUFFER, 2 * negotiated.windowsize * (negotiated.blksize + 4));
      if (wanted > socket.getSendBufferSize()) socket.setSendBufferSize(wanted);
    } catch {
      // A larger buffer only saves queueing in libuv.
    }
    const startedAt = clock.now();
    /** on: UDP_SEGMENT set; draining: a send was refused for its sake, clearing it; off: never set, or cleared. */
    let gso: 'on' | 'draining' | 'off' = segmented ? 'on' : 'off';
    await new Promise<void>((resolve) => {
      const transfer = new Transfer({
        source,
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        ...(oack ? { oack } : {}),
        timeoutMs: (negotiated.timeout ?? config.timeout) * 1000,
        retries: config.retries,
        clock,
        // Unconnected, so that strangers reach us (see the top of this file). Measured against a second socket
        // on the same port connected to the peer, the route lookup this costs per datagram did not show.
        // While UDP_SEGMENT is set, any send may be refused for its sake (the kernel checks the path for every
        // send on such a socket, segmented or not), so each one says how it went until the option is cleared.
        send: (head, payload) => {
          const data = payload ? [head, payload] : head;
          if (gso === 'off') socket.send(data, peer.port, peer.address);
          else socket.send(data, peer.port, peer.address, onSent);
        },
        ...(!segmented
          ? {}
          : {
              blocksPerSend: blocks,
              sendBlocks: (parts: Buffer[]) => {
                socket.send(parts, peer.port, peer.address, onSent);
              },
            }),
        sendsSettled: () => socket.getSendQueueCount() === 0,
        leadBlocks: 1,
        progress: () => {
          report(session);
        },
        done: (end) => {
          session.spin?.stop(); // before the socket closes: a delayed wait polls it
          try {
            finished(session, end, source.size, clock.now() - startedAt, negotiated);
          } catch (error) {
            internalError(error, 'ending a transfer');
          }
          resolve();
        },
      });
      session.transfer = transfer;
      function onSent(error: Error | null): void {
        if (!error) return;
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (gso !== 'on' || !GSO_REFUSED.has(code) || fd === undefined) {
          m.sendErrors.inc(); // loss, as for any datagram
          return;
        }
        gso = 'draining';
        gsoFallback(session, 'send', error);
        clearWhenDrained(fd);
      }
      /**
       * Clears UDP_SEGMENT once no send waits in libuv's queue (one queued with the option cleared would leave
       * as a single datagram of many blocks), then has the transfer go on one block per send, sending again at
       * once whatever was in flight: the refused sends delivered nothing.
       */
      function clearWhenDrained(descriptor: number): void {
        try {
          if (transfer.finished) return;
          if (socket.getSendQueueCount() > 0) {
            setTimeout(() => {
              clearWhenDrained(descriptor);
            }, 1);
            return;
          }
          const refused = setSegmentSize(descriptor, 0);
          if (refused) {
            session.log.error({ err: refused }, 'transfer failed: UDP_SEGMENT could not be cleared');
            transfer.cancel('UDP_SEGMENT could not be cleared', 'server error');
            return;
          }
          gso = 'off';
          transfer.sendSeparately();
        } catch (error) {
          internalError(error, 'falling back from GSO');
        }
      }
      const reader = ((): AckReader | undefined => {
        try {
          return fd === undefined ? undefined : new AckReader(fd, listener.family, peer.address, peer.port);
        } catch (error) {
          internalError(error, 'preparing to read ACKs');
          return undefined;
        }
      })();
      let spin =
        fd === undefined
          ? undefined
          : new AckSpin({
              ready: reader ? () => reader.peek() : () => peekReady(fd),
              now: () => performance.now(),
              budgetMs: SPIN_BUDGET_MS,
              maxStreak: SPIN_MAX_STREAK,
              later: delayedWait,
              arrived: () => {
                awaitAcks(true);
              },
            });
      session.spin = spin;
      session.reader = reader;
      /** One bounded wait for the next ACK, when one is awaited and waits are on; true if a datagram came. */
      function waitOnce(): boolean {
        return spin !== undefined && activeCount <= SPIN_MAX_ACTIVE && transfer.awaitingAck && spin.wait();
      }
      /**
       * After a datagram was handled (or a delayed wait saw one: `arrived`): while an ACK is awaited, waits for it
       * (bounded, ack-spin.ts) and, when what came is the peer's ACK, reads and handles it here (ack-reader.ts),
       * then waits for the next. Anything else, and every ACK the wait did not see, comes through node:dgram.
       * The wait's streak limit ends the loop after SPIN_MAX_STREAK windows, so the event loop still goes round.
       */
      function awaitAcks(arrived: boolean): void {
        try {
          if (!arrived && !waitOnce()) return;
          while (spin && reader) {
            const block = reader.take();
            if (block === undefined) return;
            spin.heard();
            heard(session);
            transfer.onAck(block);
            if (!waitOnce()) return;
          }
        } catch (error) {
          spin = undefined;
          internalError(error, 'waiting for an ACK');
        }
      }
      socket.on('message', (msg, rinfo) => {
        if (spin && rinfo.port === peer.port && rinfo.address === peer.address) spin.heard();
        onTransferDatagram(session, transfer, socket, msg, rinfo);
        awaitAcks(false);
      });
      socket.on('error', (error) => {
        // Asynchronous send failures (a firewall rejecting a datagram, a full buffer): loss, which the
        // protocol recovers from; a transfer that can send nothing at all ends by its timeout.
        m.sendErrors.inc();
        if (session.log.isLevelEnabled('debug')) session.log.debug({ err: error }, 'send failed');
      });
      m.started.inc();
      session.log.debug(
        {
          size: source.size,
          blksize: negotiated.blksize,
          windowsize: negotiated.windowsize,
          gsoBlocks: segmented ? blocks : 0,
          oack: negotiated.oack ? Object.fromEntries(negotiated.oack) : undefined,
          local: describePeer(listener.address, socket.address().port),
        },
        'transfer started',
      );
      transfer.start();
    });
  }

  function finished(
    session: Session,
    end: TransferEnd,
    size: number,
    ms: number,
    negotiated: { blksize: number; windowsize: number },
  ): void {
    report(session);
    const stats = session.transfer?.stats;
    const facts = {
      size,
      ms: Math.round(ms),
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      retransmissions: stats?.retransmissions ?? 0,
      ...(session.spin ? { ackWaits: ackWaits(session.spin, session.reader) } : {}),
    };
    if (end.ok) {
      m.completed.inc();
      session.log.info(
        { ...facts, mibps: ms > 0 ? Math.round((size / 1048576 / (ms / 1000)) * 10) / 10 : undefined },
        'transfer complete',
      );
      return;
    }
    m.failed.inc({ reason: end.reason });
    const detail = { ...facts, delivered: stats?.delivered ?? 0, reason: end.reason, detail: end.detail };
    switch (end.reason) {
      case 'peer-error':
        // OVMF reads tsize this way on every boot: an ordinary event.
        session.log.info(detail, 'transfer ended by the client');
        break;
      case 'cancelled':
        session.log.debug(detail, 'transfer cancelled');
        break;
      case 'timeout':
        session.log.warn(detail, 'transfer abandoned: the client stopped answering');
        break;
      default:
        session.log.error(detail, 'transfer failed');
    }
  }

  function onTransferDatagram(
    session: Session,
    transfer: Transfer,
    socket: dgram.Socket,
    msg: Buffer,
    rinfo: dgram.RemoteInfo,
  ): void {
    try {
      const { peer } = session.request;
      if (rinfo.port !== peer.port || rinfo.address !== peer.address) {
        foreign(socket, msg, rinfo);
        return;
      }
      // The hot path: an ACK, without building a packet object.
      if (msg.length >= 4 && msg.readUInt16BE(0) === OP_ACK) {
        heard(session);
        transfer.onAck(msg.readUInt16BE(2));
        return;
      }
      const packet = decode(msg);
      if (packet instanceof MalformedPacket) {
        drop(packet.reason, describePeer(rinfo.address, rinfo.port), packet.message);
      } else if (packet.op === 'error') {
        heard(session);
        transfer.onError(packet.code, packet.message);
      } else {
        drop('unexpected-opcode', describePeer(rinfo.address, rinfo.port), packet.op);
      }
    } catch (error) {
      internalError(error, 'handling a transfer datagram', { peer: describePeer(rinfo.address, rinfo.port) });
    }
  }

  /** A datagram from someone other than the transfer's peer: ERROR 5 to the sender, the transfer untouched. */
  function foreign(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const peerText = describePeer(rinfo.address, rinfo.port);
    drop('unknown-tid', peerText);
    // Never answer an ERROR (two servers could bounce errors forever), nor what is not TFTP at all.
    if (msg.length < 4 || msg.readUInt16BE(0) === OP_ERROR) return;
    socket.send(errorPacket(ERR_UNKNOWN_TID, 'Unknown transfer ID'), rinfo.port, rinfo.address);
  }

  // ---- start ----

  const listeners = await listen(config.listen, onRequestDatagram, log);
  log.info(
    { listen: config.listen, addresses: listeners.map((l) => describePeer(l.address, l.port)) },
    'tftp listening',
  );

  return {
    addresses: listeners.map((l) => ({ address: l.address, port: l.port })),
    async close() {
      if (stopped) return;
      stopped = true;
      queue.clear();
      m.queued.set(0);
      await Promise.all(listeners.map((l) => closeSocket(l.socket)));
      for (const session of sessions) session.transfer?.cancel('the server is stopping', 'server shutting down');
      await Promise.all([...running]);
    },
  };
}

/** Binds the listening sockets for HOST:PORT; a wildcard host means every local address of its family. */
async function listen(
  text: string,
  onDatagram: (listener: Listener, msg: Buffer, rinfo: dgram.RemoteInfo) => void,
  log: Logger,
): Promise<Listener[]> {
  const { host, port } = splitListen(text);
  const fail = (detail: string) => new ListenError(`cannot listen on ${text} for the TFTP server: ${detail}`);
  let family: 4 | 6;
  let hosts: string[];
  const wildcard = host === '0.0.0.0' || host === '::';
  if (wildcard) {
    family = host === '::' ? 6 : 4;
    hosts = localAddresses(family);
    if (hosts.length === 0) throw fail(`this host has no IPv${family} address`);
  } else if (isIP(withoutScope(host))) {
    family = isIP(withoutScope(host)) === 6 ? 6 : 4;
    hosts = [host];
  } else {
    try {
      const found = await dnsLookup(host);
      family = found.family === 6 ? 6 : 4;
      hosts = [found.address];
    } catch {
      throw fail(`cannot resolve "${host}"`);
    }
  }
  // With port 0 the first socket picks the port and the others must get the same one; another program may
  // hold it on some address, so try a few times.
  for (let attempt = 0; ; attempt++) {
    const bound: Listener[] = [];
    let chosen = port;
    try {
      for (const address of hosts) {
        let socket: dgram.Socket;
        try {
          socket = await bindSocket(family, address, chosen);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // A wildcard listen skips addresses that cannot be bound (an IPv6 address still in duplicate address
          // detection); a named address must work.
          if (wildcard && code === 'EADDRNOTAVAIL') {
            log.warn({ address, listen: text }, 'tftp cannot listen on this local address; skipped');
            continue;
          }
          if (port === 0 && bound.length > 0 && code === 'EADDRINUSE' && attempt < 5) throw new RetryBind();
          throw fail(`${wildcard ? `${describePeer(address, chosen)}: ` : ''}${explainBindError(code, chosen)}`);
        }
        chosen = socket.address().port;
        const listener: Listener = { socket, address, family, port: chosen };
        socket.on('message', (msg, rinfo) => {
          onDatagram(listener, msg, rinfo);
        });
        socket.on('error', (error) => {
          log.warn({ err: error, address }, 'tftp listening socket error');
        });
        bound.push(listener);
      }
      if (bound.length === 0) throw fail('no local address could be bound');
      return bound;
    } catch (error) {
      await Promise.all(bound.map((l) => closeSocket(l.socket)));
      if (!(error instanceof RetryBind)) throw error;
    }
  }
}

class RetryBind extends Error {}
