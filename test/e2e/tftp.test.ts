/**
 * TFTP (issue 8) end to end: the real smeltd binary serving a `files.dirs` directory, fetched by real clients —
 * curl, tftp-hpa, atftp — and by a small node:dgram client (test/harness/tftp-client.ts) for what they cannot
 * do; scapy for hostile datagrams; and a pair of network namespaces joined by a veth with nftables dropping 5% of
 * the datagrams, for recovery. Every download is checked by sha256.
 *
 * Network safety: every daemon here listens on 127.0.0.1 or ::1 with an OS-chosen port, except the one in the
 * loss test, which runs inside a namespace this file creates and removes. Nothing binds the machine's real
 * interfaces or its port 69.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNetns, type Netns } from '../harness/netns.ts';
import { repoRoot, smeltdBin } from '../harness/paths.ts';
import { run, runOk, type RunResult } from '../harness/process.ts';
import { removeDir, startSmeltd, tempDir, type RunningSmeltd } from '../harness/smeltd.ts';
import { errorIn, exchange, requestPacket, tftpGet } from '../harness/tftp-client.ts';

const PYTHON = '/usr/bin/python3'; // the one with scapy
const HOSTILE = join(repoRoot, 'test/harness/tftp_hostile.py');
const NOBODY = 65534;
const MiB = 1024 * 1024;
/** Beyond 65535 blocks of 512 bytes, so the block number rolls over to 0 and keeps counting. */
const ROLLOVER_SIZE = 34_000_000;

const root = tempDir('smelt-tftp-');
chmodSync(root, 0o755);
const filesDir = join(root, 'files');
const outDir = join(root, 'out');
const outsideDir = join(root, 'outside');
mkdirSync(join(filesDir, 'sub'), { recursive: true });
mkdirSync(outDir);
mkdirSync(outsideDir);

/** name → contents of every file served. */
const files = new Map<string, Buffer>([
  ['zero', Buffer.alloc(0)],
  ['one', Buffer.from('x')],
  ['b511', randomBytes(511)],
  ['b512', randomBytes(512)],
  ['b513', randomBytes(513)],
  ['r1m', randomBytes(MiB)],
  ['r2m', randomBytes(2 * MiB)],
  ['sub/nested.bin', randomBytes(3000)],
  // LF line ends, a CR before an LF and a bare CR: netascii sends CR LF, CR NUL CR LF and CR NUL.
  ['text.txt', Buffer.from('line one\nline two\r\nbare\rcr\n\nlast line without an end')],
]);
const SIZES = ['zero', 'one', 'b511', 'b512', 'b513', 'r1m'];
const bigFile = join(filesDir, 'big');
let bigSha = '';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function expected(name: string): Buffer {
  const data = files.get(name);
  assert.ok(data, `${name} is one of the test files`);
  return data;
}

let outputs = 0;
function outPath(): string {
  return join(outDir, `o${++outputs}`);
}

/** The downloaded file against the served one, by sha256 (and size, for a readable failure). */
function assertSame(path: string, name: string, what: string): void {
  assert.ok(existsSync(path), `${what}: no output file`);
  const got = readFileSync(path);
  const want = name === 'big' ? undefined : expected(name);
  if (want) assert.equal(got.length, want.length, `${what}: size`);
  assert.equal(sha256(got), want ? sha256(want) : bigSha, `${what}: sha256`);
}

function curlArgs(url: string, out: string, blksize: number | 'none', extra: string[] = []): string[] {
  const option = blksize === 'none' ? ['--tftp-no-options'] : ['--tftp-blksize', String(blksize)];
  return ['-sS', '--max-time', '60', '--connect-timeout', '3', ...option, ...extra, url, '-o', out];
}

function tftpUrl(daemon: RunningSmeltd, path: string): string {
  const { host, port } = tftpOf(daemon);
  return `tftp://${host.includes(':') ? `[${host}]` : host}:${port}/${path}`;
}

function tftpOf(daemon: RunningSmeltd): { host: string; port: number } {
  assert.ok(daemon.tftp, `smeltd logged no "tftp listening" line:\n${daemon.output()}`);
  return daemon.tftp;
}

/** The value of every series in the /metrics text, keyed `name{labels}`. */
async function metrics(daemon: RunningSmeltd): Promise<Map<string, number>> {
  const response = await fetch(`${daemon.url}/metrics`);
  assert.equal(response.status, 200);
  const series = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) series.set(match[1], Number(match[2]));
  }
  return series;
}

/** The sum over the series whose name matches: all label sets of one family, or several families. */
function total(series: Map<string, number>, name: RegExp): number {
  let sum = 0;
  for (const [key, value] of series) if (name.test(key.replace(/\{.*$/, ''))) sum += value;
  return sum;
}

function logLines(daemon: RunningSmeltd): Record<string, unknown>[] {
  return daemon
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

let daemon: RunningSmeltd;

before(async () => {
  for (const [name, data] of files) writeFileSync(join(filesDir, name), data);
  const big = randomBytes(ROLLOVER_SIZE);
  bigSha = sha256(big);
  writeFileSync(bigFile, big);
  writeFileSync(join(outsideDir, 'secret'), 'not to be served\n');
  symlinkSync('../outside/secret', join(filesDir, 'link-out'));
  symlinkSync(outsideDir, join(filesDir, 'dir-link-out'));
  symlinkSync('/etc/passwd', join(filesDir, 'passwd'));
  symlinkSync('sub/nested.bin', join(filesDir, 'link-in'));
  daemon = await startSmeltd({
    dataDir: join(root, 'data'),
    // An ipxe.dir that does not exist: a warning, and nothing from /usr/lib/ipxe gets in the way.
    config: { files: { dirs: [filesDir] }, ipxe: { dir: join(root, 'no-ipxe') } },
  });
});

after(async () => {
  await daemon.stop();
  removeDir(root);
});

test('smeltd logs where TFTP listens, and warns that ipxe.dir is missing without failing', () => {
  const { host, port } = tftpOf(daemon);
  assert.equal(host, '127.0.0.1');
  assert.ok(port > 0 && port < 65536, `port ${port}`);
  const warning = logLines(daemon).find((line) => line.level === 40 && 'ipxe.dir' in line);
  assert.ok(warning, `a warning about ipxe.dir:\n${daemon.output()}`);
});

describe('curl', () => {
  for (const blksize of [512, 1468, 8192, 65464, 'none'] as const) {
    test(`every size at ${blksize === 'none' ? 'no options (RFC 1350 only)' : `blksize ${blksize}`}`, async () => {
      // curl 7.88 rejects an OACK carrying tsize 0 ("invalid tsize"), which an empty file gets whenever curl
      // asks for tsize (always, unless --tftp-no-options): the empty file is fetched without options only.
      const names = blksize === 'none' ? SIZES : SIZES.filter((name) => name !== 'zero');
      await Promise.all(
        names.map(async (name) => {
          const out = outPath();
          const result = await run('curl', curlArgs(tftpUrl(daemon, name), out, blksize), { timeoutMs: 70_000 });
          assert.equal(result.code, 0, `curl ${name}: ${result.stderr}`);
          assertSame(out, name, `curl blksize ${blksize} ${name}`);
        }),
      );
    });
  }

  test('a file in a subdirectory, a symlink inside the tree and a Windows-style path', async () => {
    // curl decodes %5C, so the server is asked for "sub\nested.bin": a backslash is a separator.
    for (const path of ['sub/nested.bin', 'link-in', 'sub%5Cnested.bin']) {
      const out = outPath();
      const result = await run('curl', curlArgs(tftpUrl(daemon, path), out, 1468));
      assert.equal(result.code, 0, `curl ${path}: ${result.stderr}`);
      assertSame(out, 'sub/nested.bin', `curl ${path}`);
    }
  });
});

describe('tftp-hpa', () => {
  test('binary mode, every size', async () => {
    const { host, port } = tftpOf(daemon);
    for (const name of SIZES) {
      const out = outPath();
      const result = await run('tftp', ['-m', 'binary', host, String(port), '-c', 'get', name, out]);
      // tftp-hpa exits 0 even after an error; what it prints tells.
      assert.equal(result.stdout + result.stderr, '', `tftp-hpa ${name}`);
      assertSame(out, name, `tftp-hpa ${name}`);
    }
  });

  test('netascii: the client undoes the CR LF and CR NUL the server sends and gets the file back', async () => {
    const { host, port } = tftpOf(daemon);
    const out = outPath();
    const result = await run('tftp', ['-m', 'netascii', host, String(port), '-c', 'get', 'text.txt', out]);
    assert.equal(result.stdout + result.stderr, '', 'tftp-hpa netascii');
    assertSame(out, 'text.txt', 'tftp-hpa netascii');
  });

  test('a write request is refused with error 2 and writes nothing', async () => {
    const { host, port } = tftpOf(daemon);
    const local = join(outDir, 'to-upload');
    writeFileSync(local, 'upload attempt\n');
    const result = await run('tftp', [host, String(port), '-c', 'put', local, 'uploaded']);
    assert.match(result.stdout + result.stderr, /Error code 2/);
    assert.equal(existsSync(join(filesDir, 'uploaded')), false);
  });
});

describe('atftp', () => {
  const variants: [string, string[]][] = [
    ['windowsize 16', ['--option', 'windowsize 16']],
    ['blksize 1468', ['--option', 'blksize 1468']],
    ['tsize 0', ['--option', 'tsize 0']],
    [
      'windowsize 16, blksize 1468, tsize 0',
      ['--option', 'windowsize 16', '--option', 'blksize 1468', '--option', 'tsize 0'],
    ],
  ];
  for (const [label, options] of variants) {
    test(label, async () => {
      const { host, port } = tftpOf(daemon);
      for (const name of [...SIZES, 'r2m']) {
        const out = outPath();
        const result = await run('atftp', [...options, '-g', '-r', name, '-l', out, host, String(port)]);
        assert.equal(result.code, 0, `atftp ${label} ${name}: ${result.stdout}${result.stderr}`);
        assertSame(out, name, `atftp ${label} ${name}`);
      }
    });
  }
});

/** Block numbers of the DATA atftp --trace says it received ("received 3. DATA <block: 19, size 1468>"), in order. */
function tracedBlocks(trace: string): number[] {
  return [...trace.matchAll(/received \d+\. DATA <block: (\d+), size \d+>/g)].map((match) => Number(match[1]));
}

/** atftp --trace fetching r2m at blksize 1468 and the given windowsize; checks the file and every block once. */
async function tracedDownload(target: RunningSmeltd, windowsize: number): Promise<void> {
  const { host, port } = tftpOf(target);
  const out = outPath();
  const result = await run('atftp', [
    '--trace',
    '--option',
    'blksize 1468',
    '--option',
    `windowsize ${windowsize}`,
    // A long retransmission timeout: on a busy machine a resent window would show up as blocks seen twice.
    '--option',
    'timeout 10',
    '-g',
    '-r',
    'r2m',
    '-l',
    out,
    host,
    String(port),
  ]);
  assert.equal(result.code, 0, `atftp windowsize ${windowsize}: ${result.stderr}`);
  assertSame(out, 'r2m', `atftp windowsize ${windowsize}`);
  const blocks = Math.floor(expected('r2m').length / 1468) + 1;
  const seen = tracedBlocks(result.stdout + result.stderr);
  assert.deepEqual(
    seen,
    Array.from({ length: blocks }, (_, i) => i + 1),
    `windowsize ${windowsize}: every DATA once, in order`,
  );
}

describe('windows in one syscall (UDP GSO)', () => {
  // r2m at blksize 1468: 1429 blocks; the first block of a window goes alone, the rest in groups of at most 16.
  // Windowsize 16: one send per window (89 windows, then 5 blocks); 64: 4 per window (22 windows), then 21
  // blocks in 2.
  for (const [windowsize, sends] of [
    [16, 90],
    [64, 90],
  ] as const) {
    test(`atftp windowsize ${windowsize}: whole windows per sendmsg, every block once and in order`, async () => {
      const before = await metrics(daemon);
      await tracedDownload(daemon, windowsize);
      const afterwards = await metrics(daemon);
      const delta = (name: string) => (afterwards.get(name) ?? 0) - (before.get(name) ?? 0);
      assert.equal(delta('smelt_tftp_retransmissions_total'), 0);
      // A window whose data was still being read when its ACK came (a loaded machine: the thread pool lags) goes
      // out in one send more, and only then; with no such wait, exactly one send per window.
      const splits = delta('smelt_tftp_windows_split_by_reads_total');
      const sent = delta('smelt_tftp_gso_sends_total');
      assert.ok(sent >= sends && sent <= sends + splits, `${String(sent)} sends, ${String(splits)} windows split`);
      assert.equal(total(afterwards, /^smelt_tftp_gso_fallbacks_total$/), 0);
    });
  }

  test('tftp.gso false (SMELT_TFTP_GSO=false): one datagram per send, and the same blocks arrive', async () => {
    const plain = await startSmeltd({
      dataDir: join(root, 'data-nogso'),
      env: { SMELT_TFTP_GSO: 'false' },
      config: { files: { dirs: [filesDir] }, ipxe: { dir: join(root, 'no-ipxe') } },
    });
    try {
      await tracedDownload(plain, 16);
      await tracedDownload(plain, 64);
      const series = await metrics(plain);
      assert.equal(series.get('smelt_tftp_transfers_completed_total'), 2);
      assert.equal(series.get('smelt_tftp_gso_sends_total') ?? 0, 0);
    } finally {
      await plain.stop();
    }
  });
});

describe('the wait for ACKs', () => {
  test('atftp windowsize 16, loopback: ACKs the wait saw are read by the server itself; the file intact', async () => {
    // The wait (tftp/ack-spin.ts) reads an ACK it saw straight off the socket (tftp/ack-reader.ts); the log line
    // counts them. On a busy machine a download may get no wait that saw its ACK, so up to 3 downloads.
    const { host, port } = tftpOf(daemon);
    let waits: { hits: number; read: number } | undefined;
    for (let attempt = 0; attempt < 3 && !(waits && waits.read > 0); attempt++) {
      const already = logLines(daemon).length;
      const out = outPath();
      const result = await run('atftp', [
        ...['--option', 'blksize 1468', '--option', 'windowsize 16', '--option', 'timeout 10'],
        ...['-g', '-r', 'r2m', '-l', out, host, String(port)],
      ]);
      assert.equal(result.code, 0, result.stderr);
      assertSame(out, 'r2m', 'atftp windowsize 16');
      // The server logs once it has the last ACK, which may be just after atftp exits.
      let line: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !line; i++) {
        line = logLines(daemon)
          .slice(already)
          .find((l) => l.msg === 'transfer complete' && l.file === 'r2m');
        if (!line) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(line, 'a "transfer complete" line');
      waits = line.ackWaits as { hits: number; read: number };
      assert.ok(waits.read <= waits.hits, `read ${String(waits.read)} of ${String(waits.hits)} ACKs the wait saw`);
    }
    assert.ok(waits && waits.read > 0, `ACKs read by the wait: ${JSON.stringify(waits)}`);
  });
});

describe('option negotiation and the protocol on the wire', () => {
  test('OACK carries tsize, blksize and windowsize as asked; a windowed download verifies', async () => {
    const { host, port } = tftpOf(daemon);
    const result = await tftpGet({
      host,
      port,
      file: 'r1m',
      options: { tsize: '0', blksize: '1468', windowsize: '8', timeout: '2' },
    });
    assert.equal(result.error, undefined);
    assert.deepEqual(result.oack, { tsize: String(MiB), blksize: '1468', windowsize: '8', timeout: '2' });
    assert.equal(sha256(result.data), sha256(expected('r1m')));
    assert.equal(result.strays, 0);
  });

  test('OVMF: tsize query, ERROR after the OACK, then a fresh request downloads the whole file', async () => {
    const { host, port } = tftpOf(daemon);
    const query = await tftpGet({
      host,
      port,
      file: 'r2m',
      options: { tsize: '0', blksize: '1468', windowsize: '4' },
      abortAfterOack: { code: 8, message: 'Aborting' },
    });
    assert.equal(query.error, undefined);
    assert.deepEqual(query.oack, { tsize: String(2 * MiB), blksize: '1468', windowsize: '4' });
    assert.equal(query.data.length, 0);
    const download = await tftpGet({ host, port, file: 'r2m', options: { blksize: '1468', windowsize: '4' } });
    assert.equal(download.error, undefined);
    assert.equal(sha256(download.data), sha256(expected('r2m')));
    assert.notEqual(download.serverPort, query.serverPort, 'each transfer has its own port');
  });

  test('netascii on the wire: LF becomes CR LF and a bare CR becomes CR NUL; tsize is the size sent', async () => {
    const { host, port } = tftpOf(daemon);
    const text = expected('text.txt').toString('latin1');
    const wire = text.replace(/\r/g, '\r\0').replace(/\n/g, '\r\n');
    const result = await tftpGet({ host, port, file: 'text.txt', mode: 'netascii', options: { tsize: '0' } });
    assert.equal(result.error, undefined);
    assert.equal(result.data.toString('latin1'), wire);
    assert.deepEqual(result.oack, { tsize: String(wire.length) });
    // Small blocks, so that a CR LF pair is split across two of them.
    const small = await tftpGet({ host, port, file: 'text.txt', mode: 'netascii', options: { blksize: '9' } });
    assert.equal(small.data.toString('latin1'), wire);
  });

  test('windowed and rolling over: blksize 8, windowsize 64, 1 MiB is 131,073 blocks (two rollovers)', async () => {
    const { host, port } = tftpOf(daemon);
    const result = await tftpGet({ host, port, file: 'r1m', options: { blksize: '8', windowsize: '64' } });
    assert.equal(result.error, undefined);
    assert.deepEqual(result.oack, { blksize: '8', windowsize: '64' });
    assert.equal(sha256(result.data), sha256(expected('r1m')));
  });

  test('a request sent twice at once starts one transfer, not two', async () => {
    const { host, port } = tftpOf(daemon);
    const result = await tftpGet({ host, port, file: 'r1m', options: { blksize: '1468' }, requestTwice: true });
    assert.equal(sha256(result.data), sha256(expected('r1m')));
    assert.equal(result.strays, 0, 'no datagram came from a second transfer port');
  });

  test('an RRQ without options gets DATA 1 straight away, no OACK', async () => {
    const { host, port } = tftpOf(daemon);
    const result = await tftpGet({ host, port, file: 'b513' });
    assert.equal(result.oack, undefined);
    assert.equal(sha256(result.data), sha256(expected('b513')));
  });
});

describe('refusals', () => {
  const escapes = [
    '../etc/passwd',
    'sub/../../etc/passwd',
    '..\\..\\etc\\passwd',
    '%2e%2e/etc/passwd',
    'sub%2f..%2f..%2fetc%2fpasswd',
    'link-out',
    'dir-link-out/secret',
    'passwd',
  ];

  test('traversals, encoded separators and symlinks leaving the tree get error 2 (access violation)', async () => {
    const { host, port } = tftpOf(daemon);
    for (const path of escapes) {
      const error = errorIn(await exchange(host, port, requestPacket(1, path)));
      assert.equal(error?.code, 2, `${JSON.stringify(path)}: ${JSON.stringify(error)}`);
    }
    const refusals = logLines(daemon).filter((line) => line.msg === 'path refused');
    for (const path of escapes) {
      const line = refusals.find((entry) => entry.path === path);
      assert.ok(line, `no "path refused" line for ${JSON.stringify(path)}`);
      assert.equal(line.level, 40);
      assert.match(String(line.peer), /^127\.0\.0\.1:\d+$/);
    }
  });

  test('the clients report it: curl exit 69, tftp-hpa and atftp print the access violation', async () => {
    const { host, port } = tftpOf(daemon);
    const curl = await run('curl', [...curlArgs(tftpUrl(daemon, '../etc/passwd'), outPath(), 512, ['--path-as-is'])]);
    assert.equal(curl.code, 69, `curl: ${curl.stderr}`); // CURLE_TFTP_PERM
    const curlLink = await run('curl', curlArgs(tftpUrl(daemon, 'link-out'), outPath(), 512));
    assert.equal(curlLink.code, 69, `curl link-out: ${curlLink.stderr}`);
    const hpa = await run('tftp', [host, String(port), '-c', 'get', '../etc/passwd', outPath()]);
    assert.match(hpa.stdout + hpa.stderr, /Error code 2/);
    const atftp = await run('atftp', ['-g', '-r', 'link-out', '-l', outPath(), host, String(port)]);
    assert.notEqual(atftp.code, 0);
    assert.match(atftp.stderr, /error received from server/);
  });

  test('a missing file and a directory get error 1 (file not found): curl exit 68, tftp-hpa says so', async () => {
    const { host, port } = tftpOf(daemon);
    for (const path of ['missing', 'sub', 'sub/', '/', 'no-such-dir/x']) {
      const error = errorIn(await exchange(host, port, requestPacket(1, path)));
      assert.equal(error?.code, 1, `${JSON.stringify(path)}: ${JSON.stringify(error)}`);
    }
    const curl = await run('curl', curlArgs(tftpUrl(daemon, 'missing'), outPath(), 512));
    assert.equal(curl.code, 68, `curl: ${curl.stderr}`); // CURLE_TFTP_NOTFOUND
    const hpa = await run('tftp', [host, String(port), '-c', 'get', 'missing', outPath()]);
    assert.match(hpa.stdout + hpa.stderr, /Error code 1/);
  });

  test('a WRQ on the wire gets error 2', async () => {
    const { host, port } = tftpOf(daemon);
    const error = errorIn(await exchange(host, port, requestPacket(2, 'uploaded')));
    assert.equal(error?.code, 2, JSON.stringify(error));
    assert.equal(existsSync(join(filesDir, 'uploaded')), false);
  });
});

test('hostile datagrams (scapy) to the listener and to a transfer: counted, dropped, and serving goes on', async () => {
  const { host, port } = tftpOf(daemon);
  const before = await metrics(daemon);
  // The requests in the barrage that do start transfers come from 127.0.0.2, so they do not hold 127.0.0.1's
  // per-peer slots while they time out.
  const result = await run(PYTHON, [HOSTILE, host, String(port), 'r1m', '127.0.0.2'], { timeoutMs: 60_000 });
  assert.equal(result.code, 0, `${result.stderr}${result.stdout}`);
  const report = JSON.parse(result.stdout) as {
    sha256: string;
    size: number;
    foreignReplies: { opcode: number; code: number | null }[];
    sprayed: number;
  };
  assert.equal(report.size, MiB, 'the disturbed download got the whole file');
  assert.equal(report.sha256, sha256(expected('r1m')), 'the disturbed download is intact');
  assert.ok(
    report.foreignReplies.some((reply) => reply.opcode === 5 && reply.code === 5),
    `a foreign TID gets error 5 (unknown transfer ID): ${JSON.stringify(report.foreignReplies)}`,
  );
  assert.ok(
    report.foreignReplies.every((reply) => reply.opcode === 5),
    `nothing but errors goes to a foreign port: ${JSON.stringify(report.foreignReplies)}`,
  );
  assert.equal(daemon.child.exitCode, null, 'smeltd is still running');

  const out = outPath();
  const curl = await run('curl', curlArgs(tftpUrl(daemon, 'r1m'), out, 1468));
  assert.equal(curl.code, 0, curl.stderr);
  assertSame(out, 'r1m', 'curl after the barrage');

  const afterwards = await metrics(daemon);
  const dropped = /^smelt_tftp_packets_dropped_total$/;
  const rise = total(afterwards, dropped) - total(before, dropped);
  const reasons = [...afterwards]
    .filter(([key]) => key.startsWith('smelt_tftp_packets_dropped_total{'))
    .map(([key, value]) => `${/reason="([^"]*)"/.exec(key)?.[1] ?? key}=${value - (before.get(key) ?? 0)}`);
  console.log(`hostile: ${report.sprayed} datagrams sprayed; dropped ${rise}: ${reasons.join(' ')}`);
  // At least the empty, one-byte, bad-opcode and unterminated datagrams to the listener and to the transfer.
  assert.ok(rise >= 8, `drop counters rose by ${rise}: ${reasons.join(' ')}`);
});

test('block numbers roll over: 34 MB at blksize 512 (66,407 blocks) with curl', async () => {
  const out = outPath();
  const result = await run('curl', curlArgs(tftpUrl(daemon, 'big'), out, 512), { timeoutMs: 70_000 });
  assert.equal(result.code, 0, result.stderr);
  assertSame(out, 'big', 'curl blksize 512 big');
});

describe('limits', () => {
  let queued: RunningSmeltd | undefined;
  after(async () => {
    await queued?.stop();
  });

  test('a client that stops answering gets retries + 1 copies of its block, an ERROR, and its slot back', async () => {
    const impatient = await startSmeltd({
      dataDir: join(root, 'data-stall'),
      config: {
        files: { dirs: [filesDir] },
        ipxe: { dir: join(root, 'no-ipxe') },
        tftp: { timeout: 0.1, retries: 2, maxPerPeer: 1 },
      },
    });
    try {
      const { host, port } = tftpOf(impatient);
      const socket = createSocket('udp4');
      const seen = await new Promise<{ data1: number; error?: number }>((resolve, reject) => {
        let data1 = 0;
        const timer = setTimeout(() => {
          reject(new Error(`no ERROR after ${data1} copies of DATA 1`));
        }, 20_000);
        socket.on('message', (packet: Buffer) => {
          const opcode = packet.readUInt16BE(0);
          if (opcode === 3 && packet.readUInt16BE(2) === 1) data1++;
          if (opcode === 5) {
            clearTimeout(timer);
            resolve({ data1, error: packet.readUInt16BE(2) });
          }
        });
        socket.send(requestPacket(1, 'r1m'), port, host);
      }).finally(() => {
        socket.close();
      });
      assert.equal(seen.data1, 3, 'DATA 1 once and then twice again');
      // maxPerPeer is 1: a download now works only if the stalled transfer gave its slot back.
      const result = await tftpGet({ host, port, file: 'b513' });
      assert.equal(sha256(result.data), sha256(expected('b513')));
      // The client is done when it has sent its last ACK; the daemon may answer /metrics before reading it.
      let series = await metrics(impatient);
      for (let i = 0; i < 100 && (series.get('smelt_tftp_transfers_active') ?? 0) > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        series = await metrics(impatient);
      }
      assert.equal(series.get('smelt_tftp_transfers_failed_total{reason="timeout"}'), 1);
      assert.equal(series.get('smelt_tftp_transfers_active'), 0);
    } finally {
      await impatient.stop();
    }
  });

  test('maxPerPeer 1: four parallel downloads from one client queue and all complete', async () => {
    queued = await startSmeltd({
      dataDir: join(root, 'data-queue'),
      config: { files: { dirs: [filesDir] }, ipxe: { dir: join(root, 'no-ipxe') }, tftp: { maxPerPeer: 1 } },
    });
    const server = queued;
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const out = outPath();
        // A queued request is answered late; curl resends its RRQ meanwhile, which must not start a second one.
        const result = await run('curl', curlArgs(tftpUrl(server, 'r1m'), out, 1468, ['--connect-timeout', '30']));
        assert.equal(result.code, 0, result.stderr);
        assertSame(out, 'r1m', 'a queued curl');
      }),
    );
  });
});

describe('IPv6', () => {
  let v6: RunningSmeltd | undefined;
  after(async () => {
    await v6?.stop();
  });

  test('on [::1]: curl, atftp and the raw client download and verify', async () => {
    v6 = await startSmeltd({
      dataDir: join(root, 'data-v6'),
      config: { files: { dirs: [filesDir] }, ipxe: { dir: join(root, 'no-ipxe') }, tftp: { listen: '[::1]:0' } },
    });
    const { host, port } = tftpOf(v6);
    assert.equal(host, '::1');
    const out = outPath();
    const curl = await run('curl', curlArgs(tftpUrl(v6, 'r1m'), out, 1468));
    assert.equal(curl.code, 0, curl.stderr);
    assertSame(out, 'r1m', 'curl over IPv6');
    const atftpOut = outPath();
    const atftp = await run('atftp', [
      '--option',
      'windowsize 16',
      '-g',
      '-r',
      'r2m',
      '-l',
      atftpOut,
      host,
      String(port),
    ]);
    assert.equal(atftp.code, 0, atftp.stderr);
    assertSame(atftpOut, 'r2m', 'atftp over IPv6');
    const series = await metrics(v6);
    assert.ok((series.get('smelt_tftp_gso_sends_total') ?? 0) > 0, 'windows over IPv6 went out through UDP GSO');
    assert.equal(total(series, /^smelt_tftp_gso_fallbacks_total$/), 0);
    const raw = await tftpGet({ host, port, file: 'b513', options: { blksize: '8', windowsize: '64' } });
    assert.equal(sha256(raw.data), sha256(expected('b513')));
    assert.equal(errorIn(await exchange(host, port, requestPacket(1, '../x')))?.code, 2);
  });
});

describe('listen failures', () => {
  function holdUdp(): Promise<{ socket: Socket; port: number }> {
    const socket = createSocket('udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        resolve({ socket, port: socket.address().port });
      });
    });
  }

  function oneLine(result: RunResult): string {
    assert.equal(result.code, 1, `exit code; output:\n${result.stdout}${result.stderr}`);
    assert.doesNotMatch(result.stderr, /^\s+at /m, `a stack trace:\n${result.stderr}`);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    assert.equal(lines.length, 1, `one line:\n${result.stderr}`);
    return lines[0] ?? '';
  }

  function writeConfig(dir: string, tftpListen: string): string {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'smelt.json');
    writeFileSync(
      path,
      JSON.stringify({
        address: '127.0.0.1',
        dataDir: join(dir, 'data'),
        api: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        dhcp: { mode: 'off' },
        tftp: { listen: tftpListen },
        ipxe: { dir: join(root, 'no-ipxe') },
      }),
    );
    return path;
  }

  test('the TFTP port in use: exit 1 with one line, after closing the API it had started', async () => {
    const { socket, port } = await holdUdp();
    try {
      // If the API server stayed open the process would not exit, and run() would time out.
      const result = await run(
        smeltdBin,
        ['start', '--config', writeConfig(join(root, 'inuse'), `127.0.0.1:${port}`)],
        {
          timeoutMs: 15_000,
        },
      );
      const line = oneLine(result);
      assert.match(line, new RegExp(`127\\.0\\.0\\.1:${port}\\b`));
      assert.match(line, /TFTP/);
      assert.match(line, /in use/);
    } finally {
      socket.close();
    }
  });

  test('port 69 as a user without the capability: exit 1 with one line saying what is needed', async () => {
    const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    assert.ok(unprivilegedStart > 69, `net.ipv4.ip_unprivileged_port_start is ${unprivilegedStart}; 69 is open`);
    const dir = join(root, 'nobody');
    const configPath = writeConfig(dir, '127.0.0.1:69');
    chownSync(dir, NOBODY, NOBODY);
    const result = await run(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', smeltdBin, 'start', '--config', configPath],
      { timeoutMs: 15_000 },
    );
    const line = oneLine(result);
    assert.match(line, /127\.0\.0\.1:69\b/);
    assert.match(line, /port 69/);
    assert.match(line, /root or CAP_NET_BIND_SERVICE/);
  });
});

describe('induced loss between two namespaces', () => {
  // smeltd in one namespace on its end of a veth, the clients in the other, and nftables in the clients'
  // namespace dropping 5% of the UDP datagrams that arrive there (DATA and OACK): only the server's resending
  // gets the files through. Two settings keep this quick without changing what is tested: the link has jumbo
  // frames (MTU 9000), so curl's lock-step download can use 8 KiB blocks, and the server's first retransmission
  // timeout is 0.25 s (tftp.timeout, used when the client asks none: atftp does not; curl asks 1 s).
  const SERVER = '10.88.0.1';
  const CLIENT = '10.88.0.2';
  let serverNs: Netns | undefined;
  let clientNs: Netns | undefined;
  let lossy: RunningSmeltd | undefined;

  before(async () => {
    serverNs = await createNetns('ts');
    clientNs = await createNetns('tc');
    const [s, c] = [serverNs.name, clientNs.name];
    await runOk('ip', [
      '-n',
      s,
      'link',
      'add',
      'veth0',
      'mtu',
      '9000',
      'type',
      'veth',
      'peer',
      'name',
      'veth1',
      'mtu',
      '9000',
      'netns',
      c,
    ]);
    await runOk('ip', ['-n', s, 'addr', 'add', `${SERVER}/24`, 'dev', 'veth0']);
    await runOk('ip', ['-n', c, 'addr', 'add', `${CLIENT}/24`, 'dev', 'veth1']);
    await runOk('ip', ['-n', s, 'link', 'set', 'veth0', 'up']);
    await runOk('ip', ['-n', c, 'link', 'set', 'veth1', 'up']);
    await clientNs.exec([
      'nft',
      'add table inet loss; ' +
        'add chain inet loss input { type filter hook input priority 0; policy accept; }; ' +
        'add rule inet loss input meta l4proto udp numgen random mod 100 < 5 counter drop',
    ]);
    lossy = await startSmeltd({
      dataDir: join(root, 'data-loss'),
      netns: s,
      config: {
        address: SERVER,
        files: { dirs: [filesDir] },
        ipxe: { dir: join(root, 'no-ipxe') },
        tftp: { listen: `${SERVER}:69`, timeout: 0.25 },
      },
    });
  });

  after(async () => {
    await lossy?.stop();
    await clientNs?.remove();
    await serverNs?.remove();
  });

  test('blksize is capped by the MTU of the link: 9000 - 20 - 8 - 4 = 8968', async () => {
    const client = clientNs;
    assert.ok(client);
    const out = outPath();
    const result = await run(
      'ip',
      [
        'netns',
        'exec',
        client.name,
        'atftp',
        '--trace',
        '--option',
        'blksize 65464',
        '-g',
        '-r',
        'b513',
        '-l',
        out,
        SERVER,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /received OACK <blksize: 8968\b/);
    assertSame(out, 'b513', 'atftp blksize 65464 over MTU 9000');
  });

  test('atftp (windowsize 16, 2 MiB) and curl (1 MiB) finish with the right sha256 despite 5% loss', async () => {
    const [client, server, daemonInNs] = [clientNs, serverNs, lossy];
    assert.ok(client && server && daemonInNs);
    assert.deepEqual(daemonInNs.tftp, { host: SERVER, port: 69 });
    const inClient = (command: string[]) =>
      run('ip', ['netns', 'exec', client.name, ...command], { timeoutMs: 120_000 });
    const atftpOut = outPath();
    const curlOut = outPath();
    const [atftp, curl] = await Promise.all([
      inClient([
        'atftp',
        '--option',
        'windowsize 16',
        '--option',
        'blksize 1468',
        '--tftp-timeout',
        '1',
        '-g',
        '-r',
        'r2m',
        '-l',
        atftpOut,
        SERVER,
      ]),
      inClient(['curl', ...curlArgs(`tftp://${SERVER}/r1m`, curlOut, 8192, ['--max-time', '110'])]),
    ]);
    assert.equal(atftp.code, 0, `atftp: ${atftp.stdout}${atftp.stderr}`);
    assertSame(atftpOut, 'r2m', 'atftp through 5% loss');
    assert.equal(curl.code, 0, `curl: ${curl.stderr}`);
    assertSame(curlOut, 'r1m', 'curl through 5% loss');

    const counters = await client.exec(['nft', 'list', 'chain', 'inet', 'loss', 'input']);
    const droppedPackets = Number(/counter packets (\d+)/.exec(counters)?.[1] ?? 0);
    assert.ok(droppedPackets > 0, `nftables dropped nothing:\n${counters}`);
    // The API listens on 127.0.0.1 inside the server's namespace.
    const text = await server.exec(['curl', '-sS', '--max-time', '5', `${daemonInNs.url}/metrics`]);
    const resent = Number(/^smelt_tftp_retransmissions_total (\d+)$/m.exec(text)?.[1] ?? 0);
    assert.ok(resent > 0, `the server resent nothing:\n${text}`);
    console.log(`loss test: nftables dropped ${droppedPackets} datagrams; smeltd resent ${resent}`);
  });
});

test('after all of it: no unexpected exception, no error logged, no transfer left behind; SIGTERM exits 0', async () => {
  // The barrage's requests from 127.0.0.2 start transfers nobody answers; they end by timing out.
  let series = await metrics(daemon);
  for (let i = 0; i < 300 && (series.get('smelt_tftp_transfers_active') ?? 0) > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    series = await metrics(daemon);
  }
  assert.equal(series.get('smelt_tftp_transfers_active'), 0, 'active transfers');
  assert.equal(series.get('smelt_tftp_transfers_queued') ?? 0, 0, 'queued requests');
  assert.equal(series.get('smelt_tftp_internal_errors_total') ?? 0, 0, 'internal errors');
  const errors = logLines(daemon).filter((line) => typeof line.level === 'number' && line.level >= 50);
  assert.deepEqual(errors, [], 'error-level log lines');
  assert.equal(daemon.child.exitCode, null, 'smeltd is still running');

  // SIGTERM with a transfer in flight (a client that asked and never acknowledged): a clean exit.
  const { host, port } = tftpOf(daemon);
  const stalled = await exchange(host, port, requestPacket(1, 'r1m'));
  assert.equal(stalled?.packet.readUInt16BE(0), 3, 'DATA 1 of the transfer left in flight');
  assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.output());
  assert.ok(logLines(daemon).some((line) => line.msg === 'stopped'));
});
