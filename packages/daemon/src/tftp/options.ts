/**
 * RFC 2347 option negotiation for read requests: pure, from the requested options and our limits to the values
 * the transfer uses and the OACK that announces them.
 *
 * What we do with each option, and why:
 * - Unknown options (e.g. RFC 2090 `multicast`) are left out of the OACK: RFC 2347 §"Option Negotiation" says
 *   options the server does not support "should be omitted from the OACK; they must not cause an ERROR packet".
 * - A known numeric option whose value is not a decimal number is not an option value any client produces; the
 *   whole request is treated as malformed (dropped and counted, like every other hostile datagram).
 * - RFC 2347 leaves the handling of an out-of-range value to each option's RFC, and RFC 2348/2349/7440 say only
 *   what the valid range is and that the OACK value of blksize and windowsize must be less than or equal to the
 *   requested one (and of timeout, equal to it). So:
 *   - a value above the range is clamped (blksize to 65464, windowsize to our maximum): the OACK then carries a
 *     smaller value, which those RFCs allow;
 *   - a value below the range (blksize < 8, windowsize 0, timeout 0) cannot be answered with a smaller value, so
 *     the option is declined (omitted from the OACK, RFC 2347) and the RFC 1350 default applies;
 *   - timeout must be echoed exactly (RFC 2349), so a timeout above 255 is declined too.
 * - blksize is also capped by our configured maximum and by what fits the MTU of the interface the transfer
 *   uses (RFC 2348 recommends avoiding IP fragmentation), so a 1500-byte Ethernet gets at most 1468.
 * - tsize in a read request is answered with the size of the file (RFC 2349), the netascii size in netascii mode;
 *   RFC 2349 says the client sends 0, but any decimal value gets the same answer.
 * - If no option is acknowledged the server answers as plain RFC 1350 with DATA block 1 (RFC 2347).
 */
import { MalformedPacket } from './packet.ts';

/** RFC 2348. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
export const DEFAULT_BLKSIZE = 512;
/** RFC 2349. */
export const MIN_TIMEOUT = 1;
export const MAX_TIMEOUT = 255;

const NUMERIC = new Set(['blksize', 'tsize', 'timeout', 'windowsize']);
const DECIMAL = /^[0-9]+$/;

export interface OptionLimits {
  /** config.tftp.maxBlksize. */
  maxBlksize: number;
  /** config.tftp.maxWindowsize. */
  maxWindowsize: number;
  /** The largest blksize that fits the MTU of the interface (blksizeForMtu), when known. */
  mtuBlksize?: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** The client's timeout in seconds, when it asked for one and we accepted it. */
  timeout?: number;
  /** What to put in the OACK, in the client's order; undefined when nothing was acknowledged (reply DATA 1). */
  oack?: ReadonlyMap<string, string>;
}

/** The largest blksize whose DATA datagram fits one packet: MTU - IP header - 8 (UDP) - 4 (TFTP). */
export function blksizeForMtu(mtu: number, family: 4 | 6): number {
  return mtu - (family === 4 ? 20 : 40) - 8 - 4;
}

/** A numeric option with a value that is not a decimal number, or undefined when every value is well formed. */
export function checkOptions(options: ReadonlyMap<string, string>): MalformedPacket | undefined {
  for (const [name, value] of options) {
    if (NUMERIC.has(name) && !DECIMAL.test(value)) {
      return new MalformedPacket('option-value', `${name}=${JSON.stringify(value.slice(0, 32))}`);
    }
  }
  return undefined;
}

/**
 * Decides the transfer parameters for a read request of a file of `size` bytes (as it will be sent: the
 * netascii size in netascii mode). Call checkOptions first; values it would refuse are declined here.
 */
export function negotiate(options: ReadonlyMap<string, string>, limits: OptionLimits, size: number): Negotiated {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeout: number | undefined;
  const oack = new Map<string, string>();
  for (const [name, value] of options) {
    if (!NUMERIC.has(name) || !DECIMAL.test(value)) continue;
    // Digits only, so Number() is exact up to 2^53 and Infinity beyond: both compare correctly below.
    const requested = Number(value);
    switch (name) {
      case 'blksize': {
        if (requested < MIN_BLKSIZE) break;
        let cap = Math.min(MAX_BLKSIZE, limits.maxBlksize);
        // An MTU too small to carry even the minimum block is not believable; ignore it rather than fail.
        if (limits.mtuBlksize !== undefined && limits.mtuBlksize >= MIN_BLKSIZE) cap = Math.min(cap, limits.mtuBlksize);
        blksize = Math.min(requested, cap);
        oack.set(name, String(blksize));
        break;
      }
      case 'windowsize': {
        if (requested < 1) break;
        windowsize = Math.min(requested, limits.maxWindowsize);
        oack.set(name, String(windowsize));
        break;
      }
      case 'timeout': {
        if (requested < MIN_TIMEOUT || requested > MAX_TIMEOUT) break;
        timeout = requested;
        oack.set(name, String(timeout));
        break;
      }
      case 'tsize':
        oack.set(name, String(size));
        break;
    }
  }
  if (oack.has('windowsize')) {
    // A window is sent as one burst; one the client's socket buffer cannot hold is partly dropped, and every
    // retransmission drops again. RFC 7440 §4 lets the OACK answer a smaller windowsize.
    windowsize = Math.min(windowsize, windowForReceiveBuffer(blksize));
    oack.set('windowsize', String(windowsize));
  }
  return {
    blksize,
    windowsize,
    ...(timeout === undefined ? {} : { timeout }),
    ...(oack.size === 0 ? {} : { oack }),
  };
}

/**
 * Bytes of a client's socket receive buffer a window may fill: Linux's default net.core.rmem_default is 212992;
 * a little is left for the client's own ACK traffic and for a second window arriving before it reads the first.
 */
const CLIENT_WINDOW_BUDGET = 196_608;

/**
 * What one DATA datagram costs the receiver's socket buffer (the kernel's truesize), measured with `ss -m` on
 * loopback: 2304 bytes for blksize 1468, 16640 for 8192, 66296 for 65464.
 */
function receiveCost(blksize: number): number {
  if (blksize <= 4096) return blksize + 836;
  if (blksize < 32_768) return 2 ** Math.ceil(Math.log2(blksize + 64)) + 256;
  return blksize + 832;
}

/** The largest window of blksize blocks a client with a default receive buffer takes without drops (at least 1). */
export function windowForReceiveBuffer(blksize: number): number {
  return Math.max(1, Math.floor(CLIENT_WINDOW_BUDGET / receiveCost(blksize)));
}
