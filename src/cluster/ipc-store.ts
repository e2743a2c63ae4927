/**
 * The worker's side of the cross-worker rate limit: a `RateLimitStore` that spends tokens leased
 * from the primary's {@link LeaseLedger}. A hot key costs one IPC round trip per lease (a batch of
 * tokens), not per request: `take()` answers synchronously while the lease lasts. Asks made in the
 * same tick travel in one message; concurrent takes of one key wait for the same ask. A refusal is
 * remembered briefly (never longer than the bucket's own retry-after), so a flood of refused
 * requests costs no IPC either. Leases past their time are settled in one batch per sweep.
 */
import type { RateLimitStore, TakeResult } from '../store/index.js';
import { LeaseClient, type LeaseClientOptions } from './lease-client.js';
import type { LeaseAsk, LeaseGrant, LeaseSettle, PrimaryToWorker } from './messages.js';

/** Tokens a worker asks for at most in one lease. */
export const MAX_LEASE = 32;
/** A lease is handed back after this long (its unspent tokens serve the other workers)... */
export const DEFAULT_MAX_LEASE_MS = 250;
/**
 * ...or after this long when the bucket had at least half its capacity left at the grant: no other
 * worker is short of tokens then, and a client well under its limit (the common case) is served
 * from its lease instead of one IPC round trip per request.
 */
export const DEFAULT_RELAXED_LEASE_MS = 2_000;
/** A refusal is answered locally for at most this long. */
export const DEFAULT_DENY_CACHE_MS = 50;
/** An allowed peek is believed for this long. */
const PEEK_CACHE_MS = 50;

interface Lease {
  left: number;
  granted: number;
  at: number;
  /** How long it may be held (see DEFAULT_RELAXED_LEASE_MS). */
  ttl: number;
  /** The primary's bucket after the grant (for `remaining`). */
  primaryRemaining: number;
  resetMs: number;
}

interface Waiter {
  cost: number;
  resolve: (r: TakeResult) => void;
}

interface Pending {
  capacity: number;
  refillPerSec: number;
  waiters: Waiter[];
  peek: boolean;
}

export interface LeaseStoreOptions extends LeaseClientOptions {
  denyCacheMs?: number;
}

/** Asks wait for this tick's batch; an ask in flight is for its key. */
export class LeaseStore extends LeaseClient<LeaseAsk, string> implements RateLimitStore {
  readonly degraded = false;
  readonly #denyCacheMs: number;
  readonly #leases = new Map<string, Lease>();
  /** key → until (ms) and the refusal to repeat. */
  readonly #denied = new Map<string, { until: number; result: TakeResult }>();
  readonly #peeks = new Map<string, number>();
  readonly #pending = new Map<string, Pending>();

  constructor(opts: LeaseStoreOptions) {
    super(opts, DEFAULT_MAX_LEASE_MS, DEFAULT_RELAXED_LEASE_MS);
    this.#denyCacheMs = opts.denyCacheMs ?? DEFAULT_DENY_CACHE_MS;
  }

  async start(): Promise<void> {
    this.scheduleSweep();
  }

  /** Hands every lease back. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.shut();
    const items: LeaseSettle[] = [];
    for (const [key, l] of this.#leases) items.push({ key, granted: l.granted, unspent: l.left });
    this.#leases.clear();
    if (items.length > 0) this.trySend({ t: 'settle', items });
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult | Promise<TakeResult> {
    const lease = this.#leases.get(key);
    const now = this.clock.now();
    if (cost === 0) {
      if (lease !== undefined && lease.left >= 1) return allowed(lease);
      const d = this.#denied.get(key);
      if (d !== undefined && d.until > now) return d.result;
      const p = this.#peeks.get(key);
      if (p !== undefined && p > now) return { allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 0 };
      return this.#ask(key, capacity, refillPerSec, 0);
    }
    if (lease !== undefined && lease.left >= cost) {
      lease.left -= cost;
      return allowed(lease);
    }
    const d = this.#denied.get(key);
    if (d !== undefined) {
      if (d.until > now) return d.result;
      this.#denied.delete(key);
    }
    return this.#ask(key, capacity, refillPerSec, cost);
  }

  /** Routes the primary's answers here. Returns true when the message was for the store. */
  receive(msg: PrimaryToWorker): boolean {
    if (msg.t !== 'leased') return false;
    for (const g of msg.grants) this.#answer(g);
    return true;
  }

  #ask(key: string, capacity: number, refillPerSec: number, cost: number): Promise<TakeResult> {
    return new Promise<TakeResult>((resolve) => {
      const pending = this.#pending.get(key);
      if (pending !== undefined) {
        pending.waiters.push({ cost, resolve });
        return;
      }
      this.#pending.set(key, { capacity, refillPerSec, waiters: [{ cost, resolve }], peek: cost === 0 });
      this.#queueAsk(key, capacity, refillPerSec, cost);
    });
  }

  #queueAsk(key: string, capacity: number, refillPerSec: number, cost: number): void {
    const id = this.track(key);
    const ask: LeaseAsk = { id, key, capacity, refillPerSec, want: cost === 0 ? 0 : Math.max(cost, Math.min(MAX_LEASE, Math.ceil(capacity / 4))), cost };
    const old = this.#leases.get(key);
    if (old !== undefined && cost > 0) {
      // The old lease cannot serve this cost: hand it back with the ask.
      ask.settle = { key, granted: old.granted, unspent: old.left };
      this.#leases.delete(key);
    }
    this.enqueue(ask);
  }

  protected sendBatch(asks: LeaseAsk[]): void {
    this.trySend({ t: 'lease', asks });
  }

  #answer(g: LeaseGrant): void {
    const key = this.landed(g.id);
    if (key === undefined) return;
    const pending = this.#pending.get(key);
    this.#pending.delete(key);
    const now = this.clock.now();
    if (g.granted > 0) {
      const prev = this.#leases.get(key);
      if (prev !== undefined) {
        // A peek's lease never replaces; two grants of one key cannot both be open, but stay safe: merge.
        prev.left += g.granted;
        prev.granted += g.granted;
        prev.primaryRemaining = g.remaining;
        prev.resetMs = g.resetMs;
      } else {
        const ttl = pending !== undefined ? this.leaseTtl(g.remaining, pending.capacity) : this.maxLeaseMs;
        this.#leases.set(key, { left: g.granted, granted: g.granted, at: now, ttl, primaryRemaining: g.remaining, resetMs: g.resetMs });
      }
    } else if (!g.allowed) {
      this.#denied.set(key, {
        until: now + Math.min(this.#denyCacheMs, g.retryAfterMs),
        result: { allowed: false, remaining: 0, retryAfterMs: g.retryAfterMs, resetMs: g.resetMs },
      });
    } else {
      this.#peeks.set(key, now + PEEK_CACHE_MS);
    }
    if (pending === undefined) return;
    const lease = this.#leases.get(key);
    const waiters = pending.waiters;
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      if (w.cost === 0) {
        w.resolve(lease !== undefined && lease.left >= 1 ? allowed(lease) : g.allowed ? { allowed: true, remaining: g.remaining, retryAfterMs: 0, resetMs: g.resetMs } : denied(g));
      } else if (lease !== undefined && lease.left >= w.cost) {
        lease.left -= w.cost;
        w.resolve(allowed(lease));
      } else if (!g.allowed) {
        w.resolve(denied(g));
      } else {
        // The grant ran out before this waiter: ask again for it and the ones after it.
        const rest = waiters.slice(i);
        this.#pending.set(key, { capacity: pending.capacity, refillPerSec: pending.refillPerSec, waiters: rest, peek: false });
        this.#queueAsk(key, pending.capacity, pending.refillPerSec, Math.max(1, rest[0]!.cost));
        return;
      }
    }
  }

  /** Settles leases past their time (or spent) in one message; forgets stale refusals. */
  sweep(): void {
    const now = this.clock.now();
    let items: LeaseSettle[] | null = null;
    for (const [key, l] of this.#leases) {
      if (this.#pending.has(key)) continue;
      if (l.left === 0 || now - l.at >= l.ttl) {
        (items ??= []).push({ key, granted: l.granted, unspent: l.left });
        this.#leases.delete(key);
      }
    }
    for (const [key, d] of this.#denied) if (d.until <= now) this.#denied.delete(key);
    for (const [key, until] of this.#peeks) if (until <= now) this.#peeks.delete(key);
    if (items !== null) this.trySend({ t: 'settle', items });
  }
}

function allowed(l: Lease): TakeResult {
  return { allowed: true, remaining: l.left + l.primaryRemaining, retryAfterMs: 0, resetMs: l.resetMs };
}

function denied(g: LeaseGrant): TakeResult {
  return { allowed: false, remaining: 0, retryAfterMs: g.retryAfterMs, resetMs: g.resetMs };
}
