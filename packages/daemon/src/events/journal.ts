import { eventSchema, type EventType, type SmeltEvent } from '@smelt/shared/event';
import type { GroupCommit } from '../store/group-commit.ts';
import type { BatchOp, Store } from '../store/store.ts';

/**
 * The event history (DESIGN.md §2 "Event"): numbered, kept in the store as a bounded window of the most recent
 * `capacity` events (up to TRIM_CHUNK more), and fanned out to listeners (the API's event stream). Recording never
 * waits: events ride on the next group commit (GroupCommit.ride: no commit of their own while leases are being
 * written).
 *
 * The stored window is a ring of `capacity + slack` slots: event n is kept under slot n mod size, so recording one
 * overwrites the one that falls out of the window, in place. One row written per event, none deleted: a DHCP storm
 * records two events per client, and an insert plus a delete for each cost the store a third of its rows.
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

const slotKey = (slot: number): string => String(slot).padStart(12, '0');
/** The window may exceed its capacity by this much before the oldest events are dropped together. */
const TRIM_CHUNK = 256;

export async function createEventJournal(
  store: Store,
  commit: GroupCommit,
  now: () => Date,
  capacity = 10_000,
): Promise<EventJournal> {
  const slack = Math.min(TRIM_CHUNK, Math.floor(capacity / 10));
  const ring = capacity + slack;
  const keyOf = (seq: number): string => slotKey(seq % ring);
  const { recent, rewrite } = await loadWindow(store, ring, keyOf);
  // Rows kept under another key (a store written before the ring, or with another capacity) move to their slot
  // before anything new is recorded; rows that do not parse, or fell out of the window, go.
  if (rewrite.length > 0) await store.batch(rewrite);
  let seq = recent.at(-1)?.seq ?? 0;
  const listeners = new Set<(event: SmeltEvent) => void>();
  // Events recorded in one turn of the event loop are written together.
  let unwritten: BatchOp[] = [];
  const writeSoon = (op: BatchOp) => {
    if (unwritten.length === 0) {
      setImmediate(() => {
        const batch = unwritten;
        unwritten = [];
        // A failed write is reported by whoever shares the commit (the writer that awaits it); an event is best
        // effort and must never fail a DHCP reply.
        commit.ride(batch).catch(() => undefined);
      });
    }
    unwritten.push(op);
  };

  // Events of one millisecond share their time's text: a DHCP storm records thousands a second, and each is kept
  // in the window long enough to reach the old generation.
  let lastMs = Number.NaN;
  let lastTime = '';
  const timeOf = (date: Date): string => {
    const ms = date.getTime();
    if (ms !== lastMs) {
      lastMs = ms;
      lastTime = date.toISOString();
    }
    return lastTime;
  };

  return {
    commit,
    record(type, fields) {
      const event: SmeltEvent = { seq: ++seq, time: timeOf(now()), type, ...fields };
      recent.push(event);
      // Trimmed in chunks: a splice of the whole window for every event would cost O(capacity) each. The store
      // needs no trim: this event's slot held the one that just fell out of the window.
      if (recent.length > ring) recent.splice(0, recent.length - capacity);
      writeSoon({ collection: 'events', key: keyOf(event.seq), value: event });
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

/**
 * The stored events, oldest first, those among the newest `ring` numbers, and the batch that puts every one of them
 * under its slot's key and removes every other row.
 */
async function loadWindow(
  store: Store,
  ring: number,
  keyOf: (seq: number) => string,
): Promise<{ recent: SmeltEvent[]; rewrite: BatchOp[] }> {
  const rows = await store.list('events');
  const parsed: { key: string; event: SmeltEvent }[] = [];
  const rewrite: BatchOp[] = [];
  for (const row of rows) {
    const result = eventSchema.safeParse(row.value);
    if (result.success) parsed.push({ key: row.key, event: result.data });
    else rewrite.push({ collection: 'events', key: row.key });
  }
  parsed.sort((a, b) => a.event.seq - b.event.seq);
  // The window is the last `ring` numbers (not rows: numbers may have gaps), so no two events share a slot.
  const newest = parsed.at(-1)?.event.seq ?? 0;
  const dropped = parsed.splice(0, parsed.filter(({ event }) => event.seq <= newest - ring).length);
  for (const { key } of dropped) rewrite.push({ collection: 'events', key });
  const moved = parsed.filter(({ key, event }) => key !== keyOf(event.seq));
  // Deletes first: a moved row's old key may be another kept event's slot, which its put then fills again.
  for (const { key } of moved) rewrite.push({ collection: 'events', key });
  for (const { event } of moved) rewrite.push({ collection: 'events', key: keyOf(event.seq), value: event });
  return { recent: parsed.map(({ event }) => event), rewrite };
}
