import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRateLimiter } from './rate-limit.ts';

test('a flood from one key is cut to the rate while other keys keep theirs', () => {
  let clock = 0;
  const limiter = createRateLimiter(5, () => clock);
  const flood = Array.from({ length: 100 }, () => limiter.allow('aa'));
  assert.equal(flood.filter(Boolean).length, 5);
  assert.equal(limiter.allow('bb'), true);
  clock += 1000;
  assert.equal(Array.from({ length: 10 }, () => limiter.allow('aa')).filter(Boolean).length, 5);
  clock += 200;
  assert.equal(limiter.allow('aa'), true, 'one token back after a fifth of a second');
  assert.equal(limiter.allow('aa'), false);
});

test('the number of remembered keys is bounded: at most twice maxKeys, the oldest forgotten first', () => {
  const limiter = createRateLimiter(1, () => 0, 3);
  for (let i = 0; i < 10; i++) assert.equal(limiter.allow(`k${String(i)}`), true);
  assert.ok(limiter.size <= 6, `${String(limiter.size)} keys kept`);
  assert.equal(limiter.allow('k0'), true, "'k0' was forgotten (oldest), so it starts with a full bucket again");
  assert.equal(limiter.allow('k9'), false, "'k9' (the latest) was remembered, its bucket empty");
});

test('past the bound, keys seen in the last second are kept and older ones forgotten', () => {
  let clock = 0;
  const limiter = createRateLimiter(1, () => clock, 3);
  for (const key of ['a', 'b', 'c']) assert.equal(limiter.allow(key), true);
  clock += 1000;
  assert.equal(limiter.allow('a'), true, "'a' seen again a second later: its bucket has refilled");
  for (const key of ['d', 'e', 'f']) assert.equal(limiter.allow(key), true);
  assert.equal(limiter.allow('a'), false, "'a' was remembered, its bucket empty");
  assert.equal(limiter.allow('b'), true, "'b' was forgotten, so it starts with a full bucket again");
});

test('keys unseen for a second are forgotten as new ones come: a storm of distinct clients is not all kept', () => {
  let clock = 0;
  const limiter = createRateLimiter(10, () => clock);
  for (let i = 0; i < 1000; i++) {
    limiter.allow(`storm-${String(i)}`);
    clock += 5; // 200 new clients a second
  }
  assert.ok(limiter.size <= 402, `${String(limiter.size)} keys kept: at most the last two seconds' 400`);
  assert.ok(limiter.size >= 199, `${String(limiter.size)} keys kept: the last second's are all remembered`);
  // One seen within the second keeps its emptied bucket.
  for (let i = 0; i < 10; i++) limiter.allow('flood');
  clock += 500;
  limiter.allow('new-1');
  assert.equal(limiter.allow('flood'), true, 'half a second: five tokens back');
  for (let i = 0; i < 4; i++) limiter.allow('flood');
  assert.equal(limiter.allow('flood'), false, 'and no more: its bucket was remembered');
});

test('a key seen every half second keeps one bucket through any number of generations', () => {
  let clock = 0;
  const limiter = createRateLimiter(2, () => clock);
  let allowed = 0;
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 3; j++) if (limiter.allow('steady')) allowed++;
    clock += 500;
  }
  // 2 to start with, then 1 a half second: a bucket forgotten and made anew would have let 2 through each time.
  assert.equal(allowed, 2 + 39);
});

test('a wall clock set back does not empty the buckets for as long as it went back', () => {
  let clock = 10 * 3600 * 1000;
  const limiter = createRateLimiter(2, () => clock);
  assert.equal(limiter.allow('aa'), true);
  assert.equal(limiter.allow('aa'), true);
  assert.equal(limiter.allow('aa'), false);
  clock -= 3600 * 1000;
  assert.equal(limiter.allow('aa'), true, 'an hour back: the bucket starts full, not an hour from full');
  assert.equal(limiter.allow('bb'), true);
});
