/** Live metrics: four tiles (rate, latency, error rate, backends) with 30-minute charts. */
import { useMemo, type ReactNode } from 'react';
import type { Metrics } from '../api';
import { backendsTone, errorRateTone, formatLatency, latencyTone, type Tone } from '../format';
import { TimeSeriesChart } from './time-series-chart';

const BUCKETS = 30;
const MINUTE_S = 60;

interface Series {
  x: number[];
  requests: number[];
  latency: (number | null)[];
  errorPct: (number | null)[];
}

/** Fewest minutes a chart shows, so a young gateway's chart is not a single point. */
const MIN_POINTS = 6;

/**
 * The sparklines are 30 one-minute buckets, index 29 = the current (clock) minute. Minutes before
 * the gateway started are left out (down to MIN_POINTS), so a fresh gateway's charts are not 29
 * made-up zeros and one spike.
 */
function toSeries(m: Metrics | null, nowMs: number): Series {
  const endMinute = Math.floor(nowMs / 1000 / MINUTE_S);
  let first = 0;
  if (m && typeof m.uptime_seconds === 'number') {
    const startMinute = Math.floor((nowMs / 1000 - m.uptime_seconds) / MINUTE_S);
    first = Math.min(Math.max(0, BUCKETS - 1 - (endMinute - startMinute)), BUCKETS - MIN_POINTS);
  }
  const idx = Array.from({ length: BUCKETS - first }, (_, k) => first + k);
  const x = idx.map((i) => (endMinute - (BUCKETS - 1 - i)) * MINUTE_S);
  const pick = (arr: number[] | undefined, i: number) => {
    // Right-align: a shorter array still ends at the current minute.
    const a = arr ?? [];
    const v = a[a.length - BUCKETS + i];
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  };
  const requests = idx.map((i) => pick(m?.sparklines?.requests, i));
  // A minute without requests has no latency and no error rate: a gap, not a zero.
  const latency = idx.map((i, k) => (requests[k]! > 0 ? pick(m?.sparklines?.latency, i) : null));
  const errorPct = idx.map((i, k) => (requests[k]! > 0 ? (pick(m?.sparklines?.errors, i) / requests[k]!) * 100 : null));
  return { x, requests, latency, errorPct };
}

const fmtCount = (v: number) => (v === 0 ? '0' : v >= 10_000 ? `${Math.round(v / 1000)}k` : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v * 10) / 10));
const fmtMs = (v: number) => (v === 0 ? '0' : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : v >= 10 ? `${Math.round(v)}ms` : `${v.toFixed(1)}ms`);
const fmtPct = (v: number) => (v === 0 ? '0' : `${v >= 10 ? Math.round(v) : v.toFixed(1)}%`);

export function MetricsPanel({ metrics, receivedAt, error }: { metrics: Metrics | null; receivedAt: number; error: string | null }) {
  const s = useMemo(() => toSeries(metrics, receivedAt), [metrics, receivedAt]);
  const m = metrics;
  const healthy = m?.healthy_backends ?? 0;
  const total = m?.total_backends ?? 0;
  // Without traffic in the window, a 0 ms average or 0 % errors would be made-up numbers.
  const traffic = m !== null && m.requests_per_minute > 0;

  return (
    <section className="card metrics" aria-label="Live metrics">
      <header className="card-head">
        <h2>Live metrics</h2>
        <span className="card-note">per minute · up to 30 min</span>
        {error && (
          <span className="inline-error" role="alert" data-testid="metrics-error">
            {error}
          </span>
        )}
      </header>
      <div className="tiles">
        <Tile
          label="Requests / min"
          value={m ? fmtCount(m.requests_per_minute) : '–'}
          tone="neutral"
          testId="metric-rpm"
        >
          <TimeSeriesChart x={s.x} y={s.requests} color="#4c9aff" format={fmtCount} testId="chart-requests" />
        </Tile>
        <Tile
          label="Avg latency"
          value={traffic ? formatLatency(m.avg_latency_ms) : '–'}
          tone={traffic ? latencyTone(m.avg_latency_ms) : 'muted'}
          testId="metric-latency"
        >
          <TimeSeriesChart x={s.x} y={s.latency} color="#a78bfa" format={fmtMs} testId="chart-latency" />
        </Tile>
        <Tile
          label="Error rate (5xx)"
          value={traffic ? `${(m.error_rate * 100).toFixed(2)}%` : '–'}
          tone={traffic ? errorRateTone(m.error_rate) : 'muted'}
          testId="metric-error-rate"
        >
          <TimeSeriesChart x={s.x} y={s.errorPct} color="#f0716a" format={fmtPct} testId="chart-errors" />
        </Tile>
        <Tile
          label="Backends healthy"
          value={m ? `${healthy} / ${total}` : '–'}
          tone={m ? backendsTone(healthy, total) : 'muted'}
          testId="metric-backends"
        >
          <HealthBar healthy={healthy} total={total} known={m !== null} />
        </Tile>
      </div>
    </section>
  );
}

function Tile(props: { label: string; value: string; tone: Tone | 'neutral'; testId: string; children: ReactNode }) {
  return (
    <div className={`tile tone-${props.tone}`} data-testid={props.testId}>
      <div className="tile-label">{props.label}</div>
      <div className="tile-value" data-testid={`${props.testId}-value`}>
        {props.value}
      </div>
      {props.children}
    </div>
  );
}

const MAX_SEGMENTS = 24;

/** One segment per backend (grouped when there are many): green healthy, red not. */
function HealthBar({ healthy, total, known }: { healthy: number; total: number; known: boolean }) {
  const segments = Math.min(total, MAX_SEGMENTS);
  const good = total === 0 ? 0 : Math.round((healthy / total) * segments);
  const down = total - healthy;
  return (
    <div className="healthbar">
      <div className="healthbar-segments" role="img" aria-label={`${healthy} of ${total} backends healthy`}>
        {Array.from({ length: segments }, (_, i) => (
          <span key={i} className={i < good ? 'seg seg-good' : 'seg seg-bad'} />
        ))}
      </div>
      <div className="healthbar-note">
        {!known ? 'waiting for data' : total === 0 ? 'no backends configured' : down === 0 ? 'all backends pass health checks' : `${down} ${down === 1 ? 'backend fails' : 'backends fail'} health checks`}
      </div>
    </div>
  );
}
