import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { directorySource } from './directory.ts';
import { PathRefusedError, type TreeFile } from './tree.ts';

const peer = { address: '192.0.2.7', port: 2000 };

describe('directorySource', () => {
  let top: string;
  let root: string;
  const content = Buffer.from('0123456789abcdef');

  before(() => {
    top = mkdtempSync(join(tmpdir(), 'smelt-tree-'));
    root = join(top, 'root');
    mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
    mkdirSync(join(top, 'outside'));
    writeFileSync(join(root, 'a.bin'), content);
    writeFileSync(join(root, 'empty'), '');
    writeFileSync(join(root, 'sub', 'deeper', 'b.txt'), 'inner\n');
    writeFileSync(join(top, 'outside', 'secret'), 'secret\n');
    writeFileSync(join(top, 'root-sibling'), 'next door\n');
    symlinkSync('sub/deeper/b.txt', join(root, 'link-in'));
    symlinkSync('sub', join(root, 'dir-link-in'));
    symlinkSync('../outside/secret', join(root, 'link-out'));
    symlinkSync(join(top, 'outside'), join(root, 'dir-link-out'));
    // Shares the root's name as a prefix: "root-sibling" is not inside "root".
    symlinkSync('../root-sibling', join(root, 'link-sibling'));
    symlinkSync('/etc/passwd', join(root, 'link-absolute'));
    symlinkSync('nowhere', join(root, 'dangling'));
    symlinkSync('loop', join(root, 'loop'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
    // The root itself reached through a symlink: its real path is what confines.
    symlinkSync(root, join(top, 'root-link'));
  });
  after(() => {
    rmSync(top, { recursive: true, force: true });
  });

  async function openOk(path: string, base = root): Promise<TreeFile> {
    const file = await directorySource(base).open(path, peer);
    assert.ok(file, `${path} is found`);
    return file;
  }

  test('a file: size, mtime and positioned reads, short and empty past the end', async () => {
    const when = new Date('2024-05-06T07:08:09Z');
    utimesSync(join(root, 'a.bin'), when, when);
    const file = await openOk('a.bin');
    try {
      assert.equal(file.size, 16);
      assert.equal(file.mtime?.getTime(), when.getTime());
      assert.deepEqual(await file.read(0, 16), content);
      assert.deepEqual(await file.read(4, 3), Buffer.from('456'));
      assert.deepEqual(await file.read(10, 100), Buffer.from('abcdef'), 'a read across the end is short');
      assert.equal((await file.read(16, 512)).length, 0, 'a read at the end is empty');
      assert.equal((await file.read(1000, 512)).length, 0, 'a read past the end is empty');
      assert.equal((await file.read(3, 0)).length, 0);
      await assert.rejects(file.read(-1, 4), RangeError);
      await assert.rejects(file.read(0, 1.5), RangeError);
    } finally {
      await file.close();
    }
  });

  test('an empty file has size 0 and reads nothing', async () => {
    const file = await openOk('empty');
    assert.equal(file.size, 0);
    assert.equal((await file.read(0, 512)).length, 0);
    await file.close();
  });

  test('reads after close reject; close twice is harmless', async () => {
    const file = await openOk('a.bin');
    await file.close();
    await assert.rejects(file.read(0, 4), /after close/);
    await file.close();
  });

  test('disk extents: the file descriptor itself and the range, clamped to the size announced at open', async () => {
    const file = await openOk('a.bin');
    try {
      const [run, ...more] = file.diskExtents?.(3, 100) ?? [];
      assert.ok(run && more.length === 0);
      assert.deepEqual({ offset: run.offset, length: run.length }, { offset: 3, length: content.length - 3 });
      const bytes = Buffer.alloc(run.length);
      assert.equal(readSync(run.fd, bytes, 0, run.length, run.offset), run.length);
      assert.deepEqual(bytes, content.subarray(3), 'the descriptor reads the file');
      assert.deepEqual(file.diskExtents?.(content.length, content.length + 5), []);
    } finally {
      await file.close();
    }
    assert.throws(() => file.diskExtents?.(0, 1), /after close/);
  });

  test('a file that grows after it was opened is read only up to the size announced at open', async () => {
    writeFileSync(join(root, 'growing'), 'abcd');
    const file = await openOk('growing');
    try {
      appendFileSync(join(root, 'growing'), 'efgh');
      assert.equal(file.size, 4);
      assert.deepEqual(await file.read(0, 100), Buffer.from('abcd'));
    } finally {
      await file.close();
    }
  });

  test('a file in a subdirectory, and symlinks that stay inside the root, are served', async () => {
    for (const path of ['sub/deeper/b.txt', 'link-in', 'dir-link-in/deeper/b.txt']) {
      const file = await openOk(path);
      assert.deepEqual(await file.read(0, 100), Buffer.from('inner\n'), path);
      await file.close();
    }
  });

  test('a package directory may have its links lead out, but request paths stay confined', async () => {
    const source = directorySource(root, { linksLeaving: 'follow' });
    const file = await source.open('link-out', peer);
    assert.ok(file, "like Debian's /usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi");
    await file.close();
    await assert.rejects(source.open('../outside/secret', peer), PathRefusedError);
  });

  test('the root given through a symlink confines by its real path', async () => {
    const file = await openOk('link-in', join(top, 'root-link'));
    assert.equal(file.size, 6);
    await file.close();
    await assert.rejects(directorySource(join(top, 'root-link')).open('link-out', peer), PathRefusedError);
  });

  test('symlinks that lead out of the root are refused, even into a sibling sharing its name as a prefix', async () => {
    for (const path of ['link-out', 'dir-link-out/secret', 'link-sibling', 'link-absolute']) {
      await assert.rejects(directorySource(root).open(path, peer), PathRefusedError, path);
    }
  });

  test('traversals, absolute paths and NUL bytes are refused even though the mount table normalises first', async () => {
    for (const path of ['../root-sibling', 'sub/../../root-sibling', '/etc/passwd', 'a.bin\0.txt', '..\\x', '..']) {
      await assert.rejects(directorySource(root).open(path, peer), PathRefusedError, JSON.stringify(path));
    }
  });

  test('directories, FIFOs, dangling and looping symlinks and missing files are not found', async () => {
    // A FIFO with no writer would block an open(); reaching the assertion at all shows it was never opened.
    for (const path of ['sub', 'sub/deeper', 'dir-link-in', '', 'fifo', 'dangling', 'loop', 'missing', 'a.bin/x']) {
      assert.equal(await directorySource(root).open(path, peer), undefined, JSON.stringify(path));
    }
  });

  test('a root that does not exist (yet) serves nothing, and serves once it appears', async () => {
    const later = join(top, 'later');
    const source = directorySource(later);
    assert.equal(await source.open('x', peer), undefined);
    mkdirSync(later);
    writeFileSync(join(later, 'x'), 'x');
    const file = await source.open('x', peer);
    assert.equal(file?.size, 1);
    await file.close();
  });
});
