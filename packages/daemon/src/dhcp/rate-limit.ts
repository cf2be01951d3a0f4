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

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(rate: number, now: () => number, maxKeys = 100_000): RateLimiter {
  let current = new Map<string, Bucket>();
  let previous = new Map<string, Bucket>();
  let startedAt = now();
  return {
    allow(key) {
      const t = now();
      if (t - startedAt >= 1000 || current.size >= maxKeys) {
        previous = current;
        current = new Map();
        startedAt = t;
      }
      let bucket = current.get(key);
      if (bucket === undefined) {
        bucket = previous.get(key);
        if (bucket === undefined) bucket = { tokens: rate, at: t };
        else previous.delete(key);
        current.set(key, bucket);
      }
      bucket.tokens = Math.min(rate, bucket.tokens + ((t - bucket.at) / 1000) * rate);
      bucket.at = t;
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
    get size() {
      return current.size + previous.size;
    },
  };
}
