import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoName, lastErrno, libcLibrary } from './net/libc.ts';

/**
 * One daemon per data directory. Two smeltd processes on one directory would each keep their own in-memory view
 * of the same store and lease table, answer DHCP from both, and overwrite each other's leases and machine states:
 * exactly the machine that gets lost. So `start` takes an exclusive flock(2) on `<dataDir>/smeltd.lock` and holds
 * it for the life of the process; the kernel releases it however the process ends (kill -9 included), so a stale
 * file never blocks a restart. The file holds the owner's pid, for the message the second daemon prints.
 */
export class DataDirBusyError extends Error {
  constructor(dataDir: string, pid: string | undefined) {
    super(
      `the data directory ${dataDir} is in use by another smeltd${pid ? ` (pid ${pid})` : ''}: stop it first, ` +
        'or give this daemon its own dataDir (--dataDir)',
    );
    this.name = 'DataDirBusyError';
  }
}

export interface DataDirLock {
  release(): void;
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'smeltd.lock');
  const fd = openSync(path, 'a+', 0o600);
  const flock = libcLibrary().func('int flock(int, int)') as (fd: number, operation: number) => number;
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = lastErrno();
    let owner: string | undefined;
    try {
      owner = readFileSync(path, 'utf8').trim() || undefined;
    } catch {
      owner = undefined;
    }
    closeSync(fd);
    if (errno === EWOULDBLOCK) throw new DataDirBusyError(dataDir, owner);
    throw new Error(`cannot lock ${path}: ${errnoName(errno)}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${String(process.pid)}\n`);
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      closeSync(fd); // closing the last descriptor releases the flock
    },
  };
}
