/**
 * The El Torito boot catalog (El Torito 1.0, 2.0-2.4): a validation entry, the initial/default entry, then
 * section headers each followed by their section entries. Decoded into plain data for `describe boot`. The
 * catalog is informational: a damaged one is reported in `problems`, it never makes the ISO unreadable.
 */

export type BootPlatform = 'bios' | 'powerpc' | 'mac' | 'efi' | 'unknown';
export type BootEmulation = 'none' | 'floppy-1.2m' | 'floppy-1.44m' | 'floppy-2.88m' | 'hard-disk' | 'unknown';

export interface BootEntry {
  /** The initial/default entry, or one from a section. */
  role: 'default' | 'section';
  platform: BootPlatform;
  platformId: number;
  bootable: boolean;
  emulation: BootEmulation;
  /** As recorded; 0 means the traditional 0x7C0 on x86. */
  loadSegment: number;
  systemType: number;
  /** Virtual 512-byte sectors loaded by BIOS; often 0 or approximate for EFI images. */
  sectorCount: number;
  /** 2048-byte block where the boot image starts. */
  loadRba: number;
  /** The section's identifier string (from its header), if any. */
  section?: string;
  /** The file in the ISO tree that starts at loadRba, when there is one (filled in by the reader). */
  path?: string;
  /** That file's size in bytes. */
  size?: number;
}

export interface BootCatalog {
  /** Block of the catalog. */
  lba: number;
  /** Platform and manufacturer string of the validation entry. */
  platform: BootPlatform;
  platformId: number;
  id: string;
  entries: BootEntry[];
  /** What was wrong with the catalog (a bad checksum, entries cut short); empty when it is sound. */
  problems: string[];
}

const ENTRY = 32;
const HEADER_MORE = 0x90;
const HEADER_FINAL = 0x91;
const EXTENSION = 0x44;
const BOOTABLE = 0x88;
/** Each header can announce 65535 entries; a catalog longer than this is not believed. */
export const MAX_CATALOG_BYTES = 16 * 2048;

export function platformName(id: number): BootPlatform {
  switch (id) {
    case 0x00:
      return 'bios';
    case 0x01:
      return 'powerpc';
    case 0x02:
      return 'mac';
    case 0xef:
      return 'efi';
    default:
      return 'unknown';
  }
}

function emulationName(media: number): BootEmulation {
  const names: BootEmulation[] = ['none', 'floppy-1.2m', 'floppy-1.44m', 'floppy-2.88m', 'hard-disk'];
  return names[media & 0x0f] ?? 'unknown';
}

function text(entry: Buffer, from: number, to: number): string {
  return entry.toString('latin1', from, to).replace(/[\0 ]+$/, '');
}

function bootEntry(entry: Buffer, role: BootEntry['role'], platformId: number, section?: string): BootEntry {
  return {
    role,
    platform: platformName(platformId),
    platformId,
    bootable: entry[0] === BOOTABLE,
    emulation: emulationName(entry[1] ?? 0xff),
    loadSegment: entry.readUInt16LE(2),
    systemType: entry[4] ?? 0,
    sectorCount: entry.readUInt16LE(6),
    loadRba: entry.readUInt32LE(8),
    ...(section ? { section } : {}),
  };
}

/** Decodes a catalog read from block `lba` (pure; `bytes` may be any length, entries beyond it are cut). */
export function parseBootCatalog(bytes: Buffer, lba: number): BootCatalog {
  const entries: BootEntry[] = [];
  const problems: string[] = [];
  const at = (index: number): Buffer | undefined =>
    (index + 1) * ENTRY <= bytes.length ? bytes.subarray(index * ENTRY, (index + 1) * ENTRY) : undefined;
  const validation = at(0);
  if (!validation) return { lba, platform: 'unknown', platformId: -1, id: '', entries, problems: ['catalog is empty'] };
  const platformId = validation[1] ?? 0;
  const catalog: BootCatalog = {
    lba,
    platform: platformName(platformId),
    platformId,
    id: text(validation, 4, 28),
    entries,
    problems,
  };
  let sum = 0;
  for (let i = 0; i < ENTRY; i += 2) sum = (sum + validation.readUInt16LE(i)) & 0xffff;
  if (validation[0] !== 0x01 || validation[30] !== 0x55 || validation[31] !== 0xaa) {
    problems.push('no validation entry (header id 1, key 55 AA): not a boot catalog');
    return catalog;
  }
  if (sum !== 0) {
    problems.push(`validation entry checksum does not add up (sum 0x${sum.toString(16)})`);
    return catalog;
  }
  const initial = at(1);
  if (!initial) {
    problems.push('catalog ends before the initial/default entry');
    return catalog;
  }
  entries.push(bootEntry(initial, 'default', platformId));
  let index = 2;
  for (;;) {
    const header = at(index++);
    if (!header) {
      problems.push('catalog ends before its final section header');
      break;
    }
    const kind = header[0];
    if (kind !== HEADER_MORE && kind !== HEADER_FINAL) break; // no (more) sections
    const sectionPlatform = header[1] ?? 0;
    const count = header.readUInt16LE(2);
    const section = text(header, 4, ENTRY);
    for (let n = 0; n < count; n++) {
      const entry = at(index++);
      if (!entry) {
        problems.push(`section "${section}" announces ${count} entries; the catalog ends after ${n}`);
        return catalog;
      }
      entries.push(bootEntry(entry, 'section', sectionPlatform, section));
      // Bit 5 of the media type: extension entries follow this one.
      let extended = ((entry[1] ?? 0) & 0x20) !== 0;
      while (extended) {
        const extension = at(index++);
        if (extension?.[0] !== EXTENSION) break;
        extended = ((extension[1] ?? 0) & 0x20) !== 0;
      }
    }
    if (kind === HEADER_FINAL) break;
  }
  return catalog;
}
