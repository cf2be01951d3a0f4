/**
 * Test helpers: source trees written from a spec, ISOs built from them with xorriso, and the reference
 * extraction (`xorriso -osirrox`) every file is compared with. Not used by the daemon.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * xorriso takes the source tree's file-name charset from the locale: without one (CI runs with a bare
 * environment) it reads UTF-8 names as ASCII and mangles them in the Joliet tree. The images must not depend on
 * who builds them.
 */
const XORRISO_ENV = { ...process.env, LC_ALL: 'C.UTF-8' };

export type TreeSpec = Record<string, string | Buffer | { symlink: string } | { random: number }>;

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `smelt-iso-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Writes files, directories (a key ending in `/`) and symlinks under `root`. */
export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  for (const [path, content] of Object.entries(spec)) {
    const target = join(root, path);
    if (path.endsWith('/')) {
      await mkdir(target, { recursive: true });
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) await writeFile(target, content);
    else if ('symlink' in content) await symlink(content.symlink, target);
    else await writeFile(target, randomBytes(content.random));
  }
}

/** Runs xorriso with the given arguments; rejects with its output on failure. */
export async function xorriso(args: string[]): Promise<string> {
  try {
    const { stderr } = await run('xorriso', args, { maxBuffer: 16 * 1024 * 1024, env: XORRISO_ENV });
    return stderr;
  } catch (error) {
    const detail = error instanceof Error && 'stderr' in error ? String(error.stderr) : String(error);
    throw new Error(`xorriso ${args.join(' ')} failed:\n${detail}`, { cause: error });
  }
}

/** `xorriso -as mkisofs <options> -o <iso> <source>`. */
export async function mkisofs(source: string, iso: string, options: string[]): Promise<void> {
  await xorriso(['-as', 'mkisofs', '-quiet', ...options, '-o', iso, source]);
}

/**
 * `xorriso -as mkisofs` written through `dd conv=sparse`: runs of zeros become holes, so an ISO holding a
 * multi-GiB sparse file takes kilobytes of disk.
 */
export async function mkisofsSparse(source: string, iso: string, options: string[]): Promise<void> {
  const maker = spawn('xorriso', ['-as', 'mkisofs', '-quiet', ...options, '-o', '-', source], {
    env: XORRISO_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // dd reads xorriso's stdout directly: gigabytes never pass through this process.
  const writer = spawn('dd', [`of=${iso}`, 'bs=1M', 'iflag=fullblock', 'conv=sparse', 'status=none'], {
    stdio: [maker.stdout, 'ignore', 'pipe'],
  });
  maker.stdout.destroy(); // dd holds its own copy of the pipe

  let errors = '';
  maker.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  writer.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = (child: typeof maker | typeof writer) =>
    new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
  const [made, written] = await Promise.all([exited(maker), exited(writer)]);
  if (made !== 0 || written !== 0) throw new Error(`xorriso | dd failed (${made}, ${written}):\n${errors}`);
}

/** Extracts the whole ISO with xorriso's own reader: the reference every comparison is made against. */
export async function osirrox(iso: string, into: string, loadOptions: string[] = []): Promise<void> {
  await xorriso(['-osirrox', 'on', ...loadOptions, '-indev', iso, '-extract', '/', into]);
}

export interface Snapshot {
  path: string;
  kind: 'file' | 'directory' | 'symlink';
  size: number;
  sha256?: string;
  target?: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every entry under `root`, sorted by path (files hashed, symlinks not followed). */
export async function snapshot(root: string): Promise<Snapshot[]> {
  const result: Snapshot[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const path = prefix ? `${prefix}/${name}` : name;
      const info = await lstat(full);
      if (info.isSymbolicLink()) result.push({ path, kind: 'symlink', size: 0, target: await readlink(full) });
      else if (info.isDirectory()) {
        result.push({ path, kind: 'directory', size: 0 });
        await walk(full, path);
      } else {
        const bytes = await readFile(full);
        result.push({ path, kind: 'file', size: bytes.length, sha256: sha256(bytes) });
      }
    }
  }
  await walk(root, '');
  return result.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
