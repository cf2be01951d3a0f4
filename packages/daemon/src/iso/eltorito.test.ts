import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBootCatalog } from './eltorito.ts';

function validation(platformId: number, id = 'SMELT'): Buffer {
  const entry = Buffer.alloc(32);
  entry[0] = 1;
  entry[1] = platformId;
  entry.write(id, 4, 'latin1');
  entry[30] = 0x55;
  entry[31] = 0xaa;
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + entry.readUInt16LE(i)) & 0xffff;
  entry.writeUInt16LE((0x10000 - sum) & 0xffff, 28);
  return entry;
}

function bootEntry(spec: { bootable?: boolean; media?: number; segment?: number; count: number; rba: number }): Buffer {
  const entry = Buffer.alloc(32);
  entry[0] = spec.bootable === false ? 0 : 0x88;
  entry[1] = spec.media ?? 0;
  entry.writeUInt16LE(spec.segment ?? 0, 2);
  entry.writeUInt16LE(spec.count, 6);
  entry.writeUInt32LE(spec.rba, 8);
  return entry;
}

function header(final: boolean, platformId: number, count: number, id = ''): Buffer {
  const entry = Buffer.alloc(32);
  entry[0] = final ? 0x91 : 0x90;
  entry[1] = platformId;
  entry.writeUInt16LE(count, 2);
  entry.write(id, 4, 'latin1');
  return entry;
}

describe('El Torito boot catalog', () => {
  test('validation entry, default BIOS entry, an EFI section', () => {
    const bytes = Buffer.concat([
      validation(0),
      bootEntry({ count: 4, rba: 40 }),
      header(true, 0xef, 1, 'UEFI'),
      bootEntry({ count: 5760, rba: 50, segment: 0 }),
      Buffer.alloc(2048 - 128),
    ]);
    const catalog = parseBootCatalog(bytes, 33);
    assert.deepEqual(catalog.problems, []);
    assert.equal(catalog.platform, 'bios');
    assert.equal(catalog.id, 'SMELT');
    assert.deepEqual(catalog.entries, [
      {
        role: 'default',
        platform: 'bios',
        platformId: 0,
        bootable: true,
        emulation: 'none',
        loadSegment: 0,
        systemType: 0,
        sectorCount: 4,
        loadRba: 40,
      },
      {
        role: 'section',
        platform: 'efi',
        platformId: 0xef,
        bootable: true,
        emulation: 'none',
        loadSegment: 0,
        systemType: 0,
        sectorCount: 5760,
        loadRba: 50,
        section: 'UEFI',
      },
    ]);
  });

  test('several headers, emulation types, extension entries skipped', () => {
    const withExtension = bootEntry({ count: 1, rba: 61, media: 0x20 | 2 });
    const extension = Buffer.alloc(32);
    extension[0] = 0x44;
    const bytes = Buffer.concat([
      validation(0),
      bootEntry({ count: 4, rba: 60, segment: 0x7c0, bootable: false }),
      header(false, 0, 1),
      withExtension,
      extension,
      header(true, 0xef, 1),
      bootEntry({ count: 1, rba: 62, media: 4 }),
    ]);
    const catalog = parseBootCatalog(bytes, 1);
    assert.deepEqual(
      catalog.entries.map((e) => [e.platform, e.bootable, e.emulation, e.loadSegment, e.loadRba]),
      [
        ['bios', false, 'none', 0x7c0, 60],
        ['bios', true, 'floppy-1.44m', 0, 61],
        ['efi', true, 'hard-disk', 0, 62],
      ],
    );
  });

  test('a bad checksum or a missing key is reported, not thrown', () => {
    const broken = validation(0);
    broken.writeUInt8(broken.readUInt8(5) ^ 0xff, 5);
    const catalog = parseBootCatalog(Buffer.concat([broken, bootEntry({ count: 4, rba: 40 })]), 9);
    assert.deepEqual(catalog.entries, []);
    assert.match(catalog.problems[0] ?? '', /checksum/);
    assert.match(parseBootCatalog(Buffer.alloc(64), 9).problems[0] ?? '', /not a boot catalog/);
    assert.match(parseBootCatalog(Buffer.alloc(10), 9).problems[0] ?? '', /empty/);
  });

  test('a header announcing more entries than the catalog holds is cut short', () => {
    const bytes = Buffer.concat([
      validation(0),
      bootEntry({ count: 4, rba: 40 }),
      header(true, 0xef, 65535),
      bootEntry({ count: 1, rba: 2 }),
    ]);
    const catalog = parseBootCatalog(bytes, 9);
    assert.equal(catalog.entries.length, 2);
    assert.match(catalog.problems[0] ?? '', /announces 65535 entries/);
  });
});
