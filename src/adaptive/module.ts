/**
 * The adaptive module: acts on what analytics learned. Built after the analytics module (whose
 * baselines it reads) and so after the static rate limit, it registers
 *  - the adaptive route limit as a `limit`-phase stage after the static one (client = consumer,
 *    else the client IP, IPv6 by its /64), with its route buckets in Redis in cluster mode;
 *  - learned baselines for every `weighted` route (every route when `weighted_lb.enabled`);
 *  - a learned error-rate window in every backend's breaker (`circuitbreaker.adaptive`);
 * and provides the `adaptive` readout /analytics/*, /metrics and the dashboard read back.
 * Limit changes and breaker trips are notices (`adaptive`, `breaker` SSE events) and one log line.
 */
import type { Analytics } from '../analytics/index.js';
import { WeightedStrategy, type Backend } from '../balancer/index.js';
import { CircuitBreaker, type BreakerTrip } from '../breaker/index.js';
import type { Verdict } from '../events/index.js';
import type { AdaptiveReadout, Host, ModuleSpec } from '../host.js';
import type { CounterCell } from '../metrics/cells.js';
import { BucketKeys, clientKey, type CompiledRoute, type Next, type RequestContext } from '../pipeline/index.js';
import { BreakerTuning } from './breaker-tuning.js';
import { resolveAdaptiveConfig } from './config.js';
import { RedisRouteBucketStore } from './redis-route-bucket-store.js';
import { AdaptiveRouteLimiter, type LimitChange, type RouteLimit } from './route-limit.js';
import type { RouteBucketStore } from './route-bucket-store.js';
import type { BackendBaselineSource, RouteBaselineSource } from './sources.js';

/** Baselines are re-read at most this often (ms), and at least every analyzer run. */
const MAX_REFRESH_MS = 10_000;

/** What the adaptive module provides as the `adaptive` service: the readout plus per-route numbers. */
export interface AdaptiveService extends AdaptiveReadout {
  /** Extra fields of a route's /analytics/routes entry, or null when the route has no adaptive limit. */
  routeInfo(route: string): Record<string, unknown> | null;
  degradedReasons(): string[];
  /** Re-reads every route's and backend's baseline now (limit changes are announced at once). */
  refresh(): void;
}

// --- host-supplied sources (server.workers, src/cluster) ---
/**
 * For a host where analytics lives elsewhere (a cluster worker: the primary pushes the baselines)
 * or where the decisions are made elsewhere (the cluster primary: counts come from the records).
 * Without options the module reads the `analytics` service, as in one process.
 */
export interface AdaptiveModuleOptions {
  /** Baselines instead of the `analytics` service; `onUpdate` re-reads the route limits at once. */
  baselines?: { routes: RouteBaselineSource; backends: BackendBaselineSource; onUpdate?(listener: () => void): () => void };
  /** The route buckets (when `cluster.redis_url` is not set; Redis wins otherwise). */
  routeStore?: RouteBucketStore;
  /** Log and publish limit changes (default true; false where another process announces them). */
  announce?: boolean;
  /** Decisions and refusals counted elsewhere (the primary, from the workers' records) for /analytics/routes. */
  routeCounts?: (route: string) => { decisions: number; refusals: number } | null;
}

/** Options of hosts built by createAdaptiveModule (a derived host object carries them). */
const HOST_OPTIONS = new WeakMap<Host, AdaptiveModuleOptions>();

/** The adaptive module with host-supplied sources (see AdaptiveModuleOptions). */
export function createAdaptiveModule(opts: AdaptiveModuleOptions): ModuleSpec {
  return {
    ...adaptiveModule,
    build(host) {
      const derived = Object.create(host) as Host;
      HOST_OPTIONS.set(derived, opts);
      return adaptiveModule.build(derived);
    },
  };
}
// --- end host-supplied sources ---

export const adaptiveModule: ModuleSpec = {
  name: 'adaptive',
  // Every adaptive part acts on analytics baselines (the config refuses them without analytics).
  enabled: (config) => config.analytics.enabled,
  build(host) {
    const cfg = host.config.current;
    const ac = resolveAdaptiveConfig(cfg);
    const opts = HOST_OPTIONS.get(host) ?? {};
    const metrics = host.services.get('metrics');
    const refreshMs = Math.min(cfg.analytics.analyzer_interval, MAX_REFRESH_MS);
    const analytics = opts.baselines === undefined ? host.services.need('analytics') : null;
    const routeBaselines = opts.baselines?.routes ?? routeSource(analytics!, cfg.analytics.bucket_interval);
    const backendBaselines = opts.baselines?.backends ?? backendSource(analytics!);
    const announce = opts.announce ?? true;
    const onBaselineError = (err: unknown) => host.logger.warn({ err: (err as Error)?.message }, 'adaptive: reading a baseline failed; keeping the previous one');

    // --- 1-4. the adaptive route limit ---
    let limiter: AdaptiveRouteLimiter | null = null;
    let redisStore: RedisRouteBucketStore | null = null;
    const stageRoutes = new Map<CompiledRoute, RouteEntry>();
    if (ac.routeLimit !== null) {
      if (cfg.cluster.redis_url) {
        redisStore = new RedisRouteBucketStore({
          url: cfg.cluster.redis_url,
          keyPrefix: cfg.cluster.key_prefix,
          timeoutMs: cfg.cluster.timeout,
          clock: host.clock,
          onError: (op, err) => {
            metrics?.storeError('redis', `adaptive_${op}`);
            host.logger.warn({ op, err: (err as Error)?.message }, 'adaptive route buckets: Redis unreachable, each instance enforces the limit alone');
          },
        });
      }
      // A reload rebuilds this module: routes that stay keep their bucket, client rates and
      // announced limit (the limiter it replaces is carried while the limit's settings are unchanged).
      const carried = host.reuse(
        'adaptive-route-limiter',
        JSON.stringify({ limit: cfg.adaptive_rate_limit, redis: cfg.cluster.redis_url ?? null }),
        () => ({ limiter: null as AdaptiveRouteLimiter | null }),
        () => {},
      ).value;
      limiter = new AdaptiveRouteLimiter(
        host.topology.routes.map((r) => r.prefix),
        {
          ...ac.routeLimit,
          previous: carried.limiter,
          baselines: routeBaselines,
          clock: host.clock,
          store: redisStore ?? opts.routeStore,
          refreshIntervalMs: refreshMs,
          onLimitChange: (change: LimitChange) => {
            if (!announce) return;
            host.logger.info({ route: change.route, previous: change.previous, limit: change.limit, baseline: change.baselinePerMin, multiplier: change.multiplier }, change.message);
            host.notices.publish('adaptive', change);
          },
          onError: onBaselineError,
        },
      );
      carried.limiter = limiter;
      for (const r of host.topology.routes) {
        const limit = limiter.forRoute(r.prefix)!;
        stageRoutes.set(r, new RouteEntry(limit, metrics?.adaptiveRejectionCell(r.prefix, limiter.mode) ?? null));
        metrics?.setAdaptiveLimitSource(r.prefix, () => limit.limit);
      }
    }

    // --- 6. self-tuning breakers ---
    let tuning: BreakerTuning | null = null;
    const offs: (() => void)[] = [];
    if (ac.breaker.adaptive) {
      const t = new BreakerTuning({ baselines: backendBaselines, clock: host.clock, windowMs: ac.breaker.windowMs, minRequests: ac.breaker.minRequests, refreshIntervalMs: refreshMs, onError: onBaselineError });
      tuning = t;
      const attach = (b: Backend): void => {
        if (!(b.breaker instanceof CircuitBreaker)) return;
        b.breaker.useWindow(t.forBackend(b.url), (trip) => onTrip(host, b.url, trip));
      };
      for (const b of host.topology.backends()) attach(b);
      offs.push(host.topology.onAdded(attach));
    }

    // --- 5. weighted balancing (strategies are bound after every module is built: wired at start) ---
    const weighted: WeightedStrategy[] = [];

    const service: AdaptiveService = {
      currentLimit: (route) => limiter?.limit(route) ?? null,
      backendWeight(url) {
        for (const s of weighted) {
          const w = s.weight(url);
          if (w !== null) return Math.round(w * 1000) / 1000;
        }
        return null;
      },
      breakerThreshold: (url) => tuning?.threshold(url) ?? null,
      degradedReasons: () => (redisStore !== null && redisStore.degraded ? ['adaptive limit: Redis unreachable, each instance enforces the route limits alone'] : []),
      routeInfo(route) {
        const r = limiter?.forRoute(route);
        if (r === undefined || r === null) return null;
        const s = r.stats();
        const counted = opts.routeCounts?.(route) ?? null;
        const refusals = counted === null ? s.refusals : counted.refusals;
        return {
          adaptive_mode: s.mode,
          adaptive_baseline: s.baselinePerMin === null ? null : Math.round(s.baselinePerMin * 100) / 100,
          adaptive_refusals: s.mode === 'enforce' ? refusals : 0,
          shadow_refusals: s.mode === 'shadow' ? refusals : 0,
          adaptive_decisions: counted === null ? s.decisions : counted.decisions,
          fair_share: s.fairSharePerMin === null ? null : Math.round(s.fairSharePerMin),
          active_clients: s.activeClients,
        };
      },
      refresh() {
        limiter?.refresh();
        tuning?.refresh();
      },
    };
    host.provide('adaptive', service);
    if (opts.baselines?.onUpdate !== undefined) {
      // Pushed baselines apply at once (limits, breaker thresholds); weights at their rebalance.
      offs.push(opts.baselines.onUpdate(() => service.refresh()));
    }
    metrics?.setWeightSource((url) => service.backendWeight(url));

    return {
      stages: stageRoutes.size > 0 ? { limit: adaptiveLimitStage(stageRoutes) } : undefined,
      async start() {
        for (const r of host.topology.routes) {
          if (ac.weighted.enabled && !(r.selector instanceof WeightedStrategy)) {
            // `weighted_lb.enabled`: every route is weighted (one backend: allowed, a no-op).
            r.selector = new WeightedStrategy(r.backends, host.clock, Math.random);
          }
          if (r.selector instanceof WeightedStrategy) {
            r.selector.useBaselines({ baselines: backendBaselines, rebalanceIntervalMs: ac.weighted.rebalanceIntervalMs, onError: onBaselineError });
            weighted.push(r.selector);
          }
        }
        if (redisStore !== null) await redisStore.start();
      },
      async close() {
        for (const f of offs.splice(0)) f();
        if (redisStore !== null) await redisStore.close();
      },
    };
  },
};

function onTrip(host: Host, backend: string, trip: BreakerTrip): void {
  host.logger.warn({ backend, ...trip }, `circuit breaker tripped: ${backend}: ${trip.message}`);
  host.services.get('metrics')?.breakerTrip(backend, trip.rule);
  host.notices.publish('breaker', { backend, ...trip });
}

/** The verdict of an admitted request while a limit applies: shared, never mutated. */
const PASS: Readonly<Record<'enforce' | 'shadow', Verdict>> = Object.freeze({
  enforce: Object.freeze({ policy: 'adaptive', verdict: 'pass', mode: 'enforce' }) as Verdict,
  shadow: Object.freeze({ policy: 'adaptive', verdict: 'pass', mode: 'shadow' }) as Verdict,
});

class RouteEntry {
  readonly limit: RouteLimit;
  readonly rejections: CounterCell | null;
  readonly pass: Verdict;
  constructor(limit: RouteLimit, rejections: CounterCell | null) {
    this.limit = limit;
    this.rejections = rejections;
    this.pass = PASS[limit.mode];
  }
}

/** Stage (`limit` phase, after the static limit): the learned route-wide limit with fair shedding. */
function adaptiveLimitStage(routes: ReadonlyMap<CompiledRoute, RouteEntry>) {
  // Client keys (an address's, an IPv6 address's /64; `c:<consumer>`), remembered as the static limiter's are.
  const ipKeys = new BucketKeys('', clientKey);
  const consumerKeys = new BucketKeys('c:');
  return function adaptiveLimit(ctx: RequestContext, next: Next): void {
    const route = ctx.route;
    const entry = route === null ? undefined : routes.get(route);
    if (entry === undefined) return next(ctx);
    const consumer = ctx.consumer;
    const refusal = entry.limit.decide(consumer === undefined ? ipKeys.of(ctx.clientIp) : consumerKeys.of(consumer));
    if (refusal === null) {
      if (entry.limit.limit !== null) ctx.addVerdict(entry.pass);
      return next(ctx);
    }
    if (entry.rejections !== null) entry.rejections.value++;
    const detail = refusal.detail();
    if (refusal.enforced) {
      ctx.decision = 'adaptive_limited';
      ctx.detail = detail;
      ctx.addVerdict({ policy: 'adaptive', verdict: 'refuse', mode: 'enforce', detail });
      throw refusal.toError();
    }
    ctx.addVerdict({ policy: 'adaptive', verdict: 'would_refuse', mode: 'shadow', detail: { ...detail, message: refusal.message } });
    next(ctx);
  };
}

/** The analytics baselines as the adaptive layer reads them (the cluster primary pushes these to workers). */
export function routeSource(analytics: Analytics, widthMs: number): RouteBaselineSource {
  return {
    baseline(route) {
      const b = analytics.routeBaseline(route);
      // Data, not uptime: the buckets the baseline covers.
      return b === undefined ? null : { avgRatePerMin: b.rateMean, dataMs: b.sampleSize * widthMs };
    },
  };
}

export function backendSource(analytics: Analytics): BackendBaselineSource {
  return {
    backend(url) {
      const b = analytics.backendBaseline(url);
      if (b === undefined || b.latencyMeanMs === null) return null;
      return { latencyMs: b.latencyMeanMs, errorRate: b.errorRate, sampleSize: b.requests };
    },
  };
}
