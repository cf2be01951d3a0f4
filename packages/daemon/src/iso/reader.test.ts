import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createIsoCache, type IsoCache } from './cache.ts';
import { IsoError, ZISOFS_MESSAGE } from './errors.ts';
import { openIso, type Iso } from './reader.ts';
import { isoSource } from './source.ts';
import { prng } from './testdata/prng.ts';
import {
  mkisofs,
  osirrox,
  sha256,
  snapshot,
  tempDir,
  writeTree,
  xorriso,
  type Snapshot,
  type TreeSpec,
} from './testdata/xorriso.ts';
import type { TreeFile } from '../tree/tree.ts';

const peer = { address: '127.0.0.1', port: 1 };
const longName = `${'n'.repeat(180)}.txt`;

const tree: TreeSpec = {
  'casper/vmlinuz': { random: 300_000 },
  'casper/initrd': { random: 1_500_000 },
  'boot/grub/grub.cfg': 'set timeout=5\n',
  'a/b/c/d/e/f/g/h/i/j/k/l/deep.txt': 'deep\n',
  [`long/${longName}`]: 'long name\n',
  'Mixed Case.TXT': 'case\n',
  'café-ñ.txt': 'utf8\n',
  empty: '',
  'exact-2048': { random: 2048 },
  'exact-2049': { random: 2049 },
  'emptydir/': '',
  'links/rel': { symlink: '../casper/vmlinuz' },
  'links/dir': { symlink: '../casper' },
  'links/abs': { symlink: '/casper/initrd' },
  'links/chain': { symlink: 'rel' },
  'links/out': { symlink: '../../outside' },
  'links/loop-a': { symlink: 'loop-b' },
  'links/loop-b': { symlink: 'loop-a' },
  'links/dangling': { symlink: 'nothing-here' },
  'links/dotdot': { symlink: '../casper/../boot/grub/grub.cfg' },
  'links/long': { symlink: `${'x/'.repeat(150)}end` },
};

/** Reads a whole TreeFile in random-sized sequential chunks, then checks random ranges against it. */
async function readWhole(file: TreeFile, seed: number): Promise<Buffer> {
  const random = prng(seed);
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < file.size) {
    const chunk = await file.read(offset, 1 + random.int(256 * 1024));
    assert.ok(chunk.length > 0, `no progress at ${offset} of ${file.size}`);
    chunks.push(chunk);
    offset += chunk.length;
  }
  const whole = Buffer.concat(chunks);
  for (let i = 0; i < 20 && file.size > 0; i++) {
    const start = random.int(file.size);
    const length = random.int(70_000);
    assert.deepEqual(await file.read(start, length), whole.subarray(start, start + length), `range ${start}+${length}`);
  }
  assert.equal((await file.read(file.size, 10)).length, 0);
  return whole;
}

function fold(entries: Snapshot[], lower: boolean): Snapshot[] {
  return entries.map((entry) => (lower ? { ...entry, path: entry.path.toLowerCase() } : entry));
}

/** Our view of the ISO in the snapshot's shape: every file read through the TreeSource and hashed. */
async function view(iso: Iso, cache: IsoCache, path: string): Promise<Snapshot[]> {
  const source = isoSource(path, cache);
  const result: Snapshot[] = [];
  for (const entry of iso.list()) {
    if (entry.kind === 'symlink')
      result.push({ path: entry.path, kind: 'symlink', size: 0, target: entry.target ?? '' });
    else if (entry.kind === 'directory') result.push({ path: entry.path, kind: 'directory', size: 0 });
    else {
      const file = await source.open(entry.path, peer);
      assert.ok(file, entry.path);
      const bytes = await readWhole(file, entry.size);
      await file.close();
      assert.equal(bytes.length, entry.size);
      result.push({ path: entry.path, kind: 'file', size: entry.size, sha256: sha256(bytes) });
    }
  }
  return result.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

describe('ISO reader against xorriso-built images', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let source: string;
  const cache = createIsoCache({ maxOpen: 16 });
  const built: Record<string, string> = {};

  before(async () => {
    dir = await tempDir('reader');
    source = join(dir.path, 'src');
    await writeTree(source, tree);
    const iso = (name: string) => (built[name] = join(dir.path, `${name}.iso`));
    await mkisofs(source, iso('rr-joliet'), ['-R', '-J', '-joliet-long', '-V', 'SMELT_TEST']);
    await mkisofs(source, iso('joliet'), ['--norock', '-J', '-joliet-long']);
    await mkisofs(source, iso('level1'), ['--norock', '-iso-level', '1']);
    await mkisofs(source, iso('level3'), ['--norock', '-iso-level', '3']);
    for (const [name, reloc] of [
      ['relocated', 'rr_moved'],
      ['relocated-root', ''],
    ] as const) {
      await xorriso(
        ['-outdev', iso(name), '-joliet', 'on', '-compliance', 'deep_paths_off', '-rr_reloc_dir', reloc].concat([
          '-map',
          source,
          '/',
          '-commit',
        ]),
      );
    }
  });

  after(async () => {
    await cache.close();
    await dir.remove();
  });

  const cases: [string, 'rockridge' | 'joliet' | 'iso9660', string[]][] = [
    ['rr-joliet', 'rockridge', []],
    ['relocated', 'rockridge', []],
    ['relocated-root', 'rockridge', []],
    ['joliet', 'joliet', []],
    ['level1', 'iso9660', []],
    ['level3', 'iso9660', []],
  ];
  for (const [name, names] of cases) {
    test(`${name}: same tree and bytes as xorriso -osirrox extracts`, async () => {
      const path = built[name] ?? '';
      const lease = await cache.acquire(path);
      try {
        const iso = lease.iso;
        assert.equal(iso.names, names);
        const into = join(dir.path, `extract-${name}`);
        await osirrox(path, into);
        const expected = fold(await snapshot(into), names === 'iso9660');
        assert.deepEqual(await view(iso, cache, path), expected);
        assert.ok(expected.length > 10);
      } finally {
        lease.release();
      }
    });
  }

  test('Rock Ridge: names, deep paths, long names, case and UTF-8 as written', async () => {
    await cache.with(built['rr-joliet'] ?? '', (iso) => {
      assert.equal(iso.volumeId, 'SMELT_TEST');
      assert.deepEqual(
        iso.readdir('')?.map((e) => e.name),
        [
          'Mixed Case.TXT',
          'a',
          'boot',
          'café-ñ.txt',
          'casper',
          'empty',
          'emptydir',
          'exact-2048',
          'exact-2049',
          'links',
          'long',
        ],
      );
      assert.equal(iso.lookup('a/b/c/d/e/f/g/h/i/j/k/l/deep.txt')?.size, 5);
      assert.equal(iso.lookup(`long/${longName}`)?.size, 10);
      assert.equal(iso.lookup('mixed case.txt'), undefined, 'Rock Ridge names are case-sensitive');
      assert.equal(iso.lookup('casper'), undefined, 'a directory is not a file');
      assert.deepEqual(iso.readdir('emptydir'), []);
      assert.deepEqual(iso.counts, { files: 10, directories: 19, symlinks: 10, compressed: 0 });
    });
  });

  test('deep relocation: rr_moved hidden, relocated directories at their real place', async () => {
    for (const name of ['relocated', 'relocated-root']) {
      await cache.with(built[name] ?? '', (iso) => {
        const all = [...iso.list()].map((e) => e.path);
        assert.ok(!all.some((p) => /rr_moved/i.test(p)), `${name}: ${all.join(' ')}`);
        assert.ok(all.includes('a/b/c/d/e/f/g/h/i/j/k/l/deep.txt'));
        assert.equal(all.filter((p) => p.endsWith('/l')).length, 1);
        assert.equal(iso.lookup('a/b/c/d/e/f/g/h/i/j/k/l/deep.txt')?.size, 5);
        assert.equal(iso.lookup('a/b/c/d/e/f/g/h/i/j/k/l/../l/./deep.txt')?.size, 5, '.. is the real parent');
      });
    }
    // Proof that relocation happened: without Rock Ridge the deep directory sits in rr_moved.
    const plain = await xorriso([
      '-indev',
      built.relocated ?? '',
      '-rockridge',
      'off',
      '-find',
      '/',
      '-name',
      'rr_moved',
    ]);
    assert.ok(plain.length > 0);
  });

  test('symlinks are followed inside the ISO only', async () => {
    await cache.with(built['rr-joliet'] ?? '', (iso) => {
      const kernel = iso.lookup('casper/vmlinuz');
      assert.ok(kernel);
      assert.deepEqual(iso.lookup('links/rel'), kernel);
      assert.deepEqual(iso.lookup('links/chain'), kernel);
      assert.deepEqual(iso.lookup('links/dir/vmlinuz'), kernel);
      assert.deepEqual(iso.lookup('links/abs'), iso.lookup('casper/initrd'), 'absolute targets start at the ISO root');
      assert.deepEqual(iso.lookup('links/dotdot'), iso.lookup('boot/grub/grub.cfg'));
      assert.equal(iso.lookup('links/dangling'), undefined);
      assert.deepEqual(iso.stat('links/rel', { follow: false }), {
        kind: 'symlink',
        size: 0,
        target: '../casper/vmlinuz',
      });
      assert.equal(iso.stat('links/long', { follow: false })?.target, `${'x/'.repeat(150)}end`);
      assert.deepEqual(
        iso.readdir('links/dir')?.map((e) => e.name),
        ['initrd', 'vmlinuz'],
      );
      assert.throws(
        () => iso.lookup('links/out'),
        (e: unknown) => e instanceof IsoError && e.code === 'escape',
      );
      assert.throws(
        () => iso.lookup('links/loop-a'),
        (e: unknown) => e instanceof IsoError && e.code === 'loop',
      );
      assert.throws(() => iso.lookup('../casper/vmlinuz'), { code: 'escape' });
    });
    const files = isoSource(built['rr-joliet'] ?? '', cache);
    await assert.rejects(files.open('links/out', peer), { name: 'PathRefusedError', message: /leads out of the ISO/ });
    await assert.rejects(files.open('links/loop-b', peer), { name: 'PathRefusedError', message: /loop/ });
    await assert.rejects(files.open('../x', peer), { name: 'PathRefusedError' });
    const viaLink = await files.open('links/dir/initrd', peer);
    assert.ok(viaLink);
    assert.deepEqual(await viaLink.read(0, 1_500_000), await readFile(join(source, 'casper/initrd')));
    await viaLink.close();
  });

  test('Joliet: names as recorded (case kept, long names cut by xorriso), no symlinks', async () => {
    await cache.with(built.joliet ?? '', (iso) => {
      assert.equal(iso.lookup('Mixed Case.TXT')?.size, 5);
      assert.equal(iso.lookup('café-ñ.txt')?.size, 5);
      const truncated = iso.readdir('long')?.[0]?.name ?? '';
      assert.ok(truncated.length < 110 && truncated.endsWith('.txt'), truncated);
      assert.equal(iso.counts.symlinks, 0);
    });
  });

  test('plain ISO 9660: lower-cased names, case-insensitive lookups', async () => {
    await cache.with(built.level1 ?? '', (iso) => {
      assert.equal(iso.lookup('casper/vmlinuz')?.size, 300_000);
      assert.equal(iso.lookup('CASPER/VMLINUZ')?.size, 300_000);
      assert.ok(iso.readdir('')?.every((e) => e.name === e.name.toLowerCase() && !e.name.includes(';')));
      assert.ok(
        iso.readdir('')?.every((e) => /^[a-z0-9_]{1,8}(\.[a-z0-9_]{1,3})?$/.test(e.name)),
        '8.3 names',
      );
    });
    await cache.with(built.level3 ?? '', (iso) => {
      assert.equal(iso.lookup('Exact_2048')?.size, 2048);
    });
  });

  test('limits: entries, entries per directory, depth', async () => {
    const path = built['rr-joliet'] ?? '';
    await assert.rejects(openIso(path, { limits: { maxEntries: 20 } }), {
      name: 'IsoError',
      code: 'limit',
      message: /more than 20 directory entries/,
    });
    await assert.rejects(openIso(path, { limits: { maxEntriesPerDirectory: 5 } }), {
      code: 'limit',
      message: /more than 5 entries/,
    });
    await assert.rejects(openIso(path, { limits: { maxDepth: 8 } }), {
      code: 'limit',
      message: /deeper than 8 levels/,
    });
    await assert.rejects(
      openIso(path, { limits: { maxSymlinkHops: 0 } }).then((iso) => iso.lookup('links/rel')),
      {
        code: 'loop',
      },
    );
  });

  test('a tree 70 directories deep is refused by the default depth limit (64)', async () => {
    const deep = join(dir.path, 'deep-src');
    await writeTree(deep, { [`${'d/'.repeat(70)}bottom.txt`]: 'bottom\n' });
    const path = join(dir.path, 'deep70.iso');
    await mkisofs(deep, path, ['-R']);
    await assert.rejects(openIso(path), { name: 'IsoError', code: 'limit', message: /deeper than 64/ });
    const iso = await openIso(path, { limits: { maxDepth: 100 } });
    assert.equal(iso.lookup(`${'d/'.repeat(70)}bottom.txt`)?.size, 7);
    await iso.close();
  });

  test('a truncated ISO is an IsoError that says so; a non-ISO is not_iso; a missing file is io', async () => {
    const copy = join(dir.path, 'truncated.iso');
    await writeFile(copy, await readFile(built['rr-joliet'] ?? ''));
    await truncate(copy, 200_000);
    await assert.rejects(openIso(copy), { name: 'IsoError', code: 'malformed', message: /truncated ISO\?/ });
    const text = join(dir.path, 'text.iso');
    await writeFile(text, 'hello\n'.repeat(10_000));
    await assert.rejects(openIso(text), { code: 'not_iso' });
    await assert.rejects(openIso(join(dir.path, 'nope.iso')), { code: 'io', message: /nope\.iso/ });
  });

  test('El Torito: BIOS and EFI entries, with the files they load', async () => {
    const boot = join(dir.path, 'boot-src');
    await writeTree(boot, {
      'boot/bios.img': { random: 2048 },
      'efi/efiboot.img': { random: 96 * 1024 },
      'casper/vmlinuz': 'k',
    });
    const path = join(dir.path, 'eltorito.iso');
    await mkisofs(
      boot,
      path,
      ['-R', '-J', '-b', 'boot/bios.img', '-no-emul-boot', '-boot-load-size', '4'].concat([
        '-eltorito-alt-boot',
        '-e',
        'efi/efiboot.img',
        '-no-emul-boot',
      ]),
    );
    const iso = await openIso(path);
    const catalog = iso.bootCatalog;
    assert.ok(catalog);
    assert.deepEqual(catalog.problems, []);
    const bios = iso.lookup('boot/bios.img')?.extents[0]?.offset ?? -1;
    const efi = iso.lookup('efi/efiboot.img')?.extents[0]?.offset ?? -1;
    assert.deepEqual(
      catalog.entries.map(
        ({ role, platform, platformId, bootable, emulation, sectorCount, loadRba, path: file, size }) => ({
          role,
          platform,
          platformId,
          bootable,
          emulation,
          sectorCount,
          loadRba,
          path: file,
          size,
        }),
      ),
      [
        {
          role: 'default',
          platform: 'bios',
          platformId: 0,
          bootable: true,
          emulation: 'none',
          sectorCount: 4,
          loadRba: bios / 2048,
          path: 'boot/bios.img',
          size: 2048,
        },
        {
          role: 'section',
          platform: 'efi',
          platformId: 0xef,
          bootable: true,
          emulation: 'none',
          sectorCount: 192,
          loadRba: efi / 2048,
          path: 'efi/efiboot.img',
          size: 96 * 1024,
        },
      ],
    );
    await iso.close();
    const plain = await openIso(built['rr-joliet'] ?? '');
    assert.equal(plain.bootCatalog, undefined);
    await plain.close();
  });

  test('zisofs: listed with its real size, reading it is the clear IsoError', async () => {
    const zsrc = join(dir.path, 'z-src');
    await writeTree(zsrc, { 'comp.txt': 'compress me '.repeat(20_000), 'plain.txt': 'plain\n' });
    const path = join(dir.path, 'zisofs.iso');
    await xorriso(['-outdev', path, '-map', zsrc, '/', '-set_filter_r', '--zisofs', '/comp.txt', '--', '-commit']);
    await cache.with(path, async (iso) => {
      assert.deepEqual(iso.stat('comp.txt'), { kind: 'file', size: 240_000, compressed: true });
      assert.equal(iso.counts.compressed, 1);
      assert.throws(
        () => iso.lookup('comp.txt'),
        (e: unknown) => e instanceof IsoError && e.code === 'zisofs' && e.message === `comp.txt: ${ZISOFS_MESSAGE}`,
      );
      const files = isoSource(path, cache);
      await assert.rejects(files.open('comp.txt', peer), {
        name: 'IsoError',
        message: new RegExp(ZISOFS_MESSAGE.replace(/[;()]/g, '.')),
      });
      const plain = await files.open('plain.txt', peer);
      assert.equal((await plain?.read(0, 100))?.toString(), 'plain\n');
      await plain?.close();
    });
  });

  test('multi-extent: a sparse file over 4 GiB split by xorriso, read across its extent boundary', async () => {
    const { mkisofsSparse } = await import('./testdata/xorriso.ts');
    const big = join(dir.path, 'big-src');
    await writeTree(big, { 'small.txt': 'small\n' });
    const file = join(big, 'huge.bin');
    const size = 4 * 1024 ** 3 + 64 * 1024 + 123;
    const boundary = 4 * 1024 ** 3 - 2048; // xorriso's extent size
    const markers: [number, string][] = [
      [0, 'head'],
      [boundary - 7, 'ACROSS-THE-BOUNDARY'],
      [size - 11, 'tail-marker'],
    ];
    const { open } = await import('node:fs/promises');
    const handle = await open(file, 'w');
    await handle.truncate(size);
    for (const [at, text] of markers) await handle.write(Buffer.from(text), 0, text.length, at);
    await handle.close();
    const path = join(dir.path, 'multi.iso');
    await mkisofsSparse(big, path, ['-R', '-iso-level', '3']);
    await cache.with(path, async (iso) => {
      const found = iso.lookup('huge.bin');
      assert.ok(found);
      assert.equal(found.size, size);
      assert.equal(found.extents.length, 2);
      assert.equal(found.extents[0]?.length, boundary);
      const opened = await isoSource(path, cache).open('huge.bin', peer);
      assert.ok(opened);
      for (const [at, text] of markers) assert.equal((await opened.read(at, text.length)).toString(), text);
      const around = await opened.read(boundary - 10, 30);
      assert.equal(around.toString('latin1'), '\0\0\0ACROSS-THE-BOUNDARY\0\0\0\0\0\0\0\0'.slice(0, 30));
      assert.equal((await opened.read(size - 5, 100)).toString(), 'arker');
      await opened.close();
      assert.equal(iso.lookup('small.txt')?.size, 6);
    });
  });
});
