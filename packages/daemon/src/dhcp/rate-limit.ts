/**
 * A token bucket per key (a MAC): `rate` packets a second with bursts of `rate`. A flood from one MAC is dropped
 * while every other MAC keeps its own budget. The map is bounded: idle buckets are forgotten, and past
 * `maxKeys` distinct keys the oldest are dropped (a flood of random MACs cannot grow memory without bound).
 */
export interface RateLimiter {
  allow(key: string): boolean;
}

interface Bucket {
  tokens: number;
  at: number;
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
        // Re-insert so the map's order is least-recently-seen first.
        buckets.delete(key);
        buckets.set(key, bucket);
      } else {
        bucket = { tokens: rate, at: t };
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
  };
}
