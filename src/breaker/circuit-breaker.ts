/** The per-backend circuit breaker: a small state machine over a Clock, with no timers. */
import type { BreakerGate } from '../balancer/index.js';
import type { BreakerConfig } from '../config/index.js';
import { systemClock, type Clock } from '../clock.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  /** Time source; defaults to the system clock. Tests pass a ManualClock. */
  clock?: Clock;
  /** Called once per transition, synchronously, from whichever call caused or observed it. Must be cheap. */
  onStateChange?: (from: BreakerState, to: BreakerState) => void;
  /** Receives an error thrown by `onStateChange`; it is never rethrown into a request. */
  onError?: (err: unknown) => void;
}

/** Read-only view for `/health` and the dashboard (JSON-ready keys). */
export interface BreakerStats {
  state: BreakerState;
  /** Current streak of failures (reset by a success). */
  consecutive_failures: number;
  /** When the breaker last opened (ISO 8601), while it is open or half-open; null when closed. */
  opened_at: string | null;
  /** Probe requests admitted in half-open that have not reported back yet. */
  half_open_in_flight: number;
  /** Why it last opened, while open or half-open; null when closed. */
  trip: BreakerTrip | null;
}

/**
 * The windowed error-rate rule a breaker can be given (src/adaptive's ErrorWindow implements it):
 * every verdict is recorded; once `threshold` is learned, `check()` replaces the consecutive rule.
 */
export interface BreakerWindow {
  record(failed: boolean, now?: number): void;
  /** A reason to trip now, or null. Only consulted while `threshold` is not null. */
  check(now?: number): WindowTrip | null;
  /** The learned error-rate threshold (0..1), or null while the static rule applies. */
  readonly threshold: number | null;
  /** Forgets the window (called when the breaker closes again). */
  reset(): void;
  /**
   * With a learned threshold but fewer than `min_requests` in the window: the run of consecutive
   * failures that opens the breaker (at least `staticThreshold`); null when the rate rule has volume.
   */
  lowVolumeRun?(staticThreshold: number, now?: number): number | null;
}

/** What a window says when it trips (src/adaptive TripReason). */
export interface WindowTrip {
  windowMs: number;
  /** Requests and failures counted in the window. */
  requests: number;
  failures: number;
  errorRate: number;
  threshold: number;
  baselineErrorRate: number;
  /** "error rate 20.0% (40 of 200) over 10s above threshold 5.0% (5 × baseline 0.0%, within 5%..50%)" */
  message: string;
}

/** Why a breaker opened, JSON-ready: beside `circuit` in /health, in the log line and the `breaker` notice. */
export type BreakerTrip =
  | {
      rule: 'error_rate';
      window_ms: number;
      requests: number;
      failures: number;
      error_rate: number;
      threshold: number;
      baseline_error_rate: number;
      message: string;
      at: string;
    }
  | { rule: 'consecutive_failures'; failures: number; threshold: number; message: string; at: string }
  | { rule: 'half_open_probe_failed'; message: string; at: string };

/**
 * Closed → open after `threshold` consecutive failures; open → half-open once `timeout` ms have
 * passed (checked lazily by `allow()` and `state`); half-open admits at most `half_open_requests`
 * concurrent probes; a probe success closes, a probe failure reopens and restarts the timeout.
 *
 * Verdicts that arrive while open are ignored: they come from requests admitted before it opened
 * and say nothing about the backend now. In half-open a verdict counts only while a probe is in
 * flight. The gate has no per-request ticket, so a very slow request admitted while closed that
 * answers during half-open is taken as a probe's verdict; with upstream timeouts shorter than the
 * breaker timeout this cannot happen.
 */
export class CircuitBreaker implements BreakerGate {
  readonly #threshold: number;
  readonly #timeoutMs: number;
  readonly #halfOpenMax: number;
  readonly #clock: Clock;
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined;
  readonly #onError: ((err: unknown) => void) | undefined;

  #state: BreakerState = 'closed';
  #failures = 0;
  /** Epoch ms of the last opening; meaningful while open or half-open. */
  #openedAt = 0;
  #probes = 0;
  #window: BreakerWindow | null = null;
  #onTrip: ((trip: BreakerTrip) => void) | undefined = undefined;
  #trip: BreakerTrip | null = null;

  constructor(config: BreakerConfig, opts: BreakerOptions = {}) {
    if (!Number.isInteger(config.threshold) || config.threshold < 1) throw new RangeError(`circuit breaker: threshold must be an integer >= 1 (got ${config.threshold})`);
    if (!Number.isFinite(config.timeout) || config.timeout < 0) throw new RangeError(`circuit breaker: timeout must be a duration >= 0 ms (got ${config.timeout})`);
    if (!Number.isInteger(config.half_open_requests) || config.half_open_requests < 1) {
      throw new RangeError(`circuit breaker: half_open_requests must be an integer >= 1 (got ${config.half_open_requests})`);
    }
    this.#threshold = config.threshold;
    this.#timeoutMs = config.timeout;
    this.#halfOpenMax = config.half_open_requests;
    this.#clock = opts.clock ?? systemClock;
    this.#onStateChange = opts.onStateChange;
    this.#onError = opts.onError;
  }

  /** The current state; moves open → half-open here when the timeout has passed. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#timeoutMs) this.#transition('half_open');
    return this.#state;
  }

  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open') return false;
    if (this.#probes >= this.#halfOpenMax) return false;
    this.#probes++;
    return true;
  }

  /**
   * Gives the breaker a windowed error-rate rule (self-tuning breakers): every verdict while closed
   * is recorded into it; once it has a learned threshold its rule replaces the consecutive one.
   * `onTrip` hears every opening with its reason (either rule). Call before traffic.
   */
  useWindow(window: BreakerWindow | null, onTrip?: (trip: BreakerTrip) => void): void {
    this.#window = window;
    this.#onTrip = onTrip;
  }

  /** Why the breaker is open or half-open now; null when closed. */
  get trip(): BreakerTrip | null {
    return this.#state === 'closed' ? null : this.#trip;
  }

  success(): void {
    if (this.#state === 'closed') {
      this.#failures = 0;
      if (this.#window !== null) this.#window.record(false);
    } else if (this.#state === 'half_open' && this.#probes > 0) {
      this.#failures = 0;
      this.#transition('closed');
    }
  }

  failure(): void {
    if (this.#state === 'closed') {
      this.#failures++;
      const trip = this.#shouldTrip();
      if (trip !== null) this.#open(trip);
    } else if (this.#state === 'half_open' && this.#probes > 0) {
      this.#failures++;
      this.#open({ rule: 'half_open_probe_failed', message: 'a half-open probe failed', at: '' });
    }
  }

  release(): void {
    if (this.#state === 'half_open' && this.#probes > 0) this.#probes--;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Epoch ms when the breaker last opened, while open or half-open; null when closed. */
  get openedAt(): number | null {
    return this.#state === 'closed' ? null : this.#openedAt;
  }

  /** Milliseconds until an open breaker half-opens (for `Retry-After`); 0 when not open. */
  get retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, this.#openedAt + this.#timeoutMs - this.#clock.now());
  }

  stats(): BreakerStats {
    const state = this.state;
    return {
      state,
      consecutive_failures: this.#failures,
      opened_at: state === 'closed' ? null : new Date(this.#openedAt).toISOString(),
      half_open_in_flight: this.#probes,
      trip: state === 'closed' ? null : this.#trip,
    };
  }

  /**
   * Trip condition, checked on each counted failure while closed: with a window that has learned a
   * threshold, its error rate over the window (not reset by one success; see reference B3) against
   * that threshold — the consecutive rule is then off while the window has `min_requests`; below
   * that volume a run of consecutive failures unlikely at the backend's baseline opens it
   * (docs/decisions.md "Self-tuning breakers"); otherwise `threshold` consecutive failures. O(1). Allocates only when it trips.
   */
  #shouldTrip(): BreakerTrip | null {
    const w = this.#window;
    if (w !== null) {
      w.record(true);
      if (w.threshold !== null) {
        const r = w.check();
        if (r === null) {
          // Too few requests for a rate to mean anything: a run of failures unlikely at this baseline decides.
          const run = w.lowVolumeRun?.(this.#threshold) ?? null;
          if (run === null || this.#failures < run) return null;
          return { rule: 'consecutive_failures', failures: this.#failures, threshold: run, message: `${this.#failures} consecutive failures at low volume (fewer than the window's minimum requests; run needed ${run})`, at: '' };
        }
        return {
          rule: 'error_rate',
          window_ms: r.windowMs,
          requests: r.requests,
          failures: r.failures,
          error_rate: round4(r.errorRate),
          threshold: round4(r.threshold),
          baseline_error_rate: round4(r.baselineErrorRate),
          message: r.message,
          at: '',
        };
      }
    }
    if (this.#failures < this.#threshold) return null;
    return { rule: 'consecutive_failures', failures: this.#failures, threshold: this.#threshold, message: `${this.#failures} consecutive failures (threshold ${this.#threshold})`, at: '' };
  }

  #open(trip: BreakerTrip): void {
    this.#openedAt = this.#clock.now();
    trip.at = new Date(this.#openedAt).toISOString();
    this.#trip = trip;
    this.#transition('open');
    const onTrip = this.#onTrip;
    if (onTrip === undefined) return;
    try {
      onTrip(trip);
    } catch (err) {
      this.#onError?.(err);
    }
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    // Closed again: the failures that opened it must not reopen it.
    if (to === 'closed' && this.#window !== null) this.#window.reset();
    // Probes admitted in an earlier phase no longer hold a slot; their late verdicts are ignored.
    this.#probes = 0;
    const listener = this.#onStateChange;
    if (listener === undefined) return;
    try {
      listener(from, to);
    } catch (err) {
      this.#onError?.(err);
    }
  }
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
