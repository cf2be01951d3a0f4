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
    const commit = createGroupCommit(wrapped, 40);
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
