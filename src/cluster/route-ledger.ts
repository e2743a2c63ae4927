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
import { LeaseBook, shareOf, type LeaseBookOptions, type LeaseBucket } from './lease-book.js';
import type { LeaseSettle, RouteAsk, RouteGrant } from './messages.js';

export type RouteLedgerOptions = LeaseBookOptions;

export class RouteLedger extends LeaseBook {
  /** Tokens of `key` in the bucket now (negative in debt), or null when unknown. */
  tokens(key: string): number | null {
    const b = this.buckets.get(key);
    if (b === undefined) return null;
    this.refill(b, this.clock.now());
    return b.tokens;
  }

  grant(holder: number, ask: RouteAsk): RouteGrant {
    const now = this.clock.now();
    // The bucket first: a settlement of credit taken before the bucket existed is charged to it.
    const b = this.#bucket(ask.key, ask.ratePerSec, ask.capacity, now);
    if (ask.settle !== undefined) this.settle(holder, ask.settle);
    const holders = this.holders();
    const floor = Math.max(-b.capacity, Math.min(0, Number.isFinite(ask.floor) ? ask.floor : 0));
    const avail = b.tokens - floor;
    if (avail < 1) return { id: ask.id, granted: 0, tokens: b.tokens, holders, retryAfterMs: this.wait(b, 1 + floor) };
    // Leave room for the other workers: at most a 1/(2·holders) share of what is there, at least one token.
    const share = shareOf(avail, holders);
    const granted = Math.max(1, Math.min(Math.floor(ask.want), share));
    this.lend(holder, ask.key, b, granted);
    return { id: ask.id, granted, tokens: b.tokens, holders, retryAfterMs: 0 };
  }

  /**
   * A lease handed back: `granted` of the worker's tokens leave the lease count, `unspent` go back
   * to the bucket (negative: charged to it, bounded by the bucket's capacity per settlement).
   */
  settle(holder: number, s: LeaseSettle): void {
    const granted = this.release(holder, s.key, Math.max(0, Math.floor(s.granted)));
    const b = this.buckets.get(s.key);
    if (b === undefined) return;
    this.refill(b, this.clock.now());
    b.leased -= granted;
    const unspent = Math.min(Number.isFinite(s.unspent) ? s.unspent : 0, granted);
    b.tokens = Math.min(b.capacity - b.leased, b.tokens + Math.max(-b.capacity, unspent));
  }

  #bucket(key: string, ratePerSec: number, capacity: number, now: number): LeaseBucket {
    const b = this.buckets.get(key);
    // One per configured route: no eviction needed. A new bucket starts full.
    if (b === undefined) return this.open(key, capacity, ratePerSec, now);
    // The learned limit moves in place: the bucket is never reset.
    this.refill(b, now);
    b.capacity = capacity;
    b.ratePerSec = ratePerSec;
    if (b.tokens > capacity - b.leased) b.tokens = capacity - b.leased;
    return b;
  }
}
