/**
 * Image deployments end to end, without a VM: the machine's image job (rendered by smeltd for its MAC) runs under
 * busybox — the tools of the image writer's initramfs — against a loop device standing in for the disk. It streams
 * and decompresses the image from smeltd, reports progress, checks the SHA-256, and phones home: the machine is
 * deployed and `describe machine` shows the bytes written. A wrong checksum is reported as a failure.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { run, runOk } from '../harness/process.ts';
import { smeltctl } from '../harness/smeltctl.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const dir = tempDir('smelt-image-');
const image = randomBytes(3 * 1024 * 1024 + 4096);
const sha256 = createHash('sha256').update(image).digest('hex');
const bin = join(dir, 'bin');
let daemon: RunningSmeltd | undefined;
let env: Record<string, string> = {};
let loop = '';

function running(): RunningSmeltd {
  if (!daemon) throw new Error('smeltd did not start');
  return daemon;
}

async function ok(args: string[]): Promise<string> {
  const result = await smeltctl(args, env);
  assert.equal(result.code, 0, `smeltctl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** Fetches the machine's script, then its job, and runs the job with busybox's tools only. */
async function runJob(mac: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const http = running().http;
  assert.ok(http);
  const script = await runOk('curl', [
    '-sS',
    `http://${http.host}:${String(http.port)}/boot/${mac.replaceAll(':', '-')}.ipxe`,
  ]);
  const job = / smelt\.job=(\S+)/.exec(script)?.[1];
  assert.ok(job, script);
  assert.match(script, / smelt\.phonehome=http:\/\/\S+\/installed/);
  const file = join(dir, `${mac}.sh`);
  writeFileSync(file, await runOk('curl', ['-sS', '--fail', job]));
  return run('/bin/busybox', ['sh', file], { env: { PATH: bin }, timeoutMs: 60_000 });
}

before(async () => {
  mkdirSync(bin);
  await runOk('/bin/busybox', ['--install', '-s', bin]);
  // The project's image writer carries sfdisk (scripts/lib/image-writer.ts); so does this stand-in.
  symlinkSync('/usr/sbin/sfdisk', join(bin, 'sfdisk'));
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'golden.img.gz'), gzipSync(image));
  writeFileSync(join(dir, 'vmlinuz'), 'writer kernel');
  writeFileSync(join(dir, 'initrd.gz'), 'writer initrd');
  writeFileSync(join(dir, 'disk.raw'), Buffer.alloc(8 * 1024 * 1024));
  loop = (await runOk('losetup', ['-f', '--show', join(dir, 'disk.raw')])).trim();
  daemon = await startSmeltd({ dataDir: join(dir, 'data'), config: { files: { dirs: [join(dir, 'images')] } } });
  env = { SMELT_SERVER: running().url, SMELT_TOKEN: running().token, SMELTCTL_CONFIG: join(dir, 'ctl.json') };
  await ok([
    'create',
    'boot',
    '--name',
    'writer',
    '--kind',
    'image',
    '--kernel',
    join(dir, 'vmlinuz'),
    '--initrd',
    join(dir, 'initrd.gz'),
  ]);
});
after(async () => {
  await daemon?.stop();
  if (loop) await run('losetup', ['-d', loop]);
  removeDir(dir);
});

test('the image job writes, verifies, reports progress and phones home', async () => {
  const mac = '52:54:00:1a:00:01';
  await ok([
    'deploy',
    '--MAC',
    mac,
    '--boot',
    'writer',
    '--deploymentType',
    'image',
    '--image',
    '/golden.img.gz',
    '--imageSha256',
    sha256,
    '--disk',
    loop,
  ]);
  const result = await runJob(mac);
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, new RegExp(`wrote \\d+ bytes, sha256 ${sha256}`));
  const written = readFileSync(join(dir, 'disk.raw')).subarray(0, image.length);
  assert.ok(written.equals(image), 'the disk holds the image');
  const machine = JSON.parse(await ok(['get', 'machines', mac, '-o', 'json'])) as {
    state: string;
    progress?: { bytes: number };
  };
  assert.equal(machine.state, 'deployed');
  assert.ok((machine.progress?.bytes ?? 0) >= image.length, JSON.stringify(machine.progress));
  assert.match(await ok(['describe', 'machine', mac]), /Image written:\s+3\.0 MiB/);
});

test('a wrong checksum is a failure report, not a deployed machine', async () => {
  const mac = '52:54:00:1a:00:02';
  await ok([
    'deploy',
    '--MAC',
    mac,
    '--boot',
    'writer',
    '--deploymentType',
    'image',
    '--image',
    '/golden.img.gz',
    '--imageSha256',
    '0'.repeat(64),
    '--disk',
    loop,
  ]);
  const result = await runJob(mac);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /FAILED: SHA-256 [0-9a-f]{64}, expected 0{64}/);
  const events = JSON.parse(await ok(['get', 'events', '--MAC', mac, '-o', 'json'])) as {
    type: string;
    message: string;
  }[];
  assert.equal(events.at(-1)?.type, 'machine.failed');
  assert.match(events.at(-1)?.message ?? '', /expected 0{64}/);
  const bad = await smeltctl(
    ['deploy', '--MAC', '52:54:00:1a:00:03', '--boot', 'writer', '--deploymentType', 'image'],
    env,
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /needs an image URL/);
});

test('--grow: the last partition of the image is grown to the end of the disk', async () => {
  // A 2 MiB image with an MBR and one 1 MiB partition, written to the 8 MiB disk.
  const small = join(dir, 'images', 'parted.img');
  writeFileSync(small, Buffer.alloc(2 * 1024 * 1024));
  await runOk('sh', ['-c', `echo 'start=2048, size=2048, type=83' | sfdisk --quiet ${small}`]);
  const mac = '52:54:00:1a:00:04';
  await ok([
    'deploy',
    '--MAC',
    mac,
    '--boot',
    'writer',
    '--deploymentType',
    'image',
    '--image',
    '/parted.img',
    '--grow',
    '--disk',
    loop,
  ]);
  const result = await runJob(mac);
  assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /grew partition 1 of \/dev\/loop\d+ to the end of the disk/);
  const table = await runOk('sfdisk', ['--dump', loop]);
  // 8 MiB = 16384 sectors; the partition starts at 2048 and now ends at the last one.
  assert.match(table, /start=\s*2048, size=\s*14336, type=83/);
});
