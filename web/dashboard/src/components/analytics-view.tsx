/**
 * The traffic analytics view: per route, traffic against what the gateway learned is normal and
 * what it enforces, with anomalies; per backend, latency, errors and weight; learning progress.
 * Says plainly when analytics is off instead of showing an error.
 */
import { useEffect, useState } from 'react';
import { formatPct, formatRate, metricKind, RANGE_KEYS, type Anomaly, type RangeKey } from '../analytics-model';
import type { AdminVia } from '../api';
import { formatClock, formatLatency } from '../format';
import { useAnalytics } from '../use-analytics';
import { BackendsCard } from './backends-card';
import { RouteCard } from './route-card';
import { EPISODE_COLOR } from './route-traffic-chart';

const RANGE_KEY_STORAGE = 'microgate.analytics.range';
const SHOWN_ANOMALIES = 20;

function initialRange(): RangeKey {
  try {
    const v = localStorage.getItem(RANGE_KEY_STORAGE);
    if (v && (RANGE_KEYS as string[]).includes(v)) return v as RangeKey;
  } catch {
    /* storage may be off */
  }
  return '1h';
}

export interface AnalyticsViewProps {
  via: AdminVia | null;
  /** Subscribes to the stream's `anomaly` and `adaptive` events; returns the unsubscribe. */
  subscribe: (on: { anomaly: (a: Anomaly) => void; adaptive: () => void }) => () => void;
  /** Changes after the stream reconnects: reload what events may have missed. */
  resync: number;
  /** When the gateway started (unix s), from the live metrics' uptime; null until known. */
  startedAtS: number | null;
}

export function AnalyticsView({ via, subscribe, resync, startedAtS }: AnalyticsViewProps) {
  const [range, setRange] = useState<RangeKey>(initialRange);
  const data = useAnalytics(range);
  const { routes, backends, anomalies } = data;

  useEffect(() => subscribe({ anomaly: data.onAnomaly, adaptive: data.reload }), [subscribe, data.onAnomaly, data.reload]);
  useEffect(() => {
    if (resync > 0) data.reload();
  }, [resync, data.reload]);

  const choose = (r: RangeKey) => {
    setRange(r);
    try {
      localStorage.setItem(RANGE_KEY_STORAGE, r);
    } catch {
      /* not remembered */
    }
  };

  if (routes.status === 'off') {
    return (
      <section className="card" aria-label="Traffic analytics" data-testid="analytics-view">
        <header className="card-head">
          <h2>Traffic analytics</h2>
        </header>
        <div className="empty-state" data-testid="analytics-off">
          <strong>Analytics is off</strong>
          <p>
            Set <code>analytics.enabled: true</code> in the gateway's config to learn what normal traffic looks like per route and
            backend, and to flag anomalies.
          </p>
          <pre className="snippet">{'analytics:\n  enabled: true\n  bucket_interval: 1m\n  analyzer_interval: 5m'}</pre>
        </div>
      </section>
    );
  }

  const list = routes.status === 'ok' ? routes.data : [];
  const learning = list.filter((r) => r.learning === true).length;
  const ongoing = anomalies.filter((a) => !a.ended_at);
  const unauthorized = routes.status === 'error' && routes.httpStatus === 401;

  return (
    <div className="analytics" data-testid="analytics-view">
      <section className="card" aria-label="Traffic analytics">
        <header className="card-head">
          <h2>Traffic analytics</h2>
          <span className="card-note" data-testid="analytics-summary">
            {routes.status === 'ok'
              ? `${list.length} route${list.length === 1 ? '' : 's'}${learning ? ` · ${learning} learning` : ''} · ${ongoing.length ? `${ongoing.length} anomal${ongoing.length === 1 ? 'y' : 'ies'} now` : 'no anomaly now'}`
              : routes.status === 'loading'
                ? 'loading…'
                : ''}
          </span>
          {routes.status === 'ok' && routes.error && (
            <span className="inline-error" role="alert" data-testid="analytics-stale" title={routes.error}>
              not refreshed: {routes.error}
            </span>
          )}
          <div className="segmented push-right" role="group" aria-label="Time range">
            {RANGE_KEYS.map((k) => (
              <button key={k} type="button" className={k === range ? 'on' : ''} aria-pressed={k === range} onClick={() => choose(k)} data-testid={`range-${k}`}>
                {k}
              </button>
            ))}
          </div>
        </header>
        {routes.status === 'error' && (
          <div className="banner banner-error" role="alert" data-testid="analytics-error">
            {unauthorized
              ? `The analytics API refused this page's credentials${via === 'cookie' ? ': this gateway does not accept the dashboard sign-in at /analytics/ (use the admin token, or open the dashboard from the gateway host)' : ''}.`
              : `Could not load analytics: ${routes.message}`}
            <button type="button" className="btn btn-small" onClick={data.reload}>
              Retry
            </button>
          </div>
        )}
        {routes.status === 'ok' && list.length === 0 && (
          <div className="empty" data-testid="analytics-no-routes">
            no routes configured
          </div>
        )}
        {list.length > 0 && (
          <div className="route-list">
            {list.map((r) => (
              <RouteCard key={r.route} route={r} range={range} anomalies={anomalies} bump={data.routeBumps[r.route] ?? 0} startedAtS={startedAtS} />
            ))}
          </div>
        )}
      </section>
      <BackendsCard backends={backends} />
      <AnomalyList anomalies={anomalies} error={data.anomaliesError} />
    </div>
  );
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** `14:03:27` today, `Tue 14:03:27` on another day (the list reaches back 48 h). */
function formatWhen(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return formatClock(ts);
  return d.toDateString() === new Date().toDateString() ? formatClock(d) : `${DAYS[d.getDay()]} ${formatClock(d)}`;
}

function formatValue(metric: string, v: number | null | undefined): string {
  const kind = metricKind(metric);
  if (kind === 'errors') return formatPct(v);
  if (kind === 'latency') return formatLatency(v);
  if (kind === 'rate') return formatRate(v);
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(2) : '–';
}

function AnomalyList({ anomalies, error }: { anomalies: Anomaly[]; error: string | null }) {
  const shown = anomalies.slice(0, SHOWN_ANOMALIES);
  return (
    <section className="card" aria-label="Anomalies" data-testid="anomaly-list">
      <header className="card-head">
        <h2>Anomalies</h2>
        <span className="card-note">newest first · live</span>
        {error && (
          <span className="inline-error" role="alert">
            {error}
          </span>
        )}
      </header>
      {shown.length === 0 ? (
        <div className="empty" data-testid="anomalies-empty">
          no anomaly recorded
        </div>
      ) : (
        <div className="table-wrap">
          <table className="data-table">
            <thead>
              <tr>
                <th>Since</th>
                <th>Route</th>
                <th>Metric</th>
                <th className="num">Value</th>
                <th className="num">Normal</th>
                <th className="num">z</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr key={`${a.route}|${a.metric}|${a.timestamp}`} data-testid="anomaly-row" data-route={a.route} data-metric={a.metric}>
                  <td className="mono">{formatWhen(a.timestamp)}</td>
                  <td className="mono ellipsis" title={a.route}>
                    {a.route}
                  </td>
                  <td>
                    <span className="metric-dot" style={{ background: EPISODE_COLOR[metricKind(a.metric)] }} />
                    {a.metric}
                  </td>
                  <td className="num mono">{formatValue(a.metric, a.current)}</td>
                  <td className="num mono">{formatValue(a.metric, a.mean)}</td>
                  <td className="num mono">{typeof a.z_score === 'number' && Number.isFinite(a.z_score) ? a.z_score.toFixed(1) : '–'}</td>
                  <td>{a.ended_at ? <span className="muted">ended {formatWhen(a.ended_at)}</span> : <span className="chip tone-bad">ongoing</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
