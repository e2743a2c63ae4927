/** The gateway's Prometheus metrics on a registry of its own, fed by the completion event. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backend } from '../balancer/index.js';
import type { CompletionRecord, Decision } from '../events/index.js';
import { ERROR_CODES } from '../errors.js';
import { pickRequestId } from '../pipeline/index.js';
import { sendError as writeError } from '../server/index.js';
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './cells.js';

/** The method label values: the common methods, everything else is OTHER. */
export const METHOD_LABELS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'OTHER'] as const;
export type MethodLabel = (typeof METHOD_LABELS)[number];
const OTHER_INDEX = METHOD_LABELS.length - 1;

/** Route label of requests that matched no configured route. Prefixes start with "/", so it cannot clash. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Decisions counted in `gateway_rate_limited_total{reason}`: the two limiters' 429s, and failed
 * auth attempts, which are charged to the client IP's bucket (DESIGN §4).
 */
export const RATE_LIMIT_REASONS: readonly Decision[] = ['rate_limited', 'adaptive_limited', 'auth_failed'];

/** `gateway_circuit_state` values. */
export const CIRCUIT_STATE_VALUE = { closed: 0, open: 1, half_open: 2 } as const;

/** Prometheus' default buckets (the reference's `DefBuckets`), in seconds. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

// HTTP methods are case-sensitive (RFC 9110 §9.1), so "get" is not GET; it is OTHER.
function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return OTHER_INDEX;
  }
}

/** Maps any request method onto the bounded label set. */
export function normalizeMethod(method: string): MethodLabel {
  return METHOD_LABELS[methodIndex(method)]!;
}

export interface MetricsOptions {
  /** Configured route prefixes (normalized); their series are bound up front. */
  routes: readonly string[];
  /** The current backends, read at scrape time for the up / circuit-state / weight gauges. */
  backends: () => readonly Backend[];
  /** Node.js process metrics (`process_*`, `nodejs_*`) on the same registry. Default true. */
  collectDefault?: boolean;
  /** Read at scrape time for `gateway_store_degraded`; when given, it wins over `setStoreDegraded()`. */
  storeDegraded?: () => boolean;
  /** Receives scrape failures (the client gets a 500). */
  onError?: (err: unknown) => void;
}

interface StatusSeries {
  readonly byStatus: Map<number, CounterCell>;
  readonly duration: HistogramCell;
}

interface RouteSeries {
  /** Indexed by methodIndex(). */
  readonly methods: StatusSeries[];
  readonly limited: Map<string, CounterCell>;
}

/**
 * The gateway's metrics. Create with `createMetrics()`; subscribe `onCompletion` to the completion
 * bus and answer `/metrics` with `handle`. Both are bound, so they can be passed around as functions.
 */
export class Metrics {
  /** This gateway's registry (never prom-client's global one). */
  readonly registry: Registry;

  readonly #routes = new Map<string, RouteSeries>();
  readonly #unmatched: RouteSeries;
  readonly #backendSeries = new Map<string, StatusSeries>();
  readonly #weights = new Map<string, number>();
  #storeDegraded = false;
  readonly #onError: ((err: unknown) => void) | undefined;

  readonly #requests: CellCounter<'method' | 'route' | 'status'>;
  readonly #duration: CellHistogram<'method' | 'route'>;
  readonly #upstreamRequests: CellCounter<'backend' | 'status'>;
  readonly #upstreamDuration: CellHistogram<'backend'>;
  readonly #rateLimited: CellCounter<'route' | 'reason'>;
  readonly #storeErrors: Counter<'store' | 'op'>;
  readonly #anomalies: Counter<'route' | 'metric'>;

  constructor(opts: MetricsOptions) {
    if (typeof opts.backends !== 'function') throw new TypeError('metrics: backends must be a function returning the current backends');
    const registry = new Registry();
    this.registry = registry;
    this.#onError = opts.onError;
    if (opts.collectDefault !== false) collectDefaultMetrics({ register: registry });

    this.#requests = new CellCounter({
      name: 'gateway_http_requests_total',
      help: 'Requests answered by the gateway, by method, route prefix ("unmatched" when none) and status code.',
      labelNames: ['method', 'route', 'status'],
      registry,
    });
    this.#duration = new CellHistogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Time from request start to response end, by method and route prefix.',
      labelNames: ['method', 'route'],
      buckets: DURATION_BUCKETS,
      registry,
    });
    this.#upstreamRequests = new CellCounter({
      name: 'gateway_upstream_requests_total',
      help: 'Requests sent to a backend, by backend URL and the status the client received.',
      labelNames: ['backend', 'status'],
      registry,
    });
    this.#upstreamDuration = new CellHistogram({
      name: 'gateway_upstream_duration_seconds',
      help: 'Time from request start to response end for requests sent to a backend, by backend URL.',
      labelNames: ['backend'],
      buckets: DURATION_BUCKETS,
      registry,
    });
    this.#rateLimited = new CellCounter({
      name: 'gateway_rate_limited_total',
      help: 'Requests refused by admission limits, by route and reason (rate_limited, adaptive_limited; auth_failed attempts are charged to the client IP).',
      labelNames: ['route', 'reason'],
      registry,
    });
    this.#storeErrors = new Counter({
      name: 'gateway_store_errors_total',
      help: 'Shared-state store operations that failed or timed out (the gateway fell back to local state).',
      labelNames: ['store', 'op'],
      registers: [registry],
    });
    this.#anomalies = new Counter({
      name: 'gateway_anomalies_total',
      help: 'Anomalies detected by the traffic analyzer, by route and metric.',
      labelNames: ['route', 'metric'],
      registers: [registry],
    });

    const backendUp = new Gauge({
      name: 'gateway_backend_up',
      help: 'Whether a backend can take requests now: 1 when healthy (or not yet probed) and its breaker is not open.',
      labelNames: ['backend'],
      registers: [registry],
      collect() {
        backendUp.reset();
        for (const b of opts.backends()) backendUp.set({ backend: b.url }, b.up ? 1 : 0);
      },
    });
    const circuitState = new Gauge({
      name: 'gateway_circuit_state',
      help: 'Circuit breaker state per backend: 0 closed, 1 open, 2 half-open.',
      labelNames: ['backend'],
      registers: [registry],
      collect() {
        circuitState.reset();
        for (const b of opts.backends()) circuitState.set({ backend: b.url }, b.breaker === null ? 0 : CIRCUIT_STATE_VALUE[b.breaker.state]);
      },
    });
    const weights = this.#weights;
    const backendWeight = new Gauge({
      name: 'gateway_backend_weight',
      help: 'Load-balancing weight per backend, as last set by the weighted balancer.',
      labelNames: ['backend'],
      registers: [registry],
      collect() {
        backendWeight.reset();
        // Only current backends: a removed backend's weight disappears with it.
        for (const b of opts.backends()) {
          const w = weights.get(b.url);
          if (w !== undefined) backendWeight.set({ backend: b.url }, w);
        }
      },
    });
    const storeDegraded = new Gauge({
      name: 'gateway_store_degraded',
      help: '1 while the shared store is unreachable and the gateway runs on local state, else 0.',
      registers: [registry],
      collect: () => {
        storeDegraded.set(opts.storeDegraded ? (opts.storeDegraded() ? 1 : 0) : this.#storeDegraded ? 1 : 0);
      },
    });

    for (const route of opts.routes) {
      if (!this.#routes.has(route)) this.#routes.set(route, this.#bindRoute(route));
    }
    this.#unmatched = this.#bindRoute(UNMATCHED_ROUTE);
  }

  /**
   * Completion-event subscriber (hot path): a Map lookup per series and field increments; no label
   * strings are built and nothing is allocated once a (route, method, status) has been seen.
   */
  readonly onCompletion = (record: CompletionRecord): void => {
    const routeLabel = record.route;
    const route = routeLabel === null ? this.#unmatched : (this.#routes.get(routeLabel) ?? this.#addRoute(routeLabel));
    const mIndex = methodIndex(record.method);
    const series = route.methods[mIndex]!;
    const status = record.status;
    const seconds = record.latencyMs / 1000;
    (series.byStatus.get(status) ?? this.#bindStatus(series, mIndex, routeLabel ?? UNMATCHED_ROUTE, status)).value++;
    series.duration.observe(seconds);

    const backend = record.backend;
    if (backend !== '') {
      const up = this.#backendSeries.get(backend) ?? this.#bindBackend(backend);
      (up.byStatus.get(status) ?? this.#bindBackendStatus(up, backend, status)).value++;
      up.duration.observe(seconds);
    }

    const decision = record.decision;
    if (decision !== undefined) {
      const cell = route.limited.get(decision);
      if (cell !== undefined) cell.value++;
    }
  };

  /** Counts a failed or timed-out store operation, e.g. `storeError('redis', 'take')`. */
  storeError(store: string, op: string): void {
    this.#storeErrors.inc({ store, op });
  }

  /** Sets `gateway_store_degraded` (ignored when a `storeDegraded` provider was given). */
  setStoreDegraded(degraded: boolean): void {
    this.#storeDegraded = degraded;
  }

  /** Records a backend's current balancing weight (shown while the backend is in `backends()`). */
  setBackendWeight(backend: string, weight: number): void {
    if (!Number.isFinite(weight)) throw new RangeError(`metrics: weight must be a finite number (got ${weight})`);
    this.#weights.set(backend, weight);
  }

  /** Counts an anomaly; `route` must be a configured prefix and `metric` one of the analyzer's metric names. */
  anomaly(route: string, metric: string): void {
    this.#anomalies.inc({ route, metric });
  }

  /** Answers `/metrics` (GET or HEAD) in the registry's text format; never rejects. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, 405, 'method_not_allowed', { allow: 'GET, HEAD' });
      return;
    }
    let body: string;
    try {
      body = await this.registry.metrics();
    } catch (err) {
      this.#onError?.(err);
      sendError(req, res, 500, 'internal_error');
      return;
    }
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, {
      'Content-Type': this.registry.contentType,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  /** Drops every metric from the registry. Safe to call more than once. */
  close(): void {
    this.registry.clear();
  }

  #bindRoute(route: string): RouteSeries {
    const methods: StatusSeries[] = [];
    for (const method of METHOD_LABELS) {
      methods.push({ byStatus: new Map(), duration: this.#duration.cell({ method, route }) });
    }
    const limited = new Map<string, CounterCell>();
    for (const reason of RATE_LIMIT_REASONS) limited.set(reason, this.#rateLimited.cell({ route, reason }));
    return { methods, limited };
  }

  // A route the table did not list at start-up (e.g. after a config reload). Route labels come from
  // the gateway's route table, never from the request, so this stays bounded.
  #addRoute(route: string): RouteSeries {
    const series = this.#bindRoute(route);
    this.#routes.set(route, series);
    return series;
  }

  #bindStatus(series: StatusSeries, mIndex: number, route: string, status: number): CounterCell {
    const cell = this.#requests.cell({ method: METHOD_LABELS[mIndex]!, route, status: String(status) });
    series.byStatus.set(status, cell);
    return cell;
  }

  #bindBackend(backend: string): StatusSeries {
    const series: StatusSeries = { byStatus: new Map(), duration: this.#upstreamDuration.cell({ backend }) };
    this.#backendSeries.set(backend, series);
    return series;
  }

  #bindBackendStatus(series: StatusSeries, backend: string, status: number): CounterCell {
    const cell = this.#upstreamRequests.cell({ backend, status: String(status) });
    series.byStatus.set(status, cell);
    return cell;
  }
}

/**
 * Errors of /metrics go through the gateway's one JSON error writer, with the request id the
 * response header carries (set by the admin dispatcher), or the client's valid one, or a new one.
 */
function sendError(req: IncomingMessage, res: ServerResponse, status: number, code: keyof typeof ERROR_CODES, headers?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  const header = res.getHeader('x-request-id');
  const id = typeof header === 'string' ? header : pickRequestId(req.headers['x-request-id']);
  writeError(res, status, code, ERROR_CODES[code].message, id, headers);
}

/** Creates the gateway's metrics on a fresh registry. */
export function createMetrics(opts: MetricsOptions): Metrics {
  return new Metrics(opts);
}
