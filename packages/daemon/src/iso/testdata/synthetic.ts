/**
 * Hand-built images for what xorriso will not produce on demand: UDF-only media, multi-extent files without
 * writing 4 GiB, hostile structures (loops, continuation cycles), mkisofs-style relocation. Each helper lays
 * out one ISO 9660 / SUSP / RRIP structure byte for byte; `Layout` places them at block addresses.
 */
import { open } from 'node:fs/promises';

export const BLOCK = 2048;

export function both16(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16LE(value, 0);
  bytes.writeUInt16BE(value, 2);
  return bytes;
}

export function both32(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt32LE(value, 0);
  bytes.writeUInt32BE(value, 4);
  return bytes;
}

export interface RecordSpec {
  /** The raw identifier: `\0` is `.`, `\x01` is `..`; strings are Latin-1. */
  name: string | Buffer;
  lba: number;
  size: number;
  flags?: number;
  systemUse?: Buffer;
  fileUnitSize?: number;
  extendedAttributeLength?: number;
}

export function record(spec: RecordSpec): Buffer {
  const name = typeof spec.name === 'string' ? Buffer.from(spec.name, 'latin1') : spec.name;
  const pad = name.length % 2 === 0 ? 1 : 0;
  const systemUse = spec.systemUse ?? Buffer.alloc(0);
  let length = 33 + name.length + pad + systemUse.length;
  if (length % 2 === 1) length++;
  if (length > 255) throw new Error(`record too long (${length})`);
  const bytes = Buffer.alloc(length);
  bytes[0] = length;
  bytes[1] = spec.extendedAttributeLength ?? 0;
  both32(spec.lba).copy(bytes, 2);
  both32(spec.size).copy(bytes, 10);
  bytes.set([125, 1, 1, 0, 0, 0, 0], 18); // 2025-01-01 00:00:00 UTC
  bytes[25] = spec.flags ?? 0;
  bytes[26] = spec.fileUnitSize ?? 0;
  both16(1).copy(bytes, 28);
  bytes[32] = name.length;
  name.copy(bytes, 33);
  systemUse.copy(bytes, 33 + name.length + pad);
  return bytes;
}

/** Packs records into sectors (a record never crosses one), padded to whole sectors. */
export function directory(records: Buffer[]): Buffer {
  const sectors: Buffer[] = [];
  let current = Buffer.alloc(BLOCK);
  let at = 0;
  for (const rec of records) {
    if (at + rec.length > BLOCK) {
      sectors.push(current);
      current = Buffer.alloc(BLOCK);
      at = 0;
    }
    rec.copy(current, at);
    at += rec.length;
  }
  sectors.push(current);
  return Buffer.concat(sectors);
}

function descriptor(type: number, identifier = 'CD001'): Buffer {
  const bytes = Buffer.alloc(BLOCK);
  bytes[0] = type;
  bytes.write(identifier, 1, 'latin1');
  bytes[6] = 1;
  return bytes;
}

export function primaryDescriptor(spec: { root: Buffer; blocks: number; volumeId?: string; blockSize?: number }) {
  const bytes = descriptor(1);
  bytes.write(''.padEnd(32), 8, 'latin1');
  bytes.write((spec.volumeId ?? 'SYNTHETIC').padEnd(32), 40, 'latin1');
  both32(spec.blocks).copy(bytes, 80);
  both16(1).copy(bytes, 120);
  both16(1).copy(bytes, 124);
  both16(spec.blockSize ?? BLOCK).copy(bytes, 128);
  spec.root.copy(bytes, 156);
  return bytes;
}

export function jolietDescriptor(spec: { root: Buffer; blocks: number; escapes?: string }) {
  const bytes = primaryDescriptor(spec);
  bytes[0] = 2;
  bytes.write(spec.escapes ?? '%/E', 88, 'latin1');
  return bytes;
}

export function bootRecordDescriptor(catalogLba: number): Buffer {
  const bytes = descriptor(0);
  bytes.write('EL TORITO SPECIFICATION', 7, 'latin1');
  bytes.writeUInt32LE(catalogLba, 71);
  return bytes;
}

export function terminatorDescriptor(): Buffer {
  return descriptor(255);
}

/** A descriptor of the UDF volume recognition sequence. */
export function vrsDescriptor(identifier: 'BEA01' | 'NSR02' | 'NSR03' | 'TEA01'): Buffer {
  const bytes = descriptor(0, identifier);
  return bytes;
}

/** SUSP and RRIP entries. */
function entry(signature: string, data: Buffer | number[] = []): Buffer {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const bytes = Buffer.alloc(4 + body.length);
  bytes.write(signature, 0, 'latin1');
  bytes[2] = bytes.length;
  bytes[3] = 1;
  body.copy(bytes, 4);
  return bytes;
}

export const susp = {
  sp: (skip = 0) => entry('SP', [0xbe, 0xef, skip]),
  nm: (name: string, flags = 0) => entry('NM', Buffer.concat([Buffer.from([flags]), Buffer.from(name)])),
  px: (mode: number) => entry('PX', Buffer.concat([both32(mode), both32(1), both32(0), both32(0)])),
  ce: (lba: number, offset: number, length: number) =>
    entry('CE', Buffer.concat([both32(lba), both32(offset), both32(length)])),
  cl: (lba: number) => entry('CL', both32(lba)),
  pl: (lba: number) => entry('PL', both32(lba)),
  re: () => entry('RE'),
  st: () => entry('ST'),
  zf: (size: number) => entry('ZF', Buffer.concat([Buffer.from('pz'), Buffer.from([4, 15]), both32(size)])),
  /** Components: text, or flags alone (2 current, 4 parent, 8 root); `continued` sets component flag 1. */
  sl: (components: { text?: string; flags?: number; continued?: boolean }[], flags = 0) =>
    entry(
      'SL',
      Buffer.concat([
        Buffer.from([flags]),
        ...components.map((c) => {
          const text = Buffer.from(c.text ?? '');
          return Buffer.concat([Buffer.from([(c.flags ?? 0) | (c.continued ? 1 : 0), text.length]), text]);
        }),
      ]),
    ),
};

/** Blocks placed at addresses; the image is as long as its last block (or `size`). */
export class Layout {
  readonly parts = new Map<number, Buffer>();

  place(lba: number, bytes: Buffer): this {
    this.parts.set(lba, bytes);
    return this;
  }

  size(): number {
    let end = 0;
    for (const [lba, bytes] of this.parts) end = Math.max(end, lba * BLOCK + bytes.length);
    return Math.ceil(end / BLOCK) * BLOCK;
  }

  toBuffer(size = this.size()): Buffer {
    const image = Buffer.alloc(size);
    for (const [lba, bytes] of this.parts) bytes.copy(image, lba * BLOCK);
    return image;
  }

  /** Writes a sparse file: only the placed blocks take disk space, so a multi-GiB image costs kilobytes. */
  async writeSparse(path: string, size = this.size()): Promise<void> {
    const handle = await open(path, 'w');
    try {
      await handle.truncate(size);
      for (const [lba, bytes] of this.parts) await handle.write(bytes, 0, bytes.length, lba * BLOCK);
    } finally {
      await handle.close();
    }
  }
}

/**
 * A plain ISO 9660 image: PVD at 16, terminator at 17 (plus `extraDescriptors` after it), root directory at
 * `rootLba` holding `records` after `.` and `..`. Callers place file data and further directories themselves.
 */
export function plainImage(
  records: Buffer[],
  options: { rootLba?: number; rootSystemUse?: Buffer; extraDescriptors?: Buffer[]; blocks?: number } = {},
): Layout {
  const rootLba = options.rootLba ?? 20;
  const probe = directory([
    record({
      name: '\0',
      lba: rootLba,
      size: 0,
      flags: 2,
      ...(options.rootSystemUse ? { systemUse: options.rootSystemUse } : {}),
    }),
    record({ name: '\x01', lba: rootLba, size: 0, flags: 2 }),
    ...records,
  ]);
  const rootSize = probe.length;
  const root = directory([
    record({
      name: '\0',
      lba: rootLba,
      size: rootSize,
      flags: 2,
      ...(options.rootSystemUse ? { systemUse: options.rootSystemUse } : {}),
    }),
    record({ name: '\x01', lba: rootLba, size: rootSize, flags: 2 }),
    ...records,
  ]);
  const layout = new Layout()
    .place(
      16,
      primaryDescriptor({
        root: record({ name: '\0', lba: rootLba, size: rootSize, flags: 2 }),
        blocks: options.blocks ?? 64,
      }),
    )
    .place(17, terminatorDescriptor());
  (options.extraDescriptors ?? []).forEach((bytes, i) => layout.place(18 + i, bytes));
  layout.place(rootLba, root);
  return layout;
}

/** A directory's own extent: `.` and `..` then the records. */
export function directoryExtent(lba: number, parentLba: number, records: Buffer[], selfSystemUse?: Buffer): Buffer {
  const build = (size: number, parentSize: number) =>
    directory([
      record({ name: '\0', lba, size, flags: 2, ...(selfSystemUse ? { systemUse: selfSystemUse } : {}) }),
      record({ name: '\x01', lba: parentLba, size: parentSize, flags: 2 }),
      ...records,
    ]);
  const size = build(0, 0).length;
  return build(size, BLOCK);
}
