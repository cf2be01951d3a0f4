import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createEventJournal, storedEvents } from '../events/journal.ts';
import { createInventory } from '../inventory/inventory.ts';
import { createIsoCache } from '../iso/cache.ts';
import { createGroupCommit } from '../store/group-commit.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { EventJournal } from '../events/journal.ts';
import type { IsoCache } from '../iso/cache.ts';
import type { Sighting } from '../inventory/machines.ts';
import type { Store } from '../store/store.ts';
import { createDiscovery } from './discovery.ts';

/** A fresh store and ISO cache in a directory of their own for one test; closed and removed after it, pass or fail. */
async function withStore(body: (store: Store, isos: IsoCache) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-discovery-'));
  const store = openSqliteStore(dir);
  const isos = createIsoCache();
  try {
    await body(store, isos);
  } finally {
    await isos.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The i-th of a storm's MACs (locally administered). */
function stormMac(i: number): string {
  return `02:73:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

test('sightings become machines in batches; labels survive; unchanged machines are not rewritten', () =>
  withStore(async (store, isos) => {
    let clock = Date.parse('2026-11-21T10:00:00Z');
    const inventory = createInventory(store, isos, () => new Date(clock));
    const commit = createGroupCommit(store);
    const events = await createEventJournal(store, commit, () => new Date(clock));
    let writes = 0;
    const discovery = createDiscovery({
      observe: (sightings) => {
        writes += sightings.length;
        return inventory.machines.observe(sightings);
      },
      events,
      oui: (mac) => (mac.startsWith('3c:ec:ef') ? 'Super Micro' : undefined),
      now: () => clock,
      log: pino({ level: 'silent' }),
      flushMs: 60_000,
    });
    const pxe = {
      mac: '3c:ec:ef:00:00:01',
      arch: 'x86_64-efi',
      vendorClass: 'PXEClient:Arch:00007:UNDI:003000',
      userClasses: [],
      uuid: '00112233-4455-6677-8899-aabbccddeeff',
    };
    discovery.seen(pxe);
    discovery.seen({ mac: '52:54:00:00:00:02', userClasses: ['iPXE'], relay: '10.1.0.1' });
    await discovery.flush();
    assert.equal(writes, 2);
    const machine = await inventory.machines.get(pxe.mac);
    assert.equal(machine.state, 'free');
    assert.equal(machine.arch, 'x86_64-efi');
    assert.equal(machine.vendor, 'Super Micro');
    assert.equal(machine.uuid, pxe.uuid);
    assert.equal((await inventory.machines.get('52:54:00:00:00:02')).relay, '10.1.0.1');
    assert.deepEqual(
      events.since(0).map((e) => [e.type, e.mac]),
      [
        ['machine.discovered', pxe.mac],
        ['machine.discovered', '52:54:00:00:00:02'],
      ],
    );

    await inventory.machines.update(pxe.mac, { labels: { rack: 'r1' } });
    clock += 5000;
    discovery.seen(pxe);
    await discovery.flush();
    assert.equal(writes, 2, 'the same facts within a minute are not written again');
    discovery.seen({ ...pxe, lease: '10.0.0.100' });
    await discovery.flush();
    assert.equal(writes, 3);
    const updated = await inventory.machines.get(pxe.mac);
    assert.equal(updated.lastLease, '10.0.0.100');
    assert.deepEqual(updated.labels, { rack: 'r1' }, 'what the operator set is kept');
    assert.equal(updated.firstSeen, '2026-11-21T10:00:00.000Z');
    assert.equal(updated.lastSeen, '2026-11-21T10:00:05.000Z');
    await discovery.close();
    await commit.drain();
  }));

test('a machine seen again while it waits to be written is written once, with what it said last', async () => {
  const batches: Sighting[][] = [];
  const discovery = createDiscovery({
    observe: (sightings) => {
      batches.push([...sightings]);
      return Promise.resolve(sightings.map((s) => s.mac));
    },
    events: { record: () => undefined } as unknown as EventJournal,
    oui: undefined,
    now: () => 1_000,
    log: pino({ level: 'silent' }),
    flushMs: 60_000,
    maxBatch: 2,
  });
  discovery.seen({ mac: '52:54:00:00:00:01', userClasses: [] });
  discovery.seen({ mac: '52:54:00:00:00:02', userClasses: [] });
  discovery.seen({ mac: '52:54:00:00:00:01', userClasses: [], lease: '10.0.0.5' });
  discovery.seen({ mac: '52:54:00:00:00:03', userClasses: [] });
  await discovery.close();
  assert.deepEqual(
    batches.map((batch) => batch.map((s) => [s.mac, s.lastLease])),
    [
      [
        ['52:54:00:00:00:01', '10.0.0.5'],
        ['52:54:00:00:00:02', undefined],
      ],
      [['52:54:00:00:00:03', undefined]],
    ],
  );
  // Written, and unchanged since: not queued again.
  discovery.seen({ mac: '52:54:00:00:00:01', userClasses: [], lease: '10.0.0.5' });
  await discovery.close();
  assert.equal(batches.length, 2);
});

test("with a journal, machines ride on lease commits and each machine's event is committed with it or after", () =>
  withStore(async (store, isos) => {
    // What each commit held, by collection.
    const batches: string[][] = [];
    const counted = {
      ...store,
      batch(ops: Parameters<typeof store.batch>[0]) {
        batches.push([...new Set(ops.map((op) => op.collection))].sort());
        return store.batch(ops);
      },
    };
    // Riders are never committed on their own here: only lease writes (and the final drain) take them.
    const commit = createGroupCommit(counted, { rideMs: 600_000 });
    const events = await createEventJournal(store, commit, () => new Date());
    const inventory = createInventory(store, isos, () => new Date(), events);
    const discovery = createDiscovery({
      observe: (sightings) => inventory.machines.observe(sightings, () => undefined),
      events,
      oui: undefined,
      now: Date.now,
      log: pino({ level: 'silent' }),
      flushMs: 60_000,
    });
    const macs = ['52:54:00:00:01:01', '52:54:00:00:01:02', '52:54:00:00:01:03'];
    for (const mac of macs) discovery.seen({ mac, userClasses: [] });
    const state = { done: false };
    const flushed = discovery.flush().then(() => {
      state.done = true;
    });
    for (let i = 0; !state.done; i++) await commit.write([{ collection: 'leases', key: `10.0.0.${i}`, value: { i } }]);
    await flushed;
    await commit.drain();
    const machinesAt = batches.findIndex((b) => b.includes('machines'));
    const eventsAt = batches.findIndex((b) => b.includes('events'));
    assert.deepEqual(batches[machinesAt], ['leases', 'machines'], 'the machines rode on a lease commit');
    assert.ok(eventsAt >= machinesAt, 'no event before the row it describes');
    assert.deepEqual(
      (await store.list('machines')).map((row) => row.key),
      macs,
    );
    assert.deepEqual(
      (await storedEvents(store)).map((event) => event.mac),
      macs,
    );
    await discovery.close();
  }));

test('a sighting is written flushMs after it, without a flush, and so is the next one (no standing timer)', () =>
  withStore(async (store, isos) => {
    const inventory = createInventory(store, isos, () => new Date());
    const commit = createGroupCommit(store);
    const events = await createEventJournal(store, commit, () => new Date());
    const written: string[] = [];
    const discovery = createDiscovery({
      observe: (sightings) => {
        written.push(...sightings.map((s) => s.mac));
        return inventory.machines.observe(sightings);
      },
      events,
      oui: undefined,
      now: Date.now,
      log: pino({ level: 'silent' }),
      flushMs: 20,
    });
    const until = async (count: number) => {
      for (let waited = 0; written.length < count && waited < 5000; waited += 10)
        await new Promise((resolve) => setTimeout(resolve, 10));
    };
    // Idle first: nothing to write, nothing written.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(written, []);
    discovery.seen({ mac: '52:54:00:00:02:01', userClasses: [] });
    await until(1);
    assert.deepEqual(written, ['52:54:00:00:02:01']);
    discovery.seen({ mac: '52:54:00:00:02:02', userClasses: [] });
    await until(2);
    assert.deepEqual(written, ['52:54:00:00:02:01', '52:54:00:00:02:02'], 'the timer is armed again');
    await discovery.close();
    await commit.drain();
  }));

test('closing writes every machine still pending, not just the first batch', () =>
  withStore(async (store, isos) => {
    const inventory = createInventory(store, isos, () => new Date());
    const commit = createGroupCommit(store);
    const events = await createEventJournal(store, commit, () => new Date());
    const discovery = createDiscovery({
      observe: (sightings) => inventory.machines.observe(sightings),
      events,
      oui: undefined,
      now: Date.now,
      log: pino({ level: 'silent' }),
      flushMs: 60_000,
      maxBatch: 100,
    });
    // A boot storm's last 250 sightings when the daemon is told to stop: three batches' worth.
    const macs = Array.from({ length: 250 }, (_, i) => stormMac(i));
    for (const mac of macs) discovery.seen({ mac, userClasses: [] });
    await discovery.close();
    await commit.drain();
    assert.equal((await store.list('machines')).length, 250);
  }));

test('while sightings keep coming, one batch per flushMs; once they stop for quietMs, the rest a batch per turn', () =>
  withStore(async (store, isos) => {
    const inventory = createInventory(store, isos, () => new Date());
    const commit = createGroupCommit(store, { rideMs: 1 });
    const events = await createEventJournal(store, commit, () => new Date());
    const batches: { size: number; at: number }[] = [];
    const discovery = createDiscovery({
      observe: (sightings) => {
        batches.push({ size: sightings.length, at: Date.now() });
        return inventory.machines.observe(sightings);
      },
      events,
      oui: undefined,
      now: Date.now,
      log: pino({ level: 'silent' }),
      flushMs: 100,
      maxBatch: 10,
      quietMs: 150,
    });
    for (let i = 0; i < 100; i++) discovery.seen({ mac: stormMac(i), userClasses: [] });
    // A storm: the same client speaks every 5 ms for 300 ms (a repeat, so nothing new to write).
    const start = Date.now();
    while (Date.now() - start < 300) {
      discovery.seen({ mac: stormMac(0), userClasses: [] });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const elapsed = Date.now() - start;
    assert.ok(batches.length >= 1, 'the storm does not stop discovery');
    assert.equal(discovery.pending(), 100 - batches.length * 10, 'the backlog is counted');
    assert.ok(
      batches.length <= Math.floor(elapsed / 100) + 1,
      `paced: ${String(batches.length)} batches in ${String(elapsed)} ms`,
    );
    const written = () => batches.reduce((sum, batch) => sum + batch.size, 0);
    for (let waited = 0; written() < 100 && waited < 5000; waited += 10)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      batches.map((batch) => batch.size),
      Array.from({ length: 10 }, () => 10),
    );
    // Paced, three batches would span 200 ms or more; in the quiet they follow one another (each waits only for
    // its commit).
    const last = batches.slice(-3);
    const span = (last.at(-1)?.at ?? 0) - (last[0]?.at ?? 0);
    assert.ok(span < 150, `the backlog in the quiet: last three batches within ${String(span)} ms`);
    assert.equal(discovery.pending(), 0);
    await discovery.close();
    await commit.drain();
    assert.equal((await store.list('machines')).length, 100);
  }));
