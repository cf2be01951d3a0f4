/**
 * Building blocks of a small initramfs: a tree of files packed as a gzipped newc cpio archive, reproducibly (the
 * same tree gives the same bytes), dynamically linked programs copied in with the libraries `ldd` names, and a
 * hash of a build's inputs to name or stamp its result.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { run, runOk } from './run.ts';

/** A hash of labelled parts (strings or bytes); each part's length goes in, so parts cannot run together. */
export interface InputHash {
  part(label: string, value: string | Buffer): void;
  /** The first `length` hex digits of the SHA-256. */
  digest(length?: number): string;
}

export function inputHash(): InputHash {
  const hash: Hash = createHash('sha256');
  return {
    part(label, value) {
      hash.update(`${label}\0${String(value.length)}\0`);
      hash.update(value);
    },
    digest(length = 16) {
      return hash.digest('hex').slice(0, length);
    },
  };
}

/** The usual top-level directories of an initramfs, made in `tree`; /tmp sticky and world-writable. */
export function makeSkeleton(tree: string): void {
  for (const dir of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'run', 'sbin', 'usr/bin', 'usr/sbin']) {
    mkdirSync(join(tree, dir), { recursive: true });
  }
  chmodSync(join(tree, 'tmp'), 0o1777);
}

/** /dev/console, for kernels whose built-in initramfs lacks it (needs root; without it the kernel's own is used). */
export async function addConsole(tree: string): Promise<void> {
  await run('mknod', ['-m', '600', join(tree, 'dev/console'), 'c', '5', '1']);
}

/** `source` (a file, or the bytes themselves) as `tree/<inside>` with the given mode, making directories. */
export function install(source: string | Buffer, tree: string, inside: string, mode: number): void {
  const target = join(tree, inside);
  mkdirSync(dirname(target), { recursive: true });
  if (typeof source === 'string') copyFileSync(source, target);
  else writeFileSync(target, source);
  chmodSync(target, mode);
}

/**
 * A dynamically linked program and the shared libraries `ldd` says it loads (with the dynamic loader), each
 * placed at the path the program looks for it, so that it runs in an initramfs that has no libc of its own.
 * Resolves with the files (absolute paths on this machine, in a stable order) that were copied.
 */
export async function programWithLibraries(program: string): Promise<string[]> {
  const files = [program];
  const result = await run('ldd', [program], { timeoutMs: 30_000 });
  // A static program: ldd says "not a dynamic executable" (and exits 1): nothing more to copy.
  if (result.code === 0) {
    for (const line of result.stdout.split('\n')) {
      // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
      if (path === undefined) {
        if (line.includes('not found')) throw new Error(`${program}: ${line.trim()}`);
        continue; // linux-vdso.so.1: provided by the kernel
      }
      if (!files.includes(path)) files.push(path);
    }
  }
  return [files[0] ?? program, ...files.slice(1).sort()];
}

/** Copies `files` (absolute paths) into `tree` at the same paths, following symbolic links for the contents. */
export function copyAtSamePaths(files: readonly string[], tree: string): void {
  for (const file of files) {
    const target = join(tree, file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(realpathSync(file), target);
    chmodSync(target, statSync(realpathSync(file)).mode & 0o777);
  }
}

/** The bytes of `files` into `hash`, each labelled by its path. */
export function hashFiles(hash: InputHash, label: string, files: readonly string[]): void {
  for (const file of files) {
    hash.part(`${label}-path`, file);
    hash.part(`${label}-bytes`, readFileSync(file));
  }
}

/**
 * `tree` packed as a gzipped newc cpio archive at `target`, reproducibly: entries in C-locale order, owned by
 * root, every timestamp 0, inode and device numbers left out (cpio --reproducible), no name or time in the gzip
 * header. Needs cpio, gzip, find, sort and touch.
 */
export async function packInitramfs(tree: string, target: string): Promise<void> {
  if (!existsSync(tree)) throw new Error(`${tree} does not exist`);
  await runOk('find', [tree, '-exec', 'touch', '-h', '-d', '@0', '{}', '+'], { timeoutMs: 120_000 });
  await runOk(
    'sh',
    [
      '-c',
      'cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9 -n > "$2"',
      'sh',
      tree,
      target,
    ],
    { timeoutMs: 300_000 },
  );
}
