import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';

/**
 * Makes SQLite's write-ahead log durable after commits made with synchronous=NORMAL: an fdatasync of the log file,
 * on libuv's thread pool, so the event loop never waits for the disk.
 *
 * Why this is synchronous=FULL: in WAL mode the only difference between the two is that FULL syncs the log after
 * every commit (https://sqlite.org/pragma.html#pragma_synchronous); NORMAL already syncs it before a checkpoint,
 * syncs the database after one and syncs the log's header when the log starts over. So a commit is as durable as
 * under FULL once an fdatasync of the log has started after it and returned.
 *
 * Syncs are shared: sync() resolves once a sync that started after the call has finished. While one runs, every
 * caller waits for the next one, which starts when it ends and covers all of them: one flush per disk round trip,
 * however many commits were made meanwhile.
 */
export interface WalSync {
  sync(): Promise<void>;
  /** fdatasyncs started so far (its test counts them to show the sharing). */
  readonly syncs: number;
  /** Waits for the syncs asked for, then closes the file. */
  close(): Promise<void>;
}

export function createWalSync(walPath: string): WalSync {
  let fd: number | undefined;
  let inode = -1;
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let syncs = 0;

  /**
   * The log as it is now: SQLite deletes it when its last connection closes and makes a new one on the next open,
   * so an fd kept from before would sync a file nobody writes (one stat per sync, ~2 µs, rules that out).
   */
  function currentFd(): number {
    const now = statSync(walPath).ino;
    if (fd !== undefined && now === inode) return fd;
    if (fd !== undefined) closeSync(fd);
    fd = openSync(walPath, 'r');
    inode = fstatSync(fd).ino;
    return fd;
  }

  function start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      let target: number;
      try {
        target = currentFd();
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      syncs += 1;
      fdatasync(target, (error) => {
        if (error) reject(error);
        else resolve();
      });
    });
    const done = started.finally(() => {
      if (running === done) running = undefined;
    });
    running = done;
    return done;
  }

  return {
    get syncs() {
      return syncs;
    },
    sync() {
      // A queued sync has not started yet: it covers this caller too. (Starting one beside it could end first and
      // tell later commits before earlier ones.)
      if (queued) return queued;
      if (!running) return start();
      // One sync is on its way, possibly begun before the caller's commit: the next one, shared by everyone who
      // asks meanwhile, starts when it ends (whether it succeeded or not).
      queued ??= running
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => {
          queued = undefined;
          return start();
        });
      return queued;
    },
    async close() {
      await (queued ?? running)?.catch(() => undefined);
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
