import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSelfOrParent, parseDirectory, parseRecord } from './directory.ts';
import { IsoError } from './errors.ts';
import { openIsoBuffer, type Iso } from './reader.ts';
import { isoFile } from './source.ts';
import { prng } from './testdata/prng.ts';
import { tempDir, writeTree, xorriso } from './testdata/xorriso.ts';

/**
 * Property: whatever bytes an image holds, opening it, walking it, looking up and reading every file either
 * works or throws IsoError, within a bounded number of reads. The base image is a real one (Rock Ridge with
 * relocation and a continuation area, Joliet, El Torito BIOS + EFI, symlinks); the mutations hit its metadata.
 */

const SEED = 0x5e17;
const MUTATED = 6000;
const TRUNCATED = 600;
/** Reads the base image needs are ~20; a hostile one may need more, but never unboundedly many. */
const MAX_READS = 5000;

const PROBES = ['casper/vmlinuz', 'links/rel', 'links/abs/vmlinuz', 'links/loop', 'a/b/c/d/e/f/g/h/i/deep.txt', 'boot'];

/**
 * An IsoError raised on purpose. The reader also wraps anything unexpected into an IsoError as a last line of
 * defence (its cause is then the original RangeError or TypeError): for the fuzz test that is a bug found.
 */
function deliberate(error: unknown): boolean {
  return error instanceof IsoError && (error.cause === undefined || error.cause instanceof IsoError);
}

async function exercise(bytes: Buffer, random: ReturnType<typeof prng>): Promise<'opened' | 'refused'> {
  let iso: Iso;
  try {
    iso = await openIsoBuffer(bytes);
  } catch (error) {
    if (deliberate(error)) return 'refused';
    throw error;
  }
  const lease = { iso, release: () => undefined };
  const paths = [...PROBES];
  let listed = 0;
  for (const entry of iso.list()) {
    if (++listed > 10_000) break;
    paths.push(entry.path);
  }
  for (const path of paths) {
    try {
      iso.stat(path, { follow: false });
      iso.readdir(path);
      const file = iso.lookup(path);
      if (!file) continue;
      const opened = isoFile(lease, file);
      // Bounded reads: the start, the end and a random range (a hostile size may be huge).
      await opened.read(0, 4096);
      await opened.read(Math.max(0, file.size - 4096), 4096);
      await opened.read(random.int(Math.max(1, file.size)), random.int(8192));
      await opened.close();
    } catch (error) {
      if (!deliberate(error)) throw error;
    }
  }
  if (iso.bootCatalog) assert.ok(Array.isArray(iso.bootCatalog.entries));
  assert.ok(iso.stats.reads < MAX_READS, `${iso.stats.reads} reads`);
  await iso.close();
  return 'opened';
}

/** Where mutations land: mostly on bytes that are set in the base (records, entries, fields), some anywhere. */
interface Region {
  start: number;
  end: number;
  hot: number[];
  /** Structure-aware targets: [position, width] of directory record fields and SUSP entry headers. */
  fields: [number, 1 | 4][];
}

/** The fields of every directory record and SUSP entry of the base image, found by walking its directories. */
function structuralFields(base: Buffer): [number, 1 | 4][] {
  const fields: [number, 1 | 4][] = [];
  const seen = new Set<number>();
  const pending = [parseRecord(base.subarray(16 * 2048 + 156, 16 * 2048 + 190), 0, 'root')];
  while (pending.length > 0) {
    const directory = pending.pop();
    if (!directory || seen.has(directory.extentLba)) continue;
    seen.add(directory.extentLba);
    const start = directory.extentLba * 2048;
    for (const rec of parseDirectory(base.subarray(start, start + directory.dataLength), 'base')) {
      const at = start + rec.at;
      fields.push([at, 1], [at + 1, 1], [at + 2, 4], [at + 10, 4], [at + 25, 1], [at + 26, 1], [at + 32, 1]);
      // SUSP entries: the length byte, and the first fields of the entry (flags, PX mode, CE/CL block numbers).
      const use = at + rec.length - rec.systemUse.length;
      for (let e = 0; e + 4 <= rec.systemUse.length;) {
        const length = rec.systemUse[e + 2] ?? 0;
        if (length < 4) break;
        fields.push([use + e + 2, 1], [use + e + 4, 1], [use + e + 4, 4]);
        if (length >= 28) fields.push([use + e + 12, 4], [use + e + 20, 4]);
        e += length;
      }
      if (rec.flags & 2 && !isSelfOrParent(rec.identifier)) pending.push(rec);
    }
  }
  return fields;
}

function mutate(base: Buffer, random: ReturnType<typeof prng>, region: Region): Buffer {
  const bytes = Buffer.from(base);
  const { start, end, hot } = region;
  const at = () =>
    random.int(4) === 0 || hot.length === 0
      ? start + random.int(end - start)
      : Math.min(end - 1, Math.max(start, (hot[random.int(hot.length)] ?? start) + random.int(9) - 4));
  const interesting = [
    0, 1, 16, 17, 18, 19, 20, 32, 0x7f, 0x80, 0xff, 0x800, 0xffff, 0x7fffffff, 0xfffff800, 0xffffffff,
  ];
  const lbas = base.length / 2048;
  const count = 1 + random.int(4);
  for (let i = 0; i < count; i++) {
    const kind = random.int(20);
    if (kind >= 10 && region.fields.length > 0) {
      const [position, width] = region.fields[random.int(region.fields.length)] ?? [start, 1];
      if (width === 1) bytes[position] = random.int(2) === 0 ? random.int(64) : random.int(256);
      else
        bytes.writeUInt32LE(
          (random.int(2) === 0 ? random.int(lbas + 4) : (interesting[random.int(interesting.length)] ?? 0)) >>> 0,
          position,
        );
      continue;
    }
    const position = at();
    if (kind < 4) bytes[position] = random.int(256);
    else if (kind < 6) bytes[position] = (bytes[position] ?? 0) ^ (1 << random.int(8));
    else if (kind < 8) {
      // A 32-bit field set to a value that matters: block numbers inside the image, limits, all ones.
      const value = random.int(2) === 0 ? (interesting[random.int(interesting.length)] ?? 0) : random.int(lbas);
      if (position + 4 <= bytes.length) bytes.writeUInt32LE(value >>> 0, position);
    } else if (kind < 9) bytes[position] = interesting[random.int(11)] ?? 0;
    else {
      // A record-sized chunk copied elsewhere: duplicated records, pointers to other directories.
      const from = at();
      bytes.copy(bytes, position, from, Math.min(from + 34 + random.int(64), bytes.length));
    }
  }
  return bytes;
}

function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** Saves a failing image outside the test's temporary directory, so it can be replayed with openIso. */
async function keep(bytes: Buffer, name: string): Promise<string> {
  const path = join(tmpdir(), `smelt-iso-fuzz-${name}.iso`);
  await writeFile(path, bytes);
  return `image kept at ${path}`;
}

describe('fuzz: mutated and truncated images', { timeout: 300_000 }, () => {
  let base: Buffer;
  let region: Region;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir('fuzz');
    const src = join(dir.path, 'src');
    await writeTree(src, {
      'casper/vmlinuz': { random: 3000 },
      'boot/bios.img': { random: 2048 },
      'boot/efi.img': { random: 4096 },
      'a/b/c/d/e/f/g/h/i/deep.txt': 'deep\n',
      ['L'.repeat(200)]: 'long\n',
      'links/rel': { symlink: '../casper/vmlinuz' },
      'links/abs': { symlink: '/casper' },
      'links/loop': { symlink: 'loop' },
    });
    const path = join(dir.path, 'base.iso');
    await xorriso(
      ['-outdev', path, '-joliet', 'on', '-compliance', 'deep_paths_off', '-rr_reloc_dir', 'rr_moved', '-map', src, '/']
        .concat(['-boot_image', 'any', 'bin_path=/boot/bios.img', '-boot_image', 'any', 'next'])
        .concat(['-boot_image', 'any', 'efi_path=/boot/efi.img', '-padding', '0', '-commit']),
    );
    base = await readFile(path);
    const iso = await openIsoBuffer(base);
    // The metadata: from the volume descriptors up to the first file's data (directories, CE areas, catalog).
    let firstData = base.length;
    for (const entry of iso.list()) {
      const file = entry.kind === 'file' ? iso.lookup(entry.path) : undefined;
      for (const extent of file?.extents ?? []) if (extent.length > 0) firstData = Math.min(firstData, extent.offset);
    }
    const end = Math.max(firstData, 16 * 2048 + 4096);
    const hot: number[] = [];
    // In the volume descriptors only the fields up to the root record matter (the rest is text); after them,
    // every byte that is set belongs to a directory record, a SUSP entry, a path table or the boot catalog.
    let sector = 16;
    for (; base[sector * 2048] !== 255 && sector < 32; sector++)
      for (let i = 0; i < 190; i++) hot.push(sector * 2048 + i);
    for (let at = (sector + 1) * 2048; at < end; at++) if (base[at] !== 0) hot.push(at);
    region = { start: 16 * 2048, end, hot, fields: structuralFields(base) };
    assert.ok(region.fields.length > 100);
    assert.equal(iso.names, 'rockridge');
    assert.equal(iso.bootCatalog?.entries.length, 2);
    await iso.close();
  });
  after(() => dir.remove());

  test(`${MUTATED} mutated images: each opens and reads, or is an IsoError`, async () => {
    const random = prng(SEED);
    const outcomes = { opened: 0, refused: 0 };
    for (let i = 0; i < MUTATED; i++) {
      const bytes = mutate(base, random, region);
      try {
        outcomes[await exercise(bytes, random)]++;
      } catch (error) {
        assert.fail(`mutation ${i}: ${await keep(bytes, `mutated-${i}`)}: ${describeError(error)}`);
      }
    }
    console.log(`mutated: ${outcomes.opened} opened, ${outcomes.refused} refused with IsoError`);
    assert.ok(outcomes.opened > 0 && outcomes.refused > 0, 'both outcomes occur: the mutations reach the structures');
  });

  test(`${TRUNCATED} truncated images (some also mutated)`, async () => {
    const random = prng(SEED + 1);
    const outcomes = { opened: 0, refused: 0 };
    for (let i = 0; i < TRUNCATED; i++) {
      let bytes = base.subarray(0, random.int(base.length));
      if (i % 2 === 1 && bytes.length > region.end) bytes = mutate(bytes, random, region);
      try {
        outcomes[await exercise(Buffer.from(bytes), random)]++;
      } catch (error) {
        assert.fail(`truncation ${i}: ${await keep(Buffer.from(bytes), `truncated-${i}`)}: ${describeError(error)}`);
      }
    }
    console.log(`truncated: ${outcomes.opened} opened, ${outcomes.refused} refused with IsoError`);
    assert.ok(outcomes.refused > 0);
  });
});
