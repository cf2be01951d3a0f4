import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MachineState } from '@smelt/shared/machine';
import { transition, type LifecycleEvent } from './lifecycle.ts';

/** The whole table: [from, event, expected next or "refused"]. */
const cases: [MachineState, LifecycleEvent, MachineState | 'refused'][] = [
  ['free', 'deploy', 'provisioning'],
  ['provisioning', 'deploy', 'refused'],
  ['deployed', 'deploy', 'refused'],
  ['provisioning', 'installed', 'deployed'],
  ['deployed', 'installed', 'deployed'],
  ['free', 'installed', 'refused'],
  ['failed', 'installed', 'refused'],
  ['wiping', 'installed', 'refused'],
  ['provisioning', 'failed', 'failed'],
  ['deployed', 'failed', 'refused'],
  ['wiping', 'failed', 'failed'],
  ['provisioning', 'timeout', 'failed'],
  ['deployed', 'timeout', 'refused'],
  ['deployed', 'release', 'free'],
  ['failed', 'release', 'free'],
  ['free', 'release', 'refused'],
  ['deployed', 'release-wipe', 'wiping'],
  ['running', 'release-wipe', 'wiping'],
  ['wiping', 'release-wipe', 'refused'],
  ['wiping', 'wiped', 'free'],
  ['deployed', 'wiped', 'refused'],
  ['deployed', 'reinstall', 'provisioning'],
  ['failed', 'reinstall', 'provisioning'],
  ['free', 'reinstall', 'refused'],
  ['wiping', 'reinstall', 'refused'],
];

test('every lifecycle transition, allowed and refused', () => {
  for (const [from, event, expected] of cases) {
    const outcome = transition(from, event);
    if (expected === 'refused') {
      if (outcome.ok) assert.fail(`${from} --${event}--> should be refused`);
      assert.match(outcome.reason, /\w/);
    } else {
      assert.deepEqual(outcome, { ok: true, next: expected, changed: expected !== from }, `${from} --${event}-->`);
    }
  }
});

test('a diskless deployment phones home into running, not deployed', () => {
  assert.deepEqual(transition('provisioning', 'installed', 'live'), { ok: true, next: 'running', changed: true });
  assert.deepEqual(transition('provisioning', 'installed', 'kickstart'), { ok: true, next: 'deployed', changed: true });
});

test('refusals say why', () => {
  const outcome = transition('deployed', 'deploy');
  if (outcome.ok) assert.fail('deploying a deployed machine should be refused');
  assert.match(outcome.reason, /not free/);
});
