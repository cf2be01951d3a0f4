import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PathRefusedError } from '../tree/tree.ts';
import { createIsoCache } from './cache.ts';
import { IsoError } from './errors.ts';
import type { IsoFile } from './reader.ts';
import { isoFile, isoSource } from './source.ts';
import { mkisofs, mkisofsSparse, tempDir, writeTree } from './testdata/xorriso.ts';

const peer = { address: '127.0.0.1', port: 1 };

describe('ISO TreeSource', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let iso: string;
  let src: string;

  before(async () => {
    dir = await tempDir('source');
    src = join(dir.path, 'src');
    await writeTree(src, { 'casper/vmlinuz': { random: 100_000 }, 'casper/initrd': { random: 10 }, 'dir/': '' });
    iso = join(dir.path, 'test.iso');
    await mkisofs(src, iso, ['-R', '-J']);
  });
  after(() => dir.remove());

  test('files read by range; size and mtime; past the end is short; after close rejects', async () => {
    const cache = createIsoCache();
    const source = isoSource(iso, cache);
    const file = await source.open('casper/vmlinuz', peer);
    assert.ok(file);
    const original = await readFile(join(src, 'casper/vmlinuz'));
    assert.equal(file.size, original.length);
    assert.deepEqual(file.mtime, (await stat(iso)).mtime);
    assert.deepEqual(await file.read(1000, 5000), original.subarray(1000, 6000));
    assert.deepEqual(await file.read(99_990, 5000), original.subarray(99_990));
    assert.equal((await file.read(200_000, 10)).length, 0);
    await assert.rejects(file.read(-1, 10), RangeError);
    await file.close();
    await file.close();
    await assert.rejects(file.read(0, 1), (e: unknown) => e instanceof IsoError);
    await cache.close();
  });

  test("disk extents: where a byte range lies in the ISO file, across the file's extents", async () => {
    const cache = createIsoCache();
    const file = await isoSource(iso, cache).open('casper/vmlinuz', peer);
    assert.ok(file);
    const extents = (from: number, to: number) => file.diskExtents?.(from, to) ?? [];
    const original = await readFile(join(src, 'casper/vmlinuz'));
    const image = await readFile(iso);
    const bytesOf = (runs: { offset: number; length: number }[]) =>
      Buffer.concat(runs.map((run) => image.subarray(run.offset, run.offset + run.length)));
    assert.ok(bytesOf(extents(1000, 6000)).equals(original.subarray(1000, 6000)));
    assert.ok(bytesOf(extents(0, 10_000_000)).equals(original), 'clamped to the size');
    assert.ok(extents(0, 10).length > 0, 'a file on disk has extents');
    assert.deepEqual(extents(500, 500), []);
    await file.close();
    assert.throws(() => file.diskExtents?.(0, 1), IsoError, 'not after close');

    // A file in three extents (as a file over 4 GiB is stored): a range crossing them maps onto each in turn.
    const lease = await cache.acquire(iso);
    const split = isoFile(lease, {
      size: 9000,
      extents: [
        { offset: 40_000, length: 2000 },
        { offset: 10_000, length: 3000 },
        { offset: 70_000, length: 4000 },
      ],
    } satisfies IsoFile);
    const runs = split.diskExtents?.(1500, 8000) ?? [];
    assert.deepEqual(
      runs.map(({ offset, length }) => ({ offset, length })),
      [
        { offset: 41_500, length: 500 },
        { offset: 10_000, length: 3000 },
        { offset: 70_000, length: 3000 },
      ],
    );
    assert.ok(
      runs.every((run) => run.fd === runs[0]?.fd && run.fd >= 0),
      "the ISO's one descriptor",
    );
    await split.close();
    await cache.close();
  });

  test('directories and missing paths are undefined; climbing out is refused', async () => {
    const cache = createIsoCache();
    const source = isoSource(iso, cache);
    assert.equal(await source.open('casper', peer), undefined);
    assert.equal(await source.open('dir', peer), undefined);
    assert.equal(await source.open('casper/nope', peer), undefined);
    assert.equal(await source.open('casper/vmlinuz/more', peer), undefined);
    for (const bad of ['../etc/passwd', 'casper/../../x', '/casper/vmlinuz', 'a\0b', 'casper\\vmlinuz']) {
      await assert.rejects(source.open(bad, peer), PathRefusedError, bad);
    }
    await cache.close();
  });

  test('an open TreeFile holds its ISO: eviction closes it only after the file is closed', async () => {
    const other = join(dir.path, 'other.iso');
    await mkisofs(join(src, 'casper'), other, ['-R']);
    const cache = createIsoCache({ maxOpen: 1 });
    const file = await isoSource(iso, cache).open('casper/initrd', peer);
    assert.ok(file);
    const second = await isoSource(other, cache).open('vmlinuz', peer);
    assert.ok(second);
    assert.equal((await file.read(0, 10)).length, 10, 'still readable after eviction');
    await file.close();
    await second.close();
    await cache.close();
  });

  test('an ISO that cannot be opened rejects with IsoError', async () => {
    const cache = createIsoCache();
    await assert.rejects(isoSource(join(dir.path, 'missing.iso'), cache).open('x', peer), {
      name: 'IsoError',
      code: 'io',
    });
    await cache.close();
  });

  test('streaming a 200 MB file keeps memory small (measured in a fresh process)', async () => {
    const big = join(dir.path, 'big-src');
    await writeTree(big, { 'small.txt': 'small\n' });
    const size = 200 * 1024 * 1024 + 17;
    const handle = await open(join(big, 'big.bin'), 'w');
    await handle.truncate(size); // sparse: zeros, with a marker every 10 MB so offsets matter
    for (let at = 0; at < size - 32; at += 10 * 1024 * 1024)
      await handle.write(Buffer.from(`marker@${at}`), 0, undefined, at);
    await handle.close();
    const expected = createHash('sha256');
    for await (const chunk of createReadStream(join(big, 'big.bin'))) expected.update(chunk as Buffer);
    const path = join(dir.path, 'big.iso');
    await mkisofsSparse(big, path, ['-R']);

    const child = `
      const [iso, cacheUrl, sourceUrl] = process.argv.slice(1);
      const { createIsoCache } = await import(cacheUrl);
      const { isoSource } = await import(sourceUrl);
      const { createHash } = await import('node:crypto');
      // Sampled here: ru_maxrss would carry over the parent's peak across fork and exec.
      const baseKiB = process.memoryUsage.rss() / 1024;
      let peakKiB = baseKiB;
      const cache = createIsoCache();
      const file = await isoSource(iso, cache).open('big.bin', { address: '127.0.0.1', port: 1 });
      const hash = createHash('sha256');
      let offset = 0;
      while (offset < file.size) {
        const chunk = await file.read(offset, 64 * 1024);
        if (chunk.length === 0) break;
        hash.update(chunk);
        offset += chunk.length;
        peakKiB = Math.max(peakKiB, process.memoryUsage.rss() / 1024);
      }
      await file.close();
      await cache.close();
      console.log(JSON.stringify({
        bytes: offset, sha256: hash.digest('hex'), baseKiB, peakKiB,
      }));
    `;
    const urls = ['./cache.ts', './source.ts'].map((module) => new URL(module, import.meta.url).href);
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child, path, ...urls]);
    const result = JSON.parse(stdout) as { bytes: number; sha256: string; baseKiB: number; peakKiB: number };
    assert.equal(result.bytes, size);
    assert.equal(result.sha256, expected.digest('hex'));
    // Buffering the file would add 200 MB. Streaming adds only the chunks garbage collection has yet to reclaim
    // (V8 collects after some tens of MB of dropped buffers), measured from the RSS after the modules loaded.
    const grewMiB = Math.round((result.peakKiB - result.baseKiB) / 1024);
    assert.ok(grewMiB < 100, `RSS grew by ${grewMiB} MB while streaming 200 MB`);
    console.log(
      `streamed 200 MB in 64 KiB reads: RSS ${Math.round(result.baseKiB / 1024)} MB -> ${Math.round(result.peakKiB / 1024)} MB`,
    );
  });
});
