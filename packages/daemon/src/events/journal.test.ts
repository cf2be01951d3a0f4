import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGroupCommit } from '../store/group-commit.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { createEventJournal, PAGE_SIZE, storedEvents } from './journal.ts';

const now = () => new Date('2026-11-21T10:00:00Z');

async function withStore(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-events-'));
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each stored row's key, page number and the numbers of its events. */
async function rowsOf(store: Store): Promise<[string, number, number[]][]> {
  return (await store.list('events')).map((row) => {
    const { page, events } = row.value as { page: number; events: { seq: number }[] };
    return [row.key, page, events.map((event) => event.seq)];
  });
}

test('events are numbered, kept as a bounded window, and survive a restart', async () => {
  await withStore(async (dir) => {
    let store = openSqliteStore(dir);
    let commit = createGroupCommit(store);
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
    assert.deepEqual(
      (await storedEvents(store)).map((e) => e.message),
      ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8'],
      'one page, not yet full: all of it stored',
    );
    await store.close();

    store = openSqliteStore(dir);
    commit = createGroupCommit(store);
    const again = await createEventJournal(store, commit, now, 5);
    assert.deepEqual(
      again.since(0).map((e) => e.message),
      ['m4', 'm5', 'm6', 'm7', 'm8'],
      'the same window after a restart',
    );
    assert.equal(again.record('lease.granted', { message: 'next' }).seq, 9, 'numbering continues');
    await commit.drain();
    assert.deepEqual(
      await rowsOf(store),
      [['000000000000', 0, [1, 2, 3, 4, 5, 6, 7, 8, 9]]],
      'the open page goes on filling after a restart: its row keeps the events stored before',
    );
    await store.close();
  });
});

test('events are stored a page per row, in a ring of slots that never holds a stale row', async () => {
  await withStore(async (dir) => {
    const store = openSqliteStore(dir);
    const commit = createGroupCommit(store);
    // 20 events: two pages, plus one so that the oldest page kept still has 20 when the newest has one.
    const journal = await createEventJournal(store, commit, now, 20);
    for (let i = 1; i <= 6 * PAGE_SIZE + 4; i++) journal.record('lease.granted', { message: `e${i}` });
    await commit.drain();
    const rows = await rowsOf(store);
    assert.equal(rows.length, 3, 'three slots');
    const pages = rows.map(([, page]) => page).sort((a, b) => a - b);
    assert.deepEqual(pages, [4, 5, 6], 'the newest three pages');
    for (const [key, page, seqs] of rows) {
      assert.equal(key, String(page % 3).padStart(12, '0'), 'each page in its slot');
      const first = Math.max(1, page * PAGE_SIZE);
      const last = Math.min(6 * PAGE_SIZE + 4, page * PAGE_SIZE + PAGE_SIZE - 1);
      assert.deepEqual(
        seqs,
        Array.from({ length: last - first + 1 }, (_, i) => first + i),
        `page ${String(page)} whole`,
      );
    }
    const stored = await storedEvents(store);
    assert.ok(stored.length >= 20, 'at least the capacity is stored');
    assert.equal(stored.at(-1)?.seq, 6 * PAGE_SIZE + 4);
    await store.close();
  });
});

test('a page row holds every event recorded before its commit, and one recorded after is written again', async () => {
  await withStore(async (dir) => {
    const store = openSqliteStore(dir);
    const batches: number[] = [];
    const counted: Store = {
      ...store,
      batch(ops) {
        batches.push(ops.length);
        return store.batch(ops);
      },
    };
    // Riders wait for a write or a drain: the events below pile up on one queued op.
    const commit = createGroupCommit(counted, { rideMs: 600_000 });
    const journal = await createEventJournal(store, commit, now, 100);
    journal.record('lease.granted', { message: 'one' });
    await new Promise((resolve) => setImmediate(resolve));
    journal.record('lease.granted', { message: 'two' });
    await new Promise((resolve) => setImmediate(resolve));
    journal.record('lease.granted', { message: 'three' });
    await commit.write([{ collection: 'leases', key: '10.0.0.1', value: { mac: 'a' } }]);
    assert.deepEqual(batches, [2], 'one op for the page and the lease, in one commit');
    assert.deepEqual(await rowsOf(store), [['000000000000', 0, [1, 2, 3]]], 'three events in the row');
    journal.record('lease.granted', { message: 'four' });
    await commit.drain();
    assert.deepEqual(await rowsOf(store), [['000000000000', 0, [1, 2, 3, 4]]], 'the one after: written again');
    await store.close();
  });
});

test('a store with one event per row (the layout before pages) moves to pages on start', async () => {
  await withStore(async (dir) => {
    const store = openSqliteStore(dir);
    const event = (seq: number) => ({
      seq,
      time: '2026-11-21T10:00:00.000Z',
      type: 'machine.discovered',
      message: `m${seq}`,
    });
    // Events 2..40 under their own numbers, and one row that does not parse.
    await store.batch([
      ...Array.from({ length: 39 }, (_, i) => ({
        collection: 'events' as const,
        key: String(i + 2).padStart(12, '0'),
        value: event(i + 2),
      })),
      { collection: 'events', key: '000000000099', value: { not: 'an event' } },
    ]);
    const commit = createGroupCommit(store);
    // Capacity 10: one page plus one: pages 1 and 2 (events 16..40) are kept, in slots 1 and 0.
    const journal = await createEventJournal(store, commit, now, 10);
    assert.deepEqual(
      journal.since(0, 100).map((e) => e.seq),
      [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40],
      'the newest ten and the slack',
    );
    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
    assert.deepEqual(await rowsOf(store), [
      ['000000000000', 2, range(32, 40)],
      ['000000000001', 1, range(16, 31)],
    ]);
    journal.record('lease.granted', { message: 'next' });
    await commit.drain();
    assert.deepEqual((await rowsOf(store))[0], ['000000000000', 2, range(32, 41)]);
    await store.close();
  });
});

test('a page row holding an event that does not parse, or one of another page, is rewritten with the rest', async () => {
  await withStore(async (dir) => {
    const store = openSqliteStore(dir);
    const event = (seq: number) => ({
      seq,
      time: '2026-11-21T10:00:00.000Z',
      type: 'lease.granted',
      message: `e${seq}`,
    });
    // Page 0 in its slot: events 1 and 3, a row that is not an event, and event 20 (page 1's).
    await store.batch([
      {
        collection: 'events',
        key: '000000000000',
        value: { page: 0, events: [event(1), { not: 'an event' }, event(3), event(20)] },
      },
    ]);
    const commit = createGroupCommit(store);
    const journal = await createEventJournal(store, commit, now, 10);
    assert.deepEqual(
      journal.since(0).map((e) => e.seq),
      [1, 3],
    );
    assert.deepEqual(await rowsOf(store), [['000000000000', 0, [1, 3]]]);
    await store.close();
  });
});
