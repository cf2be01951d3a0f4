import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../lib/cli.ts';
import { checkPoolFits } from './plan.ts';
import { POOL_SIZE } from './topology.ts';

test('the pool must hold the largest run and the longest warm-up, or the bench stops with a UsageError', () => {
  assert.equal(POOL_SIZE, 130_811, '10.64.1.0 - 10.65.255.250');
  checkPoolFits([1000, 10_000, 50_000], [20_000, 500], POOL_SIZE);
  checkPoolFits([50_000], [80_811], POOL_SIZE);
  assert.throws(() => {
    checkPoolFits([1000, 50_000], [500, 90_000], POOL_SIZE);
  }, /warm-up and clients together \(140000\) exceed the pool's 130811 addresses/);
  assert.throws(() => {
    checkPoolFits([50_000], [80_812], POOL_SIZE);
  }, UsageError);
});
