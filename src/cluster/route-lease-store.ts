/**
 * The worker's side of the adaptive route limit across workers: a `RouteBucketStore` (synchronous,
 * as the limit's decision is) that spends tokens leased from the primary's {@link RouteLedger}.
 * The steady path is local: a take spends the lease, and a lease running low is topped up ahead of
 * time with one ask (asks of one tick travel in one message). A take the lease cannot serve is
 * admitted on credit when this worker's share of what the primary's bucket holds (its last answer
 * plus refill since) covers it, else refused; credit is charged to the bucket at the next ask or
 * settlement (a negative `unspent`), so every admitted request is charged exactly once. Fair-share
 * borrowing (a negative floor) is credit that may reach into the bucket's debt. A refusal from the
 * primary is believed until a token is due (at most DENY_MS): no IPC per refused request.
 */
import type { RouteBucketStore, RouteTake } from '../adaptive/route-bucket-store.js';
import { LeaseClient, type LeaseClientOptions } from './lease-client.js';
import type { LeaseSettle, PrimaryToWorker, RouteAsk, RouteGrant } from './messages.js';

/** Tokens a worker asks for at most in one lease. */
export const MAX_ROUTE_LEASE = 32;
/** A lease (or credit) is settled after this long... */
export const DEFAULT_ROUTE_LEASE_MS = 250;
/** ...or this long when the bucket was at least half full at the grant (the route is well under its limit). */
export const DEFAULT_ROUTE_RELAXED_LEASE_MS = 2_000;
/** A refusal from the primary is believed for at most this long. */
const DENY_MS = 50;

class RouteState {
  /** Lease tokens left; negative = admitted on credit, not yet charged. */
  left = 0;
  /** Tokens of the open lease (what a settlement hands back the count of). */
  granted = 0;
  /** When the open lease (or credit) began. */
  at = 0;
  ttl = DEFAULT_ROUTE_LEASE_MS;
  /** Size of the last grant (the top-up threshold is half of it). */
  lastGrant = 0;
  /** An ask of this key is queued or in flight. */
  asking = false;
  /** The primary's bucket as it last said (plus what this worker settled since), and when. */
  primaryTokens: number;
  primaryAt: number;
  ratePerSec: number;
  capacity: number;
  deniedUntil = 0;
  /** The floor the remembered refusal was for (a take with a lower floor, i.e. borrowing, may ask again). */
  deniedFloor = 0;
  /** Lowest floor of the takes since the last ask went out: the ask may reach that far into debt. */
  askFloor = 0;
  /** The floor of the ask in flight. */
  flightFloor = 0;
  constructor(capacity: number, ratePerSec: number, now: number) {
    // Never heard of: a new bucket starts full.
    this.primaryTokens = capacity;
    this.primaryAt = now;
    this.capacity = capacity;
    this.ratePerSec = ratePerSec;
  }
}

export interface RouteLeaseStoreOptions extends LeaseClientOptions {
  /** Workers sharing the buckets until the primary says (default 1). */
  holders?: number;
}

/** Routes with an ask wait for this tick's batch; an ask in flight is for its route. */
export class RouteLeaseStore extends LeaseClient<RouteState, RouteState> implements RouteBucketStore {
  readonly #routes = new Map<string, RouteState>();
  readonly #result: RouteTake = { allowed: false, tokens: 0 };
  readonly #keys = new Map<RouteState, string>();
  #holders: number;

  constructor(opts: RouteLeaseStoreOptions) {
    super(opts, DEFAULT_ROUTE_LEASE_MS, DEFAULT_ROUTE_RELAXED_LEASE_MS);
    this.#holders = Math.max(1, opts.holders ?? 1);
  }

  start(): void {
    this.reopen();
    this.scheduleSweep();
  }

  /** Settles every lease and credit. */
  close(): void {
    this.shut();
    const items: LeaseSettle[] = [];
    for (const [key, w] of this.#routes) {
      const s = this.#settlement(key, w);
      if (s !== null) items.push(s);
    }
    if (items.length > 0) this.trySend({ t: 'route-settle', items });
  }

  take(key: string, cost: number, ratePerSec: number, capacity: number, floor: number, now: number): RouteTake {
    let w = this.#routes.get(key);
    if (w === undefined) {
      w = new RouteState(capacity, ratePerSec, now);
      this.#routes.set(key, w);
      this.#keys.set(w, key);
    }
    w.ratePerSec = ratePerSec;
    w.capacity = capacity;
    const out = this.#result;
    if (w.left >= cost) {
      w.left -= cost;
      if (w.left * 2 < w.lastGrant && !w.asking && now >= w.deniedUntil) this.#queueAsk(w, floor);
      out.allowed = true;
      out.tokens = this.#estimate(w, now) + w.left;
      return out;
    }
    const est = this.#estimate(w, now);
    // Credit, only while the route is well under its limit (the bucket at least half full): up to
    // this worker's share of the tokens there. Near the limit every admission is a leased token.
    const owedAfter = cost - w.left;
    if (est * 2 >= w.capacity && owedAfter * 2 * this.#holders <= est) {
      if (w.left === 0 && w.granted === 0) w.at = now;
      w.left -= cost;
      if (!w.asking && now >= w.deniedUntil) this.#queueAsk(w, floor);
      out.allowed = true;
      out.tokens = est + w.left;
      return out;
    }
    if (floor < w.askFloor) w.askFloor = floor;
    if (!w.asking && (now >= w.deniedUntil || floor < w.deniedFloor)) this.#queueAsk(w, floor);
    out.allowed = false;
    out.tokens = est + w.left;
    return out;
  }

  peek(key: string, _ratePerSec: number, _capacity: number, now: number): number | null {
    const w = this.#routes.get(key);
    return w === undefined ? null : this.#estimate(w, now) + w.left;
  }

  /** Routes the primary's answers here. Returns true when the message was for the store. */
  receive(msg: PrimaryToWorker): boolean {
    if (msg.t !== 'route-leased') return false;
    for (const g of msg.grants) this.#answer(g);
    return true;
  }

  #estimate(w: RouteState, now: number): number {
    const t = w.primaryTokens + (now > w.primaryAt ? ((now - w.primaryAt) * w.ratePerSec) / 1000 : 0);
    return t < w.capacity ? t : w.capacity;
  }

  #queueAsk(w: RouteState, floor: number): void {
    w.asking = true;
    if (floor < w.askFloor) w.askFloor = floor;
    this.enqueue(w);
  }

  protected sendBatch(queued: RouteState[]): void {
    const now = this.clock.now();
    const asks: RouteAsk[] = [];
    for (const w of queued) {
      const key = this.#keys.get(w)!;
      const id = this.track(w);
      // The lease this ask replaces is settled with it (credit charged, unspent handed back).
      const settle = this.#settlement(key, w, now) ?? undefined;
      const want = Math.max(1, Math.min(MAX_ROUTE_LEASE, Math.ceil(w.capacity / 8)));
      w.flightFloor = w.askFloor;
      w.askFloor = 0;
      asks.push({ id, key, ratePerSec: w.ratePerSec, capacity: w.capacity, want, floor: w.flightFloor, settle });
    }
    this.trySend({ t: 'route-lease', asks });
  }

  /** The open lease or credit of `w` as a settlement, reset locally; null when there is none. */
  #settlement(key: string, w: RouteState, now = this.clock.now()): LeaseSettle | null {
    if (w.granted === 0 && w.left === 0) return null;
    const s: LeaseSettle = { key, granted: w.granted, unspent: w.left };
    // Our view of the primary's bucket follows what we hand back (or are charged).
    w.primaryTokens = this.#estimate(w, now) + w.left;
    w.primaryAt = now;
    w.granted = 0;
    w.left = 0;
    return s;
  }

  #answer(g: RouteGrant): void {
    const w = this.landed(g.id);
    if (w === undefined) return;
    w.asking = false;
    const now = this.clock.now();
    this.#holders = Math.max(1, g.holders);
    w.primaryTokens = g.tokens;
    w.primaryAt = now;
    if (g.granted > 0) {
      if (w.granted === 0 && w.left === 0) w.at = now;
      w.left += g.granted;
      w.granted += g.granted;
      w.lastGrant = g.granted;
      w.ttl = this.leaseTtl(g.tokens, w.capacity);
    } else {
      w.deniedUntil = now + Math.min(DENY_MS, g.retryAfterMs);
      w.deniedFloor = w.flightFloor;
    }
  }

  /** Settles leases and credit past their time in one message. */
  sweep(): void {
    const now = this.clock.now();
    let items: LeaseSettle[] | null = null;
    for (const [key, w] of this.#routes) {
      if (w.asking || (w.granted === 0 && w.left === 0)) continue;
      const ttl = w.left < 0 ? this.maxLeaseMs : w.ttl;
      if (w.left === 0 || now - w.at >= ttl) {
        const s = this.#settlement(key, w, now);
        if (s !== null) (items ??= []).push(s);
      }
    }
    if (items !== null) this.trySend({ t: 'route-settle', items });
  }
}
