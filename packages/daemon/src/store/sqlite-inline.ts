import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  StoreConflictError,
  type BatchOp,
  type Collection,
  type ListOptions,
  type PutOptions,
  type Store,
  type Versioned,
  type WatchEvent,
} from './store.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (
    collection TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (collection, key)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
  INSERT OR IGNORE INTO meta (name, value) VALUES ('log-restarts', 0);
`;

interface Row {
  key: string;
  value: string;
  version: number;
}

/**
 * The embedded store's engine: one SQLite file in the data directory, WAL mode, every call synchronous (node:sqlite)
 * behind the asynchronous Store interface. With synchronous=FULL (the default here) a put is durable before it
 * resolves. The daemon's store (sqlite.ts) runs its writes with NORMAL on the event loop and syncs the log itself,
 * off the event loop, and its reads and checkpoints on a thread of their own.
 */
export interface InlineSqliteStore extends Store {
  /**
   * Commits the ops as batch() does, telling no watchers: returns the revision and, per op, whether it was a delete
   * that removed something.
   */
  commitQuietly(ops: readonly BatchOp[]): { revision: number; removed: boolean[] };
  /** PRAGMA wal_autocheckpoint: after a commit that leaves the log this many pages long, checkpoint it (0: never). */
  setAutoCheckpoint(pages: number): void;
  /**
   * A PASSIVE checkpoint: copies what it can of the log into the database, never waiting for the writer. Returns
   * whether it copied all of it (the next write then restarts the log from its beginning).
   */
  checkpoint(): { complete: boolean };
  /**
   * Restarts a log that a checkpoint copied whole, with a write of its own (a counter in meta): the write that
   * restarts the log writes its header and fsyncs it (https://sqlite.org/src/info/ff5be73dee), here instead of in
   * the next real commit. Never waits for the lock: false when another connection holds it (that one restarts the
   * log then).
   */
  restartLog(): boolean;
}

/** An op's value as the JSON text stored (undefined for a delete). */
function jsonOf(op: BatchOp): string | undefined {
  return op.value === undefined ? undefined : JSON.stringify(op.value);
}

export interface InlineSqliteOptions {
  /**
   * FULL (the default): COMMIT returns once the log is fsynced. NORMAL: once the log is written to the kernel
   * (fsyncs only at checkpoints): a commit survives kill -9, not a power loss (https://sqlite.org/pragma.html
   * #pragma_synchronous, WAL mode). The store's `sync` setting (sqlite.ts) chooses.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * PRAGMA wal_autocheckpoint (SQLite's default: 1000 pages). A large value leaves checkpoints to another
   * connection (sqlite-background.ts) and keeps this one's as a backstop.
   */
  autoCheckpoint?: number;
  /** PRAGMA journal_size_limit: the log is cut back to this many bytes when it restarts. */
  journalSizeLimit?: number;
  /**
   * A second connection to a store another connection made (sqlite-background.ts: reads and checkpoints): no
   * schema, no journal mode (the first set WAL); only synchronous and the busy timeout.
   */
  existing?: boolean;
}

/** How long a connection waits for another's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export function openInlineSqliteStore(dataDir: string, options: InlineSqliteOptions = {}): InlineSqliteStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(join(dataDir, 'smelt.db'));
  const setAutoCheckpoint = (pages: number) => {
    db.exec(`PRAGMA wal_autocheckpoint = ${String(Math.max(0, Math.trunc(pages)))};`);
  };
  const synchronous = options.synchronous ?? 'FULL';
  if (options.existing)
    db.exec(`PRAGMA synchronous = ${synchronous}; PRAGMA busy_timeout = ${String(BUSY_TIMEOUT_MS)};`);
  else {
    db.exec(
      `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous}; PRAGMA busy_timeout = ${String(BUSY_TIMEOUT_MS)};`,
    );
    if (options.autoCheckpoint !== undefined) setAutoCheckpoint(options.autoCheckpoint);
    if (options.journalSizeLimit !== undefined) {
      db.exec(`PRAGMA journal_size_limit = ${String(Math.trunc(options.journalSizeLimit))};`);
    }
    db.exec(SCHEMA);
  }

  const statements = {
    get: db.prepare('SELECT key, value, version FROM kv WHERE collection = ? AND key = ?'),
    version: db.prepare('SELECT version FROM kv WHERE collection = ? AND key = ?'),
    list: db.prepare('SELECT key, value, version FROM kv WHERE collection = ? AND key > ? ORDER BY key LIMIT ?'),
    upsert: db.prepare(
      'INSERT INTO kv (collection, key, value, version) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, version = excluded.version',
    ),
    delete: db.prepare('DELETE FROM kv WHERE collection = ? AND key = ?'),
    bump: db.prepare("UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value"),
    checkpoint: db.prepare('PRAGMA wal_checkpoint(PASSIVE)'),
    // A counter of its own (a row rewritten unchanged is not written at all; the revision counts the store's
    // changes, not this): one page in the log.
    touch: db.prepare("UPDATE meta SET value = value + 1 WHERE name = 'log-restarts'"),
  } satisfies Record<string, StatementSync>;
  const listeners = new Set<(event: WatchEvent) => void>();
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new Error('store is closed');
  }

  function currentVersion(collection: Collection, key: string): number {
    const row = statements.version.get(collection, key) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** Runs `write` in one IMMEDIATE transaction with the next revision, then tells the watchers. */
  function commit(
    collection: Collection,
    key: string,
    options: PutOptions | undefined,
    write: (revision: number) => WatchEvent | undefined,
  ): WatchEvent | undefined {
    assertOpen();
    db.exec('BEGIN IMMEDIATE');
    let event: WatchEvent | undefined;
    try {
      if (options?.ifVersion !== undefined) {
        const actual = currentVersion(collection, key);
        if (actual !== options.ifVersion) throw new StoreConflictError(collection, key, options.ifVersion, actual);
      }
      const { value: revision } = statements.bump.get() as { value: number };
      event = write(revision);
      if (event) db.exec('COMMIT');
      else db.exec('ROLLBACK');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    if (event) for (const listener of listeners) listener(event);
    return event;
  }

  /**
   * One IMMEDIATE transaction at one new revision for every op; the ops' outcome, for the watchers. `json[i]` is
   * op i's text when the caller made it already (it needs it afterwards); otherwise each op is serialised just
   * before its statement: a commit of hundreds of rows holds one row's text at a time, and no array of them.
   */
  function commitBatch(
    ops: readonly BatchOp[],
    json?: readonly (string | undefined)[],
  ): { revision: number; removed: boolean[] } {
    assertOpen();
    const removed: boolean[] = [];
    db.exec('BEGIN IMMEDIATE');
    let revision: number;
    try {
      ({ value: revision } = statements.bump.get() as { value: number });
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i];
        if (!op) continue;
        if (op.ifVersion !== undefined) {
          const actual = currentVersion(op.collection, op.key);
          if (actual !== op.ifVersion) throw new StoreConflictError(op.collection, op.key, op.ifVersion, actual);
        }
        const text = json ? json[i] : jsonOf(op);
        if (text === undefined) removed.push(statements.delete.run(op.collection, op.key).changes > 0);
        else {
          statements.upsert.run(op.collection, op.key, text, revision);
          removed.push(false);
        }
      }
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    return { revision, removed };
  }

  function batch(ops: readonly BatchOp[]): number {
    const json = ops.map(jsonOf);
    const { revision, removed } = commitBatch(ops, json);
    if (listeners.size === 0) return revision;
    const events: WatchEvent[] = [];
    ops.forEach((op, i) => {
      const text = json[i];
      if (text !== undefined) {
        // Watchers get a copy as stored, never the caller's object.
        events.push({
          collection: op.collection,
          key: op.key,
          kind: 'put',
          value: JSON.parse(text),
          version: revision,
        });
      } else if (removed[i]) events.push({ collection: op.collection, key: op.key, kind: 'delete', version: revision });
    });
    for (const event of events) for (const listener of listeners) listener(event);
    return revision;
  }

  function toVersioned(row: Row): Versioned {
    return { key: row.key, value: JSON.parse(row.value) as unknown, version: row.version };
  }

  return {
    get: (collection, key) =>
      settle(() => {
        assertOpen();
        const row = statements.get.get(collection, key) as Row | undefined;
        return row && toVersioned(row);
      }),
    list: (collection, options: ListOptions = {}) =>
      settle(() => {
        assertOpen();
        const rows = statements.list.all(collection, options.after ?? '', options.limit ?? -1) as unknown as Row[];
        return rows.map(toVersioned);
      }),
    put: (collection, key, value, options) =>
      settle(() => {
        const json = JSON.stringify(value);
        const event = commit(collection, key, options, (version) => {
          statements.upsert.run(collection, key, json, version);
          return { collection, key, kind: 'put', value: JSON.parse(json) as unknown, version };
        });
        return event?.version ?? 0;
      }),
    delete: (collection, key, options) =>
      settle(() => {
        const event = commit(collection, key, options, (version) =>
          statements.delete.run(collection, key).changes > 0 ? { collection, key, kind: 'delete', version } : undefined,
        );
        return event !== undefined;
      }),
    batch: (ops) => settle(() => batch(ops)),
    commitQuietly: (ops) => commitBatch(ops),
    checkpoint() {
      assertOpen();
      // One row: busy (1 when it could not run), log (frames in the log), checkpointed (frames copied).
      const row = statements.checkpoint.get() as { busy: number; log: number; checkpointed: number } | undefined;
      return { complete: row?.busy === 0 && row.log > 0 && row.checkpointed === row.log };
    },
    restartLog() {
      assertOpen();
      db.exec('PRAGMA busy_timeout = 0');
      try {
        db.exec('BEGIN IMMEDIATE');
      } catch {
        // SQLITE_BUSY: the writer is writing; it restarts the log itself.
        return false;
      } finally {
        db.exec(`PRAGMA busy_timeout = ${String(BUSY_TIMEOUT_MS)}`);
      }
      try {
        statements.touch.run();
        db.exec('COMMIT');
        return true;
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    setAutoCheckpoint,
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      if (!closed) {
        closed = true;
        listeners.clear();
        db.close();
      }
      return Promise.resolve();
    },
  };
}

/** Runs synchronous SQLite work behind the asynchronous Store interface: a throw becomes a rejection. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
