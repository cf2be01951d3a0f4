import assert from 'node:assert/strict';
import { copyFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createIsoCache } from './cache.ts';
import { IsoError } from './errors.ts';
import { mkisofs, tempDir, writeTree } from './testdata/xorriso.ts';

describe('ISO cache', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const isos: string[] = [];

  before(async () => {
    dir = await tempDir('cache');
    for (const version of ['one', 'two', 'three']) {
      const src = join(dir.path, `src-${version}`);
      await writeTree(src, { 'version.txt': `${version}\n`, [`only-in-${version}`]: 'x' });
      const iso = join(dir.path, `${version}.iso`);
      await mkisofs(src, iso, ['-R']);
      isos.push(iso);
    }
  });
  after(() => dir.remove());

  const one = () => isos[0] ?? '';
  const two = () => isos[1] ?? '';
  const three = () => isos[2] ?? '';

  test('one index per ISO, shared by concurrent and later requests', async () => {
    const cache = createIsoCache();
    const leases = await Promise.all(Array.from({ length: 10 }, () => cache.acquire(one())));
    assert.ok(leases.every((lease) => lease.iso === leases[0]?.iso));
    const reads = leases[0]?.iso.stats.reads;
    const again = await cache.acquire(one());
    assert.equal(again.iso, leases[0]?.iso);
    assert.equal(again.iso.stats.reads, reads, 'not re-indexed');
    assert.equal(cache.open, 1);
    for (const lease of [...leases, again]) lease.release();
    await cache.close();
  });

  test('a changed mtime or a replaced file means a new index; the old one closes when released', async () => {
    const path = join(dir.path, 'live.iso');
    await copyFile(one(), path);
    const cache = createIsoCache();
    const first = await cache.acquire(path);
    assert.ok(first.iso.lookup('only-in-one'));

    await utimes(path, new Date(), new Date(Date.now() + 5000)); // touched
    const touched = await cache.acquire(path);
    assert.notEqual(touched.iso, first.iso);
    // Still leased: the old handle keeps working for the transfer that holds it.
    assert.equal((await first.iso.read(16 * 2048 + 1, 5)).toString(), 'CD001');
    first.release();
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(first.iso.read(0, 1), (e: unknown) => e instanceof IsoError && e.code === 'io');

    await copyFile(two(), `${path}.new`);
    await rename(`${path}.new`, path); // replaced by rename, as an upload would
    const replaced = await cache.acquire(path);
    assert.ok(replaced.iso.lookup('only-in-two'));
    assert.equal(replaced.iso.lookup('only-in-one'), undefined);
    touched.release();
    replaced.release();
    await cache.close();
  });

  test('at most maxOpen ISOs stay open: the least recently used idle one is closed', async () => {
    const cache = createIsoCache({ maxOpen: 2 });
    const a = await cache.acquire(one());
    a.release();
    const b = await cache.acquire(two());
    b.release();
    (await cache.acquire(one())).release(); // one is now more recent than two
    const c = await cache.acquire(three());
    c.release();
    assert.equal(cache.open, 2);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(b.iso.read(0, 1), { code: 'io' }, 'two was evicted and closed');
    assert.equal((await a.iso.read(16 * 2048 + 1, 5)).toString(), 'CD001', 'one stayed open');
    await cache.close();
    await assert.rejects(a.iso.read(0, 1), { code: 'io' }, 'close() closes the rest');
  });

  test('an evicted ISO still in use is closed only after its last lease', async () => {
    const cache = createIsoCache({ maxOpen: 1 });
    const held = await cache.acquire(one());
    const other = await cache.acquire(two());
    assert.equal(cache.open, 1);
    assert.equal((await held.iso.read(16 * 2048 + 1, 5)).toString(), 'CD001');
    held.release();
    held.release(); // idempotent
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(held.iso.read(0, 1), { code: 'io' });
    other.release();
    await cache.close();
  });

  test('a broken ISO is remembered for the same file; a fixed file is opened again; a missing one is io', async () => {
    const path = join(dir.path, 'broken.iso');
    await writeFile(path, Buffer.alloc(40 * 2048));
    const cache = createIsoCache();
    const error = await cache.acquire(path).catch((e: unknown) => e);
    assert.ok(error instanceof IsoError && error.code === 'not_iso');
    assert.equal(
      await cache.acquire(path).catch((e: unknown) => e),
      error,
      'the same verdict, not a second index build',
    );
    await copyFile(one(), path);
    await utimes(path, new Date(), new Date(Date.now() + 10_000));
    const fixed = await cache.acquire(path);
    assert.ok(fixed.iso.lookup('version.txt'));
    fixed.release();
    await rm(path);
    await assert.rejects(cache.acquire(path), { name: 'IsoError', code: 'io', message: /broken\.iso/ });
    await cache.close();
  });

  test('with() releases even when the callback throws', async () => {
    const cache = createIsoCache({ maxOpen: 1 });
    await assert.rejects(
      cache.with(one(), () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    const iso = await cache.with(one(), (opened) => opened);
    await cache.with(two(), () => undefined); // evicts one, which has no lease left: closed
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(iso.read(0, 1), { code: 'io' });
    await cache.close();
  });
});
