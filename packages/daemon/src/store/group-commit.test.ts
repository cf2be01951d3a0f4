import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGroupCommit } from './group-commit.ts';
import { openSqliteStore } from './sqlite.ts';
import type { BatchOp, Store } from './store.ts';

function counting(store: Store): { store: Store; batches: number[] } {
  const batches: number[] = [];
  return {
    batches,
    store: {
      ...store,
      batch(ops: readonly BatchOp[]) {
        batches.push(ops.length);
        return store.batch(ops);
      },
    },
  };
}

test('writes queued in one turn become one batch, and each writer resolves once it is durable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped);
    const writes = Array.from({ length: 100 }, (_, i) =>
      commit.write([{ collection: 'leases', key: `k${i}`, value: { i } }]),
    );
    await Promise.all(writes);
    assert.deepEqual(batches, [100]);
    assert.equal((await store.list('leases')).length, 100);
    await commit.write([{ collection: 'leases', key: 'later', value: 1 }]);
    assert.deepEqual(batches, [100, 1]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a large burst is split into batches of at most maxOps, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped, { maxOps: 40 });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => commit.write([{ collection: 'leases', key: 'same', value: i }])),
    );
    assert.deepEqual(batches, [40, 40, 20]);
    assert.equal((await store.get('leases', 'same'))?.value, 99, 'the last write wins');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed batch rejects its writers and the commit keeps working', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const commit = createGroupCommit(store);
    const good = commit.write([{ collection: 'leases', key: 'a', value: 1 }]);
    const bad = commit.write([{ collection: 'leases', key: 'b', value: 2, ifVersion: 12345 }]);
    await assert.rejects(good);
    await assert.rejects(bad);
    assert.equal(await store.get('leases', 'a'), undefined, 'all or nothing');
    await commit.write([{ collection: 'leases', key: 'c', value: 3 }]);
    assert.equal((await store.get('leases', 'c'))?.value, 3);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('riders go into the next commit a write causes, first and in order, and resolve with it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    // No deadline within the test: only a write (or drain) can commit the riders.
    const commit = createGroupCommit(wrapped, { rideMs: 600_000 });
    const order: string[] = [];
    store.watch((event) => order.push(event.key));
    const riders = [
      commit.ride([{ collection: 'machines', key: 'm1', value: 1 }]),
      commit.ride([
        { collection: 'events', key: 'e1', value: 1 },
        { collection: 'events', key: 'e2', value: 2 },
      ]),
    ];
    await commit.write([{ collection: 'leases', key: 'l1', value: 1 }]);
    await Promise.all(riders);
    assert.deepEqual(batches, [4], 'one commit for the lease and its riders');
    assert.deepEqual(order, ['m1', 'e1', 'e2', 'l1']);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit takes at most maxRiders rider ops (whole calls); drain writes the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped, { maxRiders: 64, rideMs: 600_000 });
    const call = (n: number) =>
      commit.ride(
        Array.from({ length: 50 }, (_, i) => ({ collection: 'events' as const, key: `${n}-${i}`, value: i })),
      );
    const riders = [call(1), call(2), call(3)];
    await commit.write([{ collection: 'leases', key: 'l1', value: 1 }]);
    await riders[0];
    assert.deepEqual(batches, [51]);
    await commit.drain();
    await Promise.all(riders);
    assert.deepEqual(batches, [51, 100]);
    assert.equal((await store.list('events')).length, 150);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('riders with nothing to ride on are committed on their own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped, { rideMs: 5 });
    await Promise.all([
      commit.ride([{ collection: 'events', key: 'a', value: 1 }]),
      commit.ride([{ collection: 'events', key: 'b', value: 2 }]),
    ]);
    assert.deepEqual(batches, [2]);
    assert.equal((await store.list('events')).length, 2);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('riders in a failed batch are rejected with its writers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const commit = createGroupCommit(store, { rideMs: 600_000 });
    const rider = commit.ride([{ collection: 'events', key: 'a', value: 1 }]);
    const bad = commit.write([{ collection: 'leases', key: 'b', value: 2, ifVersion: 12345 }]);
    await assert.rejects(bad);
    await assert.rejects(rider);
    assert.equal(await store.get('events', 'a'), undefined, 'all or nothing');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit takes ridersPerWrite riders per op written when that is more than maxRiders', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped, { maxRiders: 16, ridersPerWrite: 4, rideMs: 600_000 });
    const riders = [1, 2, 3].map((n) =>
      commit.ride(
        Array.from({ length: 20 }, (_, i) => ({ collection: 'events' as const, key: `${n}-${i}`, value: i })),
      ),
    );
    // 10 ops written: room for 40 riders, two whole calls of 20; the third waits.
    await commit.write(
      Array.from({ length: 10 }, (_, i) => ({ collection: 'leases' as const, key: `l${i}`, value: i })),
    );
    await Promise.all(riders.slice(0, 2));
    assert.deepEqual(batches, [50]);
    await commit.drain();
    await Promise.all(riders);
    assert.deepEqual(batches, [50, 20]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('riders committed on their own go in bounded batches', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-gc-'));
  const store = openSqliteStore(dir);
  try {
    const { store: wrapped, batches } = counting(store);
    const commit = createGroupCommit(wrapped, { maxRiders: 16, rideMs: 600_000 });
    const riders = [1, 2, 3, 4, 5].map((n) =>
      commit.ride(
        Array.from({ length: 30 }, (_, i) => ({ collection: 'events' as const, key: `${n}-${i}`, value: i })),
      ),
    );
    await commit.drain();
    await Promise.all(riders);
    // 4 × maxRiders = 64 ops a commit at most, whole calls of 30: 60, 60, 30.
    assert.deepEqual(batches, [60, 60, 30]);
    assert.equal((await store.list('events')).length, 150);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
