/**
 * The dashboard's only link to the gateway: typed calls to /dashboard/api/* and the SSE stream.
 * Components never call fetch() or EventSource themselves.
 */
import { useEffect, useRef, useState } from 'react';

/** `/dashboard/api`, derived from Vite's base ('/dashboard/'). */
export const API_BASE = `${import.meta.env.BASE_URL}api`;

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
  constructor(message: string, status: number, code?: string, requestId?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

async function call<T>(path: string, init: { method?: 'GET' | 'POST'; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json' };
  // The gateway refuses mutating calls without a JSON content type (CSRF defence), even bodiless ones.
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${API_BASE}${path}`, {
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
    throw new ApiError(`${message} (HTTP ${res.status})`, res.status, err?.code, err?.request_id);
  }
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
};

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

/** Handlers for the SSE events; `connected` fires on every (re)connection. */
export interface StreamHandlers {
  connected?: (firstTime: boolean) => void;
  request?: (log: RequestLog) => void;
  process?: (p: Partial<ManagedProcess> & { id: string }) => void;
  process_log?: (l: ProcessLogLine) => void;
  service?: (s: ServiceHealth) => void;
  metrics?: (m: Metrics) => void;
}

const EVENT_TYPES = ['request', 'process', 'process_log', 'service', 'metrics'] as const;
/** After the browser gives up on a stream (e.g. a 401 or a non-SSE answer), open a new one after this. */
const REOPEN_DELAY_MS = 3000;

/**
 * Subscribes to /dashboard/api/stream for the component's lifetime. EventSource reconnects by
 * itself (sending Last-Event-ID so the gateway can replay); when it gives up for good, a fresh one
 * is opened after a pause. Handlers are read through a ref, so re-renders never reconnect.
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
          reopenTimer = setTimeout(open, REOPEN_DELAY_MS);
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
