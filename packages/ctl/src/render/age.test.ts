import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAge, formatTime } from './age.ts';

const now = new Date('2025-01-10T12:00:00Z');
const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();

test('formatAge picks the unit kubectl would', () => {
  assert.equal(formatAge(ago(5), now), '5s');
  assert.equal(formatAge(ago(119), now), '119s');
  assert.equal(formatAge(ago(600), now), '10m');
  assert.equal(formatAge(ago(3 * 3600), now), '3h');
  assert.equal(formatAge(ago(47 * 3600), now), '47h');
  assert.equal(formatAge(ago(3 * 86400), now), '3d');
  assert.equal(formatAge(ago(800 * 86400), now), '2y');
});

test('formatAge: in the future (clock skew) is 0s, missing or garbage is undefined', () => {
  assert.equal(formatAge(ago(-30), now), '0s');
  assert.equal(formatAge(undefined, now), undefined);
  assert.equal(formatAge('yesterday', now), undefined);
});

test('formatTime shows the time stamp and the age', () => {
  assert.equal(formatTime(ago(600), now), `${ago(600)} (10m ago)`);
  assert.equal(formatTime(undefined, now), undefined);
});
