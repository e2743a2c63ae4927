/** In-process token buckets: synchronous, bounded in memory, no timers. */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { RateLimitStore, TakeResult } from './types.js';

const DEFAULT_IDLE_TTL_MS = 600_000;
/**
 * Default cap on tracked clients. A bucket costs ~100-150 bytes (measured: see
 * test/store/memory-footprint.test.ts); the worst case at the cap, with 64-character keys and the
 * key index at its largest, stays under 64 MB (docs/configuration.md, `ratelimit.max_buckets`).
 */
export const DEFAULT_MAX_BUCKETS = 250_000;
/** Every SWEEP_EVERY takes, look at up to SWEEP_STEPS buckets at the cold end. More steps than takes keeps up with any insert rate. */
const SWEEP_EVERY = 64;
const SWEEP_STEPS = 128;
/** Tolerance for floating-point refill sums (a bucket at 0.9999999999999999 of 1 token has 1). */
const EPSILON = 1e-9;
/** Slots allocated at first; the arrays double up to `maxBuckets`. */
const INITIAL_SLOTS = 1_024;
/** Keys longer than this are stored as a digest, so a long consumer id cannot inflate the per-client cost. */
const MAX_KEY_LENGTH = 64;
const NIL = -1;
const EPOCH_MARGIN_MS = 86_400_000;

export interface MemoryStoreOptions {
  clock: Clock;
  /** A bucket untouched this long (and full again) is dropped. Default 10 min. */
  idleTtlMs?: number;
  /** Hard cap on the number of buckets; the least recently used one goes first. Default 250,000. */
  maxBuckets?: number;
}

/**
 * Token buckets kept column-wise in typed arrays (no object per bucket): a Map from key to slot,
 * and per slot its tokens, the time they were computed, the last use, the time from which dropping
 * it is lossless, and the links of a recency list (least recently used at the head). Every take
 * moves its bucket to the warm end, so the list is exact LRU. Idle buckets are dropped by a small
 * sweep every few takes (no timer per bucket); `maxBuckets` bounds memory whatever the number of
 * distinct keys. Dropping an expired bucket is lossless: it would be full. Only going over
 * `maxBuckets` can drop a bucket early (the least recently used one). Freed slots are reused.
 */
export class MemoryStore implements RateLimitStore {
  readonly #clock: Clock;
  readonly #idleTtlMs: number;
  readonly #maxBuckets: number;
  readonly #index = new Map<string, number>();
  /** Slot → its key (for removal from the index). */
  #keys: (string | undefined)[] = [];
  #tokens: Float64Array;
  /** When `tokens` was computed (ms). Only an allowed take moves it: a rejection changes nothing. */
  #stamp: Float64Array;
  /** Last take of any outcome, whole seconds since #epoch (it only paces the sweep). */
  #seen: Uint32Array;
  /** From this time, seconds since #epoch rounded up, dropping the bucket is lossless: idle for the TTL and full again. */
  #expires: Uint32Array;
  /** Origin of #seen and #expires (ms): a day before construction, so a clock stepping back stays in range. */
  readonly #epoch: number;
  #prev: Int32Array;
  #next: Int32Array;
  /** Slots allocated, and the number ever handed out (slots below it are in use or free). */
  #slots: number;
  #used = 0;
  /** Head of the free-slot list (chained through #next). */
  #free = NIL;
  #head = NIL;
  #tail = NIL;
  #ops = 0;

  constructor(opts: MemoryStoreOptions) {
    const idleTtlMs = opts.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    const maxBuckets = opts.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    if (!(idleTtlMs > 0)) throw new RangeError(`MemoryStore: idleTtlMs must be > 0 (got ${idleTtlMs})`);
    if (!Number.isInteger(maxBuckets) || maxBuckets < 1) throw new RangeError(`MemoryStore: maxBuckets must be a positive integer (got ${maxBuckets})`);
    this.#clock = opts.clock;
    this.#idleTtlMs = idleTtlMs;
    this.#maxBuckets = maxBuckets;
    this.#slots = Math.min(INITIAL_SLOTS, maxBuckets);
    this.#tokens = new Float64Array(this.#slots);
    this.#stamp = new Float64Array(this.#slots);
    this.#seen = new Uint32Array(this.#slots);
    this.#expires = new Uint32Array(this.#slots);
    this.#epoch = this.#clock.now() - EPOCH_MARGIN_MS;
    this.#prev = new Int32Array(this.#slots);
    this.#next = new Int32Array(this.#slots);
  }

  /** A memory store never depends on anything else. */
  get degraded(): boolean {
    return false;
  }

  /** Number of live buckets (for tests and metrics). */
  get size(): number {
    return this.#index.size;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#index.clear();
    this.#keys = [];
    this.#used = 0;
    this.#free = this.#head = this.#tail = NIL;
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult {
    const now = this.#clock.now();
    if ((++this.#ops & (SWEEP_EVERY - 1)) === 0) this.#sweep(now);
    if (key.length > MAX_KEY_LENGTH) key = digestKey(key);

    let slot = this.#index.get(key);
    if (cost === 0) return peek(slot === undefined ? capacity : this.#refilled(slot, capacity, refillPerSec, now), capacity, refillPerSec);
    let tokens: number;
    if (slot === undefined) {
      slot = this.#allocate(key, now);
      tokens = capacity;
    } else {
      tokens = this.#refilled(slot, capacity, refillPerSec, now);
      if (slot !== this.#tail) {
        this.#unlink(slot);
        this.#append(slot);
      }
    }
    const sinceEpoch = now - this.#epoch;
    this.#seen[slot] = sinceEpoch > 0 ? sinceEpoch / 1000 : 0;

    if (tokens + EPSILON >= cost) {
      tokens = tokens > cost ? tokens - cost : 0;
      const resetMs = Math.ceil(((capacity - tokens) * 1000) / refillPerSec);
      this.#tokens[slot] = tokens;
      this.#stamp[slot] = now;
      const expires = Math.ceil((sinceEpoch + (resetMs > this.#idleTtlMs ? resetMs : this.#idleTtlMs)) / 1000);
      this.#expires[slot] = expires > 0 ? expires : 0;
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

  /** The tokens of `slot` now. Clamped too: the capacity may have shrunk (config reload), and the clock may step back. */
  #refilled(slot: number, capacity: number, refillPerSec: number, now: number): number {
    const elapsed = now - this.#stamp[slot]!;
    const tokens = elapsed > 0 ? this.#tokens[slot]! + (elapsed * refillPerSec) / 1000 : this.#tokens[slot]!;
    return tokens < capacity ? tokens : capacity;
  }

  /** A slot for a new bucket (full, stamped now) at the warm end; makes room first when at the cap. */
  #allocate(key: string, now: number): number {
    if (this.#index.size >= this.#maxBuckets) this.#drop(this.#head);
    let slot = this.#free;
    if (slot !== NIL) this.#free = this.#next[slot]!;
    else {
      if (this.#used === this.#slots) this.#grow();
      slot = this.#used++;
    }
    // A key built by concatenation is a rope (a tree of string pieces); keep one flat copy instead.
    key = flatten(key);
    this.#index.set(key, slot);
    this.#keys[slot] = key;
    this.#stamp[slot] = now;
    this.#expires[slot] = 0;
    this.#append(slot);
    return slot;
  }

  /** Doubles the arrays, never past `maxBuckets` slots. */
  #grow(): void {
    const slots = Math.min(this.#slots * 2, this.#maxBuckets);
    this.#tokens = grown(this.#tokens, new Float64Array(slots));
    this.#stamp = grown(this.#stamp, new Float64Array(slots));
    this.#seen = grown(this.#seen, new Uint32Array(slots));
    this.#expires = grown(this.#expires, new Uint32Array(slots));
    this.#prev = grown(this.#prev, new Int32Array(slots));
    this.#next = grown(this.#next, new Int32Array(slots));
    this.#slots = slots;
  }

  /** Drops expired buckets at the cold end; passes over ones idle but still refilling. Bounded work. */
  #sweep(now: number): void {
    const ttl = this.#idleTtlMs;
    const nowS = (now - this.#epoch) / 1000;
    for (let steps = 0; steps < SWEEP_STEPS; steps++) {
      const slot = this.#head;
      // The list is in order of last use (recycled draining buckets aside): once the head was used
      // within the TTL, nearly everything after it was too.
      if (slot === NIL || this.#seen[slot]! * 1000 + ttl > now - this.#epoch) return;
      if (this.#expires[slot]! <= nowS) this.#drop(slot);
      else if (slot === this.#tail) return;
      else {
        // Idle but not yet full (slow refill): look again when it comes round.
        this.#unlink(slot);
        this.#append(slot);
      }
    }
  }

  #drop(slot: number): void {
    this.#index.delete(this.#keys[slot]!);
    this.#keys[slot] = undefined;
    this.#unlink(slot);
    this.#next[slot] = this.#free;
    this.#free = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev === NIL) this.#head = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail = prev;
    else this.#prev[next] = prev;
  }

  #append(slot: number): void {
    this.#prev[slot] = this.#tail;
    this.#next[slot] = NIL;
    if (this.#tail === NIL) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
  }
}

function grown<T extends Float64Array | Int32Array | Uint32Array>(old: T, bigger: T): T {
  bigger.set(old);
  return bigger;
}

/** The same text as one flat string, not a rope of concatenated pieces (half the memory or less). */
function flatten(key: string): string {
  return JSON.parse(JSON.stringify(key)) as string;
}

/** A long key's stand-in: 128 bits of its SHA-256 (collisions are out of reach), 24 characters. */
function digestKey(key: string): string {
  return 'h:' + createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/** A take of one token, answered without writing anything (cost 0). */
function peek(tokens: number, capacity: number, refillPerSec: number): TakeResult {
  const allowed = tokens + EPSILON >= 1;
  return {
    allowed,
    remaining: Math.floor(tokens),
    retryAfterMs: allowed ? 0 : Math.ceil(((1 - tokens) * 1000) / refillPerSec),
    resetMs: Math.ceil(((capacity - tokens) * 1000) / refillPerSec),
  };
}
