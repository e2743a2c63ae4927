/**
 * The adaptive route limit: once a route has `learning_period` of data, every client together may
 * send L = clamp(avg_rate × multiplier, min_limit, max_limit) requests/min, as one token bucket per
 * route (refill L/60 per s, `burst` worth of L as capacity). When the bucket is empty, clients
 * within their fair share borrow (bounded debt) and heavier clients are refused, so the clients
 * who cause the excess absorb it. In shadow mode every decision is the same and nothing is refused.
 */
import { systemClock, type Clock } from '../clock.js';
import { GatewayError } from '../errors.js';
import { ClientRates, CLIENT_RATE_TAU_MS, DEFAULT_MAX_CLIENTS } from './client-rates.js';
import { MemoryRouteBucketStore, type RouteBucketStore } from './route-bucket-store.js';
import type { RouteBaseline, RouteBaselineSource } from './sources.js';

/** The route's bucket may go this far into debt for fair clients, as a fraction of its burst. */
export const DEBT_FRACTION = 0.5;
/** The cached fair share is recomputed when older than this while the route is over its limit (ms). */
export const FAIR_SHARE_MAX_AGE_MS = 250;
/** How often a route pulls its baseline lazily from the source (ms); `refresh()` forces it. */
export const DEFAULT_REFRESH_INTERVAL_MS = 10_000;
/** A limit change is announced (event, log line) when it moves by at least this fraction or 1 req/min. */
const ANNOUNCE_FRACTION = 0.01;

export interface AdaptiveRouteLimitSettings {
  /** L = avg × multiplier, > 0. */
  multiplier: number;
  /** Requests per minute. */
  minLimit: number;
  maxLimit: number;
  /** Data (not uptime) a route needs before its limit applies, ms. */
  learningPeriodMs: number;
  /** Capacity of the route bucket as a duration of L (capacity = L × burstMs / 60 000), ms. */
  burstMs: number;
  /** Compute and count every decision, refuse nothing. */
  shadow: boolean;
}

export interface AdaptiveRouteLimiterOptions extends AdaptiveRouteLimitSettings {
  baselines: RouteBaselineSource;
  clock?: Clock;
  /** Route buckets; defaults to an in-process store. */
  store?: RouteBucketStore;
  /** Bound on tracked clients per route (default 20 000). */
  maxClientsPerRoute?: number;
  /** Time constant of the per-client rate estimate (default 30 s). */
  clientRateTauMs?: number;
  /** Lazy baseline pull interval per route (default 10 s). */
  refreshIntervalMs?: number;
  /** Called synchronously when a route's limit is learned, moves, or is dropped. Must be cheap and not throw. */
  onLimitChange?: (change: LimitChange) => void;
  /** Receives an error thrown by the baseline source; the route keeps its previous limit. */
  onError?: (err: unknown) => void;
  /**
   * The limiter of the config this one replaces (reload): routes with the same path keep their
   * client rates and announced limit, and the store is shared unless `store` is given.
   */
  previous?: AdaptiveRouteLimiter | null;
}

/** A route's limit was learned, moved or dropped: for an `adaptive` SSE event and one log line. */
export interface LimitChange {
  route: string;
  /** Previously announced limit (req/min), null when the route had none. */
  previous: number | null;
  /** New limit (req/min), null when it no longer has one. */
  limit: number | null;
  baselinePerMin: number | null;
  multiplier: number;
  /** Epoch ms. */
  at: number;
  /** One log line: `adaptive limit /api/v1: 1100/min -> 1200/min (learned from 600/min × 2)`. */
  message: string;
}

export type AdaptiveMode = 'enforce' | 'shadow';

/** Why a request was (or in shadow mode would have been) refused. */
export type RefusalReason = 'over_fair_share' | 'route_exhausted';

/**
 * A refusal by the adaptive limit, explained. In enforce mode the caller answers 429 (`toError()`);
 * in shadow mode (`enforced === false`) it lets the request through and records the verdict.
 */
export class AdaptiveRefusal {
  readonly code = 'adaptive_rate_limited' as const;
  readonly route: string;
  readonly mode: AdaptiveMode;
  readonly reason: RefusalReason;
  /** Requests/min. */
  readonly limit: number;
  readonly baselinePerMin: number;
  readonly multiplier: number;
  readonly clientRatePerMin: number;
  /** The fair share this client was held to (req/min, at most the limit). */
  readonly fairSharePerMin: number;
  readonly activeClients: number;
  /** Whole seconds, ≥ 1. */
  readonly retryAfterSec: number;

  constructor(
    route: string,
    mode: AdaptiveMode,
    reason: RefusalReason,
    limit: number,
    baselinePerMin: number,
    multiplier: number,
    clientRatePerMin: number,
    fairSharePerMin: number,
    activeClients: number,
    retryAfterSec: number,
  ) {
    this.route = route;
    this.mode = mode;
    this.reason = reason;
    this.limit = limit;
    this.baselinePerMin = baselinePerMin;
    this.multiplier = multiplier;
    this.clientRatePerMin = clientRatePerMin;
    this.fairSharePerMin = fairSharePerMin;
    this.activeClients = activeClients;
    this.retryAfterSec = retryAfterSec;
  }

  /** True when the request must be refused; false in shadow mode. */
  get enforced(): boolean {
    return this.mode === 'enforce';
  }

  /** "route /api/v1 limit 1200/min learned from 600/min × 2; this client 900/min, fair share 300/min" */
  get message(): string {
    const head = `route ${this.route} limit ${perMin(this.limit)}/min learned from ${perMin(this.baselinePerMin)}/min × ${this.multiplier}`;
    const client = `this client ${perMin(this.clientRatePerMin)}/min, fair share ${perMin(this.fairSharePerMin)}/min`;
    return this.reason === 'over_fair_share' ? `${head}; ${client}` : `${head}; ${client}, but the route is over its limit`;
  }

  /** Numbers for the completion record's `detail` (request log, SSE `request` events). */
  detail(): Record<string, number | string> {
    return {
      reason: this.reason,
      mode: this.mode,
      limit: Math.round(this.limit),
      baseline: Math.round(this.baselinePerMin),
      multiplier: this.multiplier,
      client_rate: Math.round(this.clientRatePerMin),
      fair_share: Math.round(this.fairSharePerMin),
      active_clients: this.activeClients,
      retry_after_s: this.retryAfterSec,
    };
  }

  /** The 429 to answer in enforce mode, with Retry-After. */
  toError(): GatewayError {
    return new GatewayError('adaptive_rate_limited', this.message, { headers: { 'retry-after': String(this.retryAfterSec) } });
  }
}

/** Counters and current numbers of one route, for /analytics/routes, metrics and the dashboard. */
export interface RouteLimitStats {
  route: string;
  mode: AdaptiveMode;
  /** Enforced (or shadow) limit in req/min; null while learning. */
  limit: number | null;
  baselinePerMin: number | null;
  learning: boolean;
  /** Requests decided while a limit applied. */
  decisions: number;
  /** Refusals (in shadow mode: would-be refusals). */
  refusals: number;
  refusalsOverFairShare: number;
  refusalsRouteExhausted: number;
  /** Fair clients admitted from the bucket's debt. */
  borrowed: number;
  /** Last computed fair share (req/min), null when nobody was over it. */
  fairSharePerMin: number | null;
  activeClients: number;
  trackedClients: number;
  /** Tokens in the route bucket now (negative while in debt), null before its first request. */
  tokens: number | null;
}

function perMin(x: number): string {
  return x >= 10 || x === 0 ? String(Math.round(x)) : x.toFixed(1);
}

/** One route's limit and state. The request path holds this object and calls `decide()`. */
export class RouteLimit {
  readonly route: string;
  readonly #owner: AdaptiveRouteLimiter;
  readonly #s: AdaptiveRouteLimitSettings;
  readonly #clock: Clock;
  readonly #store: RouteBucketStore;
  readonly #clients: ClientRates;
  readonly #refreshMs: number;
  readonly #mode: AdaptiveMode;

  #limit: number | null = null;
  #baseline: number | null = null;
  #ratePerSec = 0;
  #capacity = 1;
  #debt = 0;
  #nextRefresh = -Infinity;
  #announced: number | null = null;

  #fairShare = Infinity;
  #active = 0;
  #fairShareAt = -Infinity;

  #decisions = 0;
  #overShare = 0;
  #exhausted = 0;
  /** Refusals counted when the limit was last set: more since then means the route was shedding. */
  #refusalsAtApply = 0;
  #borrowed = 0;

  /** @internal Built by AdaptiveRouteLimiter. */
  constructor(route: string, owner: AdaptiveRouteLimiter, settings: AdaptiveRouteLimitSettings, clock: Clock, store: RouteBucketStore, clients: ClientRates, refreshMs: number, announced: number | null) {
    this.route = route;
    this.#owner = owner;
    this.#s = settings;
    this.#clock = clock;
    this.#store = store;
    this.#clients = clients;
    this.#refreshMs = refreshMs;
    this.#mode = settings.shadow ? 'shadow' : 'enforce';
    this.#announced = announced;
  }

  /** @internal For carrying state over a reload. */
  get carried(): { clients: ClientRates; announced: number | null } {
    return { clients: this.#clients, announced: this.#announced };
  }

  /** `enforce`, or `shadow` (decisions computed and counted, nothing refused). */
  get mode(): AdaptiveMode {
    return this.#mode;
  }

  /** The limit in requests/min, or null while the route is learning. */
  get limit(): number | null {
    return this.#limit;
  }

  /**
   * Decides one request from `client` (consumer id, else client IP). Returns null when the adaptive
   * limit has no objection; otherwise the refusal, which the caller enforces only when
   * `refusal.enforced` (shadow mode: same decision, request goes through). `now` defaults to the
   * clock; pass the request's own clock reading to save a clock call.
   */
  decide(client: string, now: number = this.#clock.now()): AdaptiveRefusal | null {
    if (now >= this.#nextRefresh) this.refresh(now);
    // Clients are observed while the route learns too, so their rates are known when a limit appears.
    const clientRate = this.#clients.observe(client, now);
    const limit = this.#limit;
    if (limit === null) return null;
    this.#decisions++;
    const first = this.#store.take(this.route, 1, this.#ratePerSec, this.#capacity, 0, now);
    if (first.allowed) return null;
    // The route is out of tokens: who is over their share?
    if (now - this.#fairShareAt >= FAIR_SHARE_MAX_AGE_MS) {
      const fs = this.#clients.fairShare(limit, now);
      this.#fairShare = fs.fairShare;
      this.#active = fs.active;
      this.#fairShareAt = now;
    }
    const share = this.#fairShare < limit ? this.#fairShare : limit;
    let reason: RefusalReason;
    let tokens: number;
    if (clientRate <= share) {
      const second = this.#store.take(this.route, 1, this.#ratePerSec, this.#capacity, -this.#debt, now);
      if (second.allowed) {
        this.#borrowed++;
        return null;
      }
      reason = 'route_exhausted';
      tokens = second.tokens + this.#debt;
      this.#exhausted++;
    } else {
      reason = 'over_fair_share';
      tokens = first.tokens;
      this.#overShare++;
    }
    const wait = (1 - tokens) / this.#ratePerSec;
    const retryAfter = wait > 1 ? Math.ceil(wait) : 1;
    return new AdaptiveRefusal(this.route, this.#mode, reason, limit, this.#baseline ?? 0, this.#s.multiplier, clientRate, share, this.#active, retryAfter);
  }

  /** Pulls the route's baseline now and moves the limit in place (no bucket reset). */
  refresh(now = this.#clock.now()): void {
    this.#nextRefresh = now + this.#refreshMs;
    let b: RouteBaseline | null;
    try {
      b = this.#owner.baselines.baseline(this.route);
    } catch (err) {
      this.#owner.onError?.(err);
      return;
    }
    this.applyBaseline(b, now);
  }

  /** Sets the limit from a baseline (null = none). Exposed for callers that push baselines. */
  applyBaseline(b: RouteBaseline | null, now = this.#clock.now()): void {
    const s = this.#s;
    if (b === null || !(b.dataMs >= s.learningPeriodMs) || !Number.isFinite(b.avgRatePerMin) || b.avgRatePerMin < 0) {
      this.#limit = null;
      this.#baseline = b === null || !Number.isFinite(b.avgRatePerMin) ? null : b.avgRatePerMin;
    } else {
      const raw = b.avgRatePerMin * s.multiplier;
      let limit = raw < s.minLimit ? s.minLimit : raw > s.maxLimit ? s.maxLimit : raw;
      // While it refuses, the admitted traffic is the limit's own output, not demand: learning it would
      // let a flood ratchet the limit up (L = 2 × a baseline that climbs toward L). Hold; falling is fine.
      const refusals = this.#overShare + this.#exhausted;
      if (this.#mode === 'enforce' && this.#limit !== null && refusals > this.#refusalsAtApply && limit > this.#limit) limit = this.#limit;
      this.#refusalsAtApply = refusals;
      this.#limit = limit;
      this.#baseline = b.avgRatePerMin;
      this.#ratePerSec = limit / 60;
      this.#capacity = Math.max(1, (limit * s.burstMs) / 60_000);
      this.#debt = Math.max(1, this.#capacity * DEBT_FRACTION);
    }
    this.#announce(now);
  }

  stats(): RouteLimitStats {
    const now = this.#clock.now();
    return {
      route: this.route,
      mode: this.#mode,
      limit: this.#limit,
      baselinePerMin: this.#baseline,
      learning: this.#limit === null,
      decisions: this.#decisions,
      refusals: this.#overShare + this.#exhausted,
      refusalsOverFairShare: this.#overShare,
      refusalsRouteExhausted: this.#exhausted,
      borrowed: this.#borrowed,
      fairSharePerMin: Number.isFinite(this.#fairShare) ? this.#fairShare : null,
      activeClients: this.#active,
      trackedClients: this.#clients.size,
      tokens: this.#limit === null ? null : this.#store.peek(this.route, this.#ratePerSec, this.#capacity, now),
    };
  }

  #announce(now: number): void {
    const prev = this.#announced;
    const next = this.#limit;
    if (prev === next) return;
    if (prev !== null && next !== null && Math.abs(next - prev) < Math.max(1, prev * ANNOUNCE_FRACTION)) return;
    this.#announced = next;
    const listener = this.#owner.onLimitChange;
    if (listener === undefined) return;
    const m = this.#s.multiplier;
    const from = prev === null ? 'none' : `${perMin(prev)}/min`;
    const to = next === null ? 'none (learning)' : `${perMin(next)}/min`;
    const why = next === null || this.#baseline === null ? '' : ` (learned from ${perMin(this.#baseline)}/min × ${m})`;
    listener({
      route: this.route,
      previous: prev,
      limit: next,
      baselinePerMin: this.#baseline,
      multiplier: m,
      at: now,
      message: `adaptive limit ${this.route}: ${from} -> ${to}${why}`,
    });
  }
}

/** The adaptive limits of all routes. Build once per config; `forRoute()` at config load, `decide()` per request. */
export class AdaptiveRouteLimiter {
  readonly baselines: RouteBaselineSource;
  readonly onLimitChange: ((change: LimitChange) => void) | undefined;
  readonly onError: ((err: unknown) => void) | undefined;
  readonly mode: AdaptiveMode;
  /** The route buckets' store (shared with the limiter that replaces this one on reload). */
  readonly store: RouteBucketStore;
  readonly #routes = new Map<string, RouteLimit>();

  constructor(routes: readonly string[], opts: AdaptiveRouteLimiterOptions) {
    checkSettings(opts);
    this.baselines = opts.baselines;
    this.onLimitChange = opts.onLimitChange;
    this.onError = opts.onError;
    this.mode = opts.shadow ? 'shadow' : 'enforce';
    const settings: AdaptiveRouteLimitSettings = Object.freeze({
      multiplier: opts.multiplier,
      minLimit: opts.minLimit,
      maxLimit: opts.maxLimit,
      learningPeriodMs: opts.learningPeriodMs,
      burstMs: opts.burstMs,
      shadow: opts.shadow,
    });
    const clock = opts.clock ?? systemClock;
    const previous = opts.previous ?? null;
    const store = opts.store ?? previous?.store ?? new MemoryRouteBucketStore();
    this.store = store;
    const refreshMs = opts.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
    for (const route of routes) {
      if (this.#routes.has(route)) continue;
      const carried = previous?.forRoute(route)?.carried;
      const clients = carried?.clients ?? new ClientRates({ tauMs: opts.clientRateTauMs ?? CLIENT_RATE_TAU_MS, maxClients: opts.maxClientsPerRoute ?? DEFAULT_MAX_CLIENTS });
      this.#routes.set(route, new RouteLimit(route, this, settings, clock, store, clients, refreshMs, carried?.announced ?? null));
    }
  }

  /** The route's limit object (hold it per route; null for a route not given at construction). */
  forRoute(route: string): RouteLimit | null {
    return this.#routes.get(route) ?? null;
  }

  /** Convenience for callers without a held RouteLimit: one Map lookup more than `forRoute(r).decide(c)`. */
  decide(route: string, client: string, now?: number): AdaptiveRefusal | null {
    const r = this.#routes.get(route);
    return r === undefined ? null : r.decide(client, now);
  }

  /** Pulls every route's baseline now (e.g. after each analyzer run). */
  refresh(): void {
    for (const r of this.#routes.values()) r.refresh();
  }

  /** The enforced limit of a route (req/min) or null: `current_rate_limit` in /analytics/routes. */
  limit(route: string): number | null {
    return this.#routes.get(route)?.limit ?? null;
  }

  stats(): RouteLimitStats[] {
    return [...this.#routes.values()].map((r) => r.stats());
  }
}

function checkSettings(s: AdaptiveRouteLimitSettings): void {
  const positive = (name: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`adaptive limit: ${name} must be > 0 (got ${v})`);
  };
  positive('multiplier', s.multiplier);
  positive('minLimit', s.minLimit);
  positive('maxLimit', s.maxLimit);
  positive('burstMs', s.burstMs);
  if (!(s.learningPeriodMs >= 0)) throw new RangeError(`adaptive limit: learningPeriodMs must be >= 0 (got ${s.learningPeriodMs})`);
  if (s.minLimit > s.maxLimit) throw new RangeError(`adaptive limit: minLimit (${s.minLimit}) must not exceed maxLimit (${s.maxLimit})`);
}
