import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createIsoCache } from '../iso/cache.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import { createInventory } from './inventory.ts';

const lease = (address: string, mac: string, state = 'bound') => ({
  address,
  mac,
  state,
  reserved: false,
  grantedAt: '2026-11-21T10:00:00.000Z',
  expiresAt: '2026-11-21T11:00:00.000Z',
});

test('leases page in address order (numeric, not as text), filter by MAC and state, and skip rows that do not parse', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-leases-'));
  const store = openSqliteStore(dir);
  const isos = createIsoCache();
  try {
    const rows = [
      lease('10.0.0.10', '02:00:00:00:00:0a'),
      lease('10.0.0.9', '02:00:00:00:00:09'),
      lease('10.0.0.100', '02:00:00:00:00:64', 'released'),
      lease('10.0.0.2', '02:00:00:00:00:02'),
      lease('10.0.1.1', '02:00:00:00:01:01'),
    ];
    await store.batch([
      ...rows.map((value) => ({ collection: 'leases' as const, key: value.address, value })),
      // Written by something else than the DHCP server: not a lease.
      { collection: 'leases', key: '10.0.0.50', value: { address: '10.0.0.50', mac: 'nonsense' } },
    ]);
    const { leases } = createInventory(store, isos);

    const seen: string[] = [];
    const cursors: (string | null)[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await leases.list({ limit: 2, ...(cursor !== undefined && { cursor }) });
      seen.push(...page.items.map((l) => l.address));
      cursors.push(page.next);
      if (page.next === null) break;
      cursor = page.next;
    }
    assert.deepEqual(seen, ['10.0.0.2', '10.0.0.9', '10.0.0.10', '10.0.0.100', '10.0.1.1']);
    assert.equal(cursors.at(-1), null);
    assert.equal(cursors[0], '0a000009', 'the cursor is the last address as 8 hex digits');

    const released = await leases.list({ limit: 10, state: 'released' });
    assert.deepEqual(
      released.items.map((l) => l.address),
      ['10.0.0.100'],
    );
    assert.equal(released.next, null);
    const one = await leases.list({ limit: 10, mac: '02:00:00:00:00:09' });
    assert.deepEqual(
      one.items.map((l) => l.address),
      ['10.0.0.9'],
    );
  } finally {
    await isos.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
