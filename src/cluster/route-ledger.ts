/**
 * The primary's side of the adaptive route limit across workers: the one route-wide token bucket
 * per route (refill L/60 per s up to the burst capacity). Workers spend leases of it locally
 * (route-lease-store.ts) and settle them; a settlement may carry a negative `unspent` (tokens the
 * worker admitted on credit, or borrowed for fair clients), which is charged to the bucket, so the
 * bucket may go into debt and refill repays it. Tokens out on lease count against the bucket:
 *
 *     tokens + tokens out on lease  <=  capacity
 *
 * Every admitted request is charged exactly once, so over any interval N workers together admit
 * what one bucket of the route's limit allows, up to the credit they may take (bounded, see the store).
 * A worker that dies forfeits its leases: their tokens are not handed out again.
 */
import type { Clock } from '../clock.js';
import type { LeaseSettle, RouteAsk, RouteGrant } from './messages.js';

interface Bucket {
  tokens: number;
  last: number;
  capacity: number;
  ratePerSec: number;
  leased: number;
}

export interface RouteLedgerOptions {
  clock: Clock;
  /** Workers sharing the buckets: a grant leaves room for the others (default 1). */
  holders?: () => number;
}

export class RouteLedger {
  readonly #clock: Clock;
  readonly #holders: () => number;
  readonly #buckets = new Map<string, Bucket>();
  /** Per worker: key → tokens it holds on lease. */
  readonly #held = new Map<number, Map<string, number>>();

  constructor(opts: RouteLedgerOptions) {
    this.#clock = opts.clock;
    this.#holders = opts.holders ?? (() => 1);
  }

  /** Tokens of `key` in the bucket now (negative in debt), or null when unknown. */
  tokens(key: string): number | null {
    const b = this.#buckets.get(key);
    if (b === undefined) return null;
    this.#refill(b, this.#clock.now());
    return b.tokens;
  }

  /** Tokens of `key` out on lease. */
  leased(key: string): number {
    return this.#buckets.get(key)?.leased ?? 0;
  }

  grant(holder: number, ask: RouteAsk): RouteGrant {
    const now = this.#clock.now();
    // The bucket first: a settlement of credit taken before the bucket existed is charged to it.
    const b = this.#bucket(ask.key, ask.ratePerSec, ask.capacity, now);
    if (ask.settle !== undefined) this.settle(holder, ask.settle);
    const holders = Math.max(1, this.#holders());
    const floor = Math.max(-b.capacity, Math.min(0, Number.isFinite(ask.floor) ? ask.floor : 0));
    const avail = b.tokens - floor;
    if (avail < 1) return { id: ask.id, granted: 0, tokens: b.tokens, holders, retryAfterMs: this.#wait(b, floor) };
    // Leave room for the other workers: at most a 1/(2·holders) share of what is there, at least one token.
    const share = Math.floor(avail / (2 * holders));
    const granted = Math.max(1, Math.min(Math.floor(ask.want), share));
    b.tokens -= granted;
    b.leased += granted;
    let held = this.#held.get(holder);
    if (held === undefined) this.#held.set(holder, (held = new Map()));
    held.set(ask.key, (held.get(ask.key) ?? 0) + granted);
    return { id: ask.id, granted, tokens: b.tokens, holders, retryAfterMs: 0 };
  }

  /**
   * A lease handed back: `granted` of the worker's tokens leave the lease count, `unspent` go back
   * to the bucket (negative: charged to it, bounded by the bucket's capacity per settlement).
   */
  settle(holder: number, s: LeaseSettle): void {
    const held = this.#held.get(holder);
    const had = held?.get(s.key) ?? 0;
    // Never trust a worker for more than it holds.
    const granted = Math.min(Math.max(0, Math.floor(s.granted)), had);
    const b = this.#buckets.get(s.key);
    if (granted > 0) {
      if (had === granted) held!.delete(s.key);
      else held!.set(s.key, had - granted);
    }
    if (b === undefined) return;
    this.#refill(b, this.#clock.now());
    b.leased -= granted;
    const unspent = Math.min(Number.isFinite(s.unspent) ? s.unspent : 0, granted);
    b.tokens = Math.min(b.capacity - b.leased, b.tokens + Math.max(-b.capacity, unspent));
  }

  /** Worker `holder` is gone: its leases end; their tokens are not handed out again (the bucket refills). */
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

  #bucket(key: string, ratePerSec: number, capacity: number, now: number): Bucket {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      // One per configured route: no eviction needed. A new bucket starts full.
      b = { tokens: capacity, last: now, capacity, ratePerSec, leased: 0 };
      this.#buckets.set(key, b);
      return b;
    }
    // The learned limit moves in place: the bucket is never reset.
    this.#refill(b, now);
    b.capacity = capacity;
    b.ratePerSec = ratePerSec;
    if (b.tokens > capacity - b.leased) b.tokens = capacity - b.leased;
    return b;
  }

  #refill(b: Bucket, now: number): void {
    const room = b.capacity - b.leased;
    if (now > b.last && b.tokens < room) b.tokens = Math.min(room, b.tokens + ((now - b.last) * b.ratePerSec) / 1000);
    b.last = now;
  }

  #wait(b: Bucket, floor: number): number {
    if (b.ratePerSec <= 0) return 60_000;
    return Math.max(1, Math.ceil(((1 + floor - b.tokens) * 1000) / b.ratePerSec));
  }
}
