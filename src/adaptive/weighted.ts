/**
 * Latency-weighted balancing: each backend's weight comes from its learned baseline (latency, error
 * rate, refreshed every `rebalance_interval`) blended with a fast per-response peak-EWMA (τ ≈ 10 s,
 * time-decayed on the injected clock, fed the median of the last three latencies so one slow
 * response moves nothing, fast failures penalised). A pick is power of two choices,
 * choosing between the two candidates in proportion to weight ÷ (in-flight + 1), with a weight
 * floor so a slow backend keeps a trickle of traffic and earns its share back. Pure: no timers, no
 * I/O; a one-file balancing strategy wraps it and forwards per-response feedback.
 */
import { systemClock, type Clock } from '../clock.js';
import type { BackendBaseline, BackendBaselineSource, ResponseOutcome } from './sources.js';

/** What the balancer needs of a backend. `Backend` from src/balancer satisfies it. */
export interface WeightedCandidate {
  readonly url: string;
  /** Requests dispatched and not finished. */
  readonly inFlight: number;
  /** Healthy and not held open; undefined counts as up. */
  readonly up?: boolean;
  /** Reserves the backend (e.g. a half-open probe slot); false = not available now. */
  tryAcquire?(): boolean;
}

export interface LatencyWeightedOptions {
  clock?: Clock;
  /** Uniform [0, 1); seeded in tests. */
  random?: () => number;
  /** Learned baselines; without one, weights come from the fast EWMA alone. */
  baselines?: BackendBaselineSource | null;
  /** How often baselines are pulled (ms). `weighted_lb.rebalance_interval`, default 5 min. */
  rebalanceIntervalMs?: number;
  /** Time constant of the per-response peak-EWMA (ms), default 10 s. */
  tauMs?: number;
  /** Weight floor as a fraction of the mean weight, default 0.05. */
  floorFraction?: number;
  /** Receives an error thrown by the baseline source (the previous baseline stays). */
  onError?: (err: unknown) => void;
  /** The balancer this one replaces (reload): backends with the same URL keep their fast EWMA. */
  previous?: LatencyWeightedBalancer<WeightedCandidate> | null;
}

/** One backend's weight and the numbers behind it (for /analytics/backends, metrics, the dashboard). */
export interface BackendWeight {
  backend: string;
  /** Relative weight, 1 = the mean of the pool. `gateway_backend_weight`. */
  weight: number;
  /** The latency the weight was computed from (ms), null before any data. */
  latencyMs: number | null;
  /** The error rate the weight was computed from (0..1). */
  errorRate: number;
  /** The fast peak-EWMA latency (ms), null before the first response. */
  ewmaLatencyMs: number | null;
  /** The learned baseline latency (ms), null before a baseline exists. */
  baselineLatencyMs: number | null;
  /** True when the floor, not the measurements, set the weight. */
  floored: boolean;
  inFlight: number;
}

export const DEFAULT_EWMA_TAU_MS = 10_000;
export const DEFAULT_WEIGHT_FLOOR = 0.05;
export const DEFAULT_REBALANCE_INTERVAL_MS = 300_000;
/**
 * Blend: the fast EWMA counts e^(−age/STALE_MS) against the baseline, age = time since the backend's
 * last response: all of it while responses flow, fading to the baseline within a minute or two of
 * silence, so a stale bad (or good) reading does not outlive the traffic that produced it (ms).
 */
export const STALE_MS = 30_000;
/** A failure counts as a response this many times slower than the pool's mean latency (if not slower already). */
export const FAILURE_PENALTY = 5;
/** Baselines on fewer requests than this are ignored. */
const MIN_BASELINE_SAMPLES = 20;
/** Weights (floor, mean) are recomputed at most this often (ms); a response updates its own backend at once. */
const RECOMPUTE_MS = 250;
const MIN_LATENCY_MS = 0.1;

/** A backend's fast signal, carried over a reload. */
interface FastState {
  ewma: number;
  errEwma: number;
  lastObs: number;
  prev1: number;
  prev2: number;
  samples: number;
}

function median3(a: number, b: number, c: number): number {
  if (a > b) {
    const t = a;
    a = b;
    b = t;
  }
  // a ≤ b: the median is b unless c is below it.
  return c >= b ? b : c > a ? c : a;
}

class Slot<T extends WeightedCandidate> {
  readonly candidate: T;
  ewma = Number.NaN;
  errEwma = 0;
  lastObs = -Infinity;
  /** The two latencies before the last (ms; NaN until seen) and how many responses fed the EWMA. */
  prev1 = Number.NaN;
  prev2 = Number.NaN;
  samples = 0;
  baseLatency = Number.NaN;
  baseError = 0;
  /** Unfloored weight; NaN when there is nothing to go on. */
  raw = Number.NaN;
  /** Effective latency and error behind `raw`. */
  latency = Number.NaN;
  error = 0;
  /** Weight used by picks (floored, NaN replaced by the mean). */
  weight = 1;
  constructor(candidate: T) {
    this.candidate = candidate;
  }
}

/**
 * The weighted picker over a list of candidates. Weight = (1 − error rate) / latency², latency and
 * error rate blended from the baseline and the fast EWMA. The square is deliberate (see
 * docs/decisions.md "Adaptive limits"): with 1/latency, proportional power of two choices leaves a
 * 5× slower backend a third of its share, not the fifth the issue asks it to lose at least.
 */
export class LatencyWeightedBalancer<T extends WeightedCandidate> {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #baselines: BackendBaselineSource | null;
  readonly #rebalanceMs: number;
  readonly #tauMs: number;
  readonly #floor: number;
  readonly #onError: ((err: unknown) => void) | undefined;
  #slots: Slot<T>[] = [];
  readonly #byUrl = new Map<string, Slot<T>>();
  #mean = 1;
  #poolLatency = Number.NaN;
  #nextRecompute = -Infinity;
  #nextRebalance = -Infinity;

  constructor(candidates: readonly T[], opts: LatencyWeightedOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#baselines = opts.baselines ?? null;
    this.#rebalanceMs = opts.rebalanceIntervalMs ?? DEFAULT_REBALANCE_INTERVAL_MS;
    this.#tauMs = opts.tauMs ?? DEFAULT_EWMA_TAU_MS;
    this.#floor = opts.floorFraction ?? DEFAULT_WEIGHT_FLOOR;
    this.#onError = opts.onError;
    if (!(this.#rebalanceMs > 0)) throw new RangeError(`weighted balancer: rebalanceIntervalMs must be > 0 (got ${this.#rebalanceMs})`);
    if (!(this.#tauMs > 0)) throw new RangeError(`weighted balancer: tauMs must be > 0 (got ${this.#tauMs})`);
    if (!(this.#floor >= 0.05 && this.#floor <= 1)) throw new RangeError(`weighted balancer: floorFraction must be in [0.05, 1] (got ${this.#floor})`);
    for (const c of candidates) this.add(c);
    if (opts.previous) {
      for (const slot of this.#slots) {
        const old = opts.previous.fastState(slot.candidate.url);
        if (old === null) continue;
        slot.ewma = old.ewma;
        slot.errEwma = old.errEwma;
        slot.lastObs = old.lastObs;
        slot.prev1 = old.prev1;
        slot.prev2 = old.prev2;
        slot.samples = old.samples;
      }
    }
  }

  /** @internal A backend's fast EWMA state, for carrying over a reload. */
  fastState(url: string): FastState | null {
    const s = this.#byUrl.get(url);
    return s === undefined || Number.isNaN(s.ewma) ? null : { ewma: s.ewma, errEwma: s.errEwma, lastObs: s.lastObs, prev1: s.prev1, prev2: s.prev2, samples: s.samples };
  }

  /** Adds a backend (e.g. added at runtime); it starts at the mean weight. */
  add(candidate: T): void {
    if (this.#byUrl.has(candidate.url)) return;
    const slot = new Slot(candidate);
    slot.weight = this.#mean;
    if (this.#baselines !== null) this.#applyBaseline(slot);
    this.#slots = [...this.#slots, slot];
    this.#byUrl.set(candidate.url, slot);
    this.#nextRecompute = -Infinity;
  }

  remove(url: string): void {
    const slot = this.#byUrl.get(url);
    if (slot === undefined) return;
    this.#byUrl.delete(url);
    this.#slots = this.#slots.filter((s) => s !== slot);
    this.#nextRecompute = -Infinity;
  }

  /**
   * Picks a backend by power of two choices: two distinct random candidates (up, not `exclude`),
   * the first tried chosen with probability in proportion to weight ÷ (in-flight + 1); reserves it
   * with `tryAcquire()` when the candidate has one. Null when no candidate is available. `now`
   * defaults to the clock (pass the request's reading to save a clock call).
   */
  pick(exclude: T | null = null, now: number = this.#clock.now()): T | null {
    if (now >= this.#nextRecompute) this.#recompute(now);
    const slots = this.#slots;
    const n = slots.length;
    if (n === 0) return null;
    if (n === 1) return take(slots[0]!.candidate, exclude);
    const random = this.#random;
    const i = Math.floor(random() * n);
    let j = Math.floor(random() * (n - 1));
    if (j >= i) j++;
    const a = slots[i]!;
    const b = slots[j]!;
    const ca = a.candidate;
    const cb = b.candidate;
    const okA = ca !== exclude && ca.up !== false;
    const okB = cb !== exclude && cb.up !== false;
    if (okA && okB) {
      const sa = a.weight / (ca.inFlight + 1);
      const sb = b.weight / (cb.inFlight + 1);
      const first = random() * (sa + sb) < sa ? ca : cb;
      const second = first === ca ? cb : ca;
      if (acquire(first)) return first;
      if (acquire(second)) return second;
    } else if (okA) {
      if (acquire(ca)) return ca;
    } else if (okB) {
      if (acquire(cb)) return cb;
    }
    // Both draws unavailable: walk the rest from a random start (rare; no allocation).
    const start = Math.floor(random() * n);
    for (let k = 0; k < n; k++) {
      const c = slots[(start + k) % n]!.candidate;
      if (c !== ca && c !== cb && c !== exclude && c.up !== false && acquire(c)) return c;
    }
    return null;
  }

  /** Per-response feedback: `latencyMs` from dispatch to response end (or failure); `now` defaults to the clock. */
  onResponse(url: string, latencyMs: number, outcome: ResponseOutcome, now: number = this.#clock.now()): void {
    if (outcome === 'aborted') return;
    const slot = this.#byUrl.get(url);
    if (slot === undefined || !(latencyMs >= 0)) return;
    const failed = outcome === 'failure';
    let x = latencyMs < MIN_LATENCY_MS ? MIN_LATENCY_MS : latencyMs;
    if (failed) {
      // A fast failure must not look like a fast backend.
      const pool = Number.isNaN(this.#poolLatency) ? x : this.#poolLatency;
      const penalised = FAILURE_PENALTY * pool;
      if (penalised > x) x = penalised;
    }
    // The latency fed to the EWMA is the median of this response's and the two before it (the
    // smaller of two at the second): one slow response (a pause, a slow endpoint, a cold
    // connection) moves nothing; a second in a row does.
    const p1 = slot.prev1;
    const p2 = slot.prev2;
    slot.prev2 = p1;
    slot.prev1 = x;
    const y = Number.isNaN(p1) ? x : Number.isNaN(p2) ? (x < p1 ? x : p1) : median3(x, p1, p2);
    const n = ++slot.samples;
    if (Number.isNaN(slot.ewma)) {
      slot.ewma = y;
      const prior = Number.isNaN(slot.baseLatency) ? 0 : slot.baseError;
      slot.errEwma = prior * FIRST_KEEP + (failed ? 1 - FIRST_KEEP : 0);
    } else {
      const dt = now - slot.lastObs;
      const keep = dt > 0 ? Math.exp(-dt / this.#tauMs) : 1;
      // Peak: a slower latency counts at once; faster ones pull the average down over τ, and over
      // the responses so far while they are few (the mean of the first n), so a first reading does
      // not linger for τ.
      const gain = 1 / n > 1 - keep ? 1 / n : 1 - keep;
      slot.ewma = y > slot.ewma ? y : slot.ewma + (y - slot.ewma) * gain;
      slot.errEwma = slot.errEwma * keep + (failed ? 1 - keep : 0);
    }
    slot.lastObs = now;
    const hadFigure = !Number.isNaN(slot.raw);
    this.#weigh(slot, now);
    // A backend's first figure changes the pool's mean (and, with none before, its unit): recompute
    // at once, or the first backend to answer would outweigh the silent ones until the next recompute.
    if (hadFigure) this.#place(slot);
    else this.#recompute(now, true);
  }

  /** Pulls every backend's baseline now (the strategy may call it when the analyzer has run). */
  rebalance(): void {
    const now = this.#clock.now();
    if (this.#baselines !== null) for (const s of this.#slots) this.#applyBaseline(s);
    this.#nextRebalance = now + this.#rebalanceMs;
    this.#recompute(now, true);
  }

  /** A backend's relative weight (1 = pool mean), or null when unknown. */
  weight(url: string): number | null {
    const s = this.#byUrl.get(url);
    return s === undefined ? null : s.weight / this.#mean;
  }

  /** Every backend's weight and its reasons, in candidate order. */
  weights(): BackendWeight[] {
    this.#recompute(this.#clock.now());
    const mean = this.#mean;
    return this.#slots.map((s) => ({
      backend: s.candidate.url,
      weight: s.weight / mean,
      latencyMs: Number.isNaN(s.latency) ? null : s.latency,
      errorRate: s.error,
      ewmaLatencyMs: Number.isNaN(s.ewma) ? null : s.ewma,
      baselineLatencyMs: Number.isNaN(s.baseLatency) ? null : s.baseLatency,
      floored: !Number.isNaN(s.raw) && s.raw < this.#floor * mean,
      inFlight: s.candidate.inFlight,
    }));
  }

  #applyBaseline(slot: Slot<T>): void {
    let b: BackendBaseline | null;
    try {
      b = this.#baselines!.backend(slot.candidate.url);
    } catch (err) {
      this.#onError?.(err);
      return;
    }
    if (b === null || !(b.sampleSize >= MIN_BASELINE_SAMPLES) || !(b.latencyMs >= 0) || !(b.errorRate >= 0)) {
      slot.baseLatency = Number.NaN;
      slot.baseError = 0;
      return;
    }
    slot.baseLatency = b.latencyMs < MIN_LATENCY_MS ? MIN_LATENCY_MS : b.latencyMs;
    slot.baseError = b.errorRate > 1 ? 1 : b.errorRate;
  }

  /** Raw weight of one backend from its baseline and EWMA at `now`. */
  #weigh(s: Slot<T>, now: number): void {
    const hasFast = !Number.isNaN(s.ewma);
    const hasBase = !Number.isNaN(s.baseLatency);
    if (!hasFast && !hasBase) {
      s.raw = s.latency = Number.NaN;
      s.error = 0;
      return;
    }
    let latency: number;
    let error: number;
    if (!hasBase) {
      latency = s.ewma;
      error = s.errEwma;
    } else if (!hasFast) {
      latency = s.baseLatency;
      error = s.baseError;
    } else {
      // The fast signal speaks for the backend while it is fresh and fades toward the baseline when responses stop.
      const beta = Math.exp(-(now - s.lastObs) / STALE_MS);
      latency = beta * s.ewma + (1 - beta) * s.baseLatency;
      error = beta * s.errEwma + (1 - beta) * s.baseError;
    }
    s.latency = latency;
    s.error = error > 1 ? 1 : error;
    s.raw = (1 - s.error) / (latency * latency);
  }

  /** Sets the pick weight from the raw one: the floor, and the mean for a backend with no data. */
  #place(s: Slot<T>): void {
    const floor = this.#floor * this.#mean;
    s.weight = Number.isNaN(s.raw) ? this.#mean : s.raw < floor ? floor : s.raw;
  }

  #recompute(now: number, force = false): void {
    if (!force && now < this.#nextRecompute) return;
    this.#nextRecompute = now + RECOMPUTE_MS;
    if (now >= this.#nextRebalance) {
      this.#nextRebalance = now + this.#rebalanceMs;
      if (this.#baselines !== null) for (const s of this.#slots) this.#applyBaseline(s);
    }
    let sum = 0;
    let lat = 0;
    let known = 0;
    for (const s of this.#slots) {
      this.#weigh(s, now);
      if (!Number.isNaN(s.raw)) {
        sum += s.raw;
        lat += s.latency;
        known++;
      }
    }
    this.#mean = known > 0 ? sum / known : 1;
    this.#poolLatency = known > 0 ? lat / known : Number.NaN;
    for (const s of this.#slots) this.#place(s);
  }
}

/** Weight kept from the prior error rate at a backend's first response. */
const FIRST_KEEP = Math.exp(-1);

function acquire(c: WeightedCandidate): boolean {
  return c.tryAcquire === undefined || c.tryAcquire();
}

function take<T extends WeightedCandidate>(c: T, exclude: T | null): T | null {
  return c !== exclude && c.up !== false && acquire(c) ? c : null;
}
