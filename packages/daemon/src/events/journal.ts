import { eventSchema, type EventType, type SmeltEvent } from '@smelt/shared/event';
import type { GroupCommit } from '../store/group-commit.ts';
import type { BatchOp, Store } from '../store/store.ts';

/**
 * The event history (DESIGN.md §2 "Event"): numbered, kept in the store as a bounded window of the most recent
 * `capacity` events (the store up to a page more, memory up to TRIM_CHUNK more), and fanned out to listeners (the
 * API's event stream). Recording never waits: events ride on the next group commit (GroupCommit.ride: no commit of
 * their own while leases are being written).
 *
 * Stored in pages: event n belongs to page ⌊n / PAGE_SIZE⌋, and page k is one row in slot k mod the ring's size, so
 * a new page overwrites, in place, the one that falls out of the window: nothing is ever deleted, and a slot never
 * holds a stale row. A DHCP storm records two events per client; one row per event was half of every commit's
 * rows (each row costs the store a B-tree update, whatever its size), a page is one row per PAGE_SIZE.
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

/** Events per stored row. ~200 bytes each: a page is ~3 KiB of JSON. */
export const PAGE_SIZE = 16;
const pageOf = (seq: number): number => Math.floor(seq / PAGE_SIZE);
const slotKey = (slot: number): string => String(slot).padStart(12, '0');
/** The window may exceed its capacity by this much before the oldest events are dropped together. */
const TRIM_CHUNK = 256;

/** A stored row: page `page`'s events, oldest first. */
interface PageRow {
  page: number;
  events: SmeltEvent[];
}

/**
 * The page being filled. Its op's value is this object, which JSON.stringify turns into the row when the commit
 * writes it (toJSON), so the row holds every event recorded until then; events recorded after that need an op of
 * their own (`unwritten` is false again), events recorded before it do not.
 */
class OpenPage {
  readonly page: number;
  readonly events: SmeltEvent[];
  /** An op for this page is queued and has not been serialised yet. */
  unwritten = false;

  constructor(page: number, events: SmeltEvent[] = []) {
    this.page = page;
    this.events = events;
  }

  toJSON(): PageRow {
    this.unwritten = false;
    return { page: this.page, events: this.events };
  }
}

export async function createEventJournal(
  store: Store,
  commit: GroupCommit,
  now: () => Date,
  capacity = 10_000,
): Promise<EventJournal> {
  // Enough pages that the window's oldest page, when the newest has just begun, still holds `capacity` events.
  const ringPages = Math.ceil(capacity / PAGE_SIZE) + 1;
  const keyOf = (page: number): string => slotKey(page % ringPages);
  const slack = Math.min(TRIM_CHUNK, Math.floor(capacity / 10));
  const { kept, rewrite } = await loadWindow(store, ringPages, keyOf);
  // Rows kept in another layout (one event per row, as before pages, or another ring size) move to their page's
  // slot before anything new is recorded; rows that do not parse, or fell out of the window, go.
  if (rewrite.length > 0) await store.batch(rewrite);
  const newest = kept.at(-1);
  let seq = newest?.seq ?? 0;
  // The newest stored page goes on filling: its row is rewritten with the events it already has.
  let open = newest
    ? new OpenPage(
        pageOf(newest.seq),
        kept.filter((event) => pageOf(event.seq) === pageOf(newest.seq)),
      )
    : undefined;
  const recent = kept.slice(Math.max(0, kept.length - capacity - slack));
  const listeners = new Set<(event: SmeltEvent) => void>();
  // The pages changed in one turn of the event loop ride together.
  let unwritten: BatchOp[] = [];
  const writeSoon = (page: OpenPage) => {
    if (page.unwritten) return;
    page.unwritten = true;
    if (unwritten.length === 0) {
      setImmediate(() => {
        const batch = unwritten;
        unwritten = [];
        // A failed write is reported by whoever shares the commit (the writer that awaits it); an event is best
        // effort and must never fail a DHCP reply. Its page is written again with the next event recorded in it.
        commit.ride(batch).catch(() => undefined);
      });
    }
    unwritten.push({ collection: 'events', key: keyOf(page.page), value: page });
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
      // needs no trim: a new page's slot held the page that just fell out of the window.
      if (recent.length > capacity + slack) recent.splice(0, recent.length - capacity);
      const page = pageOf(event.seq);
      if (open?.page !== page) open = new OpenPage(page);
      open.events.push(event);
      writeSoon(open);
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
 * A stored row's events: a page's, or the one event of a row written before pages. Undefined: neither parses.
 * `whole`: a page every event of which parsed and belongs to it.
 */
function eventsOfRow(value: unknown): { page?: number; events: SmeltEvent[]; whole: boolean } | undefined {
  const single = eventSchema.safeParse(value);
  if (single.success) return { events: [single.data], whole: false };
  if (typeof value !== 'object' || value === null) return undefined;
  const { page, events } = value as Partial<Record<keyof PageRow, unknown>>;
  if (typeof page !== 'number' || !Number.isSafeInteger(page) || page < 0 || !Array.isArray(events)) return undefined;
  const parsed: SmeltEvent[] = [];
  for (const event of events) {
    const result = eventSchema.safeParse(event);
    // One bad event does not lose its page's others.
    if (result.success && pageOf(result.data.seq) === page) parsed.push(result.data);
  }
  return { page, events: parsed, whole: parsed.length === events.length };
}

/** The events of several rows, each once, oldest first. */
function eventsOf(rows: readonly (readonly SmeltEvent[])[]): SmeltEvent[] {
  const bySeq = new Map<number, SmeltEvent>();
  for (const events of rows) for (const event of events) bySeq.set(event.seq, event);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Every event in the store, oldest first (each once, whatever the rows' layout). */
export async function storedEvents(store: Store): Promise<SmeltEvent[]> {
  return eventsOf((await store.list('events')).map((row) => eventsOfRow(row.value)?.events ?? []));
}

/**
 * The stored events, oldest first, of the newest `ringPages` pages; and the batch that leaves exactly those pages
 * in their slots, every one whole, and no other row.
 */
async function loadWindow(
  store: Store,
  ringPages: number,
  keyOf: (page: number) => string,
): Promise<{ kept: SmeltEvent[]; rewrite: BatchOp[] }> {
  const rows = await store.list('events');
  // Rows that are whole pages, by slot: page number and how many events it holds.
  const stored = new Map<string, { page: number; count: number }>();
  const found = rows.map((row) => {
    const parsed = eventsOfRow(row.value);
    if (parsed?.page !== undefined && parsed.whole)
      stored.set(row.key, { page: parsed.page, count: parsed.events.length });
    return parsed?.events ?? [];
  });
  const all = eventsOf(found);
  const newestPage = pageOf(all.at(-1)?.seq ?? 0);
  const kept = all.filter((event) => pageOf(event.seq) > newestPage - ringPages);
  const pages = new Map<number, SmeltEvent[]>();
  for (const event of kept) {
    const page = pageOf(event.seq);
    const events = pages.get(page) ?? [];
    events.push(event);
    pages.set(page, events);
  }
  const wanted = new Map([...pages].map(([page, events]) => [keyOf(page), { page, events }]));
  const rewrite: BatchOp[] = [];
  for (const row of rows) if (!wanted.has(row.key)) rewrite.push({ collection: 'events', key: row.key });
  for (const [key, { page, events }] of wanted) {
    // Already in place: that page, whole, in its slot, with every event of it kept (a row with events the window
    // gained from rows of the old layout, or with one that does not parse, is rewritten).
    const row = stored.get(key);
    if (row?.page !== page || row.count !== events.length) {
      rewrite.push({ collection: 'events', key, value: { page, events } satisfies PageRow });
    }
  }
  return { kept, rewrite };
}
