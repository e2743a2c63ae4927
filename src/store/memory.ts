/** In-process token buckets: synchronous, bounded in memory, no timers. */
import type { Clock } from '../clock.js';
import type { RateLimitStore, TakeResult } from './types.js';

const DEFAULT_IDLE_TTL_MS = 600_000;
const DEFAULT_MAX_BUCKETS = 1_000_000;
/** A bucket moves to the back of the eviction order at most this often (ms), so hot keys cost no Map churn. */
const MAX_TOUCH_INTERVAL_MS = 1_000;
/** Every SWEEP_EVERY takes, look at up to SWEEP_STEPS buckets at the front. More steps than takes keeps up with any insert rate. */
const SWEEP_EVERY = 64;
const SWEEP_STEPS = 128;
/** How many recently used buckets an over-capacity insert may pass over (second chance) before evicting one anyway. */
const SECOND_CHANCES = 8;

export interface MemoryStoreOptions {
  clock: Clock;
  /** A bucket untouched this long (and full again) is dropped. Default 10 min. */
  idleTtlMs?: number;
  /** Hard cap on the number of buckets; the least recently used one goes first. Default 1,000,000. */
  maxBuckets?: number;
}

interface Bucket {
  tokens: number;
  /** Last refill computation (ms). */
  last: number;
  /** When the bucket last moved to the back of the Map (ms); the Map is ordered by this. */
  touched: number;
  /** Dropping the bucket is lossless from here on: idle for the TTL and full again. */
  expires: number;
}

/**
 * Token buckets in a Map whose insertion order approximates least-recent use. Idle buckets are
 * dropped by a small sweep every few takes (no timer per bucket); `maxBuckets` bounds memory
 * whatever the number of distinct keys. Dropping an expired bucket is lossless: it would be full.
 */
export class MemoryStore implements RateLimitStore {
  readonly #clock: Clock;
  readonly #idleTtlMs: number;
  readonly #maxBuckets: number;
  readonly #touchMs: number;
  readonly #buckets = new Map<string, Bucket>();
  #ops = 0;

  constructor(opts: MemoryStoreOptions) {
    const idleTtlMs = opts.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    const maxBuckets = opts.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    if (!(idleTtlMs > 0)) throw new RangeError(`MemoryStore: idleTtlMs must be > 0 (got ${idleTtlMs})`);
    if (!Number.isInteger(maxBuckets) || maxBuckets < 1) throw new RangeError(`MemoryStore: maxBuckets must be a positive integer (got ${maxBuckets})`);
    this.#clock = opts.clock;
    this.#idleTtlMs = idleTtlMs;
    this.#maxBuckets = maxBuckets;
    this.#touchMs = Math.min(MAX_TOUCH_INTERVAL_MS, idleTtlMs / 2);
  }

  /** A memory store never depends on anything else. */
  get degraded(): boolean {
    return false;
  }

  /** Number of live buckets (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#buckets.clear();
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult {
    const now = this.#clock.now();
    const buckets = this.#buckets;
    if ((++this.#ops & (SWEEP_EVERY - 1)) === 0) this.#sweep(now);

    let b = buckets.get(key);
    let tokens: number;
    if (b === undefined) {
      tokens = capacity;
      if (buckets.size >= this.#maxBuckets) this.#evictOne(now);
      b = { tokens, last: now, touched: now, expires: 0 };
      buckets.set(key, b);
    } else {
      const elapsed = now - b.last;
      // Clamp too: the capacity may have shrunk since (config reload), and the clock may step back.
      tokens = elapsed > 0 ? Math.min(capacity, b.tokens + (elapsed * refillPerSec) / 1000) : Math.min(capacity, b.tokens);
      if (now - b.touched >= this.#touchMs) {
        buckets.delete(key);
        buckets.set(key, b);
        b.touched = now;
      }
    }

    let allowed = false;
    let retryAfterMs = 0;
    if (tokens >= cost) {
      tokens -= cost;
      allowed = true;
    } else {
      retryAfterMs = Math.ceil(((cost - tokens) * 1000) / refillPerSec);
    }
    const resetMs = Math.ceil(((capacity - tokens) * 1000) / refillPerSec);
    b.tokens = tokens;
    b.last = now;
    b.expires = now + Math.max(this.#idleTtlMs, resetMs);
    return { allowed, remaining: Math.floor(tokens), retryAfterMs, resetMs };
  }

  /** Drops expired buckets from the front; recycles old-but-needed ones to the back. Bounded work. */
  #sweep(now: number): void {
    const buckets = this.#buckets;
    const ttl = this.#idleTtlMs;
    let steps = 0;
    for (const [key, b] of buckets) {
      if (++steps > SWEEP_STEPS) return;
      if (b.expires <= now) {
        buckets.delete(key);
      } else if (b.touched + ttl <= now) {
        // Still draining (slow refill) or used since it last moved: give it a fresh place at the back.
        buckets.delete(key);
        buckets.set(key, b);
        b.touched = now;
      } else {
        // Everything behind moved later than this one, so nothing behind has been idle for the TTL.
        return;
      }
    }
  }

  /** Makes room for one bucket: the least recently used one, skipping a few used since they last moved. */
  #evictOne(now: number): void {
    const buckets = this.#buckets;
    let chances = SECOND_CHANCES;
    for (const [key, b] of buckets) {
      buckets.delete(key);
      if (b.last > b.touched && b.expires > now && chances-- > 0) {
        buckets.set(key, b);
        b.touched = now;
        continue;
      }
      return;
    }
  }
}
