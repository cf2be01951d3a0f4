import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAG_DIRECTORY, FLAG_MULTI_EXTENT, isoName, parseDirectory, parseRecord } from './directory.ts';
import { IsoError } from './errors.ts';
import { directory, record } from './testdata/synthetic.ts';

describe('directory records', () => {
  test('fields: extent, length, flags, identifier, system use after the padding byte', () => {
    const bytes = record({
      name: 'AB',
      lba: 0x12345,
      size: 0xfedcba,
      flags: FLAG_MULTI_EXTENT,
      systemUse: Buffer.from('XY'),
    });
    const parsed = parseRecord(bytes, 0, 'test');
    assert.equal(parsed.extentLba, 0x12345);
    assert.equal(parsed.dataLength, 0xfedcba);
    assert.equal(parsed.flags, FLAG_MULTI_EXTENT);
    assert.equal(parsed.identifier.toString(), 'AB');
    assert.equal(parsed.systemUse.subarray(0, 2).toString(), 'XY'); // not the pad byte after the even-length name
    assert.equal(parsed.length, bytes.length);
  });

  test('the little-endian half of both-endian fields wins (as Linux)', () => {
    const bytes = record({ name: 'A', lba: 7, size: 9 });
    bytes.writeUInt32BE(99, 6);
    assert.equal(parseRecord(bytes, 0, 'test').extentLba, 7);
  });

  test('records never cross a sector: zero padding skips to the next one', () => {
    const many = Array.from({ length: 60 }, (_, i) =>
      record({ name: `FILE${String(i).padStart(4, '0')}.TXT;1`, lba: 100 + i, size: i }),
    );
    const bytes = directory(many);
    assert.equal(bytes.length, 2 * 2048);
    const names = [...parseDirectory(bytes, 'test')].map((r) => isoName(r.identifier));
    assert.equal(names.length, 60);
    assert.equal(names[59], 'file0059.txt');
  });

  test('malformed records are IsoErrors, never RangeErrors', () => {
    const short = Buffer.alloc(2048);
    short[0] = 20; // shorter than the fixed part
    assert.throws(
      () => [...parseDirectory(short, 'dir')],
      (e: unknown) => e instanceof IsoError && e.code === 'malformed',
    );
    const overflowing = record({ name: 'A', lba: 1, size: 1 });
    overflowing[32] = 200; // identifier longer than the record
    assert.throws(() => parseRecord(overflowing, 0, 'dir'), /overflows/);
    const cut = record({ name: 'ABCDEF', lba: 1, size: 1 });
    assert.throws(() => parseRecord(cut.subarray(0, 30), 0, 'dir'), /runs past the end/);
    const flagged = record({ name: 'D', lba: 1, size: 1, flags: FLAG_DIRECTORY });
    assert.equal(parseRecord(flagged, 0, 'dir').flags, FLAG_DIRECTORY);
  });

  test('plain names: ;1 and a trailing dot stripped, lower-cased (Linux map=normal)', () => {
    const cases: [string, string][] = [
      ['VMLINUZ.;1', 'vmlinuz'],
      ['INITRD.GZ;1', 'initrd.gz'],
      ['CASPER', 'casper'],
      ['README.TXT;2', 'readme.txt'],
      ['NOVERSION.', 'noversion'],
      ['A_B-C.D_E;1', 'a_b-c.d_e'],
      ['ACORN/X;1', 'acorn.x'],
    ];
    for (const [identifier, name] of cases) assert.equal(isoName(Buffer.from(identifier)), name, identifier);
  });
});
