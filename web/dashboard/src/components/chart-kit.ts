/** What the dashboard's uPlot charts share: axis styling, isolated-point dots, clipping, width following, the cursor. */
import type uPlot from 'uplot';

export const AXIS_FONT = '10px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
export const AXIS_STROKE = '#7d8794';
export const GRID_STROKE = 'rgba(255,255,255,0.06)';

/** Indices of values whose neighbours are both missing. */
export function isolatedPoints(u: uPlot, seriesIdx: number): number[] {
  const ys = u.data[seriesIdx] ?? [];
  const out: number[] = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] == null) continue;
    if ((i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) out.push(i);
  }
  return out;
}

/** Saves the canvas state and clips drawing to the plot area; the caller restores it. The plot area comes back. */
export function clipToPlot(u: uPlot): uPlot.BBox {
  const ctx = u.ctx;
  const box = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top, box.width, box.height);
  ctx.clip();
  return box;
}

/** Keeps `plot` as wide as `box` (at `height`); returns the function that stops it. */
export function followWidth(plot: uPlot, box: HTMLElement, height: number): () => void {
  const ro = new ResizeObserver(() => {
    const w = box.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height });
  });
  ro.observe(box);
  return () => ro.disconnect();
}

/** The cursor of every chart: hover only (no drag-zoom), small points. A fresh object each time: uPlot writes into its options. */
export function hoverCursor(): uPlot.Cursor {
  return { drag: { x: false, y: false, setScale: false }, points: { size: 5 } };
}

/** The time axis under a chart: tick marks, no grid lines. */
export function timeAxis(space: uPlot.Axis['space'], values: uPlot.Axis['values']): uPlot.Axis {
  return { stroke: AXIS_STROKE, font: AXIS_FONT, size: 22, space, grid: { show: false }, ticks: { stroke: GRID_STROKE, size: 3 }, values };
}

/** The value axis of a chart (`size` px wide): grid lines, no tick marks. */
export function valueAxis(size: number, space: number, values: uPlot.Axis['values']): uPlot.Axis {
  return { stroke: AXIS_STROKE, font: AXIS_FONT, size, space, grid: { stroke: GRID_STROKE, width: 1 }, ticks: { show: false }, values };
}
