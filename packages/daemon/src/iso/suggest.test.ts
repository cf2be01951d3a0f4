import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAG_DIRECTORY } from './directory.ts';
import { openIsoBuffer } from './reader.ts';
import { closestPaths } from './suggest.ts';
import { directoryExtent, plainImage, record, susp } from './testdata/synthetic.ts';

describe('closest paths', () => {
  test('the kernel under another name or directory, case ignored', async () => {
    const rr = (name: string, mode: number) => Buffer.concat([susp.px(mode), susp.nm(name)]);
    const layout = plainImage(
      [
        record({ name: 'CASPER', lba: 21, size: 2048, flags: FLAG_DIRECTORY, systemUse: rr('casper', 0o40755) }),
        record({ name: 'README.TXT;1', lba: 30, size: 1, systemUse: rr('README.txt', 0o100644) }),
      ],
      { rootSystemUse: susp.sp() },
    )
      .place(
        21,
        directoryExtent(21, 20, [
          record({ name: 'INITRD.;1', lba: 30, size: 1, systemUse: rr('initrd', 0o100644) }),
          record({ name: 'VMLINUZ.;1', lba: 30, size: 1, systemUse: rr('vmlinuz', 0o100644) }),
          record({ name: 'FS.SQU;1', lba: 30, size: 1, systemUse: rr('filesystem.squashfs', 0o100644) }),
        ]),
      )
      .place(30, Buffer.from('x'));
    const iso = await openIsoBuffer(layout.toBuffer());
    assert.deepEqual(closestPaths(iso, 'casper/vmlinuz.efi', 1), ['casper/vmlinuz']);
    assert.deepEqual(closestPaths(iso, 'install/vmlinuz', 1), ['casper/vmlinuz']);
    assert.deepEqual(closestPaths(iso, 'CASPER/INITRD', 1), ['casper/initrd']);
    assert.deepEqual(closestPaths(iso, '/casper/initrd.gz', 2), ['casper/initrd', 'casper/vmlinuz']);
    assert.equal(closestPaths(iso, 'x').length, 3);
  });
});
