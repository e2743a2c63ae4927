/**
 * Health: active probes with hysteresis (HealthChecker), the `/health` endpoint (the reference's
 * shape) and the load-balancer probes `/health/live` and `/health/ready`. Probing is off the
 * request path; the proxy only reads `backend.healthy`. Must not start processes or listen.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import { systemClock, timersOf } from '../clock.js';
import { formatUptime } from '../config/index.js';
import type { HealthChecker } from './checker.js';

export { HealthChecker, type BackendHealth, type HealthCheckerOptions } from './checker.js';

export interface HealthEndpointOptions {
  checker: HealthChecker;
  startedAt: number;
  clock?: Clock;
  /**
   * Dependencies that are down but have a fallback, so requests are still served (e.g. the
   * cluster store failing open): `status: "degraded"` with 200. Empty when fine.
   */
  degradedReasons?: () => string[];
  /** Dependencies that are down with no fallback (e.g. the store with fail_closed): "degraded" with 503. */
  failingReasons?: () => string[];
}

/**
 * `GET /health`: the reference JSON shape, always application/json. 200 "healthy"; 200 "degraded"
 * when only a dependency with a fallback is down (an outage of a shared dependency must not make
 * every instance look dead); 503 "degraded" when a backend is unhealthy or a dependency without a
 * fallback is down.
 */
export function healthEndpoint(opts: HealthEndpointOptions) {
  const clock = opts.clock ?? systemClock;
  return function healthHandler(_req: IncomingMessage, res: ServerResponse): void {
    const backends = opts.checker.snapshot();
    const soft = opts.degradedReasons?.() ?? [];
    const hard = opts.failingReasons?.() ?? [];
    let up = hard.length === 0;
    for (const b of Object.values(backends)) if (!b.healthy) up = false;
    const healthy = up && soft.length === 0;
    const body = JSON.stringify({
      status: healthy ? 'healthy' : 'degraded',
      uptime: formatUptime(clock.now() - opts.startedAt),
      backends,
      degraded: [...hard, ...soft],
    });
    res.writeHead(up ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** Paths of the health endpoints; all are public when admin.public_health is true. */
export const HEALTH_PATHS: readonly string[] = ['/health', '/health/live', '/health/ready'];

/** Is `path` one of the health endpoints? */
export function isHealthPath(path: string): boolean {
  return path === '/health' || path === '/health/live' || path === '/health/ready';
}

/** `GET /health/live`: 200 whenever the process can answer at all (a liveness probe). */
export function livenessEndpoint() {
  const body = JSON.stringify({ status: 'alive' });
  return function liveHandler(_req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** Where the gateway is in its life: only `ready` takes traffic. */
export type Phase = 'starting' | 'ready' | 'draining';

export interface ReadinessOptions {
  /** The gateway's phase: starting until it listens (auto-start processes through their first probe), draining from shutdown on. */
  phase: () => Phase;
}

/**
 * `GET /health/ready`: 200 `{"status":"ready"}` while the gateway accepts traffic; 503 while it
 * starts or drains, so a load balancer stops sending before the listener closes.
 */
export function readinessEndpoint(opts: ReadinessOptions) {
  return function readyHandler(_req: IncomingMessage, res: ServerResponse): void {
    const phase = opts.phase();
    const body = JSON.stringify({ status: phase });
    res.writeHead(phase === 'ready' ? 200 : 503, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
      ...(phase === 'ready' ? {} : { 'retry-after': '1' }),
    });
    res.end(body);
  };
}

/** Waits `ms` on the clock's timers (resolves at once for 0): the drain delay before the listener closes. */
export function drainDelay(ms: number, clock: Clock = systemClock): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const timers = timersOf(clock);
  return new Promise<void>((resolve) => void timers.setTimeout(resolve, ms));
}
