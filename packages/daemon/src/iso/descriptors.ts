import { IsoError, UDF_MESSAGE } from './errors.ts';
import { both16, both32, le32, need, paddedText, u8 } from './fields.ts';
import { readRange, type Image } from './image.ts';
import { jolietLevel } from './joliet.ts';

/** Volume descriptors sit in 2048-byte sectors from sector 16 (ISO 9660 6.2.1), whatever the block size. */
export const SECTOR = 2048;
const FIRST_DESCRIPTOR = 16;
const ROOT_RECORD_AT = 156;
const ROOT_RECORD_LENGTH = 34;

export interface PrimaryVolume {
  volumeId: string;
  systemId: string;
  /** Logical blocks in the volume, as recorded (the file may be longer: appended partitions, padding). */
  volumeSpaceSize: number;
  /** The 34-byte directory record of the root directory. */
  root: Buffer;
}

export interface JolietVolume {
  level: 1 | 2 | 3;
  root: Buffer;
}

export interface VolumeDescriptors {
  primary: PrimaryVolume;
  joliet?: JolietVolume;
  /** Sector of the El Torito boot catalog, when a boot record volume descriptor names one. */
  bootCatalogLba?: number;
  /** The extended area carries an NSR02/NSR03 descriptor: the image also (or only) holds a UDF file system. */
  udf: boolean;
}

export type VolumeDescriptor =
  | { kind: 'boot'; system: string; catalogLba?: number }
  | { kind: 'primary'; volume: PrimaryVolume }
  | { kind: 'supplementary'; joliet?: JolietVolume }
  | { kind: 'partition' }
  | { kind: 'terminator' }
  | { kind: 'other'; type: number }
  /** A descriptor of the UDF volume recognition sequence (ECMA-167 2/9.1). */
  | { kind: 'udf'; identifier: 'BEA01' | 'NSR02' | 'NSR03' | 'TEA01' | 'BOOT2' | 'CDW02' }
  | { kind: 'unknown' };

const VRS = new Set(['BEA01', 'NSR02', 'NSR03', 'TEA01', 'BOOT2', 'CDW02']);
const EL_TORITO = 'EL TORITO SPECIFICATION';

/** Decodes one 2048-byte volume descriptor (pure). */
export function parseVolumeDescriptor(sector: Buffer): VolumeDescriptor {
  need(sector, 0, SECTOR, 'volume descriptor');
  const identifier = sector.toString('latin1', 1, 6);
  if (VRS.has(identifier)) return { kind: 'udf', identifier: identifier as 'BEA01' };
  if (identifier !== 'CD001') return { kind: 'unknown' };
  const type = u8(sector, 0, 'volume descriptor type');
  switch (type) {
    case 0: {
      const system = paddedText(sector, 7, 32, 'boot record system identifier');
      return system === EL_TORITO
        ? { kind: 'boot', system, catalogLba: le32(sector, 71, 'El Torito boot catalog pointer') }
        : { kind: 'boot', system };
    }
    case 1:
      return { kind: 'primary', volume: parseVolume(sector, 'primary volume descriptor') };
    case 2: {
      // Version 2 is ISO 9660:1999's enhanced descriptor; Joliet is a version 1 supplementary descriptor.
      const level = u8(sector, 6, 'descriptor version') === 1 ? jolietLevel(sector.subarray(88, 120)) : undefined;
      if (level === undefined) return { kind: 'supplementary' };
      return { kind: 'supplementary', joliet: { level, root: parseVolume(sector, 'Joliet volume descriptor').root } };
    }
    case 3:
      return { kind: 'partition' };
    case 255:
      return { kind: 'terminator' };
    default:
      return { kind: 'other', type };
  }
}

function parseVolume(sector: Buffer, what: string): PrimaryVolume {
  const blockSize = both16(sector, 128, `${what}: logical block size`);
  if (blockSize !== SECTOR) {
    throw new IsoError('unsupported', `${what}: logical block size ${blockSize} is not supported (only 2048)`);
  }
  const root = Buffer.from(sector.subarray(ROOT_RECORD_AT, ROOT_RECORD_AT + ROOT_RECORD_LENGTH));
  if (u8(root, 0, `${what}: root directory record`) < ROOT_RECORD_LENGTH) {
    throw new IsoError('malformed', `${what}: root directory record is ${root[0]} bytes long, not 34`);
  }
  return {
    volumeId: paddedText(sector, 40, 32, `${what}: volume identifier`),
    systemId: paddedText(sector, 8, 32, `${what}: system identifier`),
    volumeSpaceSize: both32(sector, 80, `${what}: volume space size`),
    root,
  };
}

/**
 * Reads the volume descriptor set from sector 16 on: the primary descriptor, a Joliet supplementary descriptor,
 * the El Torito boot record, the terminator, and the UDF volume recognition sequence that may follow. At most
 * `maxDescriptors` sectors are examined. Throws IsoError: 'udf' for a UDF-only image (NSR02/NSR03 and no
 * primary descriptor), 'not_iso' when there is no primary descriptor at all.
 */
export async function readVolumeDescriptors(image: Image, maxDescriptors: number): Promise<VolumeDescriptors> {
  let primary: PrimaryVolume | undefined;
  let joliet: JolietVolume | undefined;
  let bootCatalogLba: number | undefined;
  let udf = false;
  for (let index = 0; index < maxDescriptors; index++) {
    const offset = (FIRST_DESCRIPTOR + index) * SECTOR;
    if (offset + SECTOR > image.size) break;
    const descriptor = parseVolumeDescriptor(await readRange(image, offset, SECTOR, 'volume descriptor'));
    if (descriptor.kind === 'unknown') break;
    if (descriptor.kind === 'primary') primary ??= descriptor.volume;
    else if (descriptor.kind === 'supplementary' && descriptor.joliet) joliet ??= descriptor.joliet;
    else if (descriptor.kind === 'boot' && descriptor.catalogLba !== undefined)
      bootCatalogLba ??= descriptor.catalogLba;
    else if (descriptor.kind === 'udf') {
      if (descriptor.identifier === 'NSR02' || descriptor.identifier === 'NSR03') udf = true;
      if (descriptor.identifier === 'TEA01') break;
    }
  }
  if (!primary) {
    if (udf) throw new IsoError('udf', UDF_MESSAGE);
    if (image.size < (FIRST_DESCRIPTOR + 1) * SECTOR) {
      throw new IsoError('not_iso', `not an ISO 9660 image: only ${image.size} bytes, too small for one`);
    }
    throw new IsoError('not_iso', 'not an ISO 9660 image: no primary volume descriptor from sector 16 on');
  }
  return {
    primary,
    ...(joliet ? { joliet } : {}),
    ...(bootCatalogLba === undefined ? {} : { bootCatalogLba }),
    udf,
  };
}
