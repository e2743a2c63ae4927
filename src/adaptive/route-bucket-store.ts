/**
 * The route-wide token bucket behind the adaptive limit, behind a small interface so a cross-worker
 * (IPC lease) or Redis store can take it over later. Unlike the per-client `RateLimitStore`, a take
 * names a floor: a negative floor lets the bucket go into bounded debt (fair shedding borrows).
 */

/** The answer to one take. Stores may reuse the object for their next call: read it at once. */
export interface RouteTake {
  /** Whether `cost` tokens were taken. */
  allowed: boolean;
  /** Tokens in the bucket after the call (negative while in debt). */
  tokens: number;
}

export interface RouteBucketStore {
  /**
   * Refills `key`'s bucket to `now` at `ratePerSec` up to `capacity` (a new bucket starts full; a
   * smaller capacity than before clamps the tokens, a larger one lets them grow by refill: rate and
   * capacity change in place, the bucket is never reset), then takes `cost` tokens when at least
   * `floor + cost` are there. A refused take changes nothing.
   */
  take(key: string, cost: number, ratePerSec: number, capacity: number, floor: number, now: number): RouteTake;
  /** Tokens now (after refill), or null for an unknown key. For stats, not for decisions. */
  peek(key: string, ratePerSec: number, capacity: number, now: number): number | null;
}

/** A bucket's state: tokens as of `stamp` (ms). */
export class RouteBucket {
  tokens: number;
  stamp: number;
  constructor(tokens: number, stamp: number) {
    this.tokens = tokens;
    this.stamp = stamp;
  }
}

/** Tolerance for floating-point refill sums. */
const EPSILON = 1e-9;

/**
 * The RouteBucketStore take on one bucket: refills `b` to `now` (up to `capacity`), then takes
 * `cost` when at least `floor + cost` tokens are there; the answer goes into `out`. O(1), no allocation.
 */
export function takeFromBucket(b: RouteBucket, cost: number, ratePerSec: number, capacity: number, floor: number, now: number, out: RouteTake): RouteTake {
  const elapsed = now - b.stamp;
  let tokens = b.tokens;
  if (elapsed > 0) tokens += (elapsed * ratePerSec) / 1000;
  if (tokens > capacity) tokens = capacity;
  if (tokens + EPSILON >= floor + cost) {
    b.tokens = tokens - cost;
    if (elapsed > 0) b.stamp = now;
    out.allowed = true;
    out.tokens = b.tokens;
  } else {
    out.allowed = false;
    out.tokens = tokens;
  }
  return out;
}

/** The tokens of `b` refilled to `now`, without changing it. */
export function peekBucket(b: RouteBucket, ratePerSec: number, capacity: number, now: number): number {
  const elapsed = now - b.stamp;
  return Math.min(capacity, b.tokens + (elapsed > 0 ? (elapsed * ratePerSec) / 1000 : 0));
}

/** In-process route buckets. One per configured route: no eviction needed. */
export class MemoryRouteBucketStore implements RouteBucketStore {
  readonly #buckets = new Map<string, RouteBucket>();
  readonly #result: RouteTake = { allowed: false, tokens: 0 };

  take(key: string, cost: number, ratePerSec: number, capacity: number, floor: number, now: number): RouteTake {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = new RouteBucket(capacity, now);
      this.#buckets.set(key, b);
    }
    return takeFromBucket(b, cost, ratePerSec, capacity, floor, now, this.#result);
  }

  peek(key: string, ratePerSec: number, capacity: number, now: number): number | null {
    const b = this.#buckets.get(key);
    return b === undefined ? null : peekBucket(b, ratePerSec, capacity, now);
  }
}
