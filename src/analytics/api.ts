/**
 * The analytics HTTP API (reference paths and shapes): /analytics/routes, /analytics/routes/{route}/history,
 * /analytics/anomalies, /analytics/backends. JSON only, lists never null, routes in config order.
 * It is an admin handler: the host mounts it behind the admin guard; it checks nothing about the caller.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../config/index.js';
import { sendError, sendJson } from '../server/index.js';
import type { Anomaly, SeriesBaseline } from './analyzer.js';

export const ANALYTICS_PREFIX = '/analytics';
const DAY_MS = 86_400_000;
const DEFAULT_RANGE_MS = 3_600_000;
/** ISO 8601 date-time (what `Date.parse` reads reliably): 2026-11-28T05:00:00Z, with optional fraction and offset. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

export interface HistoryPoint {
  timestamp: string;
  request_count: number;
  rejected_count: number;
  error_rate: number;
  avg_latency_ms: number | null;
  p99_latency_ms: number | null;
  bytes_in: number;
  bytes_out: number;
}

/** What the API reads; the analytics module implements it. */
export interface AnalyticsView {
  /** Configured route prefixes in config order. */
  readonly routes: readonly string[];
  readonly widthMs: number;
  readonly retentionMs: number;
  now(): number;
  backends(): readonly string[];
  routeBaseline(route: string): SeriesBaseline | undefined;
  backendBaseline(url: string): SeriesBaseline | undefined;
  hasRoute(route: string): boolean;
  anomalies(route: string | undefined, sinceMs: number): Anomaly[];
  history(route: string, fromMs: number, toMs: number, stepMs: number): Promise<HistoryPoint[]>;
  currentLimit(route: string): number | null;
  backendWeight(url: string): number | null;
  breakerThreshold(url: string): number | null;
}

export type AnalyticsHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

function requestIdOf(res: ServerResponse): string {
  const id = res.getHeader('x-request-id');
  return typeof id === 'string' ? id : '';
}

function badRequest(res: ServerResponse, message: string): void {
  sendError(res, 400, 'bad_request', message, requestIdOf(res));
}

function parseTime(value: string | null, name: string): number | string | undefined {
  if (value === null || value === '') return undefined;
  const ms = ISO_TIME.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) return `${name} must be an ISO 8601 time such as 2026-11-28T05:00:00Z (got ${JSON.stringify(value.slice(0, 64))})`;
  return ms;
}

/** A published anomaly without the internal bucket index. */
function anomalyJson(a: Anomaly): Omit<Anomaly, 'bucket'> {
  return { route: a.route, metric: a.metric, current: a.current, mean: a.mean, std_dev: a.std_dev, z_score: a.z_score, timestamp: a.timestamp, ended_at: a.ended_at };
}

export function createAnalyticsApi(view: AnalyticsView): AnalyticsHandler {
  function routesJson(): unknown {
    const now = view.now();
    const routes = view.routes.map((route) => {
      const b = view.routeBaseline(route);
      return {
        route,
        avg_rate: b?.rateMean ?? 0,
        avg_latency_ms: b?.latencyMeanMs ?? null,
        p50_latency_ms: b?.p50Ms ?? null,
        p99_latency_ms: b?.p99Ms ?? null,
        error_rate: b?.errorRate ?? 0,
        current_rate_limit: view.currentLimit(route),
        anomalies_24h: view.anomalies(route, now - DAY_MS).length,
        learning: b?.learning ?? true,
        sample_size: b?.sampleSize ?? 0,
        rate_std_dev: b?.rateStdDev ?? 0,
      };
    });
    return { routes };
  }

  function backendsJson(): unknown {
    const backends = view.backends().map((url) => {
      const b = view.backendBaseline(url);
      return {
        backend: url,
        avg_latency_ms: b?.latencyMeanMs ?? null,
        p50_latency_ms: b?.p50Ms ?? null,
        p99_latency_ms: b?.p99Ms ?? null,
        error_rate: b?.errorRate ?? 0,
        weight: view.backendWeight(url),
        breaker_threshold: view.breakerThreshold(url),
        learning: b?.learning ?? true,
        sample_size: b?.sampleSize ?? 0,
      };
    });
    return { backends };
  }

  async function history(res: ServerResponse, route: string, query: URLSearchParams): Promise<void> {
    const now = view.now();
    const width = view.widthMs;
    const to = parseTime(query.get('to'), 'to');
    if (typeof to === 'string') return badRequest(res, to);
    const from = parseTime(query.get('from'), 'from');
    if (typeof from === 'string') return badRequest(res, from);
    let stepMs = width;
    const stepRaw = query.get('step');
    if (stepRaw !== null && stepRaw !== '') {
      const parsed = stepRaw.length <= 32 ? parseDuration(stepRaw) : undefined;
      if (parsed === undefined || !Number.isFinite(parsed)) return badRequest(res, `step must be a duration such as 60s or 5m (got ${JSON.stringify(stepRaw.slice(0, 32))})`);
      if (parsed < width) return badRequest(res, `step must be at least the bucket width, ${width / 1000}s (got ${stepRaw})`);
      stepMs = Math.floor(parsed / width) * width;
    }
    let toMs = to ?? now;
    let fromMs = from ?? toMs - DEFAULT_RANGE_MS;
    if (fromMs >= toMs) return badRequest(res, 'from must be before to');
    let clamped = false;
    const oldest = (Math.floor(now / width) + 1) * width - view.retentionMs;
    if (fromMs < oldest) {
      fromMs = oldest;
      clamped = true;
    }
    if (toMs > now) {
      toMs = now;
      clamped = true;
    }
    const body: Record<string, unknown> = { route, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), step_ms: stepMs, clamped, history: [] };
    if (fromMs < toMs) body.history = await view.history(route, fromMs, toMs, stepMs);
    sendJson(res, 200, body);
  }

  function anomalies(res: ServerResponse, query: URLSearchParams): void {
    const route = query.get('route');
    if (route !== null && route !== '' && !view.hasRoute(route)) {
      sendError(res, 404, 'not_found', `no route ${JSON.stringify(route.slice(0, 200))}`, requestIdOf(res));
      return;
    }
    const since = parseTime(query.get('since'), 'since');
    if (typeof since === 'string') return badRequest(res, since);
    const list = view.anomalies(route === null || route === '' ? undefined : route, since ?? 0).map(anomalyJson);
    sendJson(res, 200, { anomalies: list, count: list.length });
  }

  return function analyticsApi(req, res, path) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed here (allowed: GET, HEAD)`, requestIdOf(res), { allow: 'GET, HEAD' });
      return;
    }
    const q = (req.url ?? '').indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : (req.url ?? '').slice(q + 1));
    const sub = path.startsWith(ANALYTICS_PREFIX) ? path.slice(ANALYTICS_PREFIX.length) : path;
    if (sub === '/routes' || sub === '/routes/') return sendJson(res, 200, routesJson());
    if (sub === '/backends' || sub === '/backends/') return sendJson(res, 200, backendsJson());
    if (sub === '/anomalies' || sub === '/anomalies/') return anomalies(res, query);
    if (sub.startsWith('/routes/') && sub.endsWith('/history')) {
      const raw = sub.slice('/routes/'.length, sub.length - '/history'.length);
      let route: string;
      try {
        route = decodeURIComponent(raw);
      } catch {
        return badRequest(res, 'route is not valid percent-encoding');
      }
      if (route !== 'unmatched' && !route.startsWith('/')) route = '/' + route;
      if (route.length > 1 && route.endsWith('/')) route = route.replace(/\/+$/, '');
      if (!view.hasRoute(route)) {
        sendError(res, 404, 'not_found', `no route ${JSON.stringify(route.slice(0, 200))}`, requestIdOf(res));
        return;
      }
      history(res, route, query).catch((err: unknown) => {
        sendError(res, 500, 'internal_error', `history failed: ${(err as Error).message}`, requestIdOf(res));
      });
      return;
    }
    sendError(res, 404, 'not_found', 'Not Found', requestIdOf(res));
  };
}
