/**
 * The acting half of the adaptive layer: learned route-wide limits with fair shedding and shadow
 * mode, latency-weighted balancing, self-tuning breaker thresholds. Pure, clock-driven classes fed
 * by small baseline interfaces (src/analytics implements them); no I/O, no timers, no HTTP. It must
 * not import analytics, the gateway, the balancer or the breaker: the wiring (module.ts) adapts to it.
 */
export type { BackendBaseline, BackendBaselineSource, ResponseOutcome, RouteBaseline, RouteBaselineSource } from './sources.js';
export { MemoryRouteBucketStore, type RouteBucketStore, type RouteTake } from './route-bucket-store.js';
export { ClientRates, CLIENT_RATE_TAU_MS, DEFAULT_MAX_CLIENTS } from './client-rates.js';
export {
  AdaptiveRefusal,
  AdaptiveRouteLimiter,
  RouteLimit,
  DEBT_FRACTION,
  type AdaptiveMode,
  type AdaptiveRouteLimiterOptions,
  type AdaptiveRouteLimitSettings,
  type LimitChange,
  type RefusalReason,
  type RouteLimitStats,
} from './route-limit.js';
export {
  LatencyWeightedBalancer,
  DEFAULT_EWMA_TAU_MS,
  DEFAULT_WEIGHT_FLOOR,
  FAILURE_PENALTY,
  STALE_MS,
  type BackendWeight,
  type LatencyWeightedOptions,
  type WeightedCandidate,
} from './weighted.js';
export {
  BreakerTuning,
  ErrorWindow,
  adaptiveThreshold,
  DEFAULT_BREAKER_MIN_REQUESTS,
  DEFAULT_BREAKER_WINDOW_MS,
  MAX_THRESHOLD,
  MIN_THRESHOLD,
  THRESHOLD_FACTOR,
  type BreakerTuningOptions,
  type TripReason,
} from './breaker-tuning.js';
export { resolveAdaptiveConfig, type AdaptiveConfig } from './config.js';
export { RedisRouteBucketStore, DEFAULT_ROUTE_SYNC_MS, type RedisRouteBucketStoreOptions } from './redis-route-bucket-store.js';
// The wiring (imports the host, balancer and breaker; the classes above do not).
export { adaptiveModule, type AdaptiveService } from './module.js';
// Host-supplied sources (server.workers: src/cluster).
export { createAdaptiveModule, routeSource, backendSource, type AdaptiveModuleOptions } from './module.js';
