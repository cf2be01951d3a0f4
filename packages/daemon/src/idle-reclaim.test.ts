import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { reclaimWhenIdle } from './idle-reclaim.ts';

let clock = 0;
beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => {
  mock.timers.reset();
});

/** Moves the clock and the mocked timers together, in steps of 1 ms. */
function advance(ms: number): void {
  for (let i = 0; i < ms; i++) {
    clock += 1;
    mock.timers.tick(1);
  }
}

function reclaimer(burst = 5, quietMs = 50) {
  const reclaims: number[] = [];
  const idle = reclaimWhenIdle({ burst, quietMs, reclaim: () => reclaims.push(clock), now: () => clock });
  return { idle, reclaims };
}

test('after a burst, one reclaim once the work has been quiet for quietMs, not before', () => {
  const { idle, reclaims } = reclaimer(5, 50);
  for (let i = 0; i < 20; i++) {
    idle.busy();
    advance(10); // work every 10 ms: never quiet for 50
  }
  assert.equal(reclaims.length, 0);
  advance(39); // 49 ms since the last busy()
  assert.equal(reclaims.length, 0);
  advance(2);
  assert.equal(reclaims.length, 1);
  assert.ok((reclaims[0] ?? 0) - 190 >= 50, `reclaimed at ${String(reclaims[0])}, last work at 190`);
  advance(500);
  assert.equal(reclaims.length, 1, 'once per burst');
});

test('less work than a burst never reclaims; the count starts again after a reclaim', () => {
  const { idle, reclaims } = reclaimer(5, 50);
  for (let i = 0; i < 4; i++) idle.busy();
  advance(1000);
  assert.equal(reclaims.length, 0);
  idle.busy(); // the fifth
  advance(60);
  assert.equal(reclaims.length, 1);
  for (let i = 0; i < 4; i++) idle.busy();
  advance(1000);
  assert.equal(reclaims.length, 1, 'four more are not a burst');
  idle.busy();
  advance(60);
  assert.equal(reclaims.length, 2);
});

test('close() cancels a pending reclaim and ignores later work', () => {
  const { idle, reclaims } = reclaimer(2, 50);
  idle.busy();
  idle.busy();
  advance(20);
  idle.close();
  advance(200);
  for (let i = 0; i < 5; i++) idle.busy();
  advance(200);
  assert.equal(reclaims.length, 0);
});
