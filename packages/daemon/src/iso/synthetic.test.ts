import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createIsoCache } from './cache.ts';
import { FLAG_DIRECTORY, FLAG_MULTI_EXTENT } from './directory.ts';
import { UDF_MESSAGE } from './errors.ts';
import { openIso, openIsoBuffer } from './reader.ts';
import { isoSource } from './source.ts';
import { prng } from './testdata/prng.ts';
import { BLOCK, directoryExtent, Layout, plainImage, record, susp, vrsDescriptor } from './testdata/synthetic.ts';
import { tempDir } from './testdata/xorriso.ts';

const peer = { address: '127.0.0.1', port: 1 };

function pattern(length: number, seed: number): Buffer {
  const random = prng(seed);
  return Buffer.from(Array.from({ length }, () => random.int(256)));
}

describe('hand-built images', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => (dir = await tempDir('synthetic')));
  after(() => dir.remove());

  test('multi-extent: consecutive records form one file; extents in any order and of any size', async () => {
    const parts = [pattern(4096, 1), pattern(2048, 2), pattern(1000, 3)];
    const layout = plainImage([
      record({ name: 'BIG.BIN;1', lba: 50, size: 4096, flags: FLAG_MULTI_EXTENT }),
      record({ name: 'BIG.BIN;1', lba: 40, size: 2048, flags: FLAG_MULTI_EXTENT }),
      record({ name: 'BIG.BIN;1', lba: 45, size: 1000 }),
      record({ name: 'NEXT.TXT;1', lba: 46, size: 4 }),
    ])
      .place(50, parts[0] ?? Buffer.alloc(0))
      .place(40, parts[1] ?? Buffer.alloc(0))
      .place(45, parts[2] ?? Buffer.alloc(0))
      .place(46, Buffer.from('next'));
    const path = join(dir.path, 'multi.iso');
    await layout.writeSparse(path);
    const iso = await openIso(path);
    assert.deepEqual(iso.lookup('big.bin'), {
      size: 7144,
      extents: [
        { offset: 50 * BLOCK, length: 4096 },
        { offset: 40 * BLOCK, length: 2048 },
        { offset: 45 * BLOCK, length: 1000 },
      ],
    });
    assert.equal(iso.lookup('next.txt')?.size, 4);
    assert.equal(iso.counts.files, 2);
    await iso.close();

    const cache = createIsoCache();
    const file = await isoSource(path, cache).open('big.bin', peer);
    assert.ok(file);
    const whole = Buffer.concat(parts);
    assert.deepEqual(await file.read(0, 10_000), whole);
    const random = prng(7);
    for (let i = 0; i < 200; i++) {
      const start = random.int(whole.length + 10);
      const length = random.int(3000);
      assert.deepEqual(await file.read(start, length), whole.subarray(start, start + length), `${start}+${length}`);
    }
    await file.close();
    await cache.close();
  });

  test('multi-extent beyond 4 GiB in a sparse image: sizes and offsets past 2^32', async () => {
    const extent = 0xfffff800; // 4 GiB - 2 KiB, as xorriso writes
    const first = 100;
    const second = first + extent / BLOCK;
    const layout = plainImage([
      record({ name: 'HUGE.IMG;1', lba: first, size: extent, flags: FLAG_MULTI_EXTENT }),
      record({ name: 'HUGE.IMG;1', lba: second, size: 5000 }),
    ])
      .place(first, Buffer.from('start'))
      .place(second - 1, Buffer.concat([Buffer.alloc(BLOCK - 3), Buffer.from('end')]))
      .place(second, Buffer.from('second extent'));
    const path = join(dir.path, 'huge.iso');
    await layout.writeSparse(path, (second + 3) * BLOCK);
    const cache = createIsoCache();
    const file = await isoSource(path, cache).open('huge.img', peer);
    assert.ok(file);
    assert.equal(file.size, extent + 5000);
    assert.equal((await file.read(0, 5)).toString(), 'start');
    assert.equal((await file.read(extent - 3, 16)).toString(), 'endsecond extent');
    assert.equal((await file.read(extent + 5000 - 2, 10)).length, 2);
    await file.close();
    await cache.close();
  });

  test('a UDF-only image (Windows) is refused with the UDF message, never misread', async () => {
    const udf = new Layout()
      .place(16, vrsDescriptor('BEA01'))
      .place(17, vrsDescriptor('NSR02'))
      .place(18, vrsDescriptor('TEA01'))
      .place(300, Buffer.alloc(BLOCK));
    const path = join(dir.path, 'udf.iso');
    await udf.writeSparse(path);
    await assert.rejects(openIso(path), { name: 'IsoError', code: 'udf', message: UDF_MESSAGE });
  });

  test('a UDF bridge whose ISO 9660 tree holds only the README is refused as UDF too', async () => {
    const readme = Buffer.from('This disc contains a "UDF" file system...\r\n');
    const bridge = plainImage([record({ name: 'README.TXT;1', lba: 30, size: readme.length })], {
      extraDescriptors: [vrsDescriptor('BEA01'), vrsDescriptor('NSR02'), vrsDescriptor('TEA01')],
    }).place(30, readme);
    await assert.rejects(openIsoBuffer(bridge.toBuffer()), {
      code: 'udf',
      message: /^UDF-only image \(Windows ISOs\): not supported/,
    });
    // The same tree without the UDF descriptors is just an ISO with a README.
    const iso = await openIsoBuffer(
      plainImage([record({ name: 'README.TXT;1', lba: 30, size: readme.length })])
        .place(30, readme)
        .toBuffer(),
    );
    assert.equal(iso.lookup('readme.txt')?.size, readme.length);
  });

  test('a directory pointing at itself or an ancestor is a loop, not a hang', async () => {
    const self = plainImage([record({ name: 'LOOP', lba: 20, size: BLOCK, flags: FLAG_DIRECTORY })]);
    await assert.rejects(openIsoBuffer(self.toBuffer()), { name: 'IsoError', code: 'loop', message: /block 20/ });
    const ancestor = plainImage([record({ name: 'A', lba: 21, size: BLOCK, flags: FLAG_DIRECTORY })]).place(
      21,
      directoryExtent(21, 20, [record({ name: 'UP', lba: 20, size: BLOCK, flags: FLAG_DIRECTORY })]),
    );
    await assert.rejects(openIsoBuffer(ancestor.toBuffer()), { code: 'loop', message: /directory \/A\/UP/i });
  });

  test('a directory extent beyond the end of the image is malformed', async () => {
    const layout = plainImage([record({ name: 'FAR', lba: 9_000_000, size: BLOCK, flags: FLAG_DIRECTORY })]);
    await assert.rejects(openIsoBuffer(layout.toBuffer()), {
      code: 'malformed',
      message: /beyond the end of the image/,
    });
    const huge = plainImage([record({ name: 'BIG', lba: 21, size: 0xffffffff, flags: FLAG_DIRECTORY })]);
    await assert.rejects(openIsoBuffer(huge.toBuffer()), { code: 'limit' });
  });

  test('Rock Ridge: a CE cycle through the image is a loop', async () => {
    const area = susp.ce(30, 0, 28);
    const layout = plainImage(
      [record({ name: 'F;1', lba: 0, size: 0, systemUse: Buffer.concat([susp.nm('f'), susp.ce(30, 0, 28)]) })],
      { rootSystemUse: susp.sp() },
    ).place(30, area);
    await assert.rejects(openIsoBuffer(layout.toBuffer()), { name: 'IsoError', code: 'loop', message: /continuation/ });
  });

  test('Rock Ridge, mkisofs style: rr_moved without RE is hidden once emptied; CL leads to the real place', async () => {
    const rr = (name: string, mode: number, ...more: Buffer[]) =>
      Buffer.concat([susp.px(mode), susp.nm(name), ...more]);
    const layout = plainImage(
      [
        record({ name: 'A', lba: 21, size: BLOCK, flags: FLAG_DIRECTORY, systemUse: rr('a', 0o40755) }),
        record({ name: 'RR_MOVED', lba: 22, size: BLOCK, flags: FLAG_DIRECTORY, systemUse: rr('rr_moved', 0o40755) }),
      ],
      { rootSystemUse: susp.sp() },
    )
      // a/deep is a placeholder file pointing (CL) at the directory kept in rr_moved.
      .place(
        21,
        directoryExtent(21, 20, [
          record({ name: 'DEEP', lba: 0, size: 0, systemUse: rr('Deep', 0o40755, susp.cl(23)) }),
        ]),
      )
      .place(
        22,
        directoryExtent(22, 20, [
          record({
            name: 'DEEP',
            lba: 23,
            size: BLOCK,
            flags: FLAG_DIRECTORY,
            systemUse: rr('Deep', 0o40755, susp.re()),
          }),
        ]),
      )
      .place(
        23,
        directoryExtent(23, 22, [record({ name: 'F.TXT;1', lba: 24, size: 5, systemUse: rr('file.txt', 0o100644) })]),
      )
      .place(24, Buffer.from('hello'));
    const iso = await openIsoBuffer(layout.toBuffer());
    assert.equal(iso.names, 'rockridge');
    assert.deepEqual(
      [...iso.list()].map((e) => e.path),
      ['a', 'a/Deep', 'a/Deep/file.txt'],
    );
    assert.equal(iso.lookup('a/Deep/file.txt')?.size, 5);
    assert.equal(iso.counts.directories, 3);
  });

  test('Rock Ridge symlinks: a chain longer than the hop limit is a loop', async () => {
    const records = Array.from({ length: 45 }, (_, i) =>
      record({
        name: `L${String(i).padStart(2, '0')};1`,
        lba: 0,
        size: 0,
        systemUse: Buffer.concat([susp.px(0o120777), susp.nm(`l${i}`), susp.sl([{ text: `l${i + 1}` }])]),
      }),
    );
    const iso = await openIsoBuffer(plainImage(records, { rootSystemUse: susp.sp() }).toBuffer());
    assert.throws(() => iso.lookup('l0'), { code: 'loop' });
    assert.equal(iso.lookup('l10'), undefined, '35 hops to a dangling end: fine, and not found');
  });

  test('associated files and device nodes are left out; duplicates keep the first', async () => {
    const layout = plainImage(
      [
        record({ name: 'A.TXT;1', lba: 30, size: 1, systemUse: susp.px(0o100644) }),
        record({ name: 'A.TXT;1', lba: 31, size: 1, flags: 0x04 }),
        record({ name: 'B.TXT;1', lba: 31, size: 1, systemUse: susp.px(0o100644) }),
        record({ name: 'B.TXT;2', lba: 30, size: 1, systemUse: susp.px(0o100644) }),
        record({ name: 'NULL;1', lba: 0, size: 0, systemUse: Buffer.concat([susp.px(0o20666), susp.nm('null')]) }),
      ],
      { rootSystemUse: susp.sp() },
    )
      .place(30, Buffer.from('a'))
      .place(31, Buffer.from('b'));
    const iso = await openIsoBuffer(layout.toBuffer());
    assert.deepEqual(
      [...iso.list()].map((e) => e.path),
      ['a.txt', 'b.txt'],
    );
    assert.equal((await iso.read(iso.lookup('b.txt')?.extents[0]?.offset ?? 0, 1)).toString(), 'b');
  });

  test('an interleaved file is refused on lookup', async () => {
    const layout = plainImage([record({ name: 'I.BIN;1', lba: 30, size: 10, fileUnitSize: 1 })]).place(
      30,
      Buffer.alloc(10),
    );
    const iso = await openIsoBuffer(layout.toBuffer());
    assert.throws(() => iso.lookup('i.bin'), { code: 'unsupported', message: /interleaved/ });
  });
});
