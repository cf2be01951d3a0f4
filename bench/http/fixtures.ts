import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, linkSync, mkdirSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256File } from '../lib/hash.ts';
import type { Payload } from '../lib/payload.ts';
import { run } from '../lib/process.ts';

/**
 * The files the bench serves, made under a scratch directory in /tmp (removed when the bench ends):
 *
 * - the payload ISO: the random payload as casper/filesystem.squashfs, beside a small kernel and initrd (a boot
 *   needs both, and the daemon checks they exist inside the ISO); nginx serves the payload as `xorriso -osirrox`
 *   extracts it from that ISO, checked to have the payload's SHA-256;
 * - the huge ISO (the memory check): a sparse casper/rootfs.img of N GiB (zeros, with 4 KiB of random bytes every
 *   64 MiB so that offsets matter), written through `dd conv=sparse` so that it takes almost no disk; it is larger
 *   than 4 GiB, so it is stored in two extents (-iso-level 3). nginx serves the source tree the ISO was made from
 *   (the same bytes; extracting it would write N GiB).
 */

/** xorriso takes file-name charsets from the locale; without one it mangles names (see the ISO tests). */
const xorrisoEnv = { ...process.env, LC_ALL: 'C.UTF-8' };

export interface IsoFixture {
  iso: string;
  isoBytes: number;
  /** Disk the ISO takes (st_blocks), which is far below isoBytes for a sparse one. */
  isoDiskBytes: number;
  /** Paths inside the ISO. */
  kernel: string;
  initrd: string;
  file: string;
  fileBytes: number;
  /** The same bytes as a regular file, and the directory nginx serves it from (file is at root/file). */
  root: string;
  regularFile: string;
  /** SHA-256 of the file (the payload case), or undefined (the huge case is compared with cmp). */
  sha256?: string;
  /** How the fixture was made, for the report. */
  commands: string[];
}

async function xorriso(args: string[]): Promise<void> {
  const result = await run('xorriso', args, { timeoutMs: 300_000, env: xorrisoEnv });
  if (result.code !== 0 || result.timedOut) {
    throw new Error(`xorriso ${args.join(' ')} ${result.timedOut ? 'timed out' : 'failed'}:\n${result.stderr}`);
  }
}

/** nginx's workers run as nobody: every directory from `path` up to the scratch directory must be searchable. */
function makeReadable(path: string, scratch: string): void {
  for (let dir = path; dir.startsWith(scratch); dir = dirname(dir)) chmodSync(dir, 0o755);
}

function writeSmallFiles(src: string): void {
  mkdirSync(join(src, 'casper'), { recursive: true });
  writeFileSync(join(src, 'casper/vmlinuz'), randomBytes(1024 * 1024));
  writeFileSync(join(src, 'casper/initrd'), randomBytes(4 * 1024 * 1024));
}

export async function buildPayloadIso(scratch: string, payload: Payload): Promise<IsoFixture> {
  const src = join(scratch, 'payload-src');
  writeSmallFiles(src);
  const inTree = join(src, 'casper/filesystem.squashfs');
  try {
    linkSync(payload.path, inTree);
  } catch {
    copyFileSync(payload.path, inTree);
  }
  const iso = join(scratch, 'payload.iso');
  const make = ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', 'SMELT_BENCH', '-o', iso, src];
  await xorriso(make);
  const root = join(scratch, 'nginx-payload');
  const regularFile = join(root, 'casper/filesystem.squashfs');
  mkdirSync(dirname(regularFile), { recursive: true });
  const extract = ['-osirrox', 'on', '-indev', iso, '-extract', '/casper/filesystem.squashfs', regularFile];
  await xorriso(extract);
  chmodSync(regularFile, 0o644);
  makeReadable(dirname(regularFile), scratch);
  const extracted = await sha256File(regularFile);
  if (extracted !== payload.sha256) {
    throw new Error(`xorriso extracted ${regularFile} with SHA-256 ${extracted}, not the payload's ${payload.sha256}`);
  }
  const info = statSync(iso);
  return {
    iso,
    isoBytes: info.size,
    isoDiskBytes: info.blocks * 512,
    kernel: 'casper/vmlinuz',
    initrd: 'casper/initrd',
    file: 'casper/filesystem.squashfs',
    fileBytes: payload.bytes,
    root,
    regularFile,
    sha256: payload.sha256,
    commands: [
      `LC_ALL=C.UTF-8 xorriso ${make.join(' ')}`.replaceAll(scratch, 'SCRATCH'),
      `LC_ALL=C.UTF-8 xorriso ${extract.join(' ')}`.replaceAll(scratch, 'SCRATCH'),
    ],
  };
}

/** Bytes available in the file system holding `path`. */
export function freeBytes(path: string): number {
  const stats = statfsSync(path);
  return stats.bavail * stats.bsize;
}

/** What the huge ISO needs free: its full size, in case the file system does not keep holes. */
export function hugeIsoNeeds(gib: number): number {
  return (gib + 1) * 2 ** 30;
}

const MARK_EVERY = 64 * 1024 * 1024;
const MARK_BYTES = 4096;

export async function buildHugeIso(scratch: string, gib: number): Promise<IsoFixture> {
  const src = join(scratch, 'huge-src');
  writeSmallFiles(src);
  const big = join(src, 'casper/rootfs.img');
  const size = gib * 2 ** 30;
  const handle = await open(big, 'w', 0o644);
  try {
    await handle.truncate(size);
    for (let at = 0; at < size; at += MARK_EVERY) await handle.write(randomBytes(MARK_BYTES), 0, MARK_BYTES, at);
  } finally {
    await handle.close();
  }
  makeReadable(dirname(big), scratch);
  const iso = join(scratch, 'huge.iso');
  const options = ['-as', 'mkisofs', '-quiet', '-R', '-iso-level', '3', '-V', 'SMELT_BENCH_HUGE', '-o', '-', src];
  const dd = [`of=${iso}`, 'bs=1M', 'iflag=fullblock', 'conv=sparse', 'status=none'];
  await pipeInto(['xorriso', ...options], ['dd', ...dd], 300_000);
  const info = statSync(iso);
  return {
    iso,
    isoBytes: info.size,
    isoDiskBytes: info.blocks * 512,
    kernel: 'casper/vmlinuz',
    initrd: 'casper/initrd',
    file: 'casper/rootfs.img',
    fileBytes: size,
    root: src,
    regularFile: big,
    commands: [
      `truncate -s ${gib}G rootfs.img, then 4 KiB of random bytes every 64 MiB (sparse: zeros elsewhere)`,
      `LC_ALL=C.UTF-8 xorriso ${options.join(' ')} | dd ${dd.join(' ')}`.replaceAll(scratch, 'SCRATCH'),
    ],
  };
}

/** `producer | consumer` without the bytes passing through this process; rejects on failure or after timeoutMs. */
function pipeInto(producer: string[], consumer: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const [p, ...pArgs] = producer;
    const [c, ...cArgs] = consumer;
    if (p === undefined || c === undefined) {
      reject(new Error('empty command'));
      return;
    }
    const maker = spawn(p, pArgs, { env: xorrisoEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const writer = spawn(c, cArgs, { stdio: [maker.stdout, 'ignore', 'pipe'] });
    maker.stdout.destroy(); // the consumer holds its own copy of the pipe
    let errors = '';
    maker.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    writer.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const timer = setTimeout(() => {
      maker.kill('SIGKILL');
      writer.kill('SIGKILL');
    }, timeoutMs);
    const exited = (child: ChildProcess) =>
      new Promise<number | null>((done, fail) => {
        child.on('error', fail);
        child.on('exit', done);
      });
    Promise.all([exited(maker), exited(writer)]).then(
      ([made, written]) => {
        clearTimeout(timer);
        if (made === 0 && written === 0) resolve();
        else reject(new Error(`${p} | ${c} failed (${String(made)}, ${String(written)}):\n${errors}`));
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
