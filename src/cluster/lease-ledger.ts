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
import { DEFAULT_MAX_BUCKETS } from '../store/index.js';
import { LeaseBook, shareOf, type LeaseBookOptions, type LeaseBucket } from './lease-book.js';
import type { LeaseAsk, LeaseGrant, LeaseSettle } from './messages.js';

export interface LeaseLedgerOptions extends LeaseBookOptions {
  /** Most buckets kept (ratelimit.max_buckets); beyond it the least recently used one with nothing on lease goes. */
  maxBuckets?: number;
}

export class LeaseLedger extends LeaseBook {
  readonly #maxBuckets: number;

  constructor(opts: LeaseLedgerOptions) {
    super(opts);
    this.#maxBuckets = opts.maxBuckets ?? DEFAULT_MAX_BUCKETS;
  }

  /** Buckets tracked (for tests and eviction). */
  get size(): number {
    return this.buckets.size;
  }

  /** Answers one ask of worker `holder` (after settling the lease it hands back). */
  grant(holder: number, ask: LeaseAsk): LeaseGrant {
    if (ask.settle !== undefined) this.settle(holder, ask.settle);
    const now = this.clock.now();
    const b = this.#bucket(ask.key, ask.capacity, ask.refillPerSec, now);
    const cost = ask.cost;
    if (ask.want === 0) {
      // A peek: would one token be there? Nothing is written.
      const allowed = b.tokens >= 1;
      return { id: ask.id, granted: 0, allowed, remaining: Math.floor(b.tokens), retryAfterMs: allowed ? 0 : this.wait(b, 1), resetMs: this.#reset(b) };
    }
    if (b.tokens < cost) {
      return { id: ask.id, granted: 0, allowed: false, remaining: Math.floor(b.tokens), retryAfterMs: this.wait(b, cost), resetMs: this.#reset(b) };
    }
    // Leave room for the other workers: at most a 1/(2·holders) share of what is there, never less than the cost.
    const share = shareOf(b.tokens, this.holders());
    const granted = Math.min(Math.max(cost, Math.min(ask.want, share)), Math.floor(b.tokens));
    this.lend(holder, ask.key, b, granted);
    return { id: ask.id, granted, allowed: true, remaining: Math.floor(b.tokens), retryAfterMs: 0, resetMs: this.#reset(b) };
  }

  /** A lease handed back: its unspent tokens return to the bucket. */
  settle(holder: number, s: LeaseSettle): void {
    const granted = this.release(holder, s.key, Math.max(0, s.granted));
    if (granted === 0) return;
    const unspent = Math.min(Math.max(0, s.unspent), granted);
    const b = this.buckets.get(s.key);
    if (b === undefined) return;
    this.refill(b, this.clock.now());
    b.leased -= granted;
    b.tokens = Math.min(b.capacity - b.leased, b.tokens + unspent);
  }

  /** Drops buckets that are full again with nothing on lease (they would start full anyway). */
  sweep(): void {
    const now = this.clock.now();
    for (const [key, b] of this.buckets) {
      if (b.leased > 0) continue;
      this.refill(b, now);
      if (b.tokens >= b.capacity) this.buckets.delete(key);
    }
  }

  /** Refills, and brings a bucket over its room (its capacity lowered by a reload) down to it. */
  protected override refill(b: LeaseBucket, now: number): void {
    super.refill(b, now);
    const room = b.capacity - b.leased;
    if (b.tokens > room) b.tokens = Math.max(0, room);
  }

  #bucket(key: string, capacity: number, refillPerSec: number, now: number): LeaseBucket {
    const b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.#maxBuckets) this.#evict();
      return this.open(key, capacity, refillPerSec, now);
    }
    // Most recently used last (Map order), so eviction finds the least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    // Limits of a key can change with a reload: the new ones apply from now on.
    b.capacity = capacity;
    b.ratePerSec = refillPerSec;
    this.refill(b, now);
    return b;
  }

  /** Drops the least recently used bucket with nothing on lease (a bucket on lease is never dropped). */
  #evict(): void {
    for (const [key, b] of this.buckets) {
      if (b.leased === 0) {
        this.buckets.delete(key);
        return;
      }
    }
  }

  #reset(b: LeaseBucket): number {
    if (b.ratePerSec <= 0) return 0;
    return Math.max(0, Math.ceil(((b.capacity - b.leased - b.tokens) * 1000) / b.ratePerSec));
  }
}
