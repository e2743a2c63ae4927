/** Pure display helpers: times, durations, sizes, status classes and the cURL command. */
import type { RequestLog } from './api';

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Local wall-clock time, 24 h: `14:03:27`. */
export function formatClock(ts: string | number | Date): string {
  const d = ts instanceof Date ? ts : new Date(ts);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Full local timestamp with milliseconds, for the detail panel. */
export function formatTimestamp(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const date = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  return `${date} ${formatClock(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Latency in real milliseconds: `0.42 ms`, `1.4 ms`, `238 ms`, `12.3 s`. */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  // Compare after rounding, so 0.999 reads "1.0 ms", not "1.00 ms".
  if (Math.round(ms) >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (Math.round(ms * 10) / 10 >= 100) return `${Math.round(ms)} ms`;
  if (Math.round(ms * 100) / 100 >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** `1.2 KiB`; a negative count means the size was unknown (chunked). */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return 'unknown';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** `3d 04h`, `2h 05m`, `4m 09s`, `12s`. */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${pad2(h)}h`;
  if (h > 0) return `${h}h ${pad2(m)}m`;
  if (m > 0) return `${m}m ${pad2(sec)}s`;
  return `${sec}s`;
}

export type Tone = 'good' | 'warn' | 'bad' | 'muted';

export function statusTone(status: number): Tone {
  if (status >= 500) return 'bad';
  if (status >= 400) return 'warn';
  if (status >= 100) return 'good';
  return 'muted';
}

export function latencyTone(ms: number): Tone {
  return ms < 100 ? 'good' : ms < 500 ? 'warn' : 'bad';
}

/** `rate` is a fraction (0.0123 = 1.23 %). */
export function errorRateTone(rate: number): Tone {
  return rate < 0.01 ? 'good' : rate < 0.05 ? 'warn' : 'bad';
}

export function backendsTone(healthy: number, total: number): Tone {
  if (healthy === total) return 'good';
  return healthy === 0 ? 'bad' : 'warn';
}

/** Request ids are not unique (clients may reuse X-Request-Id); id + timestamp is. */
export const logKey = (l: Pick<RequestLog, 'id' | 'timestamp'>) => `${l.id}|${l.timestamp}`;

/** Path plus query string, whichever way the server sends the query (with or without `?`). */
export function pathWithQuery(log: Pick<RequestLog, 'path' | 'query'>): string {
  const q = log.query ?? '';
  if (!q) return log.path;
  return q.startsWith('?') ? `${log.path}${q}` : `${log.path}?${q}`;
}

/** Render anything the server put in `consumer` / `decision` / `error` as one line. */
export function describe(value: unknown): string {
  if (value === null || value === undefined || value === '') return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
      .join('  ');
  }
  return String(value);
}

/** Headers that carry credentials: never copied, whatever their (already redacted) value. */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
  'cookie',
  'set-cookie',
]);
/** Headers curl computes itself or that describe the hop to the gateway, not the request. */
const SKIP_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'accept-encoding',
]);

/** True for a header value the gateway redacted (e.g. `[REDACTED]`, `***`). */
export function looksRedacted(value: string): boolean {
  return /redacted|^\*{3,}$|^\[?hidden\]?$/i.test(value.trim());
}

export function isSecretHeader(name: string, value: string): boolean {
  const n = name.toLowerCase();
  return SECRET_HEADERS.has(n) || n.startsWith('proxy-') || looksRedacted(value);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function headerValues(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

/**
 * `curl` replaying a logged request against the gateway this page was loaded from, with its
 * query string and non-secret request headers. Returns the command and how many credential
 * headers were left out, so the UI can say so. The body is not logged, so it cannot be replayed.
 */
export function toCurl(log: RequestLog, origin: string): { command: string; omitted: number } {
  const method = log.method.toUpperCase();
  const parts = ['curl'];
  if (method === 'HEAD') parts.push('-I');
  else if (method !== 'GET') parts.push('-X', method);
  let omitted = 0;
  const headers = Object.entries(log.request_headers ?? {}).sort(([a], [b]) => a.localeCompare(b));
  for (const [name, raw] of headers) {
    const lower = name.toLowerCase();
    if (SKIP_HEADERS.has(lower)) continue;
    for (const value of headerValues(raw)) {
      if (isSecretHeader(name, value)) {
        omitted++;
        continue;
      }
      parts.push('-H', shellQuote(`${name}: ${value}`));
    }
  }
  parts.push(shellQuote(`${origin}${pathWithQuery(log)}`));
  return { command: parts.join(' '), omitted };
}
