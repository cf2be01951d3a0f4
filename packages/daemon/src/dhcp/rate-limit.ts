/**
 * A token bucket per key (a MAC): `rate` packets a second with bursts of `rate`. A flood from one MAC is dropped
 * while every other MAC keeps its own budget. The map is bounded: idle buckets are forgotten, and past
 * `maxKeys` distinct keys the least recently seen are dropped (a flood of random MACs cannot grow memory without
 * bound). "Recently" to the second: a bucket moves to the young end of the map at most once a second, not on
 * every packet (a delete and a re-insert into a map of 100k keys, for each of thousands of packets a second).
 */
export interface RateLimiter {
  allow(key: string): boolean;
  /** Keys remembered now (metrics, tests). */
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** When it last moved to the young end of the map. */
  moved: number;
}

export function createRateLimiter(rate: number, now: () => number, maxKeys = 100_000): RateLimiter {
  const buckets = new Map<string, Bucket>();
  return {
    allow(key) {
      const t = now();
      let bucket = buckets.get(key);
      if (bucket) {
        bucket.tokens = Math.min(rate, bucket.tokens + ((t - bucket.at) / 1000) * rate);
        bucket.at = t;
        // Re-insert so the map's order is least-recently-seen first (to the second).
        if (t - bucket.moved >= 1000) {
          bucket.moved = t;
          buckets.delete(key);
          buckets.set(key, bucket);
        }
      } else {
        // A bucket unseen for a second has filled up again: it is the same as none, so it goes. Two per new key,
        // from the old end, keep the map at the keys of about the last second (a storm of 50,000 clients otherwise
        // keeps 50,000 buckets in the old generation until maxKeys).
        for (let i = 0; i < 2; i++) {
          const [oldestKey, oldest] = buckets.entries().next().value ?? [];
          if (oldestKey === undefined || oldest === undefined || t - oldest.at < 1000) break;
          buckets.delete(oldestKey);
        }
        bucket = { tokens: rate, at: t, moved: t };
        buckets.set(key, bucket);
        if (buckets.size > maxKeys) {
          const oldest = buckets.keys().next().value;
          if (oldest !== undefined) buckets.delete(oldest);
        }
      }
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
    get size() {
      return buckets.size;
    },
  };
}
