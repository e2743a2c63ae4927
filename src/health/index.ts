/**
 * Health: active probes with hysteresis (HealthChecker) and the `/health` endpoint. Probing is
 * off the request path; the proxy only reads `backend.healthy`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { formatUptime } from '../config/index.js';
import type { HealthChecker } from './checker.js';

export { HealthChecker, type BackendHealth, type HealthCheckerOptions } from './checker.js';

export interface HealthEndpointOptions {
  checker: HealthChecker;
  startedAt: number;
  clock?: Clock;
  /** Reasons the gateway itself is degraded (e.g. "cluster store unreachable"); empty when fine. */
  degradedReasons?: () => string[];
}

/** `GET /health`: the reference JSON shape, always application/json, 200 healthy / 503 degraded. */
export function healthEndpoint(opts: HealthEndpointOptions) {
  const clock = opts.clock ?? systemClock;
  return function healthHandler(_req: IncomingMessage, res: ServerResponse): void {
    const backends = opts.checker.snapshot();
    const reasons = opts.degradedReasons?.() ?? [];
    let healthy = reasons.length === 0;
    for (const b of Object.values(backends)) if (!b.healthy) healthy = false;
    const body = JSON.stringify({
      status: healthy ? 'healthy' : 'degraded',
      uptime: formatUptime(clock.now() - opts.startedAt),
      backends,
      degraded: reasons,
    });
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}
