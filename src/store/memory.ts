/** In-process token buckets: synchronous, bounded in memory, no timers. */
import type { Clock } from '../clock.js';
import type { RateLimitStore, TakeResult } from './types.js';

const DEFAULT_IDLE_TTL_MS = 600_000;
const DEFAULT_MAX_BUCKETS = 1_000_000;
/** Every SWEEP_EVERY takes, look at up to SWEEP_STEPS buckets at the cold end. More steps than takes keeps up with any insert rate. */
const SWEEP_EVERY = 64;
const SWEEP_STEPS = 128;
/** A bucket moves to the warm end of the recency list at most this often (ms): hot keys cost no relinking. */
const MAX_TOUCH_INTERVAL_MS = 1_000;
/** How many recently used buckets an over-capacity insert may pass over before dropping one anyway. */
const SECOND_CHANCES = 8;
/** Tolerance for floating-point refill sums (a bucket at 0.9999999999999999 of 1 token has 1). */
const EPSILON = 1e-9;

export interface MemoryStoreOptions {
  clock: Clock;
  /** A bucket untouched this long (and full again) is dropped. Default 10 min. */
  idleTtlMs?: number;
  /** Hard cap on the number of buckets; the least recently used one goes first. Default 1,000,000. */
  maxBuckets?: number;
}

/** One bucket, also a node of the recency list (so reordering allocates nothing and never walks the Map). */
class Bucket {
  readonly key: string;
  tokens: number;
  /** When `tokens` was computed (ms). Only an allowed take moves it: a rejection changes nothing. */
  stamp: number;
  /** Last take of any outcome (ms). */
  seen: number;
  /** When the bucket last moved to the warm end of the list (ms); the list is ordered by this. */
  touched: number;
  /** Dropping the bucket is lossless from here on: idle for the TTL and full again. */
  expires = 0;
  prev: Bucket | null = null;
  next: Bucket | null = null;

  constructor(key: string, tokens: number, now: number) {
    this.key = key;
    this.tokens = tokens;
    this.stamp = now;
    this.seen = now;
    this.touched = now;
  }
}

/**
 * Token buckets in a Map plus a recency list (least recently used at the head, to within a second). Idle buckets are
 * dropped by a small sweep every few takes (no timer per bucket); `maxBuckets` bounds memory
 * whatever the number of distinct keys. Dropping an expired bucket is lossless: it would be full.
 * Only going over `maxBuckets` can drop a bucket early (the least recently used one).
 */
export class MemoryStore implements RateLimitStore {
  readonly #clock: Clock;
  readonly #idleTtlMs: number;
  readonly #maxBuckets: number;
  readonly #touchMs: number;
  readonly #buckets = new Map<string, Bucket>();
  #head: Bucket | null = null;
  #tail: Bucket | null = null;
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
    this.#head = this.#tail = null;
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult {
    const now = this.#clock.now();
    if ((++this.#ops & (SWEEP_EVERY - 1)) === 0) this.#sweep(now);

    let b = this.#buckets.get(key);
    if (cost === 0) return peek(b, capacity, refillPerSec, now);
    let tokens: number;
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxBuckets) this.#evictOne(now);
      tokens = capacity;
      b = new Bucket(key, tokens, now);
      this.#buckets.set(key, b);
      this.#append(b);
    } else {
      const elapsed = now - b.stamp;
      // Clamp too: the capacity may have shrunk since (config reload), and the clock may step back.
      tokens = elapsed > 0 ? Math.min(capacity, b.tokens + (elapsed * refillPerSec) / 1000) : Math.min(capacity, b.tokens);
      b.seen = now;
      if (now - b.touched >= this.#touchMs) {
        b.touched = now;
        if (b !== this.#tail) {
          this.#unlink(b);
          this.#append(b);
        }
      }
    }

    if (tokens + EPSILON >= cost) {
      tokens = tokens > cost ? tokens - cost : 0;
      const resetMs = Math.ceil(((capacity - tokens) * 1000) / refillPerSec);
      b.tokens = tokens;
      b.stamp = now;
      b.expires = now + (resetMs > this.#idleTtlMs ? resetMs : this.#idleTtlMs);
      return { allowed: true, remaining: Math.floor(tokens), retryAfterMs: 0, resetMs };
    }
    // Rejected: the stored state stays as it was (refill is a pure function of it), so nothing is
    // charged and no rounding error accumulates from many small refills.
    return {
      allowed: false,
      remaining: Math.floor(tokens),
      retryAfterMs: Math.ceil(((cost - tokens) * 1000) / refillPerSec),
      resetMs: Math.ceil(((capacity - tokens) * 1000) / refillPerSec),
    };
  }

  /** Drops expired buckets at the cold end; passes over ones idle but still refilling. Bounded work. */
  #sweep(now: number): void {
    const ttl = this.#idleTtlMs;
    for (let steps = 0; steps < SWEEP_STEPS; steps++) {
      const b = this.#head;
      // The list is in order of last move, which trails last use by under #touchMs (recycled draining
      // buckets aside): once the head moved within the TTL, nearly everything after it did too.
      if (b === null || b.touched + ttl > now) return;
      if (b.expires <= now) this.#drop(b);
      else if (b === this.#tail) return;
      else {
        // Idle but not yet full (slow refill): look again when it comes round.
        this.#unlink(b);
        this.#append(b);
      }
    }
  }

  /** Makes room: drops the least recently moved bucket, passing over a few used since they last moved. */
  #evictOne(now: number): void {
    for (let chances = SECOND_CHANCES; chances > 0; chances--) {
      const b = this.#head!;
      if (b.seen <= b.touched || b === this.#tail) break;
      b.touched = now;
      this.#unlink(b);
      this.#append(b);
    }
    this.#drop(this.#head!);
  }

  #drop(b: Bucket): void {
    this.#buckets.delete(b.key);
    this.#unlink(b);
  }

  #unlink(b: Bucket): void {
    if (b.prev === null) this.#head = b.next;
    else b.prev.next = b.next;
    if (b.next === null) this.#tail = b.prev;
    else b.next.prev = b.prev;
    b.prev = b.next = null;
  }

  #append(b: Bucket): void {
    b.prev = this.#tail;
    b.next = null;
    if (this.#tail === null) this.#head = b;
    else this.#tail.next = b;
    this.#tail = b;
  }
}

/** A take of one token, answered without writing anything (cost 0). */
function peek(b: Bucket | undefined, capacity: number, refillPerSec: number, now: number): TakeResult {
  let tokens = capacity;
  if (b !== undefined) {
    const elapsed = now - b.stamp;
    tokens = Math.min(capacity, elapsed > 0 ? b.tokens + (elapsed * refillPerSec) / 1000 : b.tokens);
  }
  const allowed = tokens + EPSILON >= 1;
  return {
    allowed,
    remaining: Math.floor(tokens),
    retryAfterMs: allowed ? 0 : Math.ceil(((1 - tokens) * 1000) / refillPerSec),
    resetMs: Math.ceil(((capacity - tokens) * 1000) / refillPerSec),
  };
}
