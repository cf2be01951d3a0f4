import { SECTOR } from './descriptors.ts';
import { IsoError } from './errors.ts';
import { u8 } from './fields.ts';
import { stripVersion } from './joliet.ts';

/** File flags of a directory record (ISO 9660 9.1.6). */
export const FLAG_HIDDEN = 0x01;
export const FLAG_DIRECTORY = 0x02;
export const FLAG_ASSOCIATED = 0x04;
export const FLAG_MULTI_EXTENT = 0x80;

// Records never cross a sector; a zero length byte means "the rest of this sector is padding".
const FIXED_PART = 33;

export interface DirectoryRecord {
  /** Byte offset of the record within its directory (for messages). */
  at: number;
  /** The record's length in bytes. */
  length: number;
  extentLba: number;
  dataLength: number;
  /** Blocks of extended attribute record in front of the data: the data starts this many blocks later. */
  extendedAttributeLength: number;
  flags: number;
  /** Non-zero for an interleaved file. */
  fileUnitSize: number;
  /** The raw file identifier: 0x00 is `.`, 0x01 is `..`. */
  identifier: Buffer;
  /** The System Use area (Rock Ridge lives here). */
  systemUse: Buffer;
}

/** Decodes the directory record at `at` (pure). Every length is checked against the record and the buffer. */
export function parseRecord(buffer: Buffer, at: number, what: string): DirectoryRecord {
  const length = u8(buffer, at, what);
  if (length < FIXED_PART + 1)
    throw new IsoError('malformed', `${what}: directory record of ${length} bytes is too short`);
  if (at + length > buffer.length) {
    throw new IsoError('malformed', `${what}: directory record at byte ${at} runs past the end of its directory`);
  }
  const nameLength = buffer[at + 32] ?? 0;
  if (FIXED_PART + nameLength > length) {
    throw new IsoError(
      'malformed',
      `${what}: file identifier of ${nameLength} bytes overflows its ${length}-byte record`,
    );
  }
  // A padding byte follows an identifier of even length, so the System Use area starts at an even offset.
  const systemUseAt = Math.min(length, FIXED_PART + nameLength + (nameLength % 2 === 0 ? 1 : 0));
  // Every field below lies in the first 33 bytes, which the checks above proved to be inside the buffer.
  return {
    at,
    length,
    extendedAttributeLength: buffer[at + 1] ?? 0,
    extentLba: buffer.readUInt32LE(at + 2),
    dataLength: buffer.readUInt32LE(at + 10),
    flags: buffer[at + 25] ?? 0,
    fileUnitSize: buffer[at + 26] ?? 0,
    identifier: buffer.subarray(at + FIXED_PART, at + FIXED_PART + nameLength),
    systemUse: buffer.subarray(at + systemUseAt, at + length),
  };
}

/** The records of a directory's extent, in order (pure). A record that does not fit is an IsoError. */
export function* parseDirectory(buffer: Buffer, what: string): Generator<DirectoryRecord> {
  let at = 0;
  while (at < buffer.length) {
    if (buffer[at] === 0) {
      at = (Math.floor(at / SECTOR) + 1) * SECTOR;
      continue;
    }
    const record = parseRecord(buffer, at, what);
    yield record;
    at += record.length;
  }
}

/** `.` and `..` are recorded as the single bytes 0x00 and 0x01. */
export function isSelfOrParent(identifier: Uint8Array): boolean {
  return identifier.length === 1 && (identifier[0] === 0 || identifier[0] === 1);
}

/**
 * A plain ISO 9660 (level 1-3) identifier as a name, the way Linux shows it with its default `map=normal`:
 * the `;1` version and a trailing dot removed, A-Z lower-cased, `/` (broken Acorn images) turned into `.`.
 * Lower case because d-characters are upper case by definition, so case carries no information, while every
 * installer and guide spells these paths in lower case (`casper/vmlinuz`, `isolinux/isolinux.bin`).
 */
export function isoName(identifier: Uint8Array): string {
  let text = Buffer.from(identifier).toString('latin1');
  const nul = text.indexOf('\0');
  if (nul !== -1) text = text.slice(0, nul);
  return foldCase(stripVersion(text)).replaceAll('/', '.');
}

/** ASCII-only lower-casing, the same both for names and for the paths looked up against them. */
export function foldCase(text: string): string {
  return text.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}
