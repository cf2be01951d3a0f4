/**
 * netascii (RFC 1350, which defers to the Telnet NVT of RFC 764): line ends go on the wire as CR LF and a bare
 * CR as CR NUL. The files we serve are Unix files, so each LF becomes CR LF and each CR becomes CR NUL: a
 * byte-by-byte mapping with no state, which is what tftpd-hpa does too. RFC 2349's tsize for a netascii transfer
 * is the converted size, so a netascii file is scanned once before its transfer starts.
 */
import type { TreeFile } from '../tree/tree.ts';

const LF = 0x0a;
const CR = 0x0d;

/** The size of `bytes` once converted. */
export function netasciiLength(bytes: Uint8Array): number {
  let extra = 0;
  for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) extra++;
  for (let at = bytes.indexOf(CR); at >= 0; at = bytes.indexOf(CR, at + 1)) extra++;
  return bytes.length + extra;
}

/** Converts local text to netascii. */
export function toNetascii(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(netasciiLength(bytes));
  let to = 0;
  for (const byte of bytes) {
    if (byte === LF) {
      out[to++] = CR;
      out[to++] = LF;
    } else if (byte === CR) {
      out[to++] = CR;
      out[to++] = 0;
    } else {
      out[to++] = byte;
    }
  }
  return out;
}

/** What a transfer reads: a size and positioned reads (a TreeFile, or a converted view of one). */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Fills `target` from `offset` and resolves how many bytes it wrote (fewer only at the end). When a source has
   * it, a transfer reads into buffers it reuses instead of allocating one per read.
   */
  readInto?(target: Uint8Array, offset: number): Promise<number>;
}

const SCAN_CHUNK = 256 * 1024;

/**
 * A netascii view of a file: scans it once for its converted size, then serves reads in order. A transfer reads
 * strictly sequentially, one read at a time, which is all this supports (anything else rejects).
 */
export async function netasciiSource(file: TreeFile): Promise<ByteSource> {
  let size = 0;
  for (let offset = 0; offset < file.size;) {
    const chunk = await file.read(offset, Math.min(SCAN_CHUNK, file.size - offset));
    if (chunk.length === 0) break;
    size += netasciiLength(chunk);
    offset += chunk.length;
  }
  let produced = 0; // output bytes returned so far
  let consumed = 0; // input bytes converted so far
  let pending: Buffer = Buffer.alloc(0); // converted, not yet returned
  return {
    size,
    async read(offset, length) {
      if (offset !== produced) throw new Error(`netascii reads are sequential: asked ${offset}, at ${produced}`);
      while (pending.length < length && consumed < file.size) {
        const raw = await file.read(consumed, Math.min(SCAN_CHUNK, file.size - consumed));
        if (raw.length === 0) break;
        consumed += raw.length;
        pending = pending.length === 0 ? toNetascii(raw) : Buffer.concat([pending, toNetascii(raw)]);
      }
      const out = pending.subarray(0, length);
      pending = pending.subarray(out.length);
      produced += out.length;
      return out;
    },
  };
}
