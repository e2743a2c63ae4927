/**
 * Self-tuning breaker thresholds: per backend, the error rate over a sliding window (a ring of
 * sub-window counters, never reset by one success) against the backend's own threshold
 * clamp(5 × baseline error rate, 5%, 50%), with a minimum volume. Before a backend has a baseline
 * there is no threshold and the breaker's static rule (consecutive failures) applies.
 */
import type { WindowTrip } from '../breaker/index.js';
import { systemClock, type Clock } from '../clock.js';
import type { BackendBaseline, BackendBaselineSource } from './sources.js';

export const DEFAULT_BREAKER_WINDOW_MS = 10_000;
export const DEFAULT_BREAKER_MIN_REQUESTS = 20;
/** Threshold = clamp(THRESHOLD_FACTOR × baseline error rate, MIN_THRESHOLD, MAX_THRESHOLD). */
export const THRESHOLD_FACTOR = 5;
export const MIN_THRESHOLD = 0.05;
export const MAX_THRESHOLD = 0.5;
/** The window is kept as this many sub-window counters. */
const SLOTS = 10;
/** Thresholds are re-read from the baselines at most this often (ms). */
const DEFAULT_REFRESH_MS = 10_000;
/** A baseline on fewer requests than this does not set a threshold. */
const MIN_BASELINE_SAMPLES = 20;

export interface BreakerTuningOptions {
  baselines: BackendBaselineSource;
  clock?: Clock;
  /** `circuitbreaker.window`, ms. */
  windowMs?: number;
  /** `circuitbreaker.min_requests`. */
  minRequests?: number;
  /** How often a backend re-reads its baseline (ms). */
  refreshIntervalMs?: number;
  /** Receives an error thrown by the baseline source (the previous threshold stays). */
  onError?: (err: unknown) => void;
}

/** Why a breaker tripped on its error rate (the breaker's WindowTrip, and whose): for `/health`, the log line and the SSE event. */
export interface TripReason extends WindowTrip {
  backend: string;
}

/** The threshold a baseline error rate gives. */
export function adaptiveThreshold(baselineErrorRate: number): number {
  const t = THRESHOLD_FACTOR * baselineErrorRate;
  return t < MIN_THRESHOLD ? MIN_THRESHOLD : t > MAX_THRESHOLD ? MAX_THRESHOLD : t;
}

/** One backend's windowed error counter and threshold. O(1) per record. */
/** ln(1e-7): a low-volume run of failures is that unlikely for a backend at its own baseline. */
const LOW_VOLUME_LOG_ODDS = Math.log(1e-7);
/** Longest run of consecutive failures ever required at low volume (a 50% baseline needs 24). */
const MAX_LOW_VOLUME_RUN = 30;

export class ErrorWindow {
  readonly backend: string;
  readonly #owner: BreakerTuning;
  readonly #clock: Clock;
  readonly #slotMs: number;
  readonly #requests = new Int32Array(SLOTS);
  readonly #failures = new Int32Array(SLOTS);
  #slot = -1;
  #totalRequests = 0;
  #totalFailures = 0;
  #threshold: number | null = null;
  #baselineErrorRate: number | null = null;
  #nextRefresh = -Infinity;

  /** @internal Built by BreakerTuning.forBackend(). */
  constructor(backend: string, owner: BreakerTuning, clock: Clock) {
    this.backend = backend;
    this.#owner = owner;
    this.#clock = clock;
    this.#slotMs = owner.windowMs / SLOTS;
  }

  /** Counts one verdict of a request the breaker admitted (success or failure); `now` defaults to the clock. */
  record(failed: boolean, now: number = this.#clock.now()): void {
    const s = Math.floor(now / this.#slotMs);
    if (s !== this.#slot) this.#advance(s);
    const i = s % SLOTS;
    this.#requests[i]!++;
    this.#totalRequests++;
    if (failed) {
      this.#failures[i]!++;
      this.#totalFailures++;
    }
  }

  /**
   * The trip decision now: a reason when the window holds at least `min_requests` and its error
   * rate exceeds the threshold; null otherwise — including while there is no threshold yet, when
   * the static rule applies (see `threshold`).
   */
  check(now: number = this.#clock.now()): TripReason | null {
    const s = Math.floor(now / this.#slotMs);
    if (s !== this.#slot) this.#advance(s);
    const threshold = this.#currentThreshold(now);
    if (threshold === null) return null;
    const n = this.#totalRequests;
    if (n < this.#owner.minRequests) return null;
    const rate = this.#totalFailures / n;
    if (!(rate > threshold)) return null;
    const base = this.#baselineErrorRate ?? 0;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    return {
      backend: this.backend,
      windowMs: this.#owner.windowMs,
      requests: n,
      failures: this.#totalFailures,
      errorRate: rate,
      threshold,
      baselineErrorRate: base,
      message:
        `error rate ${pct(rate)} (${this.#totalFailures} of ${n}) over ${this.#owner.windowMs / 1000}s above threshold ${pct(threshold)} ` +
        `(${THRESHOLD_FACTOR} × baseline ${pct(base)}, within ${MIN_THRESHOLD * 100}%..${MAX_THRESHOLD * 100}%)`,
    };
  }

  /**
   * Below `min_requests` in the window an error rate means nothing, so a run of consecutive
   * failures decides: how long a run must be (at least `staticThreshold`) for a backend whose
   * baseline error rate is b to produce it by chance only about once in 10⁷ requests — log(1e-7) /
   * log(b), capped. Null while the window has the volume for its rate rule (or no threshold).
   */
  lowVolumeRun(staticThreshold: number, now: number = this.#clock.now()): number | null {
    const s = Math.floor(now / this.#slotMs);
    if (s !== this.#slot) this.#advance(s);
    if (this.#totalRequests >= this.#owner.minRequests) return null;
    const b = this.#baselineErrorRate ?? 0;
    if (!(b > 0)) return staticThreshold;
    return Math.max(staticThreshold, Math.min(MAX_LOW_VOLUME_RUN, Math.ceil(LOW_VOLUME_LOG_ODDS / Math.log(b) - 1e-9)));
  }

  /** The learned threshold (0..1), or null while the static rule applies. */
  get threshold(): number | null {
    return this.#currentThreshold(this.#clock.now());
  }

  /** The backend's baseline error rate behind the threshold, or null. */
  get baselineErrorRate(): number | null {
    this.#currentThreshold(this.#clock.now());
    return this.#baselineErrorRate;
  }

  /** Requests and failures in the window now. */
  counts(): { requests: number; failures: number } {
    const s = Math.floor(this.#clock.now() / this.#slotMs);
    if (s !== this.#slot) this.#advance(s);
    return { requests: this.#totalRequests, failures: this.#totalFailures };
  }

  /** Forgets the window (call when the breaker closes again, so old failures cannot re-trip it). */
  reset(): void {
    this.#requests.fill(0);
    this.#failures.fill(0);
    this.#totalRequests = 0;
    this.#totalFailures = 0;
  }

  /** Re-reads the baseline now. */
  refresh(now = this.#clock.now()): void {
    this.#nextRefresh = now + this.#owner.refreshIntervalMs;
    let b: BackendBaseline | null;
    try {
      b = this.#owner.baselines.backend(this.backend);
    } catch (err) {
      // Keep the previous threshold: a failing analytics lookup must not change a breaker.
      this.#owner.onError?.(err);
      return;
    }
    if (b === null || !(b.sampleSize >= MIN_BASELINE_SAMPLES) || !(b.errorRate >= 0)) {
      this.#threshold = null;
      this.#baselineErrorRate = null;
      return;
    }
    this.#baselineErrorRate = b.errorRate;
    this.#threshold = adaptiveThreshold(b.errorRate);
  }

  #currentThreshold(now: number): number | null {
    if (now >= this.#nextRefresh) this.refresh(now);
    return this.#threshold;
  }

  /** Moves the ring to slot `s`, clearing the slots passed over. */
  #advance(s: number): void {
    const prev = this.#slot;
    this.#slot = s;
    if (prev < 0 || s < prev) {
      // First use, or the clock stepped back: start clean.
      if (prev >= 0) this.reset();
      return;
    }
    const steps = s - prev < SLOTS ? s - prev : SLOTS;
    for (let k = 1; k <= steps; k++) {
      const i = (prev + k) % SLOTS;
      this.#totalRequests -= this.#requests[i]!;
      this.#totalFailures -= this.#failures[i]!;
      this.#requests[i] = 0;
      this.#failures[i] = 0;
    }
  }
}

/** Error windows and learned thresholds for every backend. Hold the ErrorWindow per backend. */
export class BreakerTuning {
  readonly baselines: BackendBaselineSource;
  readonly windowMs: number;
  readonly minRequests: number;
  readonly refreshIntervalMs: number;
  readonly onError: ((err: unknown) => void) | undefined;
  readonly #clock: Clock;
  readonly #windows = new Map<string, ErrorWindow>();

  constructor(opts: BreakerTuningOptions) {
    this.baselines = opts.baselines;
    this.#clock = opts.clock ?? systemClock;
    this.windowMs = opts.windowMs ?? DEFAULT_BREAKER_WINDOW_MS;
    this.minRequests = opts.minRequests ?? DEFAULT_BREAKER_MIN_REQUESTS;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? DEFAULT_REFRESH_MS;
    this.onError = opts.onError;
    if (!(this.windowMs >= SLOTS)) throw new RangeError(`breaker tuning: windowMs must be >= ${SLOTS} (got ${this.windowMs})`);
    if (!Number.isInteger(this.minRequests) || this.minRequests < 1) throw new RangeError(`breaker tuning: minRequests must be an integer >= 1 (got ${this.minRequests})`);
  }

  /** The backend's window (created on first use; the same object afterwards). */
  forBackend(url: string): ErrorWindow {
    let w = this.#windows.get(url);
    if (w === undefined) {
      w = new ErrorWindow(url, this, this.#clock);
      this.#windows.set(url, w);
    }
    return w;
  }

  /** `breaker_threshold` for /analytics/backends: the learned threshold, or null (static rule). */
  threshold(url: string): number | null {
    return this.#windows.get(url)?.threshold ?? null;
  }

  /** Re-reads every backend's baseline now (e.g. after each analyzer run). */
  refresh(): void {
    for (const w of this.#windows.values()) w.refresh();
  }

  /** Drops a removed backend's window. */
  remove(url: string): void {
    this.#windows.delete(url);
  }
}
