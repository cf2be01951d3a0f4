import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseVolumeDescriptor, readVolumeDescriptors } from './descriptors.ts';
import { IsoError, UDF_MESSAGE } from './errors.ts';
import { bufferImage } from './image.ts';
import {
  bootRecordDescriptor,
  jolietDescriptor,
  Layout,
  primaryDescriptor,
  record,
  terminatorDescriptor,
  vrsDescriptor,
} from './testdata/synthetic.ts';

const root = record({ name: '\0', lba: 30, size: 2048, flags: 2 });

describe('volume descriptors', () => {
  test('primary: volume id, volume space size, root record', () => {
    const parsed = parseVolumeDescriptor(primaryDescriptor({ root, blocks: 1234, volumeId: 'Ubuntu 24.04 amd64' }));
    assert.equal(parsed.kind, 'primary');
    assert.equal(parsed.volume.volumeId, 'Ubuntu 24.04 amd64');
    assert.equal(parsed.volume.volumeSpaceSize, 1234);
    assert.deepEqual(parsed.volume.root, root);
  });

  test('a block size other than 2048 is refused clearly', () => {
    assert.throws(
      () => parseVolumeDescriptor(primaryDescriptor({ root, blocks: 10, blockSize: 512 })),
      (error: unknown) =>
        error instanceof IsoError && error.code === 'unsupported' && error.message.includes('block size 512'),
    );
  });

  test('Joliet escape sequences %/@ %/C %/E give levels 1-3; other supplementary descriptors are not Joliet', () => {
    for (const [escapes, level] of [
      ['%/@', 1],
      ['%/C', 2],
      ['%/E', 3],
    ] as const) {
      const parsed = parseVolumeDescriptor(jolietDescriptor({ root, blocks: 10, escapes }));
      assert.ok(parsed.kind === 'supplementary');
      assert.equal(parsed.joliet?.level, level);
    }
    const plain = parseVolumeDescriptor(jolietDescriptor({ root, blocks: 10, escapes: '   ' }));
    assert.deepEqual(plain, { kind: 'supplementary' });
  });

  test('El Torito boot record names the catalog block; other boot systems do not', () => {
    assert.deepEqual(parseVolumeDescriptor(bootRecordDescriptor(77)), {
      kind: 'boot',
      system: 'EL TORITO SPECIFICATION',
      catalogLba: 77,
    });
    const other = bootRecordDescriptor(77);
    other.write('SOMETHING ELSE         ', 7, 'latin1');
    assert.deepEqual(parseVolumeDescriptor(other), { kind: 'boot', system: 'SOMETHING ELSE' });
  });

  test('the set: primary, Joliet, boot record, terminator, then the UDF recognition sequence', async () => {
    const layout = new Layout()
      .place(16, primaryDescriptor({ root, blocks: 40 }))
      .place(17, bootRecordDescriptor(33))
      .place(18, jolietDescriptor({ root, blocks: 40 }))
      .place(19, terminatorDescriptor())
      .place(20, vrsDescriptor('BEA01'))
      .place(21, vrsDescriptor('NSR02'))
      .place(22, vrsDescriptor('TEA01'))
      .place(39, Buffer.alloc(2048));
    const set = await readVolumeDescriptors(bufferImage(layout.toBuffer()), 64);
    assert.equal(set.bootCatalogLba, 33);
    assert.equal(set.joliet?.level, 3);
    assert.equal(set.udf, true);
    assert.equal(set.primary.volumeSpaceSize, 40);
  });

  test('UDF-only (NSR03, no primary descriptor) is refused with the UDF message', async () => {
    const layout = new Layout()
      .place(16, vrsDescriptor('BEA01'))
      .place(17, vrsDescriptor('NSR03'))
      .place(18, vrsDescriptor('TEA01'))
      .place(40, Buffer.alloc(2048));
    await assert.rejects(readVolumeDescriptors(bufferImage(layout.toBuffer()), 64), {
      name: 'IsoError',
      code: 'udf',
      message: UDF_MESSAGE,
    });
  });

  test('no primary descriptor, or an image too small for one, is not an ISO', async () => {
    await assert.rejects(readVolumeDescriptors(bufferImage(Buffer.alloc(100 * 2048)), 64), {
      code: 'not_iso',
      message: /no primary volume descriptor/,
    });
    await assert.rejects(readVolumeDescriptors(bufferImage(Buffer.alloc(1000)), 64), {
      code: 'not_iso',
      message: /too small/,
    });
  });

  test('the scan stops at maxDescriptors: an endless run of descriptors costs bounded reads', async () => {
    const layout = new Layout();
    for (let lba = 16; lba < 400; lba++) layout.place(lba, vrsDescriptor('BEA01'));
    const image = bufferImage(layout.toBuffer());
    await assert.rejects(readVolumeDescriptors(image, 64), { code: 'not_iso' });
    assert.equal(image.stats.reads, 64);
  });
});
