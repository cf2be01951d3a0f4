import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

const reporter = new URL('no-skips-reporter.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'no-skips-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs node --test on one file with the spec reporter and this one, as package.json does. */
async function runSuite(source: string): Promise<{ code: number; stderr: string }> {
  const file = join(dir, `case-${String(Math.random()).slice(2)}.test.mjs`);
  writeFileSync(file, source);
  const args = ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout'];
  args.push(`--test-reporter=${reporter}`, '--test-reporter-destination=stderr', file);
  try {
    // Without NODE_TEST_CONTEXT, which this run's own runner set: the child is a test run of its own.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_TEST_CONTEXT'));
    const { stderr } = await promisify(execFile)(process.execPath, args, { env });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

test('a suite with a skipped test fails and names the test and the reason', async () => {
  const { code, stderr } = await runSuite(
    "import { test } from 'node:test';\ntest('runs', () => {});\ntest('needs a tool', { skip: 'no tool here' }, () => {});\n",
  );
  assert.equal(code, 1);
  assert.match(stderr, /1 test\(s\) skipped/);
  assert.match(stderr, /needs a tool: no tool here/);
});

test('a suite without skips passes and the reporter says nothing', async () => {
  const { code, stderr } = await runSuite("import { test } from 'node:test';\ntest('runs', () => {});\n");
  assert.equal(code, 0);
  assert.equal(stderr, '');
});
