import { eventSchema, type EventType, type SmeltEvent } from '@smelt/shared/event';
import type { GroupCommit } from '../store/group-commit.ts';
import type { BatchOp, Store } from '../store/store.ts';

/**
 * The event history (DESIGN.md §2 "Event"): numbered, kept in the store as a bounded window of the most recent
 * `capacity` events (up to TRIM_CHUNK more before a trim) (older ones are deleted in the same batch that adds new
 * ones), and fanned out to listeners (the API's event stream). Recording never waits: events ride on the next group
 * commit (GroupCommit.ride: no commit of their own while leases are being written).
 */
export interface EventJournal {
  record(type: EventType, fields: { mac?: string; subject?: string; message: string }): SmeltEvent;
  /** Events after `afterSeq`, oldest first, from memory. */
  since(afterSeq: number, limit?: number): SmeltEvent[];
  subscribe(listener: (event: SmeltEvent) => void): () => void;
  /** The newest event's number (0 before the first). */
  latest(): number;
  /**
   * The group commit events are written through. Rows an event describes ride on it too (inventory's discovered
   * machines), so an event can never be committed ahead of the row it describes, and both share commits.
   */
  readonly commit: GroupCommit;
}

const keyOf = (seq: number): string => String(seq).padStart(12, '0');
/** The window may exceed its capacity by this much before the oldest events are dropped together. */
const TRIM_CHUNK = 256;

export async function createEventJournal(
  store: Store,
  commit: GroupCommit,
  now: () => Date,
  capacity = 10_000,
): Promise<EventJournal> {
  const recent: SmeltEvent[] = [];
  for (const row of await store.list('events')) {
    const parsed = eventSchema.safeParse(row.value);
    if (parsed.success) recent.push(parsed.data);
  }
  recent.sort((a, b) => a.seq - b.seq);
  let seq = recent.at(-1)?.seq ?? 0;
  const listeners = new Set<(event: SmeltEvent) => void>();
  const slack = Math.min(TRIM_CHUNK, Math.floor(capacity / 10));
  // Events recorded in one turn of the event loop are written together.
  let unwritten: BatchOp[] = [];
  const writeSoon = (ops: BatchOp[]) => {
    if (unwritten.length === 0) {
      setImmediate(() => {
        const batch = unwritten;
        unwritten = [];
        // A failed write is reported by whoever shares the commit (the writer that awaits it); an event is best
        // effort and must never fail a DHCP reply.
        commit.ride(batch).catch(() => undefined);
      });
    }
    unwritten.push(...ops);
  };

  return {
    commit,
    record(type, fields) {
      const event: SmeltEvent = { seq: ++seq, time: now().toISOString(), type, ...fields };
      recent.push(event);
      // Trimmed in chunks: a splice of the whole window for every event would cost O(capacity) each.
      const expired = recent.length > capacity + slack ? recent.splice(0, recent.length - capacity) : [];
      writeSoon([
        { collection: 'events', key: keyOf(event.seq), value: event },
        ...expired.map((old) => ({ collection: 'events' as const, key: keyOf(old.seq) })),
      ]);
      for (const listener of listeners) listener(event);
      return event;
    },
    since(afterSeq, limit = capacity) {
      const start = recent.findIndex((event) => event.seq > afterSeq);
      return start < 0 ? [] : recent.slice(start, start + limit);
    },
    latest: () => seq,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
