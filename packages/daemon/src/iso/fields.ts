import { IsoError } from './errors.ts';

/**
 * Bounds-checked readers for the numeric fields of ISO 9660 structures. A field that would lie outside its
 * buffer is an IsoError('malformed') naming the structure, never a RangeError. "Both-endian" fields (ISO 9660
 * 7.2.3 / 7.3.3) are read from their little-endian half, as Linux does: some mastering tools get the other wrong.
 */

export function need(buffer: Uint8Array, at: number, length: number, what: string): void {
  if (!Number.isInteger(at) || at < 0 || at + length > buffer.length) {
    throw new IsoError(
      'malformed',
      `${what}: field at byte ${at} (${length} bytes) is outside its ${buffer.length}-byte structure`,
    );
  }
}

export function u8(buffer: Uint8Array, at: number, what: string): number {
  const value = buffer[at];
  if (value === undefined) need(buffer, at, 1, what);
  return value ?? 0;
}

export function le16(buffer: Buffer, at: number, what: string): number {
  need(buffer, at, 2, what);
  return buffer.readUInt16LE(at);
}

export function le32(buffer: Buffer, at: number, what: string): number {
  need(buffer, at, 4, what);
  return buffer.readUInt32LE(at);
}

/** A both-endian 16-bit field (4 bytes: LE then BE). */
export function both16(buffer: Buffer, at: number, what: string): number {
  need(buffer, at, 4, what);
  return buffer.readUInt16LE(at);
}

/** A both-endian 32-bit field (8 bytes: LE then BE). */
export function both32(buffer: Buffer, at: number, what: string): number {
  need(buffer, at, 8, what);
  return buffer.readUInt32LE(at);
}

/** A space- or NUL-padded character field, trimmed. Bytes are read as Latin-1: a-/d-characters are ASCII. */
export function paddedText(buffer: Buffer, at: number, length: number, what: string): string {
  need(buffer, at, length, what);
  return buffer.toString('latin1', at, at + length).replace(/[\0 ]+$/, '');
}
