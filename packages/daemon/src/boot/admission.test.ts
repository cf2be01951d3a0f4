import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAdmissionControl } from './admission.ts';

function control(maxActive: number) {
  let clock = 0;
  const admission = createAdmissionControl({ maxActive, slotSeconds: 60, now: () => clock });
  return { admission, advance: (ms: number) => (clock += ms) };
}

test('beyond the limit machines wait in the order they first asked, and move up as slots free', () => {
  const { admission } = control(2);
  assert.deepEqual(admission.admit('a', '10.0.0.1', '/boots/x/initrd/0/i'), { admitted: true });
  assert.deepEqual(admission.admit('b', '10.0.0.2', '/boots/x/initrd/0/i'), { admitted: true });
  const c = admission.admit('c', '10.0.0.3', '/boots/x/initrd/0/i');
  const d = admission.admit('d', '10.0.0.4', '/boots/x/initrd/0/i');
  if (c.admitted || d.admitted) assert.fail('c and d must wait');
  assert.equal(c.position, 1);
  assert.equal(d.position, 2);
  assert.ok(c.waitSeconds >= 2 && c.waitSeconds <= 30);
  assert.deepEqual(admission.status('d'), { state: 'queued', position: 2 });
  // d asks again before c: still behind c.
  assert.equal(admission.admit('d', '10.0.0.4', '/boots/x/initrd/0/i').admitted, false);
  admission.sent('10.0.0.1', '/boots/x/kernel/k');
  assert.equal(
    admission.admit('c', '10.0.0.3', '/boots/x/initrd/0/i').admitted,
    false,
    'the kernel alone frees nothing',
  );
  admission.sent('10.0.0.1', '/boots/x/initrd/0/i');
  assert.equal(admission.admit('d', '10.0.0.4', '/boots/x/initrd/0/i').admitted, false, 'c is first in line');
  assert.equal(admission.admit('c', '10.0.0.3', '/boots/x/initrd/0/i').admitted, true);
  assert.deepEqual(admission.counts(), { active: 2, queued: 1 });
  assert.deepEqual(admission.status('c'), { state: 'downloading' });
});

test('a slot that is never used expires; an admitted machine asking again keeps its slot', () => {
  const { admission, advance } = control(1);
  assert.equal(admission.admit('a', '10.0.0.1', '/f').admitted, true);
  assert.equal(admission.admit('a', '10.0.0.1', '/f').admitted, true);
  assert.equal(admission.admit('b', '10.0.0.2', '/f').admitted, false);
  advance(61_000);
  assert.equal(admission.admit('b', '10.0.0.2', '/f').admitted, true);
});

test('0 means no limit', () => {
  const { admission } = control(0);
  for (let i = 0; i < 1000; i++) assert.equal(admission.admit(`m${String(i)}`, '10.0.0.1', '/f').admitted, true);
  assert.deepEqual(admission.counts(), { active: 0, queued: 0 });
});
