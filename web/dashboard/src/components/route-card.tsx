/**
 * One route in the traffic view: what is normal (learned rate, band), what is enforced (limit),
 * what happened (requests/minute with anomaly episodes), and how far learning has got.
 */
import { memo, useEffect, useMemo, useRef, useState, type RefObject } from 'react';
import {
  baselineOf,
  episodesOf,
  extraFields,
  formatPct,
  formatRate,
  learningOf,
  num,
  toRateSeries,
  type Anomaly,
  type RangeKey,
  type RouteAnalytics,
} from '../analytics-model';
import { formatClock, formatLatency, type Tone } from '../format';
import { useRouteHistory } from '../use-analytics';
import { EPISODE_COLOR, RouteTrafficChart, type LimitLine } from './route-traffic-chart';

/** Fields this card shows in their own place; any other scalar field is listed as it comes. */
export const KNOWN_ROUTE_FIELDS = [
  'route',
  'avg_rate',
  'avg_latency_ms',
  'p99_latency_ms',
  'error_rate',
  'current_rate_limit',
  'anomalies_24h',
  'learning',
  'sample_size',
  'std_dev_rate',
  'rate_std_dev',
  'p50_latency_ms',
  'z_threshold',
  'learning_target',
  'shadow',
  'shadow_limit',
];

/** A limit computed in shadow mode: `shadow_limit`, or an adaptive limit while `shadow` is on. */
function limitsOf(r: RouteAnalytics): LimitLine[] {
  const out: LimitLine[] = [];
  const enforced = num(r.current_rate_limit);
  if (enforced !== null && enforced > 0) out.push({ value: enforced, shadow: false });
  const shadow = num(r.shadow_limit) ?? (r.shadow === true ? num(r.adaptive_limit) : null);
  if (shadow !== null && shadow > 0 && shadow !== enforced) out.push({ value: shadow, shadow: true });
  return out;
}

const label = (key: string) => key.replace(/_/g, ' ');

/** Visible in the viewport (or near it): charts off screen do not poll. */
function useVisible<T extends Element>(): [RefObject<T | null>, boolean] {
  const ref = useRef<T>(null);
  const [visible, setVisible] = useState(typeof IntersectionObserver === 'undefined');
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver((entries) => setVisible(entries.some((e) => e.isIntersecting)), { rootMargin: '200px' });
    io.observe(el);
    return () => io.disconnect();
  }, []);
  return [ref, visible];
}

export interface RouteCardProps {
  route: RouteAnalytics;
  range: RangeKey;
  anomalies: Anomaly[];
  bump: number;
  /** When the gateway started (unix s), if known: nothing before it is shown as data. */
  startedAtS: number | null;
}

export const RouteCard = memo(function RouteCard({ route: r, range, anomalies, bump, startedAtS }: RouteCardProps) {
  const [ref, visible] = useVisible<HTMLElement>();
  const h = useRouteHistory(r.route, range, visible, bump, startedAtS);
  const nowS = h.toS;
  const series = useMemo(() => toRateSeries(h.history, h.stepS, nowS, h.stepSent), [h.history, h.stepS, nowS, h.stepSent]);
  const baseline = useMemo(() => baselineOf(r, anomalies), [r, anomalies]);
  const episodes = useMemo(() => episodesOf(anomalies, r.route, h.fromS, h.toS, nowS), [anomalies, r.route, h.fromS, h.toS, nowS]);
  const limitKey = JSON.stringify(limitsOf(r));
  const limits = useMemo(() => JSON.parse(limitKey) as LimitLine[], [limitKey]);
  const learn = learningOf(r);
  const extras = extraFields(r, KNOWN_ROUTE_FIELDS);
  const ongoing = episodes.filter((e) => e.ongoing);
  const lastRate = [...series.rate].reverse().find((v) => v !== null) ?? null;

  let state: { text: string; tone: Tone };
  if (ongoing.length > 0) state = { text: `anomaly: ${[...new Set(ongoing.map((e) => e.anomaly.metric))].join(', ')}`, tone: 'bad' };
  else if (learn.learning) state = { text: 'learning', tone: 'muted' };
  else if (baseline?.band && lastRate !== null && (lastRate > baseline.band.hi || lastRate < baseline.band.lo)) state = { text: 'outside the band', tone: 'warn' };
  else state = { text: 'normal', tone: 'good' };

  const sigma = baseline?.band;
  return (
    <article ref={ref} className="route-card" data-testid="route-card" data-route={r.route} data-learning={learn.learning ? 'true' : 'false'} data-history-range={h.range ?? ''}>
      <header className="route-head">
        <code className="route-name" title={r.route}>
          {r.route}
        </code>
        <span className={`chip tone-${state.tone}`} data-testid="route-state">
          {state.text}
        </span>
        {learn.learning && (
          <span className="learning" data-testid="route-learning" title="Anomalies are looked for once the baseline holds enough buckets">
            <span className="learning-bar" aria-hidden="true">
              <span style={{ width: `${Math.round(learn.fraction * 100)}%` }} />
            </span>
            learning… {learn.have < learn.target ? `${learn.have} / ${learn.target} buckets` : `${learn.have} buckets so far`}
          </span>
        )}
      </header>
      <dl className="route-stats">
        <Stat name="Normal rate" value={num(r.avg_rate) === null ? '–' : `${formatRate(num(r.avg_rate))}${sigma ? ` ± ${formatRate(sigma.sigma)}` : ''}`} testId="route-baseline" />
        <Stat name="Now" value={formatRate(lastRate)} />
        <Stat name="Limit" value={limits.length === 0 ? 'none' : limits.map((l) => `${formatRate(l.value)}${l.shadow ? ' (shadow)' : ''}`).join(' · ')} testId="route-limit" />
        {num(r.p50_latency_ms) !== null && <Stat name="p50" value={formatLatency(num(r.p50_latency_ms))} />}
        <Stat name="p99" value={formatLatency(num(r.p99_latency_ms))} />
        <Stat name="Avg latency" value={formatLatency(num(r.avg_latency_ms))} />
        <Stat name="Errors" value={formatPct(num(r.error_rate))} />
        <Stat name="Anomalies 24 h" value={String(num(r.anomalies_24h) ?? 0)} tone={(num(r.anomalies_24h) ?? 0) > 0 ? 'warn' : undefined} />
        {!learn.learning && <Stat name="Learned from" value={`${learn.have} buckets`} />}
        {extras.map(([k, v]) => (
          <Stat key={k} name={label(k)} value={typeof v === 'number' ? String(Math.round(v * 100) / 100) : String(v)} tone={/shadow|would/i.test(k) ? 'warn' : undefined} testId={`route-extra-${k}`} />
        ))}
      </dl>
      <div className="chart-legend" aria-hidden="true">
        <span className="lg lg-rate">requests/min</span>
        {series.rejected.some((v) => v !== null && v > 0) && <span className="lg lg-rejected">refused/min</span>}
        {baseline && <span className="lg lg-baseline">normal</span>}
        {baseline?.band && <span className="lg lg-band">± {baseline.band.k}σ</span>}
        {limits.some((l) => !l.shadow) && <span className="lg lg-limit">limit</span>}
        {limits.some((l) => l.shadow) && <span className="lg lg-shadow">shadow limit</span>}
        {episodes.length > 0 && (
          <span className="lg lg-anomaly" style={{ ['--c' as string]: EPISODE_COLOR[episodes[0]!.kind] }}>
            {episodes.length} anomal{episodes.length === 1 ? 'y' : 'ies'}
          </span>
        )}
        {h.zoomed && (
          <span className="muted" data-testid="route-zoomed" title="The gateway has no data for this route before then">
            since {formatClock(h.fromS * 1000)}
          </span>
        )}
        {h.error && (
          <span className="inline-error push-right" role="alert" data-testid="route-history-error">
            history: {h.error}
          </span>
        )}
      </div>
      <RouteTrafficChart series={series} fromS={h.fromS} toS={h.toS} baseline={baseline} limits={limits} episodes={episodes} testId="route-chart" />
    </article>
  );
});

function Stat({ name, value, tone, testId }: { name: string; value: string; tone?: Tone | undefined; testId?: string }) {
  return (
    <div className={tone ? `stat tone-${tone}` : 'stat'} data-testid={testId}>
      <dt>{name}</dt>
      <dd>{value}</dd>
    </div>
  );
}
