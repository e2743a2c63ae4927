/** The contract of a balancing strategy: pick a backend, and learn from how each response went. */
import type { Clock } from '../../clock.js';
import type { RouteConfig } from '../../config/index.js';
import type { Backend } from '../backend.js';

/**
 * How a response went, from the backend's side:
 * - `success`: the backend answered (any status below 500, 4xx included: the backend worked);
 * - `backend_error`: a 5xx from the backend, a connect error or an upstream timeout;
 * - `client_error`: the client caused the end (it went away, or sent a body over the limit). Never
 *   a backend failure.
 * Requests the backend never saw (the gateway's own 401/429/503, a full queue) give no feedback.
 */
export type Outcome = 'success' | 'backend_error' | 'client_error';

export interface Strategy {
  /**
   * Picks an available backend and reserves it (Backend#tryAcquire), or null when none is
   * available. `exclude` is skipped (for a retry). O(backends), no I/O, no allocation.
   */
  pick(exclude?: Backend | null): Backend | null;
  /**
   * One finished response of a backend this route picked: its latency (ms, request start to
   * response end) and outcome. Called once per response on the completion path, off the
   * forwarding code; must be O(1) and must not throw.
   */
  feedback(backend: Backend, latencyMs: number, outcome: Outcome): void;
}

/** What a strategy is built from, once per route at start-up. */
export interface StrategyOptions {
  /**
   * The route's backends. The array is live: a backend added at run time (a process added from
   * the dashboard) is pushed onto it, so read it at pick time; never copy it.
   */
  readonly backends: readonly Backend[];
  /** The route's config (its strategy-specific keys, if any). */
  readonly route: RouteConfig;
  readonly clock: Clock;
  /** Uniform in [0, 1); Math.random unless a test injects one. */
  readonly random: () => number;
}

export type StrategyFactory = (opts: StrategyOptions) => Strategy;
