import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildJs, rewriteSpecifiers, STAMP } from './build-js.ts';

const root = join(import.meta.dirname, '..');
// Not `dist`: the suite runs daemons from it (bin/smeltd) while this test runs.
const OUT = 'dist-test';

after(() => {
  for (const name of ['shared', 'daemon']) rmSync(join(root, 'packages', name, OUT), { recursive: true, force: true });
});

test('relative .ts imports become .js; @smelt/shared names become the built shared files', () => {
  const code = [
    "import { a } from './a.ts';",
    "import {        } from '../b/c.ts';",
    "export { d } from './d.ts';",
    "import './side.ts';",
    "const w = new URL('./worker.ts', import.meta.url);",
    "import { mac } from '@smelt/shared/mac';",
    "import { x } from 'koa';",
    "const text = 'a file.ts';",
  ].join('\n');
  const out = rewriteSpecifiers(code, '/r/packages/daemon/dist/dhcp/server.js', '/r/packages/shared/dist');
  assert.equal(
    out,
    [
      "import { a } from './a.js';",
      "import {        } from '../b/c.js';",
      "export { d } from './d.js';",
      "import './side.js';",
      "const w = new URL('./worker.js', import.meta.url);",
      "import { mac } from '../../../shared/dist/mac.js';",
      "import { x } from 'koa';",
      "const text = 'a file.ts';",
    ].join('\n'),
  );
});

test('the build covers every non-test source file, refers to no .ts file, and the built daemon runs', () => {
  buildJs(true, OUT);
  const dist = join(root, 'packages/daemon', OUT);
  assert.ok(existsSync(join(dist, STAMP)));
  assert.ok(existsSync(join(dist, 'discovery/oui-table.txt.gz')), 'assets are copied');
  const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
  assert.ok(files.length > 50, `${String(files.length)} files`);
  assert.ok(!files.some((f) => f.endsWith('.test.js')), 'no tests in the build');
  for (const file of files) {
    const code = readFileSync(join(dist, file), 'utf8');
    assert.doesNotMatch(code, /(from|import)\s*'[^']*\.ts'/, `${file} imports a .ts file`);
    assert.doesNotMatch(code, /'@smelt\/shared/, `${file} imports @smelt/shared by package name`);
  }
  // The built entry point loads its whole import graph (config show needs no network and no root).
  const shown = execFileSync(
    process.execPath,
    [join(dist, 'main.js'), 'config', 'show', '--address', '127.0.0.1', '--dataDir', '/tmp/smelt-build-js-test'],
    { encoding: 'utf8' },
  );
  assert.match(shown, /^address: 127\.0\.0\.1$/m);
});
