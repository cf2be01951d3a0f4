/**
 * Why an ISO could not be read. Every problem with an image — a malformed or hostile structure, a limit reached,
 * a format we do not read — surfaces as an IsoError with a code and a message an operator can act on; nothing
 * else escapes the reader for a bad image (I/O errors from the host are wrapped too).
 */
export type IsoErrorCode =
  /** Not an ISO 9660 image at all (no primary volume descriptor). */
  | 'not_iso'
  /** A UDF-only image (Windows installation media): we read ISO 9660 only. */
  | 'udf'
  /** A zisofs-compressed file: its extents hold compressed data, so it cannot be served by byte range. */
  | 'zisofs'
  /** A structure we recognise but do not read (interleaved files, other block sizes). */
  | 'unsupported'
  /** A field that points outside the image or contradicts the format. */
  | 'malformed'
  /** A structure that refers back to itself: a directory loop, a Rock Ridge continuation cycle, a symlink loop. */
  | 'loop'
  /** More entries, depth or bytes than the limits allow. */
  | 'limit'
  /** A symlink inside the ISO whose target climbs out of the ISO's root. */
  | 'escape'
  /** The image file could not be opened or read, or was used after close. */
  | 'io';

export class IsoError extends Error {
  readonly code: IsoErrorCode;

  constructor(code: IsoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IsoError';
    this.code = code;
  }
}

export const ZISOFS_MESSAGE = 'zisofs-compressed file: not supported; rebuild the ISO without zisofs';
export const UDF_MESSAGE = 'UDF-only image (Windows ISOs): not supported';
