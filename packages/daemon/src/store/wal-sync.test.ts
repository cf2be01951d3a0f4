import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createWalSync } from './wal-sync.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshLog(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smelt-walsync-'));
  dirs.push(dir);
  const path = join(dir, 'smelt.db-wal');
  writeFileSync(path, 'frames');
  return path;
}

/** What this process's open file descriptors point at. */
function openFiles(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
}

test('callers while a sync runs share the next one: one started after each of them', async () => {
  const path = freshLog();
  const wal = createWalSync(path);
  try {
    const first = wal.sync();
    // 100 commits made while the first sync runs: one more sync covers them all.
    const rest = Array.from({ length: 100 }, () => {
      appendFileSync(path, 'x');
      return wal.sync();
    });
    assert.equal(wal.syncs, 1, 'the second sync waits for the first to end');
    await first;
    await Promise.all(rest);
    assert.equal(wal.syncs, 2);
    await wal.sync();
    assert.equal(wal.syncs, 3, 'with none running, a sync starts at once');
  } finally {
    await wal.close();
  }
});

test('a log made anew (SQLite deletes it when its last connection closes) is the one synced', async () => {
  const path = freshLog();
  const wal = createWalSync(path);
  try {
    await wal.sync();
    // Another file put in its place, as a reopened store makes a new log.
    writeFileSync(`${path}.new`, 'other frames');
    renameSync(`${path}.new`, path);
    await wal.sync();
    assert.deepEqual(
      openFiles().filter((file) => file.startsWith(path)),
      [path],
      'the fd on the replaced file is closed and one on the new file is open',
    );
  } finally {
    await wal.close();
  }
  assert.deepEqual(
    openFiles().filter((file) => file.startsWith(path)),
    [],
    'close() closes it',
  );
});

test('a log that is not there fails the sync, and a later one succeeds once it is', async () => {
  const path = freshLog();
  rmSync(path);
  const wal = createWalSync(path);
  try {
    await assert.rejects(wal.sync(), /ENOENT/);
    writeFileSync(path, 'frames');
    await wal.sync();
  } finally {
    await wal.close();
  }
});
