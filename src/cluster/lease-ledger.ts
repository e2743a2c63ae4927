/**
 * The primary's side of the cross-worker rate limit: the one authoritative token bucket per key.
 * Workers do not ask per request: they hold a lease (a few tokens taken out of the bucket) and spend
 * it locally; an exhausted or old lease is settled (its unspent tokens go back). Tokens out on lease
 * count against the bucket, so for every key
 *
 *     tokens in the bucket + tokens out on lease  <=  capacity
 *
 * at all times: workers together never admit more than one worker alone would. A worker that dies
 * forfeits its outstanding leases (the tokens it may already have spent are never handed out twice);
 * the bucket's room comes back at once and refills at the configured rate, so nothing is lost for
 * longer than one refill of those tokens.
 */
import type { Clock } from '../clock.js';
import { DEFAULT_MAX_BUCKETS } from '../store/index.js';
import type { LeaseAsk, LeaseGrant, LeaseSettle } from './messages.js';

interface Bucket {
  tokens: number;
  last: number;
  capacity: number;
  refillPerSec: number;
  /** Tokens out on lease, all workers together. */
  leased: number;
}

export interface LeaseLedgerOptions {
  clock: Clock;
  /** How many workers share the buckets: a grant leaves room for the others (default 1). */
  holders?: () => number;
  /** Most buckets kept (ratelimit.max_buckets); beyond it the least recently used one with nothing on lease goes. */
  maxBuckets?: number;
}

export class LeaseLedger {
  readonly #clock: Clock;
  readonly #holders: () => number;
  readonly #maxBuckets: number;
  readonly #buckets = new Map<string, Bucket>();
  /** Per worker: key → tokens it holds on lease. */
  readonly #held = new Map<number, Map<string, number>>();

  constructor(opts: LeaseLedgerOptions) {
    this.#clock = opts.clock;
    this.#holders = opts.holders ?? (() => 1);
    this.#maxBuckets = opts.maxBuckets ?? DEFAULT_MAX_BUCKETS;
  }

  /** Buckets tracked (for tests and eviction). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Tokens of `key` out on lease, all workers together. */
  leased(key: string): number {
    return this.#buckets.get(key)?.leased ?? 0;
  }

  /** Answers one ask of worker `holder` (after settling the lease it hands back). */
  grant(holder: number, ask: LeaseAsk): LeaseGrant {
    if (ask.settle !== undefined) this.settle(holder, ask.settle);
    const now = this.#clock.now();
    const b = this.#bucket(ask.key, ask.capacity, ask.refillPerSec, now);
    const cost = ask.cost;
    if (ask.want === 0) {
      // A peek: would one token be there? Nothing is written.
      const allowed = b.tokens >= 1;
      return { id: ask.id, granted: 0, allowed, remaining: Math.floor(b.tokens), retryAfterMs: allowed ? 0 : this.#wait(b, 1), resetMs: this.#reset(b) };
    }
    if (b.tokens < cost) {
      return { id: ask.id, granted: 0, allowed: false, remaining: Math.floor(b.tokens), retryAfterMs: this.#wait(b, cost), resetMs: this.#reset(b) };
    }
    // Leave room for the other workers: at most a 1/(2·holders) share of what is there, never less than the cost.
    const share = Math.floor(b.tokens / (2 * Math.max(1, this.#holders())));
    const granted = Math.min(Math.max(cost, Math.min(ask.want, share)), Math.floor(b.tokens));
    b.tokens -= granted;
    b.leased += granted;
    let held = this.#held.get(holder);
    if (held === undefined) this.#held.set(holder, (held = new Map()));
    held.set(ask.key, (held.get(ask.key) ?? 0) + granted);
    return { id: ask.id, granted, allowed: true, remaining: Math.floor(b.tokens), retryAfterMs: 0, resetMs: this.#reset(b) };
  }

  /** A lease handed back: its unspent tokens return to the bucket. */
  settle(holder: number, s: LeaseSettle): void {
    const held = this.#held.get(holder);
    const had = held?.get(s.key) ?? 0;
    // Never trust a worker for more than it holds.
    const granted = Math.min(Math.max(0, s.granted), had);
    if (granted === 0) return;
    const unspent = Math.min(Math.max(0, s.unspent), granted);
    if (had === granted) held!.delete(s.key);
    else held!.set(s.key, had - granted);
    const b = this.#buckets.get(s.key);
    if (b === undefined) return;
    this.#refill(b, this.#clock.now());
    b.leased -= granted;
    b.tokens = Math.min(b.capacity - b.leased, b.tokens + unspent);
  }

  /** Worker `holder` is gone: its leases end, their tokens are not handed out again (the bucket refills). */
  forget(holder: number): void {
    const held = this.#held.get(holder);
    if (held === undefined) return;
    this.#held.delete(holder);
    const now = this.#clock.now();
    for (const [key, n] of held) {
      const b = this.#buckets.get(key);
      if (b === undefined) continue;
      this.#refill(b, now);
      b.leased -= n;
    }
  }

  /** Drops buckets that are full again with nothing on lease (they would start full anyway). */
  sweep(): void {
    const now = this.#clock.now();
    for (const [key, b] of this.#buckets) {
      if (b.leased > 0) continue;
      this.#refill(b, now);
      if (b.tokens >= b.capacity) this.#buckets.delete(key);
    }
  }

  #bucket(key: string, capacity: number, refillPerSec: number, now: number): Bucket {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxBuckets) this.#evict();
      b = { tokens: capacity, last: now, capacity, refillPerSec, leased: 0 };
      this.#buckets.set(key, b);
      return b;
    }
    // Most recently used last (Map order), so eviction finds the least recently used first.
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    // Limits of a key can change with a reload: the new ones apply from now on.
    b.capacity = capacity;
    b.refillPerSec = refillPerSec;
    this.#refill(b, now);
    return b;
  }

  /** Drops the least recently used bucket with nothing on lease (a bucket on lease is never dropped). */
  #evict(): void {
    for (const [key, b] of this.#buckets) {
      if (b.leased === 0) {
        this.#buckets.delete(key);
        return;
      }
    }
  }

  #refill(b: Bucket, now: number): void {
    const room = b.capacity - b.leased;
    if (now > b.last && b.tokens < room) b.tokens = Math.min(room, b.tokens + ((now - b.last) * b.refillPerSec) / 1000);
    else if (b.tokens > room) b.tokens = Math.max(0, room);
    b.last = now;
  }

  #wait(b: Bucket, cost: number): number {
    if (b.refillPerSec <= 0) return 60_000;
    return Math.max(1, Math.ceil(((cost - b.tokens) * 1000) / b.refillPerSec));
  }

  #reset(b: Bucket): number {
    if (b.refillPerSec <= 0) return 0;
    return Math.max(0, Math.ceil(((b.capacity - b.leased - b.tokens) * 1000) / b.refillPerSec));
  }
}
