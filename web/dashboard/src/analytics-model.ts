/**
 * The analytics API's shapes (GET /analytics/*) and the pure arithmetic the traffic views need:
 * ranges and steps, requests-per-minute series, baseline bands, anomaly episodes, learning
 * progress. No imports and no DOM, so node tests can load it as is.
 *
 * Every field the gateway may leave out or send as null is optional here, and every array is read
 * as possibly empty or missing: the views must never crash on a younger or older gateway.
 */

/** One configured route, `GET /analytics/routes`. Rates are requests per minute. */
export interface RouteAnalytics {
  route: string;
  avg_rate?: number | null;
  avg_latency_ms?: number | null;
  p99_latency_ms?: number | null;
  /** Fraction, 0.01 = 1 %. */
  error_rate?: number | null;
  /** The limit actually enforced, requests/minute; null when none. */
  current_rate_limit?: number | null;
  anomalies_24h?: number | null;
  learning?: boolean | null;
  /** Buckets the baseline is computed over. */
  sample_size?: number | null;
  p50_latency_ms?: number | null;
  /** Standard deviation of the rate (requests/minute); 0 or absent: unknown. Either name. */
  rate_std_dev?: number | null;
  std_dev_rate?: number | null;
  z_threshold?: number | null;
  /** Buckets needed before the route counts as learned (default MIN_BASELINE_BUCKETS). */
  learning_target?: number | null;
  /** Anything else (adaptive limits, shadow-mode counts, …): shown as it comes. */
  [extra: string]: unknown;
}

export interface HistoryPoint {
  timestamp: string;
  request_count?: number | null;
  /** Requests the gateway refused itself (401/429/503 of its own), counted apart. */
  rejected_count?: number | null;
  error_rate?: number | null;
  avg_latency_ms?: number | null;
  p99_latency_ms?: number | null;
  bytes_in?: number | null;
  bytes_out?: number | null;
}

export interface RouteHistory {
  route?: string;
  from?: string;
  to?: string;
  /** The step the gateway used, in ms (`step_ms`), or as a duration ("10s") or seconds (`step`). */
  step_ms?: number | null;
  step?: string | number | null;
  /** The range asked for reached past retention or into the future and was cut. */
  clamped?: boolean;
  history?: HistoryPoint[] | null;
}

export interface Anomaly {
  route: string;
  metric: string;
  current?: number | null;
  mean?: number | null;
  std_dev?: number | null;
  z_score?: number | null;
  timestamp: string;
  /** null while the episode lasts. */
  ended_at?: string | null;
  [extra: string]: unknown;
}

export interface BackendAnalytics {
  backend: string;
  avg_latency_ms?: number | null;
  p50_latency_ms?: number | null;
  p99_latency_ms?: number | null;
  error_rate?: number | null;
  weight?: number | null;
  breaker_threshold?: number | null;
  learning?: boolean | null;
  sample_size?: number | null;
  [extra: string]: unknown;
}

/** The selectable ranges. */
export type RangeKey = '1h' | '6h' | '48h';
export const RANGES: Record<RangeKey, number> = { '1h': 3600, '6h': 6 * 3600, '48h': 48 * 3600 };
export const RANGE_KEYS = Object.keys(RANGES) as RangeKey[];
/** Most points one chart asks for. */
export const MAX_POINTS = 360;
/** A baseline needs this many buckets before anomalies are looked for (issue 8 §3). */
export const MIN_BASELINE_BUCKETS = 10;
/** Width of the band around the baseline, in standard deviations, when the gateway does not say. */
export const DEFAULT_Z = 3;

const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 480, 600, 900, 1800, 3600, 7200];

/** The smallest round step (seconds) that keeps `rangeS` within MAX_POINTS points: 1h → 10s, 6h → 60s, 48h → 480s. */
export function stepFor(rangeS: number): number {
  const min = rangeS / MAX_POINTS;
  return NICE_STEPS.find((s) => s >= min) ?? Math.ceil(min);
}

export const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Query of one history request: `from`/`to` as ISO times, `step` as "10s" (omitted: the bucket width). */
export function historyQuery(rangeS: number, nowMs: number, stepS: number | null): { from: string; to: string; step?: string } {
  const nowS = Math.floor(nowMs / 1000);
  const grain = stepS ?? 1;
  const fromS = Math.floor((nowS - rangeS) / grain) * grain;
  const q: { from: string; to: string; step?: string } = { from: new Date(fromS * 1000).toISOString(), to: new Date(nowS * 1000).toISOString() };
  if (stepS !== null) q.step = `${stepS}s`;
  return q;
}

/** Seconds of a duration the gateway may send: 10, "10s", "1m", "500ms", "2h". */
export function durationSeconds(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  const f = m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : m[2] === 'h' ? 3600 : 1;
  return n > 0 ? n * f : null;
}

export interface RateSeries {
  /** Bucket starts, unix seconds. */
  x: number[];
  /** Requests per minute; null before the first bucket the gateway has. */
  rate: (number | null)[];
  /** Requests per minute the gateway refused itself; null where it refused none. */
  rejected: (number | null)[];
  errorRate: (number | null)[];
  p99: (number | null)[];
  /** Width of one point, seconds. */
  stepS: number;
  /** Points that came from the gateway (not gap fill). */
  points: number;
  /** Requests in the series (answered and refused): 0 is "no traffic yet". */
  traffic: number;
}

const tsOf = (p: HistoryPoint) => Date.parse(p.timestamp) / 1000;

/** Start (unix s) of the first point with any request, answered or refused; null when none. */
export function firstActivity(h: RouteHistory | null | undefined): number | null {
  let first: number | null = null;
  for (const p of Array.isArray(h?.history) ? h.history : []) {
    if ((num(p.request_count) ?? 0) <= 0 && (num(p.rejected_count) ?? 0) <= 0) continue;
    const t = tsOf(p);
    if (Number.isFinite(t) && (first === null || t < first)) first = t;
  }
  return first;
}

/** The smallest gap between consecutive timestamps, a guess at the gateway's bucket width. */
function smallestGap(ts: number[]): number | null {
  let min = Infinity;
  for (let i = 1; i < ts.length; i++) {
    const d = ts[i]! - ts[i - 1]!;
    if (d > 0 && d < min) min = d;
  }
  return Number.isFinite(min) ? min : null;
}

/**
 * A history answer as a requests-per-minute series of `stepS` points. Finer points (a gateway that
 * ignored or could not honour the step) are summed into step-wide bins; missing bins after the first
 * point are zero traffic, bins before it unknown; a bin still running at `nowS` is left out, so a
 * partial bucket never looks like a drop. `stepSent`: the gateway was asked for `stepS` (else its
 * points are its buckets, whose width is read from their spacing).
 */
export function toRateSeries(h: RouteHistory | null | undefined, stepS: number, nowS: number, stepSent = true): RateSeries {
  const raw = (Array.isArray(h?.history) ? h.history : [])
    .map((p) => ({ p, t: tsOf(p) }))
    .filter((e) => Number.isFinite(e.t))
    .sort((a, b) => a.t - b.t);
  const gap = smallestGap(raw.map((e) => e.t));
  const stepMs = num(h?.step_ms);
  const declared = stepMs !== null && stepMs > 0 ? stepMs / 1000 : durationSeconds(h?.step);
  // The width of the gateway's points: what it says, else what it looks like, else what was asked.
  const width = declared ?? (gap !== null && (gap < stepS * 0.9 || !stepSent) ? gap : stepS);
  const step = Math.max(stepS, width);
  const rebin = width < step * 0.9;

  interface Bin {
    t: number;
    count: number;
    rejected: number;
    errors: number;
    p99: number | null;
  }
  const bins: Bin[] = [];
  for (const { p, t } of raw) {
    const start = rebin ? Math.floor(t / step) * step : t;
    const count = Math.max(0, num(p.request_count) ?? 0);
    const rejected = Math.max(0, num(p.rejected_count) ?? 0);
    const er = num(p.error_rate);
    const p99 = num(p.p99_latency_ms);
    const last = bins[bins.length - 1];
    if (last && Math.abs(last.t - start) < 1e-6) {
      last.count += count;
      last.rejected += rejected;
      last.errors += er !== null ? er * count : 0;
      if (p99 !== null) last.p99 = Math.max(last.p99 ?? 0, p99);
    } else {
      bins.push({ t: start, count, rejected, errors: er !== null ? er * count : 0, p99 });
    }
  }
  while (bins.length > 0 && bins[bins.length - 1]!.t + step > nowS + 0.001) bins.pop();

  const x: number[] = [];
  const rate: (number | null)[] = [];
  const rejected: (number | null)[] = [];
  const errorRate: (number | null)[] = [];
  const p99: (number | null)[] = [];
  const perMinute = 60 / step;
  let fill = 0;
  let traffic = 0;
  for (const b of bins) {
    const prev = x[x.length - 1];
    // Empty buckets the gateway left out are zero traffic (bounded, a sane answer has none this far apart).
    if (prev !== undefined) {
      for (let t = prev + step; t < b.t - step * 0.5 && fill < MAX_POINTS * 4; t += step, fill++) {
        x.push(t);
        rate.push(0);
        rejected.push(null);
        errorRate.push(null);
        p99.push(null);
      }
    }
    x.push(b.t);
    rate.push(b.count * perMinute);
    rejected.push(b.rejected > 0 ? b.rejected * perMinute : null);
    errorRate.push(b.count > 0 ? b.errors / b.count : null);
    p99.push(b.count > 0 ? b.p99 : null);
    traffic += b.count + b.rejected;
  }
  return { x, rate, rejected, errorRate, p99, stepS: step, points: bins.length, traffic };
}

export interface Baseline {
  /** Learned mean rate, requests/minute. */
  mean: number;
  /** The band mean ± k·σ, when σ is known. */
  band: { lo: number; hi: number; k: number; sigma: number } | null;
}

const isRateMetric = (metric: string) => metricKind(metric) === 'rate';

/**
 * What counts as normal for a route: its learned mean rate and, when a standard deviation is
 * known (`std_dev_rate` from the gateway, else the σ of its latest rate anomaly), the band of
 * ± z_threshold σ around it. Nothing before the route has any data.
 */
export function baselineOf(route: RouteAnalytics, anomalies: readonly Anomaly[]): Baseline | null {
  const mean = num(route.avg_rate);
  if (mean === null || (num(route.sample_size) ?? 1) <= 0) return null;
  let sigma = num(route.rate_std_dev) || num(route.std_dev_rate) || null;
  if (sigma === null) {
    let latest = -Infinity;
    for (const a of anomalies) {
      const t = Date.parse(a.timestamp);
      const sd = num(a.std_dev);
      if (a.route === route.route && isRateMetric(a.metric) && sd !== null && t > latest) {
        latest = t;
        sigma = sd;
      }
    }
  }
  if (sigma === null || sigma <= 0) return { mean, band: null };
  const k = num(route.z_threshold) ?? DEFAULT_Z;
  return { mean, band: { lo: Math.max(0, mean - k * sigma), hi: mean + k * sigma, k, sigma } };
}

export type MetricKind = 'rate' | 'errors' | 'latency' | 'other';

/** Which family an anomaly's `metric` belongs to ("request_rate", "error_rate", "latency", or a future one). */
export function metricKind(metric: string): MetricKind {
  const m = metric.toLowerCase();
  if (m.includes('err')) return 'errors';
  if (m.includes('lat')) return 'latency';
  if (m.includes('rate') || m.includes('request') || m.includes('count') || m.includes('traffic')) return 'rate';
  return 'other';
}

export interface Episode {
  key: string;
  /** Unix seconds. */
  start: number;
  end: number;
  ongoing: boolean;
  kind: MetricKind;
  anomaly: Anomaly;
}

export const anomalyKey = (a: Pick<Anomaly, 'route' | 'metric' | 'timestamp'>) => `${a.route}|${a.metric}|${a.timestamp}`;

/** A route's anomaly episodes that overlap [fromS, toS], oldest first; an open one runs to `nowS`. */
export function episodesOf(anomalies: readonly Anomaly[], route: string, fromS: number, toS: number, nowS: number): Episode[] {
  const out: Episode[] = [];
  for (const a of anomalies) {
    if (a.route !== route) continue;
    const start = Date.parse(a.timestamp) / 1000;
    if (!Number.isFinite(start)) continue;
    const endParsed = a.ended_at ? Date.parse(a.ended_at) / 1000 : NaN;
    const ongoing = !Number.isFinite(endParsed);
    const end = ongoing ? Math.max(start, nowS) : Math.max(start, endParsed);
    if (end < fromS || start > toS) continue;
    out.push({ key: anomalyKey(a), start, end, ongoing, kind: metricKind(a.metric), anomaly: a });
  }
  return out.sort((p, q) => p.start - q.start);
}

/** Adds or updates (same route, metric and start) an anomaly; newest first, at most `cap`. */
export function mergeAnomalies(list: readonly Anomaly[], incoming: readonly Anomaly[], cap = 500): Anomaly[] {
  const byKey = new Map<string, Anomaly>();
  for (const a of list) byKey.set(anomalyKey(a), a);
  for (const a of incoming) {
    if (!a || typeof a.route !== 'string' || typeof a.metric !== 'string' || typeof a.timestamp !== 'string') continue;
    const old = byKey.get(anomalyKey(a));
    // An end once seen is kept: a late copy of the opening event must not reopen the episode.
    byKey.set(anomalyKey(a), old ? { ...old, ...a, ended_at: a.ended_at ?? old.ended_at ?? null } : a);
  }
  return [...byKey.values()].sort((p, q) => Date.parse(q.timestamp) - Date.parse(p.timestamp)).slice(0, cap);
}

export interface Learning {
  learning: boolean;
  have: number;
  target: number;
  /** 0..1, for a progress bar. */
  fraction: number;
}

export function learningOf(route: RouteAnalytics): Learning {
  const have = Math.max(0, Math.floor(num(route.sample_size) ?? 0));
  const target = Math.max(1, Math.floor(num(route.learning_target) ?? MIN_BASELINE_BUCKETS));
  const learning = route.learning === true || (route.learning == null && have < target);
  return { learning, have, target, fraction: learning ? Math.min(1, have / target) : 1 };
}

/** Scalar fields of an API object beyond `known`: new fields (adaptive limits, shadow refusals, …) show up without a UI change. */
export function extraFields(obj: Record<string, unknown>, known: readonly string[]): [string, string | number | boolean][] {
  const skip = new Set(known);
  const out: [string, string | number | boolean][] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (skip.has(k)) continue;
    if (typeof v === 'number' ? Number.isFinite(v) : typeof v === 'string' || typeof v === 'boolean') out.push([k, v as string | number | boolean]);
  }
  return out;
}

/** `1.2k/min`, `36/min`, `0.5/min`. */
export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v >= 10_000) return `${Math.round(v / 1000)}k/min`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k/min`;
  if (v >= 10) return `${Math.round(v)}/min`;
  if (v === 0) return '0/min';
  return `${v.toFixed(1)}/min`;
}

/** A fraction as a percentage: `0.25%`, `12%`. */
export function formatPct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const p = v * 100;
  if (p === 0) return '0%';
  if (p >= 10) return `${Math.round(p)}%`;
  if (p >= 1) return `${p.toFixed(1)}%`;
  return `${p.toFixed(2)}%`;
}
