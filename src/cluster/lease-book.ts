/**
 * What the primary's two lease ledgers have in common (lease-ledger.ts for the static limit,
 * route-ledger.ts for the adaptive route limit): one token bucket per key, the tokens each worker
 * holds on lease, a lease handed back or forfeited by a dead worker, and the refill. Tokens out on
 * lease count against the bucket:
 *
 *     tokens in the bucket + tokens out on lease  <=  capacity
 *
 * What a grant answers, how a settlement is trusted and when a bucket goes are the ledgers' own.
 */
import type { Clock } from '../clock.js';

/** One key's bucket on the primary. */
export interface LeaseBucket {
  tokens: number;
  last: number;
  capacity: number;
  ratePerSec: number;
  /** Tokens out on lease, all workers together. */
  leased: number;
}

export interface LeaseBookOptions {
  clock: Clock;
  /** How many workers share the buckets: a grant leaves room for the others (default 1). */
  holders?: () => number;
}

export abstract class LeaseBook {
  protected readonly clock: Clock;
  protected readonly buckets = new Map<string, LeaseBucket>();
  readonly #holders: () => number;
  /** Per worker: key → tokens it holds on lease. */
  readonly #held = new Map<number, Map<string, number>>();

  constructor(opts: LeaseBookOptions) {
    this.clock = opts.clock;
    this.#holders = opts.holders ?? (() => 1);
  }

  /** Tokens of `key` out on lease, all workers together. */
  leased(key: string): number {
    return this.buckets.get(key)?.leased ?? 0;
  }

  /** Worker `holder` is gone: its leases end, their tokens are not handed out again (the bucket refills). */
  forget(holder: number): void {
    const held = this.#held.get(holder);
    if (held === undefined) return;
    this.#held.delete(holder);
    const now = this.clock.now();
    for (const [key, n] of held) {
      const b = this.buckets.get(key);
      if (b === undefined) continue;
      this.refill(b, now);
      b.leased -= n;
    }
  }

  /** Workers sharing the buckets now (at least 1). */
  protected holders(): number {
    return Math.max(1, this.#holders());
  }

  /** A new bucket of `key`, full. */
  protected open(key: string, capacity: number, ratePerSec: number, now: number): LeaseBucket {
    const b: LeaseBucket = { tokens: capacity, last: now, capacity, ratePerSec, leased: 0 };
    this.buckets.set(key, b);
    return b;
  }

  /** Leases `granted` tokens of bucket `b` (of `key`) to worker `holder`. */
  protected lend(holder: number, key: string, b: LeaseBucket, granted: number): void {
    b.tokens -= granted;
    b.leased += granted;
    let held = this.#held.get(holder);
    if (held === undefined) this.#held.set(holder, (held = new Map()));
    held.set(key, (held.get(key) ?? 0) + granted);
  }

  /**
   * Takes up to `granted` (at least 0) tokens of `key` off worker `holder`'s lease and returns how many:
   * never more than it holds, so a worker is never trusted for more than that.
   */
  protected release(holder: number, key: string, granted: number): number {
    const held = this.#held.get(holder);
    const had = held?.get(key) ?? 0;
    const n = Math.min(granted, had);
    if (n > 0) {
      if (had === n) held!.delete(key);
      else held!.set(key, had - n);
    }
    return n;
  }

  /** Refills `b` up to its room (capacity less what is out on lease) at its rate until `now`. */
  protected refill(b: LeaseBucket, now: number): void {
    const room = b.capacity - b.leased;
    if (now > b.last && b.tokens < room) b.tokens = Math.min(room, b.tokens + ((now - b.last) * b.ratePerSec) / 1000);
    b.last = now;
  }

  /** Ms until bucket `b` holds `need` tokens (a minute when it never refills). */
  protected wait(b: LeaseBucket, need: number): number {
    if (b.ratePerSec <= 0) return 60_000;
    return Math.max(1, Math.ceil(((need - b.tokens) * 1000) / b.ratePerSec));
  }
}

/** A worker's share of `avail` tokens when `holders` workers share them: a half of an even split, rounded down. */
export function shareOf(avail: number, holders: number): number {
  return Math.floor(avail / (2 * holders));
}
