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

test('events are stored in a ring of slots, and a store keyed by number moves to it on start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-events-'));
  try {
    const store = openSqliteStore(dir);
    const event = (seq: number) => ({
      seq,
      time: '2026-11-21T10:00:00.000Z',
      type: 'machine.discovered',
      message: `m${seq}`,
    });
    // As the journal kept them before the ring: every event under its own number, and one row that does not parse.
    await store.batch([
      ...[2, 3, 4, 5, 6, 7, 8].map((seq) => ({
        collection: 'events' as const,
        key: String(seq).padStart(12, '0'),
        value: event(seq),
      })),
      { collection: 'events', key: '000000000099', value: { not: 'an event' } },
    ]);
    const commit = createGroupCommit(store);
    const journal = await createEventJournal(store, commit, () => new Date('2026-11-21T10:00:00Z'), 5);
    assert.deepEqual(
      journal.since(0).map((e) => e.seq),
      [4, 5, 6, 7, 8],
      'the newest five',
    );
    const slots = async () =>
      (await store.list('events')).map((row) => [row.key, (row.value as { seq: number }).seq] as const);
    assert.deepEqual(await slots(), [
      ['000000000000', 5],
      ['000000000001', 6],
      ['000000000002', 7],
      ['000000000003', 8],
      ['000000000004', 4],
    ]);
    journal.record('lease.granted', { message: 'nine' });
    journal.record('lease.granted', { message: 'ten' });
    await commit.drain();
    assert.deepEqual(await slots(), [
      ['000000000000', 10],
      ['000000000001', 6],
      ['000000000002', 7],
      ['000000000003', 8],
      ['000000000004', 9],
    ]);
    assert.deepEqual(
      journal.since(0).map((e) => e.seq),
      [6, 7, 8, 9, 10],
    );
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
