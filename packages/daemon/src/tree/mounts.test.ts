import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../log.ts';
import { directorySource } from './directory.ts';
import { createFileTree, normalisePath } from './mounts.ts';
import { PathRefusedError, type TreeFile, type TreeSource } from './tree.ts';

const peer = { address: '192.0.2.7', port: 2000 };

function memoryFile(text: string): TreeFile {
  const data = Buffer.from(text);
  return {
    size: data.length,
    read: (offset, length) => Promise.resolve(data.subarray(offset, offset + length)),
    readInto: (target, offset) => Promise.resolve(data.copy(target, 0, Math.min(offset, data.length))),
    close: () => Promise.resolve(),
  };
}

/** A source holding fixed files, recording every path it was asked for. */
function fakeSource(files: Record<string, string>, asked: string[] = []): TreeSource {
  return {
    open(path) {
      asked.push(path);
      const text = files[path];
      return Promise.resolve(text === undefined ? undefined : memoryFile(text));
    },
  };
}

async function text(file: TreeFile | undefined): Promise<string | undefined> {
  return file === undefined ? undefined : (await file.read(0, file.size)).toString();
}

/** A logger writing JSON lines into an array, as pino does to stdout. */
function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', destination), lines };
}

describe('normalisePath', () => {
  test('separators, leading slashes, doubled slashes and "." segments are normalised', () => {
    const cases: [string, string][] = [
      ['pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff'],
      ['/undionly.kpxe', 'undionly.kpxe'],
      ['//boot//x', 'boot/x'],
      ['boot\\grub\\grub.cfg', 'boot/grub/grub.cfg'],
      ['\\EFI\\BOOT\\BOOTX64.EFI', 'EFI/BOOT/BOOTX64.EFI'],
      ['./a/./b/', 'a/b'],
      ['a..b/c...', 'a..b/c...'],
      ['file%20name', 'file%20name'],
      ['foo%2ebar', 'foo%2ebar'],
      ['/', ''],
      ['', ''],
    ];
    for (const [input, expected] of cases) assert.equal(normalisePath(input), expected, JSON.stringify(input));
  });

  test('traversals, NUL bytes, encoded separators and dots, and drive letters are refused', () => {
    const refused = [
      '../etc/passwd',
      '/../etc/passwd',
      'a/../../x',
      'a/../b',
      '..',
      '..\\..\\windows',
      'a\\..\\..\\x',
      '%2e%2e/etc/passwd',
      '%2E%2e/x',
      '.%2e/x',
      '%2e./x',
      'a/%2e/b',
      'a%2fb',
      'a%2F..%2Fb',
      'a%5cb',
      'a%00b',
      'pxelinux.0\0.txt',
      'C:\\Windows\\x',
      'c:/x',
    ];
    for (const path of refused) {
      assert.throws(() => normalisePath(path), PathRefusedError, JSON.stringify(path));
    }
  });
});

describe('createFileTree', () => {
  test('the longest prefix is asked first; a shorter mount serves what the longer one lacks', async () => {
    const askedRoot: string[] = [];
    const askedCfg: string[] = [];
    const tree = createFileTree(
      [
        { prefix: '/', source: fakeSource({ 'pxelinux.cfg/default': 'from root', x: 'root x' }, askedRoot) },
        { prefix: '/pxelinux.cfg', source: fakeSource({ '01-aa': 'rendered' }, askedCfg) },
      ],
      capturingLog().log,
    );
    assert.equal(await text(await tree.resolve('/pxelinux.cfg/01-aa', peer)), 'rendered');
    assert.deepEqual(askedRoot, [], 'the root mount was not asked for what the longer prefix has');
    assert.equal(await text(await tree.resolve('pxelinux.cfg\\default', peer)), 'from root');
    assert.deepEqual(askedCfg, ['01-aa', 'default']);
    assert.deepEqual(askedRoot, ['pxelinux.cfg/default']);
    assert.equal(await text(await tree.resolve('x', peer)), 'root x');
    assert.deepEqual(askedCfg, ['01-aa', 'default'], 'a path outside a prefix is not offered to it');
    assert.equal(await text(await tree.resolve('pxelinux.cfgx', peer)), undefined);
    assert.deepEqual(askedCfg, ['01-aa', 'default'], '"pxelinux.cfgx" is not under "pxelinux.cfg"');
  });

  test('mounts with the same prefix are searched in order; the first that has the file wins', async () => {
    const tree = createFileTree(
      [
        { prefix: '/', source: fakeSource({ a: 'first a' }) },
        { prefix: '', source: fakeSource({ a: 'second a', b: 'second b' }) },
        { prefix: '/', source: fakeSource({ b: 'third b', c: 'third c' }) },
      ],
      capturingLog().log,
    );
    assert.equal(await text(await tree.resolve('a', peer)), 'first a');
    assert.equal(await text(await tree.resolve('/b', peer)), 'second b');
    assert.equal(await text(await tree.resolve('c', peer)), 'third c');
    assert.equal(await tree.resolve('d', peer), undefined);
    assert.equal(await tree.resolve('/', peer), undefined, 'the root is a directory');
  });

  test('a refusal is logged at warn with the peer and stops the search', async () => {
    const { log, lines } = capturingLog();
    const asked: string[] = [];
    const refusing: TreeSource = {
      open: (path) => Promise.reject(new PathRefusedError(path, 'a symlink leads out of the served directory')),
    };
    const tree = createFileTree(
      [
        { prefix: '/', source: refusing },
        { prefix: '/', source: fakeSource({ link: 'must not be served' }, asked) },
      ],
      log,
    );
    await assert.rejects(tree.resolve('link', peer), PathRefusedError);
    assert.deepEqual(asked, [], 'a refused path is not offered to the next mount');
    await assert.rejects(tree.resolve('../etc/passwd', { address: '2001:db8::5', port: 1234 }), PathRefusedError);
    assert.deepEqual(
      lines.map(({ level, msg, peer: who, path, reason }) => ({ level, msg, peer: who, path, reason })),
      [
        {
          level: 40,
          msg: 'path refused',
          peer: '192.0.2.7:2000',
          path: 'link',
          reason: 'a symlink leads out of the served directory',
        },
        {
          level: 40,
          msg: 'path refused',
          peer: '[2001:db8::5]:1234',
          path: '../etc/passwd',
          reason: 'climbs out with ".."',
        },
      ],
    );
  });

  test('other failures of a source are passed on, not logged as refusals', async () => {
    const { log, lines } = capturingLog();
    const broken: TreeSource = { open: () => Promise.reject(new Error('EIO')) };
    const tree = createFileTree([{ prefix: '/', source: broken }], log);
    await assert.rejects(tree.resolve('x', peer), /EIO/);
    assert.deepEqual(lines, []);
  });

  describe('over real directories', () => {
    let top: string;
    before(() => {
      top = mkdtempSync(join(tmpdir(), 'smelt-mounts-'));
      mkdirSync(join(top, 'files', 'pxelinux.cfg'), { recursive: true });
      mkdirSync(join(top, 'ipxe'));
      writeFileSync(join(top, 'files', 'pxelinux.cfg', 'default'), 'DEFAULT local\n');
      writeFileSync(join(top, 'files', 'undionly.kpxe'), 'override');
      writeFileSync(join(top, 'ipxe', 'undionly.kpxe'), 'stock');
      writeFileSync(join(top, 'ipxe', 'ipxe.efi'), 'efi');
      symlinkSync('/etc/passwd', join(top, 'files', 'passwd'));
    });
    after(() => {
      rmSync(top, { recursive: true, force: true });
    });

    test('files.dirs before ipxe.dir at the root, Windows separators, and a symlink escape refused', async () => {
      const { log, lines } = capturingLog();
      const tree = createFileTree(
        [
          { prefix: '/', source: directorySource(join(top, 'files')) },
          { prefix: '/', source: directorySource(join(top, 'ipxe')) },
        ],
        log,
      );
      assert.equal(await text(await tree.resolve('/undionly.kpxe', peer)), 'override');
      assert.equal(await text(await tree.resolve('ipxe.efi', peer)), 'efi');
      assert.equal(await text(await tree.resolve('\\pxelinux.cfg\\default', peer)), 'DEFAULT local\n');
      assert.equal(await tree.resolve('pxelinux.cfg', peer), undefined);
      await assert.rejects(tree.resolve('passwd', peer), PathRefusedError);
      await assert.rejects(tree.resolve('pxelinux.cfg/../../ipxe/ipxe.efi', peer), PathRefusedError);
      assert.deepEqual(
        lines.map((line) => line.path),
        ['passwd', 'pxelinux.cfg/../../ipxe/ipxe.efi'],
      );
    });
  });
});
