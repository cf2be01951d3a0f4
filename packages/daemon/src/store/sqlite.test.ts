import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openSqliteStore } from './sqlite.ts';
import { storeContract } from './store.contract.ts';
import type { Store } from './store.ts';

const dirs: string[] = [];
const dirOf = new WeakMap<Store, string>();
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storeContract('sqlite', {
  open() {
    const dir = mkdtempSync(join(tmpdir(), 'smelt-store-'));
    dirs.push(dir);
    const store = openSqliteStore(dir);
    dirOf.set(store, dir);
    return Promise.resolve(store);
  },
  async reopen(store) {
    const dir = dirOf.get(store);
    if (dir === undefined) throw new Error('unknown store');
    await store.close();
    const reopened = openSqliteStore(dir);
    dirOf.set(reopened, dir);
    return reopened;
  },
});
