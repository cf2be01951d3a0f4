import { MiB } from '../lib/stats.ts';
import type { ClientId } from './clients.ts';
import type { ServerId } from './servers.ts';

export const linkKinds = ['loopback', 'link'] as const;
export type LinkKind = (typeof linkKinds)[number];

export const linkTitles: Record<LinkKind, string> = {
  loopback: 'loopback',
  link: 'namespace link, +1 ms',
};

/** What is measured; --quick and the full run differ only in these lists (and the repeat threshold). */
export interface Matrix {
  links: LinkKind[];
  sizesMiB: number[];
  concurrency: number[];
  clients: ClientId[];
  blksizes: number[];
  windowsizes: number[];
  servers: ServerId[];
}

export const fullMatrix: Matrix = {
  links: ['loopback', 'link'],
  sizesMiB: [30, 300],
  concurrency: [1, 20],
  clients: ['curl', 'atftp'],
  blksizes: [512, 1468, 8192, 65464],
  windowsizes: [1, 4, 16, 64],
  servers: ['smeltd', 'tftpd-hpa', 'atftpd'],
};

export const quickMatrix: Matrix = {
  links: ['loopback', 'link'],
  sizesMiB: [30],
  concurrency: [1],
  clients: ['curl', 'atftp'],
  blksizes: [1468, 65464],
  windowsizes: [1, 16, 64],
  servers: ['smeltd', 'tftpd-hpa', 'atftpd'],
};

export interface Scenario {
  link: LinkKind;
  sizeMiB: number;
  bytes: number;
  clients: number;
  key: string;
  title: string;
}

export interface Combo {
  client: ClientId;
  blksize: number;
  /** What the client asks for; always 1 for curl, which has no windowsize option. */
  windowsize: number;
}

export function scenariosOf(matrix: Matrix): Scenario[] {
  const list: Scenario[] = [];
  for (const link of matrix.links) {
    for (const sizeMiB of matrix.sizesMiB) {
      for (const clients of matrix.concurrency) {
        list.push({
          link,
          sizeMiB,
          bytes: sizeMiB * MiB,
          clients,
          key: `${link}-${sizeMiB}MiB-x${clients}`,
          title: `${linkTitles[link]} · ${sizeMiB} MiB · ${clients === 1 ? '1 client' : `${clients} concurrent clients (aggregate)`}`,
        });
      }
    }
  }
  return list;
}

export function combosOf(matrix: Matrix): Combo[] {
  const list: Combo[] = [];
  for (const client of matrix.clients) {
    for (const blksize of matrix.blksizes) {
      const windows = client === 'curl' ? [1] : matrix.windowsizes;
      for (const windowsize of windows) list.push({ client, blksize, windowsize });
    }
  }
  return list;
}

/** The one-way delay the link adds, and the round trip lock-step TFTP then pays per block (measured here). */
export const LINK_DELAY_US = 1000;
const LINK_ROUND_TRIP_S = 1.5e-3;
/** Loopback lock-step: one block costs a round of two cross-CPU wake-ups and four system calls (split pinning). */
const LOOPBACK_ROUND_TRIP_S = 100e-6;
/** The default socket receive buffer (net.core.rmem_default) a client's window has to fit in. */
const CLIENT_RCVBUF = 212992;
/** Time a run whose windows overflow the client's buffer typically takes: atftp recovers on 5-s timeouts. */
const OVERFLOW_S = 8;

/**
 * What one DATA datagram of blksize takes from the receiver's socket buffer (its truesize), as `ss -m` shows on
 * loopback: 2304 bytes for 1468, 16640 for 8192, 66296 for 65464; on a 1500-byte link a large block arrives as
 * fragments of about 2304 each.
 */
function truesize(link: LinkKind, blksize: number): number {
  if (link === 'link' && blksize > 1472) return Math.ceil((blksize + 8) / 1480) * 2304;
  if (blksize <= 4096) return blksize + 836;
  if (blksize < 32768) return 2 ** Math.ceil(Math.log2(blksize + 64)) + 256;
  return blksize + 832;
}

/**
 * Rough seconds one run takes, from the agreed blksize and windowsize (a model fitted to tftpd-hpa and atftpd
 * here: a fixed cost per block and per byte, plus a round trip per window; windows that cannot fit the client's
 * socket buffer lose datagrams and wait for timeouts). Used to skip combinations that would take too long, for the
 * up-front estimate, and to bound each run; a run still has a hard time limit.
 */
export function estimateSeconds(link: LinkKind, bytes: number, clients: number, blksize: number, windowsize: number) {
  const fast = streamSeconds(link, bytes, clients, blksize, windowsize);
  const overflows = windowsize > 1 && windowsize * truesize(link, blksize) > CLIENT_RCVBUF;
  return overflows ? Math.max(fast, OVERFLOW_S) : fast;
}

function streamSeconds(link: LinkKind, bytes: number, clients: number, blksize: number, windowsize: number) {
  const blocks = Math.floor(bytes / blksize) + 1;
  const rounds = Math.ceil(blocks / windowsize);
  const cpuPerBlock = 12e-6 + blksize * 2.3e-9;
  if (link === 'loopback') {
    const one = rounds * LOOPBACK_ROUND_TRIP_S + blocks * cpuPerBlock;
    // Two CPUs: concurrent lock-step transfers overlap their round trips but share the cores.
    return clients === 1 ? one : (clients * one) / 1.5;
  }
  const one = rounds * LINK_ROUND_TRIP_S + blocks * cpuPerBlock;
  return clients === 1 ? one : Math.max(one, clients * blocks * cpuPerBlock * 1.5);
}
