import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProgress, progressLine } from './progress.ts';

test('the progress line: bytes, percent, rate and time left', () => {
  const mib = 1024 * 1024;
  assert.equal(
    progressLine('upload a.iso', 256 * mib, 1024 * mib, 2),
    'upload a.iso  256.0 MiB/1024.0 MiB  25%  128.0 MiB/s  ETA 6s',
  );
  assert.equal(progressLine('upload a.iso', 0, 10 * mib, 0), 'upload a.iso  0.0 MiB/10.0 MiB  0%  0.0 MiB/s  ETA ?');
});

test('nothing is drawn when the stream is not a terminal', () => {
  const written: string[] = [];
  const progress = createProgress('x', 100, { isTTY: false, write: (text) => written.push(text) > 0 });
  progress.update(50);
  progress.finish();
  assert.deepEqual(written, []);
  const tty: string[] = [];
  const shown = createProgress('x', 100, { isTTY: true, write: (text) => tty.push(text) > 0 });
  shown.update(50);
  shown.finish();
  assert.ok(tty.some((line) => line.includes('x  0.0 MiB/0.0 MiB  50%')));
  assert.equal(tty.at(-1), '\n');
});
