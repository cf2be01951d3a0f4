import { IsoError } from './errors.ts';

/**
 * SUSP (System Use Sharing Protocol, IEEE P1281) and RRIP (Rock Ridge, IEEE P1282) entries from the System Use
 * area of a directory record and its continuation areas. Pure apart from the injected continuation reader.
 */

export interface RockRidge {
  /** NM: the POSIX name (all NM entries concatenated, as Linux does). */
  name?: string;
  /** SL: the symlink target, components joined with `/`; absolute when the first component is ROOT. */
  symlink?: string;
  /** PX: st_mode. */
  mode?: number;
  /** CL: this entry is a placeholder for a directory relocated to this block (deep directory relocation). */
  childLink?: number;
  /** PL: in a relocated directory's `..`, the block of its real parent. */
  parentLink?: number;
  /** RE: this directory is the relocated copy; it is shown only at its real place (through CL). */
  relocated: boolean;
  /** ZF (zisofs) or Z2 (zisofs2): the extent holds compressed data. */
  compressed?: { algorithm: string; size: number };
}

export interface RockRidgeOptions {
  /** LEN_SKP from the SP entry: bytes to skip at the start of every System Use area. */
  skip: number;
  /** Most continuation areas (CE) one record may chain through. */
  maxContinuations: number;
  /** Longest name and symlink target accepted, in bytes. */
  maxNameBytes: number;
  maxLinkBytes: number;
  /** For messages: which record this is. */
  what: string;
  /** Reads `length` bytes at `offset` within block `lba` (a CE continuation area). */
  continuation(lba: number, offset: number, length: number): Promise<Buffer>;
}

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

const BLOCK = 2048;

/** The SP entry that opens the root directory's `.` record announces SUSP; returns its LEN_SKP. */
export function sharingProtocolSkip(systemUse: Uint8Array): number | undefined {
  if (systemUse.length < 7) return undefined;
  const [s, p, length, , check1, check2, skip] = systemUse;
  if (s !== 0x53 || p !== 0x50 || length === undefined || length < 7) return undefined;
  if (check1 !== 0xbe || check2 !== 0xef) return undefined;
  return skip;
}

interface Accumulator {
  nameChunks: Buffer[];
  nameBytes: number;
  link?: { absolute: boolean; parts: Buffer[]; continued: boolean; bytes: number };
  result: RockRidge;
}

interface Continuation {
  lba: number;
  offset: number;
  length: number;
}

const FLAG_CONTINUE = 0x01;
const NM_CURRENT = 0x02;
const NM_PARENT = 0x04;
const NM_HOST = 0x20;
const SL_CURRENT = 0x02;
const SL_PARENT = 0x04;
const SL_ROOT = 0x08;
const SL_VOLROOT = 0x10;
const SL_HOST = 0x20;

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Two-letter signatures as 16-bit numbers: comparing bytes avoids a string per entry. */
const signature = (text: string) => (text.charCodeAt(0) << 8) | text.charCodeAt(1);
const ST = signature('ST');
const CE = signature('CE');
const NM = signature('NM');
const SL = signature('SL');
const PX = signature('PX');
const CL = signature('CL');
const PL = signature('PL');
const RE = signature('RE');
const ZF = signature('ZF');
const Z2 = signature('Z2');

/** Walks one System Use or continuation area; returns the CE it names (the last one), if any. */
function parseArea(area: Buffer, acc: Accumulator, options: RockRidgeOptions): Continuation | undefined {
  let continuation: Continuation | undefined;
  let at = 0;
  while (at + 4 <= area.length) {
    const length = area[at + 2] ?? 0;
    // A length that does not fit ends the area: trailing garbage is common and harmless; nothing is read past it.
    if (length < 4 || at + length > area.length) break;
    const entry = at;
    at += length;
    switch (((area[entry] ?? 0) << 8) | (area[entry + 1] ?? 0)) {
      case ST:
        return continuation;
      case CE:
        if (length >= 28) {
          continuation = {
            lba: area.readUInt32LE(entry + 4),
            offset: area.readUInt32LE(entry + 12),
            length: area.readUInt32LE(entry + 20),
          };
        }
        break;
      case NM: {
        if (length < 5) break;
        const flags = area[entry + 4] ?? 0;
        if (flags & (NM_CURRENT | NM_PARENT | NM_HOST)) break;
        acc.nameBytes += length - 5;
        if (acc.nameBytes > options.maxNameBytes) {
          throw new IsoError('limit', `${options.what}: Rock Ridge name longer than ${options.maxNameBytes} bytes`);
        }
        acc.nameChunks.push(area.subarray(entry + 5, entry + length));
        break;
      }
      case SL:
        if (length >= 5) symlinkComponents(area.subarray(entry + 5, entry + length), acc, options);
        break;
      case PX:
        if (length >= 12) acc.result.mode = area.readUInt32LE(entry + 4);
        break;
      case CL:
        if (length >= 12) acc.result.childLink = area.readUInt32LE(entry + 4);
        break;
      case PL:
        if (length >= 12) acc.result.parentLink = area.readUInt32LE(entry + 4);
        break;
      case RE:
        acc.result.relocated = true;
        break;
      case ZF:
      case Z2:
        acc.result.compressed = {
          algorithm: length >= 6 ? area.toString('latin1', entry + 4, entry + 6) : '?',
          size: length >= 12 ? area.readUInt32LE(entry + 8) : 0,
        };
        break;
      default:
        break; // RR, TF, ER, ES, PD, AL, SF, PN...: nothing the tree needs
    }
  }
  return continuation;
}

function symlinkComponents(components: Buffer, acc: Accumulator, options: RockRidgeOptions): void {
  const link = (acc.link ??= { absolute: false, parts: [], continued: false, bytes: 0 });
  let at = 0;
  while (at + 2 <= components.length) {
    const flags = components[at] ?? 0;
    const length = components[at + 1] ?? 0;
    if (at + 2 + length > components.length) break;
    const content = components.subarray(at + 2, at + 2 + length);
    at += 2 + length;
    let text: Buffer;
    if (flags & (SL_ROOT | SL_VOLROOT)) {
      link.absolute = true;
      link.parts = [];
      link.continued = false;
      continue;
    } else if (flags & SL_HOST) {
      continue;
    } else if (flags & SL_CURRENT) {
      text = DOT;
    } else if (flags & SL_PARENT) {
      text = DOTDOT;
    } else {
      text = content;
    }
    link.bytes += text.length + 1;
    if (link.bytes > options.maxLinkBytes) {
      throw new IsoError('limit', `${options.what}: symlink target longer than ${options.maxLinkBytes} bytes`);
    }
    const last = link.parts.length - 1;
    if (link.continued && last >= 0) link.parts[last] = Buffer.concat([link.parts[last] ?? Buffer.alloc(0), text]);
    else link.parts.push(text);
    link.continued = (flags & FLAG_CONTINUE) !== 0;
  }
}

function finish(acc: Accumulator): RockRidge {
  const result = acc.result;
  if (acc.nameChunks.length > 0) {
    const only = acc.nameChunks.length === 1 ? acc.nameChunks[0] : undefined;
    result.name = (only ?? Buffer.concat(acc.nameChunks)).toString('utf8');
  }
  if (acc.link) {
    const target = acc.link.parts.map((part) => part.toString('utf8')).join('/');
    result.symlink = acc.link.absolute ? `/${target}` : target;
  }
  return result;
}

/**
 * The Rock Ridge facts of one directory record, following CE continuation areas. A CE chain longer than
 * `maxContinuations`, one that returns to an area already read, or one that leaves its block is an IsoError.
 * Synchronous when the record needs no continuation area (nearly always): no promise per directory entry.
 */
export function parseRockRidge(systemUse: Buffer, options: RockRidgeOptions): RockRidge | Promise<RockRidge> {
  const acc: Accumulator = { nameChunks: [], nameBytes: 0, result: { relocated: false } };
  const next = parseArea(systemUse.subarray(Math.min(options.skip, systemUse.length)), acc, options);
  return next ? followContinuations(next, acc, options) : finish(acc);
}

async function followContinuations(
  first: Continuation,
  acc: Accumulator,
  options: RockRidgeOptions,
): Promise<RockRidge> {
  const seen = new Set<number>();
  let next: Continuation | undefined = first;
  for (let hops = 0; next; hops++) {
    if (hops >= options.maxContinuations) {
      throw new IsoError(
        'limit',
        `${options.what}: more than ${options.maxContinuations} Rock Ridge continuation areas`,
      );
    }
    if (next.offset + next.length > BLOCK || next.length === 0) {
      throw new IsoError(
        'malformed',
        `${options.what}: Rock Ridge continuation area (offset ${next.offset}, ${next.length} bytes) does not fit in one block`,
      );
    }
    const key = next.lba * BLOCK + next.offset;
    if (seen.has(key)) throw new IsoError('loop', `${options.what}: Rock Ridge continuation areas form a loop`);
    seen.add(key);
    next = parseArea(await options.continuation(next.lba, next.offset, next.length), acc, options);
  }
  return finish(acc);
}
