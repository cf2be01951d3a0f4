import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { createLogger } from '../log.ts';
import { treeFromConfig } from './from-config.ts';

const top = mkdtempSync(join(tmpdir(), 'smelt-tree-config-'));
after(() => {
  rmSync(top, { recursive: true, force: true });
});
const peer = { address: '127.0.0.1', port: 1 };

test('files.dirs in order, then ipxe.dir; a missing directory is a warning naming the setting', async () => {
  for (const [dir, files] of [
    ['one', { a: 'one a' }],
    ['two', { a: 'two a', b: 'two b' }],
    ['ipxe', { b: 'ipxe b', 'undionly.kpxe': 'kpxe' }],
  ] as const) {
    mkdirSync(join(top, dir));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(top, dir, name), text);
  }
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[0]);
        done();
      },
    }),
  );
  const tree = treeFromConfig(
    { files: { dirs: [join(top, 'one'), join(top, 'missing'), join(top, 'two')] }, ipxe: { dir: join(top, 'ipxe') } },
    log,
  );
  const read = async (path: string) => {
    const file = await tree.resolve(path, peer);
    if (!file) return undefined;
    try {
      return (await file.read(0, file.size)).toString();
    } finally {
      await file.close();
    }
  };
  assert.equal(await read('a'), 'one a');
  assert.equal(await read('b'), 'two b');
  assert.equal(await read('/undionly.kpxe'), 'kpxe');
  assert.equal(await read('c'), undefined);
  assert.deepEqual(
    lines.map(({ level, msg }) => ({ level, msg })),
    [{ level: 40, msg: `files.dirs: ${join(top, 'missing')} is not a directory; nothing is served from it` }],
  );

  lines.length = 0;
  treeFromConfig({ files: { dirs: [] }, ipxe: { dir: join(top, 'no-ipxe') } }, log);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.level, 40);
  assert.equal(lines[0]['ipxe.dir'], join(top, 'no-ipxe'));
});
