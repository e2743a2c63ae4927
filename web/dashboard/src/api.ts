/**
 * The dashboard's only link to the gateway: typed calls to /dashboard/api/* and the SSE stream.
 * Components never call fetch() or EventSource themselves.
 */
import { useEffect, useRef, useState } from 'react';
import type { Anomaly, BackendAnalytics, RouteAnalytics, RouteHistory } from './analytics-model';

/** `/dashboard/api`, derived from Vite's base ('/dashboard/'). */
export const API_BASE = `${import.meta.env.BASE_URL}api`;
/**
 * The analytics API, `/analytics` beside `/dashboard/` (the reference's paths), guarded by the same
 * admin check: loopback or the session cookie, sent as for the dashboard API.
 */
export const ANALYTICS_BASE = new URL('../analytics', new URL(import.meta.env.BASE_URL, 'http://x')).pathname;

export type ProcessStatus = 'running' | 'stopped' | 'crashed';

export interface ManagedProcess {
  id: string;
  command: string;
  args: string[];
  port?: number;
  status: ProcessStatus;
  pid?: number;
  started_at?: string;
  healthy: boolean;
  route?: string;
  /** Exit details of the last run, when the server provides them. */
  exit_code?: number | null;
  exit_signal?: string | null;
  restarts?: number;
  last_error?: string;
}

export interface RequestLog {
  id: string;
  timestamp: string;
  method: string;
  path: string;
  query?: string;
  status: number;
  /** Real milliseconds (float). */
  latency_ms: number;
  client_ip: string;
  bytes_in: number;
  bytes_out: number;
  backend?: string;
  route?: string;
  consumer?: unknown;
  /** What shaped the answer (`rate_limited`, `auth_failed`, …). */
  decision?: unknown;
  /** The numbers behind `decision` (limit, retry_after_s, …). */
  detail?: Record<string, number | string>;
  /** The gateway's error code when it answered with an error itself. */
  error?: unknown;
  request_headers?: Record<string, string | string[]>;
  response_headers?: Record<string, string | string[]>;
}

export interface Metrics {
  avg_latency_ms: number;
  error_rate: number;
  healthy_backends: number;
  requests_per_minute: number;
  sparklines: { requests: number[]; latency: number[]; errors: number[] };
  total_backends: number;
  uptime: string;
  uptime_seconds?: number;
}

export interface ProcessLogLine {
  id: string;
  line: string;
  stream?: 'stdout' | 'stderr';
}

export interface ServiceHealth {
  url: string;
  healthy: boolean;
}

export interface NewProcess {
  id: string;
  command: string;
  args: string[];
  port: number;
  route?: string;
}

/** A failed API call, carrying the server's error code and message when it sent JSON. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  /** Seconds from `Retry-After`, when the server sent one. */
  readonly retryAfterS: number | undefined;
  constructor(message: string, status: number, code?: string, requestId?: string, retryAfterS?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfterS = retryAfterS;
  }
}

/** How the gateway admits this page (`GET /dashboard/api/session`). */
export type AdminVia = 'loopback' | 'token' | 'cookie';
export interface SessionInfo {
  authenticated: boolean;
  via: AdminVia | null;
  /** The gateway has an admin token, so signing in is possible. */
  login_enabled: boolean;
}

const unauthorizedListeners = new Set<() => void>();

/** Calls `fn` whenever the gateway refuses this page's credentials (a 401 from an API call or the stream). */
export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => void unauthorizedListeners.delete(fn);
}

function reportUnauthorized(): void {
  for (const fn of [...unauthorizedListeners]) fn();
}

type Method = 'GET' | 'POST' | 'DELETE';

/**
 * One API call. `T` is the JSON answer; a 204 resolves undefined. A 401 also tells the
 * `onUnauthorized` listeners, unless `login` (a wrong token is the form's business, not a lost session).
 */
async function call<T>(path: string, init: { method?: Method; body?: unknown; login?: boolean } = {}): Promise<T> {
  return request<T>(`${API_BASE}${path}`, init);
}

/** One call to any admin URL; `login` or `keepSession`: a 401 does not end the dashboard's session. */
async function request<T>(url: string, init: { method?: Method; body?: unknown; login?: boolean; keepSession?: boolean } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json' };
  // The gateway refuses mutating calls without a JSON content type (CSRF defence), even bodiless ones.
  if (method !== 'GET') headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: method === 'POST' ? JSON.stringify(init.body ?? {}) : undefined,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('gateway unreachable (network error)', 0);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string; request_id?: string } } | undefined)?.error;
    let message = err?.message ?? (text.trim() || res.statusText || 'request failed');
    if (res.status === 401 && !err?.message) message = 'unauthorized: the dashboard API needs the admin token';
    const retry = Number(res.headers.get('retry-after'));
    if (res.status === 401 && !init.login && !init.keepSession) reportUnauthorized();
    throw new ApiError(`${message} (HTTP ${res.status})`, res.status, err?.code, err?.request_id, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  }
  if (res.status === 204) return undefined as T;
  if (json === undefined) throw new ApiError(`unexpected non-JSON response (HTTP ${res.status})`, res.status);
  return json as T;
}

const enc = encodeURIComponent;

export const api = {
  processes: () => call<{ processes: ManagedProcess[] }>('/processes').then((r) => r.processes ?? []),
  addProcess: (p: NewProcess) => call<ManagedProcess>('/processes', { method: 'POST', body: p }),
  processAction: (id: string, action: 'start' | 'stop' | 'restart') =>
    call<ManagedProcess>(`/processes/${enc(id)}/${action}`, { method: 'POST' }),
  processLogs: (id: string, lines = 200) =>
    call<{ lines: string[] }>(`/processes/${enc(id)}/logs?lines=${lines}`).then((r) => r.lines ?? []),
  routes: () => call<{ routes: string[] }>('/routes').then((r) => r.routes ?? []),
  logs: (limit = 50) => call<{ logs: RequestLog[] }>(`/logs?limit=${limit}`).then((r) => r.logs ?? []),
  log: (id: string) => call<RequestLog>(`/logs/${enc(id)}`),
  metrics: () => call<Metrics>('/metrics'),
  /** How this page is admitted; never a 401. */
  session: () => call<SessionInfo>('/session'),
  /** Trades the admin token for an HttpOnly session cookie (the page never keeps the token). */
  login: (token: string) => call<void>('/session', { method: 'POST', body: { token }, login: true }),
  /** Ends the session on the server and clears the cookie. */
  logout: () => call<void>('/session', { method: 'DELETE' }),
  /** Re-reads the gateway's config file; the outcome also arrives as a `config` event. */
  reload: () => call<ConfigEvent>('/reload', { method: 'POST' }),
};

/** The data of a `config` event and the answer of POST /dashboard/api/reload. */
export type ConfigEvent =
  | {
      result: 'success';
      generation: number;
      changed: boolean;
      routes: { added: string[]; removed: string[]; changed: string[] };
      backends: { added: string[]; removed: string[]; changed: string[] };
      sections: string[];
      processes: { added: string[]; removed: string[]; changed: string[]; started: string[]; stopped: string[] };
      restart_required: string[];
    }
  | { result: 'error'; reason: string; problems: { file: string; line: number; col: number; key: string; message: string; text: string }[] };

/** Query string of defined values. */
function qs(params: Record<string, string | undefined>): string {
  const parts = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '');
  return parts.length ? `?${parts.map(([k, v]) => `${k}=${enc(v)}`).join('&')}` : '';
}

/**
 * Where the analytics API answers this page. `/analytics` first; the sign-in cookie is scoped to
 * /dashboard, so a signed-in page (not loopback) is refused there with a 401 and then tries the same
 * API under the dashboard's own API (`/dashboard/api/analytics`), where its cookie goes, if the
 * gateway mounts it there too. Once one answers, it is used from then on.
 */
let analyticsBase: string | null = null;
const ANALYTICS_ALIAS = `${API_BASE}/analytics`;

async function analyticsCall<T>(path: string): Promise<T> {
  if (analyticsBase !== null) return request<T>(`${analyticsBase}${path}`, { keepSession: true });
  try {
    const r = await request<T>(`${ANALYTICS_BASE}${path}`, { keepSession: true });
    analyticsBase = ANALYTICS_BASE;
    return r;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    try {
      const r = await request<T>(`${ANALYTICS_ALIAS}${path}`, { keepSession: true });
      analyticsBase = ANALYTICS_ALIAS;
      return r;
    } catch {
      throw err; // no alias either: the refusal at /analytics is the answer to show
    }
  }
}

/**
 * Analytics calls. A 401 here does not end the dashboard's session (`keepSession`): the dashboard
 * API decides that; the analytics view reports its own refusals.
 */
export const analyticsApi = {
  routes: () => analyticsCall<{ routes?: RouteAnalytics[] | null }>('/routes').then((r) => (Array.isArray(r?.routes) ? r.routes.filter((x) => x && typeof x.route === 'string') : [])),
  /** The route prefix goes as one encoded path segment (`/analytics/routes/%2Fapi%2Fv1/history`). */
  history: (route: string, q: { from: string; to: string; step?: string }) => analyticsCall<RouteHistory>(`/routes/${enc(route)}/history${qs(q)}`),
  anomalies: (q: { route?: string; since?: string } = {}) =>
    analyticsCall<{ anomalies?: Anomaly[] | null; count?: number }>(`/anomalies${qs(q)}`).then((r) => (Array.isArray(r?.anomalies) ? r.anomalies : [])),
  backends: () =>
    analyticsCall<{ backends?: BackendAnalytics[] | null }>('/backends').then((r) => (Array.isArray(r?.backends) ? r.backends.filter((b) => b && typeof b.backend === 'string') : [])),
};

/** The gateway answers analytics calls but learning is switched off (or the API is not there at all). */
export function isAnalyticsOff(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  return err.status === 404 || /analytics_(disabled|off)/.test(err.code ?? '');
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

/** Handlers for the SSE events; `connected` fires on every (re)connection. */
export interface StreamHandlers {
  connected?: (firstTime: boolean) => void;
  request?: (log: RequestLog) => void;
  process?: (p: Partial<ManagedProcess> & { id: string }) => void;
  process_log?: (l: ProcessLogLine) => void;
  service?: (s: ServiceHealth) => void;
  metrics?: (m: Metrics) => void;
  /** A new anomaly, or the end of an episode (same route, metric and timestamp, with `ended_at`). */
  anomaly?: (a: Anomaly) => void;
  /** A learned limit or weight changed (issue 11); the payload is only used as a refresh signal. */
  adaptive?: (data: unknown) => void;
  /** A breaker tripped or closed; a refresh signal for the backends. */
  breaker?: (data: unknown) => void;
  /** A config reload was done (`result: "success"`) or refused (`result: "error"` with the problems). */
  config?: (data: ConfigEvent) => void;
}

const EVENT_TYPES = ['request', 'process', 'process_log', 'service', 'metrics', 'anomaly', 'adaptive', 'breaker', 'config'] as const;
/** After the browser gives up on a stream (e.g. a 401 or a non-SSE answer), open a new one after this. */
const REOPEN_DELAY_MS = 3000;

/**
 * Subscribes to /dashboard/api/stream for the component's lifetime. EventSource reconnects by
 * itself (sending Last-Event-ID so the gateway can replay); when it gives up for good, a fresh one
 * is opened after a pause, unless the gateway no longer admits the page (then `onUnauthorized`
 * listeners hear of it and no stream is reopened). Handlers are read through a ref, so re-renders
 * never reconnect.
 */
export function useEventStream(handlers: StreamHandlers): ConnectionState {
  const [state, setState] = useState<ConnectionState>('connecting');
  const ref = useRef(handlers);
  ref.current = handlers;

  useEffect(() => {
    let es: EventSource | undefined;
    let reopenTimer: ReturnType<typeof setTimeout> | undefined;
    let everConnected = false;
    let disposed = false;

    const open = () => {
      es = new EventSource(`${API_BASE}/stream`);
      es.addEventListener('connected', () => {
        setState('live');
        ref.current.connected?.(!everConnected);
        everConnected = true;
      });
      for (const type of EVENT_TYPES) {
        es.addEventListener(type, (ev) => {
          let data: unknown;
          try {
            data = JSON.parse((ev as MessageEvent<string>).data);
          } catch {
            return;
          }
          // Each handler has its own payload type; the event name selects it.
          (ref.current[type] as ((d: unknown) => void) | undefined)?.(data);
        });
      }
      es.onopen = () => setState('live');
      es.onerror = () => {
        if (disposed || !es) return;
        setState(everConnected ? 'reconnecting' : 'connecting');
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          // EventSource hides the status: ask whether we were refused (session expired, gateway restarted).
          api.session().then(
            (s) => {
              if (disposed) return;
              if (s.authenticated) reopenTimer = setTimeout(open, REOPEN_DELAY_MS);
              else reportUnauthorized();
            },
            () => {
              if (!disposed) reopenTimer = setTimeout(open, REOPEN_DELAY_MS);
            },
          );
        }
      };
    };
    open();
    return () => {
      disposed = true;
      clearTimeout(reopenTimer);
      es?.close();
    };
  }, []);

  return state;
}
