import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGroupCommit } from '../store/group-commit.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { createEventJournal } from './journal.ts';

test('events are numbered, kept as a bounded window, and survive a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-events-'));
  try {
    let store = openSqliteStore(dir);
    let commit = createGroupCommit(store);
    const now = () => new Date('2026-11-21T10:00:00Z');
    const journal = await createEventJournal(store, commit, now, 5);
    const seen: number[] = [];
    journal.subscribe((event) => seen.push(event.seq));
    for (let i = 1; i <= 8; i++) journal.record('machine.discovered', { mac: '52:54:00:00:00:01', message: `m${i}` });
    await commit.drain();
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(
      journal.since(0).map((e) => e.message),
      ['m4', 'm5', 'm6', 'm7', 'm8'],
    );
    assert.deepEqual(
      journal.since(6).map((e) => e.seq),
      [7, 8],
    );
    assert.equal((await store.list('events')).length, 5);
    await store.close();

    store = openSqliteStore(dir);
    commit = createGroupCommit(store);
    const again = await createEventJournal(store, commit, now, 5);
    assert.equal(again.record('lease.granted', { message: 'next' }).seq, 9, 'numbering continues');
    await commit.drain();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
