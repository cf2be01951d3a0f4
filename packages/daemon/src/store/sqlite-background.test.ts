import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { openInlineSqliteStore } from './sqlite-inline.ts';
import { openSqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * The log's length in frames and how many of them are copied into the database, from the wal-index (the -shm
 * file; https://sqlite.org/walformat.html §2.1: mxFrame at byte 16 of the header, nBackfill at byte 96, after the
 * header's two copies), in this machine's byte order.
 */
function walIndex(dir: string): { frames: number; backfilled: number } {
  const shm = readFileSync(join(dir, 'smelt.db-shm')).subarray(0, 128);
  return { frames: shm.readUInt32LE(16), backfilled: shm.readUInt32LE(96) };
}

test('the store checkpoints its log on its background thread, and the log starts over after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-ckpt-'));
  dirs.push(dir);
  const store = openSqliteStore(dir);
  try {
    await fillAndWatch(dir, store);
  } finally {
    await store.close();
  }
  assert.equal(existsSync(join(dir, 'smelt.db-wal')), false, 'closing removes the log');
  const reopened = openSqliteStore(dir);
  try {
    assert.equal((await reopened.list('leases')).length, 6001);
  } finally {
    await reopened.close();
  }
});

test('the background restarts a log copied whole, and never waits for a writer to do it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-restart-'));
  dirs.push(dir);
  const writer = openInlineSqliteStore(dir, { synchronous: 'NORMAL', autoCheckpoint: 0 });
  const background = openInlineSqliteStore(dir, { existing: true, synchronous: 'NORMAL' });
  try {
    for (let i = 0; i < 5; i++) await writer.batch([{ collection: 'leases', key: `k${String(i)}`, value: { i } }]);
    assert.deepEqual(background.checkpoint(), { complete: true }, 'nothing else reads: the whole log is copied');
    const salt = () => readFileSync(join(dir, 'smelt.db-wal')).subarray(16, 24).toString('hex');
    const before = salt();

    // Another connection holds the write lock: the restart gives up at once (the busy timeout is 5 s otherwise).
    const other = new DatabaseSync(join(dir, 'smelt.db'));
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    assert.equal(background.restartLog(), false);
    assert.ok(performance.now() - started < 1000, 'it did not wait for the lock');
    other.exec('ROLLBACK');
    other.close();
    assert.equal(salt(), before, 'the log was not restarted');

    assert.equal(background.restartLog(), true);
    const restarted = salt();
    assert.notEqual(restarted, before, 'a new header: the log starts over');
    assert.deepEqual(walIndex(dir), { frames: 1, backfilled: 0 }, 'with the one page of the restart in it');

    // The writer's next commit appends to the restarted log instead of restarting it (and fsyncing its header).
    await writer.batch([{ collection: 'leases', key: 'after', value: { i: 99 } }]);
    assert.equal(salt(), restarted);
    assert.equal(walIndex(dir).frames > 1, true);
    assert.equal((await writer.list('leases')).length, 6, 'the restart changed no row');
  } finally {
    await background.close();
    await writer.close();
  }
});

async function fillAndWatch(dir: string, store: Store): Promise<void> {
  // ~6 MiB of rows in 60 commits: past SQLite's own 1000-page (4 MiB) checkpoint, which the store turns off.
  const value = { text: 'x'.repeat(1000) };
  for (let batch = 0; batch < 60; batch++) {
    await store.batch(
      Array.from({ length: 100 }, (_, i) => ({
        collection: 'leases' as const,
        key: `k${String(batch * 100 + i)}`,
        value,
      })),
    );
  }
  let index = walIndex(dir);
  for (let waited = 0; index.backfilled < index.frames && waited < 10_000; waited += 50) {
    await sleep(50);
    index = walIndex(dir);
  }
  assert.ok(index.frames > 1000, `the log is ${String(index.frames)} frames: a commit checkpointed it`);
  assert.equal(index.backfilled, index.frames, 'every frame of the log was copied into the database');

  // Everything is in the database file: the next commit writes the log from its start again.
  await store.batch([{ collection: 'leases', key: 'after', value }]);
  const restarted = walIndex(dir);
  assert.ok(restarted.frames < 10, `the log went on from frame ${String(index.frames)} to ${String(restarted.frames)}`);

  assert.equal((await store.list('leases')).length, 6001);
}
