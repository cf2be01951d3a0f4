import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StoreConflictError, type Store, type WatchEvent } from './store.ts';

export interface StoreHarness {
  /** A new, empty store. */
  open(): Promise<Store>;
  /** Closes `store` and opens the same data again, as a daemon restart would. */
  reopen(store: Store): Promise<Store>;
}

/** The behaviour every Store backend must have. Each backend's test file calls this once. */
export function storeContract(backend: string, harness: StoreHarness): void {
  async function withStore(body: (store: Store) => Promise<void>): Promise<void> {
    const store = await harness.open();
    try {
      await body(store);
    } finally {
      await store.close();
    }
  }

  describe(`Store contract: ${backend}`, () => {
    test('get of a missing key is undefined', () =>
      withStore(async (store) => {
        assert.equal(await store.get('boots', 'nope'), undefined);
      }));

    test('put then get returns the value and its version', () =>
      withStore(async (store) => {
        const value = { name: 'ubuntu', nested: { list: [1, 'two', null, true] }, unicode: 'naïve ☃' };
        const version = await store.put('boots', 'ubuntu', value);
        assert.ok(version > 0);
        assert.deepEqual(await store.get('boots', 'ubuntu'), { key: 'ubuntu', value, version });
      }));

    test('versions increase across keys and collections', () =>
      withStore(async (store) => {
        const a = await store.put('boots', 'a', 1);
        const b = await store.put('machines', 'b', 2);
        const c = await store.put('boots', 'a', 3);
        assert.ok(a < b && b < c, `${a} < ${b} < ${c}`);
      }));

    test('collections are separate namespaces', () =>
      withStore(async (store) => {
        await store.put('boots', 'same', 'boot');
        await store.put('deployments', 'same', 'deployment');
        assert.equal((await store.get('boots', 'same'))?.value, 'boot');
        assert.equal((await store.get('deployments', 'same'))?.value, 'deployment');
        await store.delete('boots', 'same');
        assert.equal((await store.get('deployments', 'same'))?.value, 'deployment');
      }));

    test('ifVersion 0 creates only when absent', () =>
      withStore(async (store) => {
        const first = await store.put('boots', 'k', 'one', { ifVersion: 0 });
        await assert.rejects(store.put('boots', 'k', 'two', { ifVersion: 0 }), (error: unknown) => {
          assert.ok(error instanceof StoreConflictError);
          assert.equal(error.expected, 0);
          assert.equal(error.actual, first);
          return true;
        });
        assert.equal((await store.get('boots', 'k'))?.value, 'one');
      }));

    test('ifVersion writes only over that exact version', () =>
      withStore(async (store) => {
        const v1 = await store.put('boots', 'k', 'one');
        const v2 = await store.put('boots', 'k', 'two', { ifVersion: v1 });
        await assert.rejects(store.put('boots', 'k', 'stale', { ifVersion: v1 }), StoreConflictError);
        assert.deepEqual(await store.get('boots', 'k'), { key: 'k', value: 'two', version: v2 });
      }));

    test('of racing compare-and-sets on one version, exactly one wins', () =>
      withStore(async (store) => {
        const base = await store.put('machines', 'm', 0);
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store.put('machines', 'm', i + 1, { ifVersion: base })),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof StoreConflictError);
      }));

    test('delete reports whether something was deleted and honours ifVersion', () =>
      withStore(async (store) => {
        assert.equal(await store.delete('boots', 'absent'), false);
        const v = await store.put('boots', 'k', 'x');
        await assert.rejects(store.delete('boots', 'k', { ifVersion: v + 100 }), StoreConflictError);
        assert.equal(await store.delete('boots', 'k', { ifVersion: v }), true);
        assert.equal(await store.get('boots', 'k'), undefined);
      }));

    test('list returns keys in ascending order, paged by after and limit', () =>
      withStore(async (store) => {
        for (const key of ['c', 'a', 'e', 'b', 'd']) await store.put('deployments', key, key.toUpperCase());
        await store.put('boots', 'zz', 'other collection');
        assert.deepEqual(
          (await store.list('deployments')).map((v) => v.key),
          ['a', 'b', 'c', 'd', 'e'],
        );
        const page = await store.list('deployments', { after: 'b', limit: 2 });
        assert.deepEqual(
          page.map((v) => [v.key, v.value]),
          [
            ['c', 'C'],
            ['d', 'D'],
          ],
        );
        assert.deepEqual(await store.list('leases'), []);
      }));

    test('keys may hold any characters', () =>
      withStore(async (store) => {
        const keys = ['aa:bb:cc:dd:ee:ff', 'with space', 'quote\'and"', 'slash/and\\', '%00', 'ключ'];
        for (const key of keys) await store.put('machines', key, key);
        for (const key of keys) assert.equal((await store.get('machines', key))?.value, key);
      }));

    test('watch sees every committed change in order, and stops when unsubscribed', () =>
      withStore(async (store) => {
        const seen: WatchEvent[] = [];
        const stop = store.watch((event) => seen.push(event));
        const v1 = await store.put('boots', 'a', { n: 1 });
        await assert.rejects(store.put('boots', 'a', { n: 2 }, { ifVersion: 0 }));
        const v2 = await store.put('machines', 'b', { n: 2 });
        await store.delete('boots', 'a');
        await store.delete('boots', 'never-existed');
        await waitFor(() => seen.length >= 3);
        stop();
        await store.put('boots', 'after', 1);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(
          seen.map((e) => [e.collection, e.key, e.kind, e.value]),
          [
            ['boots', 'a', 'put', { n: 1 }],
            ['machines', 'b', 'put', { n: 2 }],
            ['boots', 'a', 'delete', undefined],
          ],
        );
        assert.equal(seen[0]?.version, v1);
        assert.equal(seen[1]?.version, v2);
        assert.ok((seen[2]?.version ?? 0) > v2);
      }));

    test('a batch applies its puts and deletes at one revision, and the watchers see each', () =>
      withStore(async (store) => {
        await store.put('leases', '10.0.0.5', { mac: 'old' });
        const seen: WatchEvent[] = [];
        const stop = store.watch((event) => seen.push(event));
        const revision = await store.batch([
          { collection: 'leases', key: '10.0.0.6', value: { mac: 'a' } },
          { collection: 'machines', key: 'a', value: { seen: 1 } },
          { collection: 'leases', key: '10.0.0.5' },
          { collection: 'leases', key: 'absent' },
        ]);
        await waitFor(() => seen.length >= 3);
        stop();
        assert.deepEqual((await store.get('leases', '10.0.0.6'))?.version, revision);
        assert.deepEqual((await store.get('machines', 'a'))?.value, { seen: 1 });
        assert.equal(await store.get('leases', '10.0.0.5'), undefined);
        assert.deepEqual(
          seen.map((e) => [e.collection, e.key, e.kind, e.version]),
          [
            ['leases', '10.0.0.6', 'put', revision],
            ['machines', 'a', 'put', revision],
            ['leases', '10.0.0.5', 'delete', revision],
          ],
        );
      }));

    test('a batch with one stale ifVersion writes nothing', () =>
      withStore(async (store) => {
        const v = await store.put('leases', 'k', 'one');
        await assert.rejects(
          store.batch([
            { collection: 'leases', key: 'new', value: 'x' },
            { collection: 'leases', key: 'k', value: 'two', ifVersion: v + 1 },
          ]),
          StoreConflictError,
        );
        assert.equal(await store.get('leases', 'new'), undefined);
        assert.equal((await store.get('leases', 'k'))?.value, 'one');
        await store.batch([{ collection: 'leases', key: 'k', value: 'three', ifVersion: v }]);
        assert.equal((await store.get('leases', 'k'))?.value, 'three');
      }));

    test('everything written is there after a restart', async () => {
      const store = await harness.open();
      await store.put('boots', 'kept', { kernel: '/vmlinuz' });
      const version = await store.put('defaults', 'global', { dns: ['10.0.0.1'] });
      await store.put('boots', 'gone', 1);
      await store.delete('boots', 'gone');
      await store.batch([{ collection: 'leases', key: '10.0.0.7', value: { mac: 'b' } }]);
      const reopened = await harness.reopen(store);
      try {
        assert.deepEqual((await reopened.get('boots', 'kept'))?.value, { kernel: '/vmlinuz' });
        assert.equal((await reopened.get('defaults', 'global'))?.version, version);
        assert.equal(await reopened.get('boots', 'gone'), undefined);
        assert.deepEqual((await reopened.get('leases', '10.0.0.7'))?.value, { mac: 'b' });
        assert.ok((await reopened.put('boots', 'next', 1)) > version, 'versions keep increasing after a restart');
      } finally {
        await reopened.close();
      }
    });

    test('a closed store refuses work', async () => {
      const store = await harness.open();
      await store.close();
      await assert.rejects(store.put('boots', 'k', 1));
      await assert.rejects(store.get('boots', 'k'));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for watch events');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
