import assert from 'node:assert/strict';
import { test } from 'node:test';
import { xidsFor } from './xid.ts';

test('every client gets its own xid, and the xid gives the client back', () => {
  for (const salt of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 123_456_789]) {
    const xids = xidsFor(salt);
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) {
      const xid = xids.of(i);
      assert.ok(Number.isInteger(xid) && xid >= 0 && xid <= 0xffffffff, `xid ${String(xid)} is not 32 bits`);
      assert.equal(xids.client(xid), i);
      seen.add(xid);
    }
    assert.equal(seen.size, 200_000);
  }
});

test('xids cover the whole 32-bit range from the first clients on, whatever the salt', () => {
  // What a daemon sees from real clients: small and large xids mixed from the start (V8 keeps values below 2^30
  // as small integers and the rest as heap numbers; a daemon warmed up on one kind alone deoptimises on the other).
  for (const salt of [0, 5, 0x3fffffff, 0xc0000000]) {
    const first = Array.from({ length: 16 }, (_, i) => xidsFor(salt).of(i));
    assert.ok(first.some((xid) => xid < 2 ** 30) && first.some((xid) => xid >= 2 ** 31), first.join(' '));
  }
});
