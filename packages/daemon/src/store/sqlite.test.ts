import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openSqliteStore, type StoreSync } from './sqlite.ts';
import { storeContract } from './store.contract.ts';
import type { Store } from './store.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-store-'));
  dirs.push(dir);
  return dir;
}

// The two settings differ only in when a commit is acknowledged (after its fsync, or after its write to the
// kernel): both must pass the whole contract.
for (const sync of ['disk', 'os'] satisfies StoreSync[]) {
  const dirOf = new WeakMap<Store, string>();
  storeContract(sync === 'disk' ? 'sqlite' : 'sqlite (store.sync os)', {
    open() {
      const dir = freshDir();
      const store = openSqliteStore(dir, { sync });
      dirOf.set(store, dir);
      return Promise.resolve(store);
    },
    async reopen(store) {
      const dir = dirOf.get(store);
      if (dir === undefined) throw new Error('unknown store');
      await store.close();
      const reopened = openSqliteStore(dir, { sync });
      dirOf.set(reopened, dir);
      return reopened;
    },
  });
}

// What both settings promise (and what the DHCP bench checks of every lease): a write acknowledged the moment
// before the process is killed with SIGKILL is there when the store is opened again. (What only `disk` adds,
// surviving a power loss, is SQLite's synchronous=FULL and cannot be shown without cutting the power.)
for (const sync of ['disk', 'os'] satisfies StoreSync[]) {
  test(`store.sync ${sync}: every write acknowledged before kill -9 is there after it`, async () => {
    const dir = freshDir();
    const module = new URL('./sqlite.ts', import.meta.url).href;
    // The writer is a script of its own: a child process, so that it can be killed mid-stream.
    const script = join(dir, 'writer.mjs');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(module)};
       const store = openSqliteStore(${JSON.stringify(join(dir, 'data'))}, { sync: ${JSON.stringify(sync)} });
       for (let i = 0; ; i++) {
         await store.batch([{ collection: 'leases', key: 'k' + i, value: { i } }]);
         process.stdout.write(i + '\\n');
       }
`,
    );
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = -1;
    let text = '';
    await new Promise<void>((resolve, reject) => {
      child.once('close', () => {
        reject(new Error(`the writer exited after ${acked + 1} writes`));
      });
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = text.split('\n');
        text = lines.pop() ?? '';
        if (lines.length > 0) acked = Number(lines[lines.length - 1]);
        if (acked >= 300) {
          // At once, in the same turn as reading the acknowledgement: no time for anything to be flushed after.
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.once('close', resolve));
    const store = openSqliteStore(join(dir, 'data'), { sync });
    try {
      const keys = new Set((await store.list('leases')).map((row) => row.key));
      const lost = Array.from({ length: acked + 1 }, (_, i) => `k${i}`).filter((key) => !keys.has(key));
      assert.deepEqual(lost, [], `acknowledged, then lost after kill -9 (${acked + 1} acknowledged)`);
    } finally {
      await store.close();
    }
  });
}
