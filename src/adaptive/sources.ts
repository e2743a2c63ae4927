/**
 * What the acting half needs from the learning half, as small interfaces. src/analytics implements
 * them (or the lead adapts its baselines to them); nothing here imports analytics.
 */

/** A route's learned traffic, as the analyzer last computed it. */
export interface RouteBaseline {
  /** Mean requests per minute over the analytics window (admitted traffic only). */
  avgRatePerMin: number;
  /** How much traffic data the baseline stands on, in ms (not uptime: time covered by recorded buckets). */
  dataMs: number;
}

/** Looked up per route; `null` while the route has no baseline yet. */
export interface RouteBaselineSource {
  baseline(route: string): RouteBaseline | null;
}

/** A backend's learned behaviour. */
export interface BackendBaseline {
  /** Typical (mean) latency in ms. */
  latencyMs: number;
  /** Fraction of responses that failed (5xx, connect error, timeout), 0..1. */
  errorRate: number;
  /** Requests the baseline stands on. */
  sampleSize: number;
}

/** Looked up per backend URL; `null` while the backend has no baseline yet. */
export interface BackendBaselineSource {
  backend(url: string): BackendBaseline | null;
}

/** How one proxied response ended, as the balancer's feedback sees it. `aborted` carries no verdict. */
export type ResponseOutcome = 'success' | 'failure' | 'aborted';
