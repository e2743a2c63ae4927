/**
 * One route's traffic in uPlot: requests/minute against the learned baseline (a line, and the
 * band mean ± k·σ when σ is known) and the enforced limit, over a fixed time window, with its
 * anomaly episodes shaded on the canvas and marked by hoverable DOM markers above the plot.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatPct, formatRate, type Baseline, type Episode, type MetricKind, type RateSeries } from '../analytics-model';
import { formatClock, formatLatency } from '../format';
import { clipToPlot, followWidth, hoverCursor, isolatedPoints, timeAxis, valueAxis } from './chart-kit';

export interface LimitLine {
  /** Requests per minute. */
  value: number;
  /** A shadow-mode limit: computed, not enforced. */
  shadow: boolean;
}

export interface RouteTrafficChartProps {
  series: RateSeries;
  /** The window shown, unix seconds (the chart spans it even before there is data). */
  fromS: number;
  toS: number;
  baseline: Baseline | null;
  /** The enforced limit and/or a shadow-mode one. */
  limits: LimitLine[];
  episodes: Episode[];
  height?: number;
  testId?: string;
}

const RATE = '#4c9aff';
const REJECTED = '#f0716a';
const BASELINE = '#3fb950';
const LIMIT = '#d6a23a';
/** A limit further above the data than this factor is named, not drawn (it would flatten the traffic). */
const LIMIT_SCALE_FACTOR = 2.5;

export const EPISODE_COLOR: Record<MetricKind, string> = {
  rate: '#f0716a',
  errors: '#ff9f43',
  latency: '#a78bfa',
  other: '#f0716a',
};

function rgba(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function describeEpisode(e: Episode): string {
  const a = e.anomaly;
  const f = (v: number | null | undefined) => (e.kind === 'errors' ? formatPct(v) : e.kind === 'latency' ? formatLatency(v) : e.kind === 'rate' ? formatRate(v) : typeof v === 'number' ? v.toFixed(2) : '–');
  const z = typeof a.z_score === 'number' && Number.isFinite(a.z_score) ? ` · z ${a.z_score.toFixed(1)}` : '';
  const when = `${formatClock(e.start * 1000)}–${e.ongoing ? 'now' : formatClock(e.end * 1000)}`;
  return `${a.metric}: ${f(a.current)} vs normal ${f(a.mean)}${z} · ${when}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** Tick labels fit to the span shown: seconds for minutes, the weekday for days. */
function tickLabel(s: number, spanS: number): string {
  const clock = formatClock(s * 1000);
  if (spanS <= 15 * 60) return clock;
  if (spanS <= 36 * 3600) return clock.slice(0, 5);
  return `${DAYS[new Date(s * 1000).getDay()]} ${clock.slice(0, 5)}`;
}

function maxOf(vs: readonly (number | null)[]): number {
  let max = 0;
  for (const v of vs) if (v !== null && v > max) max = v;
  return max;
}

/** The y range: the traffic, the band and the limits near them, with headroom; the limits too far above are listed. */
function yScale(series: RateSeries, baseline: Baseline | null, limits: readonly LimitLine[]): { max: number; onScale: LimitLine[]; offScale: LimitLine[] } {
  let max = Math.max(maxOf(series.rate), maxOf(series.rejected));
  if (baseline) max = Math.max(max, baseline.band?.hi ?? baseline.mean);
  const onScale: LimitLine[] = [];
  const offScale: LimitLine[] = [];
  for (const l of limits) (max === 0 || l.value <= max * LIMIT_SCALE_FACTOR ? onScale : offScale).push(l);
  for (const l of onScale) max = Math.max(max, l.value);
  return { max: max > 0 ? max * 1.12 : 1, onScale, offScale };
}

export function RouteTrafficChart({ series, fromS, toS, baseline, limits, episodes, height = 150, testId }: RouteTrafficChartProps) {
  const boxRef = useRef<HTMLDivElement>(null);
  const readoutRef = useRef<HTMLSpanElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  const layerRef = useRef<HTMLDivElement | null>(null);
  const props = useRef({ series, fromS, toS, baseline, limits, episodes });
  props.current = { series, fromS, toS, baseline, limits, episodes };

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;

    const drawBand = (u: uPlot) => {
      const { baseline: b } = props.current;
      if (!b) return;
      const ctx = u.ctx;
      const { left, width } = clipToPlot(u);
      if (b.band) {
        const y1 = u.valToPos(b.band.hi, 'y', true);
        const y0 = u.valToPos(b.band.lo, 'y', true);
        ctx.fillStyle = rgba(BASELINE, 0.1);
        ctx.fillRect(left, y1, width, y0 - y1);
      }
      const y = Math.round(u.valToPos(b.mean, 'y', true)) + 0.5;
      ctx.strokeStyle = rgba(BASELINE, 0.85);
      ctx.lineWidth = 1.25 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.restore();
    };

    const drawEpisodesAndLimit = (u: uPlot) => {
      const { episodes: eps, limits: ls, series: s, baseline: b } = props.current;
      const ctx = u.ctx;
      const { left, top, width, height: h } = clipToPlot(u);
      for (const e of eps) {
        const x0 = u.valToPos(e.start, 'x', true);
        const x1 = Math.max(x0 + 3 * devicePixelRatio, u.valToPos(e.end + (e.ongoing ? 0 : s.stepS), 'x', true));
        ctx.fillStyle = rgba(EPISODE_COLOR[e.kind], 0.16);
        ctx.fillRect(x0, top, x1 - x0, h);
      }
      for (const l of yScale(s, b, ls).onScale) {
        const y = Math.round(u.valToPos(l.value, 'y', true)) + 0.5;
        ctx.strokeStyle = LIMIT;
        ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.setLineDash(l.shadow ? [2 * devicePixelRatio, 3 * devicePixelRatio] : [8 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + width, y);
        ctx.stroke();
      }
      ctx.restore();
      syncMarkers(u);
    };

    /** One DOM marker per episode above the plot: hoverable, countable, readable by a screen reader. */
    const syncMarkers = (u: uPlot) => {
      const layer = layerRef.current;
      if (!layer) return;
      const eps = props.current.episodes;
      while (layer.children.length > eps.length) layer.lastElementChild!.remove();
      eps.forEach((e, i) => {
        let el = layer.children[i] as HTMLDivElement | undefined;
        if (!el) {
          el = document.createElement('div');
          el.setAttribute('data-testid', 'anomaly-marker');
          el.setAttribute('role', 'img');
          layer.appendChild(el);
        }
        const x = u.valToPos(e.start, 'x');
        const label = describeEpisode(e);
        el.className = `anomaly-marker kind-${e.kind}${e.ongoing ? ' ongoing' : ''}`;
        el.style.left = `${Math.round(x)}px`;
        el.style.display = x < -4 || x > u.over.clientWidth + 4 ? 'none' : '';
        el.title = label;
        el.setAttribute('aria-label', `anomaly ${label}`);
        el.dataset.metric = e.anomaly.metric;
      });
    };

    const opts: uPlot.Options = {
      width: Math.max(160, box.clientWidth),
      height,
      legend: { show: false },
      cursor: hoverCursor(),
      scales: {
        x: { time: true, range: () => [props.current.fromS, props.current.toS] },
        y: { range: () => [0, yScale(props.current.series, props.current.baseline, props.current.limits).max] },
      },
      axes: [
        timeAxis(
          (_u, _i, min, max) => (max - min > 36 * 3600 ? 84 : max - min <= 15 * 60 ? 66 : 56),
          (_u, splits) => splits.map((s) => tickLabel(s, props.current.toS - props.current.fromS)),
        ),
        valueAxis(58, 26, (_u, splits) => splits.map((s) => formatRate(s))),
      ],
      series: [
        {},
        {
          stroke: RATE,
          width: 1.5,
          fill: rgba(RATE, 0.13),
          spanGaps: false,
          points: { show: false },
        },
        {
          stroke: REJECTED,
          width: 1.25,
          dash: [4, 3],
          spanGaps: false,
          // A lone refused bucket between gaps draws no line: a dot instead.
          points: { show: true, size: 4, fill: REJECTED, filter: isolatedPoints },
        },
      ],
      hooks: {
        init: [
          (u) => {
            const layer = document.createElement('div');
            layer.className = 'anomaly-layer';
            u.over.appendChild(layer);
            layerRef.current = layer;
          },
        ],
        drawAxes: [drawBand],
        draw: [drawEpisodesAndLimit],
        setCursor: [
          (u) => {
            const el = readoutRef.current;
            if (!el) return;
            const idx = u.cursor.idx;
            const s = props.current.series;
            if (idx === null || idx === undefined || s.x[idx] === undefined) {
              el.textContent = '';
              return;
            }
            const v = s.rate[idx];
            const rj = s.rejected[idx];
            const er = s.errorRate[idx];
            const p99 = s.p99[idx];
            el.textContent = [
              formatClock(s.x[idx]! * 1000),
              v === null || v === undefined ? 'no data' : formatRate(v),
              rj ? `refused ${formatRate(rj)}` : '',
              er !== null && er !== undefined ? `err ${formatPct(er)}` : '',
              p99 !== null && p99 !== undefined ? `p99 ${formatLatency(p99)}` : '',
            ]
              .filter(Boolean)
              .join('  ');
          },
        ],
      },
    };
    const s0 = props.current.series;
    const plot = new uPlot(opts, [s0.x, s0.rate, s0.rejected], box);
    plotRef.current = plot;
    const stopFollowing = followWidth(plot, box, height);
    return () => {
      stopFollowing();
      plot.destroy();
      plotRef.current = null;
      layerRef.current = null;
    };
  }, [height]);

  // Every prop change redraws: setData re-runs the scale ranges, which read the props ref.
  useEffect(() => {
    plotRef.current?.setData([series.x, series.rate, series.rejected]);
  }, [series, fromS, toS, baseline, limits, episodes]);

  const { offScale } = yScale(series, baseline, limits);
  return (
    <div className="chart route-chart" data-testid={testId} data-points={series.points} data-max-rate={Math.round(maxOf(series.rate))} data-markers={episodes.length}>
      <div ref={boxRef} className="chart-box" style={{ height }} />
      <span ref={readoutRef} className="chart-readout" aria-hidden="true" />
      {offScale.length > 0 && (
        <span className="limit-off-scale" data-testid="limit-off-scale">
          {offScale.map((l) => `${l.shadow ? 'shadow limit' : 'limit'} ${formatRate(l.value)}`).join(' · ')} ↑ above the chart
        </span>
      )}
      {series.traffic === 0 && <div className="chart-empty">no traffic recorded in this range yet</div>}
    </div>
  );
}
