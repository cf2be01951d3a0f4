import assert from 'node:assert/strict';
import { test } from 'node:test';
import { list, numbers, one, parseOptions, UsageError } from './cli.ts';

test('bench options: bad flags and values are UsageErrors, good ones parse', () => {
  assert.throws(() => parseOptions(['--bogus'], { quick: { type: 'boolean' } }), UsageError);
  assert.throws(() => parseOptions(['extra'], { quick: { type: 'boolean' } }), UsageError);
  assert.equal(parseOptions(['--quick'], { quick: { type: 'boolean' } }).quick, true);
  assert.deepEqual(list('a, b', ['a', 'b', 'c'], ['c']), ['a', 'b']);
  assert.deepEqual(list(undefined, ['a'], ['a']), ['a']);
  assert.throws(() => list('a,z', ['a', 'b'], []), /unknown value "z" \(use a, b\)/);
  assert.deepEqual(numbers('1,50', [3]), [1, 50]);
  assert.throws(() => numbers('1,0', []), /positive integers/);
  assert.deepEqual(numbers('0', [], true), [0]);
  assert.equal(one('7', 1), 7);
  assert.equal(one(undefined, 3), 3);
  assert.throws(() => one('x', 1), /not a positive integer: x/);
  assert.throws(() => one('1,2', 1), UsageError);
  assert.equal(one('0', 5, true), 0);
  assert.throws(() => one('0', 5), /positive/);
});
