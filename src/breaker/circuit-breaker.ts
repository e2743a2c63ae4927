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
}

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

  success(): void {
    if (this.#state === 'closed') {
      this.#failures = 0;
    } else if (this.#state === 'half_open' && this.#probes > 0) {
      this.#failures = 0;
      this.#transition('closed');
    }
  }

  failure(): void {
    if (this.#state === 'closed') {
      this.#failures++;
      if (this.#shouldTrip()) this.#open();
    } else if (this.#state === 'half_open' && this.#probes > 0) {
      this.#failures++;
      this.#open();
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
    };
  }

  /**
   * Trip condition, checked on each counted failure while closed. The adaptive layer adds a second
   * condition here: the error rate over a time window (successes and failures in fixed time buckets,
   * not reset by one success; see reference B3) above the backend's learned, clamped threshold.
   * success() will then also record into that window. Both stay O(1) per call.
   */
  #shouldTrip(): boolean {
    return this.#failures >= this.#threshold;
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.#transition('open');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
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
