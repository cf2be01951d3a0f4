import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStreamBudget, parseRange } from './send-file.ts';

test('stream budget: full-size buffers while it lasts, smaller ones after, and all of it back at the end', () => {
  const budget = createStreamBudget(4 * 1024 * 1024);
  const first = budget.begin(300 * 1024 * 1024);
  assert.equal(first, 256 * 1024, 'one client streams through 256 KiB buffers');
  const small = budget.begin(600);
  assert.equal(small, 600, 'a small file takes only its own size');
  const sizes = Array.from({ length: 50 }, () => budget.begin(300 * 1024 * 1024));
  assert.ok(sizes.every((size) => size >= 32 * 1024 && size <= 256 * 1024));
  assert.ok(sizes.at(-1) === 32 * 1024, 'once spent, the floor');
  assert.ok(budget.held <= 4 * 1024 * 1024 + 50 * 2 * 32 * 1024, `bounded: ${String(budget.held)}`);
  for (const size of sizes) budget.end(size);
  budget.end(small);
  budget.end(first);
  assert.equal(budget.held, 0);
  assert.equal(budget.begin(10 * 1024 * 1024), 256 * 1024, 'the budget is whole again');
});

test('Range: single, suffix, open-ended, multiple, unsatisfiable, and ignored', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), [{ start: 0, end: 99 }]);
  assert.deepEqual(parseRange('bytes=-100', 1000), [{ start: 900, end: 999 }]);
  assert.deepEqual(parseRange('bytes=990-', 1000), [{ start: 990, end: 999 }]);
  assert.deepEqual(parseRange('bytes=0-0, 5-9', 1000), [
    { start: 0, end: 0 },
    { start: 5, end: 9 },
  ]);
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=9-5', 1000), undefined);
  assert.equal(parseRange('items=0-5', 1000), undefined);
});
