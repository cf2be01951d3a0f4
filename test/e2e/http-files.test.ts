/**
 * The machine-facing HTTP server's file serving, against the real smeltd with curl: a boot's files straight out
 * of its ISO (by /<isoPrefix>/ and /iso/<boot>/), the whole ISO, the shared tree (HTTP Boot's ipxe.efi), with
 * HEAD, single and multiple ranges, 416, ETag/If-None-Match, If-Range, and refusals of paths out of the tree.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mkisofs, writeTree } from '../../packages/daemon/src/iso/testdata/xorriso.ts';
import { run, runOk } from '../harness/process.ts';
import { smeltctl } from '../harness/smeltctl.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';

const dir = tempDir('smelt-http-files-');
const kernel = randomBytes(300_000);
const initrd = randomBytes(1_500_000);
const tftpFile = randomBytes(5000);
/** Big enough that a slow client is still mid-file when it goes away. */
const bigFile = randomBytes(24 * 1024 * 1024);
let daemon: RunningSmeltd | undefined;
let base = '';
let ctlEnv: Record<string, string> = {};

function running(): RunningSmeltd {
  if (!daemon) throw new Error('smeltd did not start');
  return daemon;
}

/** curl with headers in the output: { status, headers, body } */
let requestCount = 0;
async function fetchRaw(path: string, ...args: string[]) {
  // A new file each time: curl writes nothing (leaves an old file as it was) when there is no body.
  const out = join(dir, `body-${String(++requestCount)}`);
  writeFileSync(out, '');
  const result = await run('curl', ['-sS', '-o', out, '-D', '-', ...args, `${base}${path}`]);
  assert.equal(result.code, 0, result.stderr);
  const blocks = result.stdout.trim().split(/\r\n\r\n/);
  const head = blocks.at(-1) ?? '';
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: readFileSync(out) };
}

before(async () => {
  const source = join(dir, 'src');
  await writeTree(source, {
    'casper/vmlinuz': kernel,
    'casper/initrd': initrd,
    'README.TXT': 'hello\n',
    'boot/eltorito.img': Buffer.alloc(2048, 0x90),
  });
  await mkisofs(source, join(dir, 'ubuntu.iso'), ['-R', '-J', '-b', 'boot/eltorito.img', '-no-emul-boot']);
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files', 'extra.bin'), tftpFile);
  writeFileSync(join(dir, 'files', 'big.bin'), bigFile);
  daemon = await startSmeltd({ dataDir: join(dir, 'data'), config: { files: { dirs: [join(dir, 'files')] } } });
  const address = running().http;
  assert.ok(address);
  base = `http://${address.host}:${String(address.port)}`;
  const env = { SMELT_SERVER: running().url, SMELT_TOKEN: running().token, SMELTCTL_CONFIG: join(dir, 'ctl.json') };
  ctlEnv = env;
  const created = await smeltctl(
    [
      'create',
      'boot',
      '--name',
      'ubuntu',
      '--isoPath',
      join(dir, 'ubuntu.iso'),
      '--isoPrefix',
      'ubuntu',
      '--kernel',
      'casper/vmlinuz',
      '--initrd',
      'casper/initrd',
    ],
    env,
  );
  assert.equal(created.code, 0, created.stderr);
});
after(async () => {
  await daemon?.stop();
  removeDir(dir);
});

test('files inside the ISO, by its prefix and by the boot name, and the whole ISO', async () => {
  for (const path of ['/ubuntu/casper/vmlinuz', '/iso/ubuntu/casper/vmlinuz']) {
    const { status, headers, body } = await fetchRaw(path);
    assert.equal(status, 200, path);
    assert.equal(headers.get('content-length'), String(kernel.length));
    assert.ok(body.equals(kernel), `${path} is the file in the ISO`);
  }
  const whole = await fetchRaw('/iso/ubuntu.iso');
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(readFileSync(join(dir, 'ubuntu.iso'))));
  assert.equal((await fetchRaw('/ubuntu/casper/missing')).status, 404);
  assert.equal((await fetchRaw('/iso/nosuchboot.iso')).status, 404);
});

test('HEAD, single ranges, suffix ranges, multiple ranges and 416', async () => {
  const head = await fetchRaw('/ubuntu/casper/initrd', '-I');
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(initrd.length));
  assert.equal(head.headers.get('accept-ranges'), 'bytes');

  const middle = await fetchRaw('/ubuntu/casper/initrd', '-r', '1000-1999');
  assert.equal(middle.status, 206);
  assert.equal(middle.headers.get('content-range'), `bytes 1000-1999/${String(initrd.length)}`);
  assert.ok(middle.body.equals(initrd.subarray(1000, 2000)));

  const tail = await fetchRaw('/ubuntu/casper/initrd', '-H', 'Range: bytes=-10');
  assert.ok(tail.body.equals(initrd.subarray(initrd.length - 10)));

  const multi = await fetchRaw('/ubuntu/casper/initrd', '-r', '0-9,100-109');
  assert.equal(multi.status, 206);
  const boundary = /boundary=(\S+)/.exec(multi.headers.get('content-type') ?? '')?.[1];
  assert.ok(boundary, multi.headers.get('content-type'));
  assert.equal(Number(multi.headers.get('content-length')), multi.body.length);
  const text = multi.body.toString('latin1');
  assert.ok(text.includes(`Content-Range: bytes 0-9/${String(initrd.length)}`));
  assert.ok(text.includes(initrd.subarray(100, 110).toString('latin1')));
  assert.ok(text.endsWith(`--${boundary}--\r\n`));

  const beyond = await fetchRaw('/ubuntu/casper/initrd', '-r', `${String(initrd.length + 5)}-`);
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), `bytes */${String(initrd.length)}`);
});

test('ETag and Last-Modified make conditional requests work', async () => {
  const first = await fetchRaw('/ubuntu/casper/vmlinuz');
  const etag = first.headers.get('etag');
  assert.ok(etag?.startsWith('"'), 'an ETag');
  assert.ok(first.headers.get('last-modified'));
  const again = await fetchRaw('/ubuntu/casper/vmlinuz', '-H', `If-None-Match: ${etag ?? ''}`);
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const ifRangeOk = await fetchRaw('/ubuntu/casper/vmlinuz', '-r', '0-3', '-H', `If-Range: ${etag ?? ''}`);
  assert.equal(ifRangeOk.status, 206);
  const ifRangeStale = await fetchRaw('/ubuntu/casper/vmlinuz', '-r', '0-3', '-H', 'If-Range: "stale"');
  assert.equal(ifRangeStale.status, 200, 'a stale If-Range gets the whole file');
});

test('the shared tree: configured directories and ipxe.dir; paths out of it are refused', async () => {
  const extra = await fetchRaw('/extra.bin');
  assert.equal(extra.status, 200);
  assert.ok(extra.body.equals(tftpFile));
  const efi = await fetchRaw('/ipxe.efi', '-I');
  assert.equal(efi.status, 200, 'Debian links /usr/lib/ipxe/ipxe.efi to /boot; it is served');
  const traversal = await runOk('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--path-as-is',
    `${base}/../../etc/passwd`,
  ]);
  assert.ok(traversal === '403' || traversal === '404', traversal);
  const encoded = await runOk('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '--path-as-is',
    `${base}/%2e%2e/%2e%2e/etc/passwd`,
  ]);
  assert.ok(encoded === '403' || encoded === '404', encoded);
  const post = await runOk('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${base}/extra.bin`]);
  assert.equal(post, '405');
});

test('describe boot: the ISO, its El Torito catalog and the URLs machines fetch', async () => {
  const result = await smeltctl(['describe', 'boot', 'ubuntu'], ctlEnv);
  assert.equal(result.code, 0, result.stderr);
  // Four files of ours and the boot catalog xorriso adds.
  assert.match(result.stdout, /Files:\s+5 in 3 directories/);
  assert.match(result.stdout, /Boot catalog:\s+bios, none emulation: boot\/eltorito\.img/);
  assert.match(result.stdout, new RegExp(`Kernel:\\s+${base.replaceAll('.', '\\.')}/ubuntu/casper/vmlinuz`));
  assert.match(result.stdout, /Whole ISO:\s+http:\/\/127\.0\.0\.1:\d+\/iso\/ubuntu\.iso/);
  const json = JSON.parse((await smeltctl(['describe', 'boot', 'ubuntu', '-o', 'json'], ctlEnv)).stdout) as {
    details: { iso: { catalog: { platform: string; path: string }[] } };
  };
  assert.deepEqual(
    json.details.iso.catalog.map((e) => [e.platform, e.path]),
    [['bios', 'boot/eltorito.img']],
  );
});

/** The daemon's open descriptors that lead to `path`. */
function descriptorsOn(pid: number, path: string): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${String(pid)}/fd`)) {
    try {
      if (readlinkSync(`/proc/${String(pid)}/fd/${fd}`) === path) count++;
    } catch {
      // closed between the listing and the look
    }
  }
  return count;
}

test('clients that go away mid-file leave nothing open, and the next download is whole', async () => {
  const pid = running().child.pid;
  assert.ok(pid !== undefined);
  const big = join(dir, 'files', 'big.bin');
  // Slow clients (1 MB/s) stopped after 1 s: each has had part of the file when it hangs up.
  const partial = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      run('curl', [
        '-sS',
        '-o',
        join(dir, `partial-${String(i)}`),
        '--limit-rate',
        '1M',
        '--max-time',
        '1',
        ...(i % 2 === 1 ? ['-r', '1000000-'] : []),
        `${base}/big.bin`,
      ]),
    ),
  );
  for (const [i, result] of partial.entries()) {
    assert.equal(result.code, 28, `curl ${String(i)} should have timed out mid-file: ${result.stderr}`);
    const got = readFileSync(join(dir, `partial-${String(i)}`));
    const from = i % 2 === 1 ? 1_000_000 : 0;
    assert.ok(got.length > 0 && got.length < bigFile.length - from, `client ${String(i)} got ${String(got.length)}`);
    assert.ok(got.equals(bigFile.subarray(from, from + got.length)), `client ${String(i)}: the bytes it got are right`);
  }
  // The server notices the hang-ups as its writes fail or the sockets close; give it a moment.
  for (let tries = 0; descriptorsOn(pid, big) > 0 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(descriptorsOn(pid, big), 0, 'every aborted download closed its file');
  const whole = await fetchRaw('/big.bin');
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(bigFile), 'a whole download after the aborted ones is byte for byte the file');
  const tail = await fetchRaw('/big.bin', '-r', `${String(bigFile.length - 300_000)}-`);
  assert.equal(tail.status, 206);
  assert.ok(tail.body.equals(bigFile.subarray(bigFile.length - 300_000)));
});

/** The value of one series on the daemon's /metrics (0 when it has not appeared yet). */
async function metric(series: string): Promise<number> {
  const result = await run('curl', [
    '-sS',
    '-H',
    `Authorization: Bearer ${running().token}`,
    `${running().url}/metrics`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const line = result.stdout.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

test('large files go out by sendfile on a kept-alive connection; small ones are streamed', async () => {
  const zeroCopy = 'smelt_http_file_bodies_total{via="sendfile"}';
  const streamed = 'smelt_http_file_bodies_total{via="stream"}';
  const [zeroBefore, streamBefore] = [await metric(zeroCopy), await metric(streamed)];
  // Three responses on one connection: a whole file, a range of a file inside the ISO, a small file.
  const outs = ['ka-1', 'ka-2', 'ka-3'].map((name) => join(dir, name));
  const each = (out: string) => ['-sS', '-w', '%{num_connects} %{http_code}\n', '-o', out];
  // --next resets the options (the range is only the second's) and keeps the connection.
  const result = await run('curl', [
    ...each(outs[0] ?? ''),
    `${base}/big.bin`,
    '--next',
    ...each(outs[1] ?? ''),
    '-r',
    '100000-1299999',
    `${base}/ubuntu/casper/initrd`,
    '--next',
    ...each(outs[2] ?? ''),
    `${base}/extra.bin`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout.trim().split('\n'), ['1 200', '0 206', '0 200'], 'one connection for all three');
  assert.ok(readFileSync(outs[0] ?? '').equals(bigFile));
  assert.ok(readFileSync(outs[1] ?? '').equals(initrd.subarray(100_000, 1_300_000)));
  assert.ok(readFileSync(outs[2] ?? '').equals(tftpFile));
  assert.equal((await metric(zeroCopy)) - zeroBefore, 2, 'the big file and the ISO range by sendfile');
  assert.equal((await metric(streamed)) - streamBefore, 1, 'the 5 kB file through the event loop');
});
