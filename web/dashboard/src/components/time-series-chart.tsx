/** A small uPlot time-series chart that fills its container's width and follows new data. */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatClock } from '../format';
import { followWidth, hoverCursor, isolatedPoints, timeAxis, valueAxis } from './chart-kit';

export interface TimeSeriesChartProps {
  /** x values, unix seconds. */
  x: number[];
  /** y values; null is a gap (a minute with no traffic has no latency). */
  y: (number | null)[];
  color: string;
  height?: number;
  /** Formats a y value for the axis and the hover readout. */
  format: (v: number) => string;
  testId?: string;
}


export function TimeSeriesChart({ x, y, color, height = 92, format, testId }: TimeSeriesChartProps) {
  const boxRef = useRef<HTMLDivElement>(null);
  const readoutRef = useRef<HTMLSpanElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  const formatRef = useRef(format);
  formatRef.current = format;
  const dataRef = useRef<uPlot.AlignedData>([x, y]);
  dataRef.current = [x, y];

  useEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const opts: uPlot.Options = {
      width: Math.max(120, box.clientWidth),
      height,
      legend: { show: false },
      cursor: hoverCursor(),
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        timeAxis(40, (_u, splits) => splits.map((s) => formatClock(s * 1000).slice(0, 5))),
        valueAxis(44, 24, (_u, splits) => splits.map((s) => formatRef.current(s))),
      ],
      series: [
        {},
        {
          stroke: color,
          width: 1.5,
          fill: `${color}22`,
          spanGaps: false,
          // A value between two gaps draws no line: mark it with a dot instead.
          points: { show: true, size: 5, fill: color, filter: isolatedPoints },
        },
      ],
      hooks: {
        setCursor: [
          (u) => {
            const el = readoutRef.current;
            if (!el) return;
            const idx = u.cursor.idx;
            if (idx === null || idx === undefined) {
              el.textContent = '';
              return;
            }
            const v = u.data[1][idx];
            el.textContent = `${formatClock((u.data[0][idx] ?? 0) * 1000).slice(0, 5)}  ${v === null || v === undefined ? 'no traffic' : formatRef.current(v)}`;
          },
        ],
      },
    };
    const plot = new uPlot(opts, dataRef.current, box);
    plotRef.current = plot;
    const stopFollowing = followWidth(plot, box, height);
    return () => {
      stopFollowing();
      plot.destroy();
      plotRef.current = null;
    };
  }, [color, height]);

  useEffect(() => {
    plotRef.current?.setData([x, y]);
  }, [x, y]);

  return (
    <div className="chart" data-testid={testId}>
      <div ref={boxRef} className="chart-box" style={{ height }} />
      <span ref={readoutRef} className="chart-readout" aria-hidden="true" />
    </div>
  );
}
