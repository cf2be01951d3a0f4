/**
 * `smeltctl create boot --upload`: a local ISO streamed to the daemon, checksummed, verified, kept, and the boot
 * registered; a corrupted, cut-off or refused upload leaves nothing behind (dataDir/isos holds no partial file and
 * no boot exists).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mkisofs, writeTree } from '../../packages/daemon/src/iso/testdata/xorriso.ts';
import { api } from '../harness/api.ts';
import { runOk } from '../harness/process.ts';
import { smeltctl } from '../harness/smeltctl.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const dir = tempDir('smelt-upload-');
const kernel = randomBytes(200_000);
const iso = join(dir, 'local.iso');
let daemon: RunningSmeltd | undefined;
let env: Record<string, string> = {};

function running(): RunningSmeltd {
  if (!daemon) throw new Error('smeltd did not start');
  return daemon;
}
const isosDir = () => join(running().dataDir, 'isos');
const leftovers = () => readdirSync(isosDir()).filter((f) => !f.endsWith('.iso') || f.startsWith('.'));

before(async () => {
  const source = join(dir, 'src');
  await writeTree(source, { 'casper/vmlinuz': kernel, 'casper/initrd': { random: 3_000_000 } });
  await mkisofs(source, iso, ['-R', '-J']);
  daemon = await startSmeltd({ dataDir: join(dir, 'data') });
  env = { SMELT_SERVER: running().url, SMELT_TOKEN: running().token, SMELTCTL_CONFIG: join(dir, 'ctl.json') };
});
after(async () => {
  await daemon?.stop();
  removeDir(dir);
});

const create = (name: string, kernelPath = 'casper/vmlinuz') =>
  smeltctl(
    [
      'create',
      'boot',
      '--name',
      name,
      '--upload',
      iso,
      '--isoPrefix',
      name,
      '--kernel',
      kernelPath,
      '--initrd',
      'casper/initrd',
    ],
    env,
  );

test('an upload is verified, kept in dataDir/isos and served; the same name again is a conflict', async () => {
  const result = await create('up');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /boot "up" created from the uploaded ISO \(sha256 [0-9a-f]{64}\)/);
  assert.equal(result.stderr, '', 'no progress bar when stderr is not a terminal');
  assert.deepEqual(readdirSync(isosDir()), ['up.iso']);
  assert.ok(readFileSync(join(isosDir(), 'up.iso')).equals(readFileSync(iso)));
  const http = running().http;
  assert.ok(http);
  const served = await runOk('curl', [
    '-sS',
    `http://${http.host}:${String(http.port)}/up/casper/vmlinuz`,
    '-o',
    join(dir, 'k'),
  ]);
  assert.equal(served, '');
  assert.ok(readFileSync(join(dir, 'k')).equals(kernel));
  const again = await create('up');
  assert.equal(again.code, 4, again.stderr);
});

test('a boot that cannot be made removes its uploaded ISO again', async () => {
  const result = await create('badkernel', 'casper/vmlinux');
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /closest: casper\/vmlinuz/);
  assert.deepEqual(readdirSync(isosDir()).sort(), ['up.iso']);
  assert.equal((await api(running(), 'GET', '/api/v1/boots/badkernel')).status, 404);
});

test('a wrong digest, a missing one and a cut-off body leave nothing behind', async () => {
  const base = `${running().url}/api/v1/isos`;
  const auth = ['-H', `Authorization: Bearer ${running().token}`];
  const wrong = await runOk('curl', [
    '-s',
    '-w',
    '\n%{http_code}',
    '-X',
    'PUT',
    ...auth,
    '-H',
    `Content-Digest: sha-256=:${Buffer.alloc(32).toString('base64')}:`,
    '--data-binary',
    `@${iso}`,
    `${base}/corrupt`,
  ]);
  assert.match(wrong, /arrived corrupted/);
  assert.match(wrong, /\n400$/);
  const missing = await runOk('curl', [
    '-s',
    '-w',
    '\n%{http_code}',
    '-X',
    'PUT',
    ...auth,
    '--data-binary',
    `@${iso}`,
    `${base}/nodigest`,
  ]);
  assert.match(missing, /Content-Digest/);
  assert.match(missing, /\n400$/);

  // A client that dies mid-upload: curl sends slowly and is killed.
  const slow = spawn('curl', [
    '-s',
    '-X',
    'PUT',
    ...auth,
    '-H',
    `Content-Digest: sha-256=:${Buffer.alloc(32).toString('base64')}:`,
    '--limit-rate',
    '200k',
    '--data-binary',
    `@${iso}`,
    `${base}/cutoff`,
  ]);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.ok(
    readdirSync(isosDir()).some((f) => f.includes('cutoff') && f.endsWith('.partial')),
    'a partial file while it arrives',
  );
  slow.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while (leftovers().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(leftovers(), [], 'the partial file is removed when the client goes away');
  assert.deepEqual(readdirSync(isosDir()).sort(), ['up.iso']);
  const listed = (await api(running(), 'GET', '/api/v1/isos')).json as { items: { name: string }[] };
  assert.deepEqual(
    listed.items.map((i) => i.name),
    ['up'],
  );
});
