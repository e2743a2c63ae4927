/** The adaptive layer's settings resolved from a parsed config (defaults that depend on other keys). */
import type { Config } from '../config/index.js';
import { DEFAULT_BREAKER_MIN_REQUESTS, DEFAULT_BREAKER_WINDOW_MS } from './breaker-tuning.js';
import type { AdaptiveRouteLimitSettings } from './route-limit.js';

export interface AdaptiveConfig {
  /** The adaptive route limit's settings, or null when `adaptive_rate_limit.enabled` is false. */
  routeLimit: AdaptiveRouteLimitSettings | null;
  /** Latency-weighted balancing on (`weighted_lb.enabled`), with its rebalance interval. */
  weighted: { enabled: boolean; rebalanceIntervalMs: number };
  /** Self-tuning breakers: `circuitbreaker.adaptive`, defaulting to `analytics.enabled`. */
  breaker: { adaptive: boolean; windowMs: number; minRequests: number };
}

/** Resolves the adaptive settings of a validated config. Pure; call once per config snapshot. */
export function resolveAdaptiveConfig(cfg: Config): AdaptiveConfig {
  const a = cfg.adaptive_rate_limit;
  const cb = cfg.circuitbreaker;
  return Object.freeze({
    routeLimit: a.enabled
      ? Object.freeze({
          multiplier: a.multiplier,
          minLimit: a.min_limit,
          maxLimit: a.max_limit,
          learningPeriodMs: a.learning_period,
          burstMs: a.burst,
          shadow: a.shadow,
        })
      : null,
    weighted: Object.freeze({ enabled: cfg.weighted_lb.enabled, rebalanceIntervalMs: cfg.weighted_lb.rebalance_interval }),
    breaker: Object.freeze({
      adaptive: cb.adaptive ?? cfg.analytics.enabled,
      windowMs: cb.window ?? DEFAULT_BREAKER_WINDOW_MS,
      minRequests: cb.min_requests ?? DEFAULT_BREAKER_MIN_REQUESTS,
    }),
  });
}
