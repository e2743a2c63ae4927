/**
 * The bench's rules for which runs count, as pure functions (test/bench/stats.test.ts):
 * a run is disturbed when the fixed CPU loop timed before and after it moved, or ran slower than
 * the quietest loop seen, or other processes took a share of the target's core; only undisturbed
 * runs make a row's medians; a row with none gets no ratio, and neither does any row against it.
 */

const movedPct = (a, b) => (Math.abs(a - b) / Math.min(a, b)) * 100;

/**
 * Why a run is disturbed ([] when it is not), with the two loop measures.
 * @param {{ calBefore: {loadgen: number, target: number}, calAfter: {loadgen: number, target: number}, quietest: {loadgen: number, target: number}, otherLoadPct: number }} run
 *   the loop times (ms; target NaN when not pinned), the quietest loop seen so far on each core
 *   (including this run's), and other processes' share of the target's core during the run (%)
 * @param {{ disturbPct: number, disturbCorePct: number }} limits
 */
export function disturbance({ calBefore, calAfter, quietest, otherLoadPct }, { disturbPct, disturbCorePct }) {
  const calMovedPct = Math.max(movedPct(calBefore.loadgen, calAfter.loadgen), Number.isFinite(calBefore.target) ? movedPct(calBefore.target, calAfter.target) : 0);
  // A neighbour present both before and after does not move the loop: compare with the quietest loop too.
  const slow = (k) => (Number.isFinite(calBefore[k]) ? ((Math.max(calBefore[k], calAfter[k]) - quietest[k]) / quietest[k]) * 100 : 0);
  const calSlowPct = Math.max(slow('loadgen'), slow('target'));
  const reasons = [];
  if (calMovedPct > disturbPct) reasons.push(`calibration loop moved ${calMovedPct.toFixed(0)}%`);
  if (calSlowPct > disturbPct) reasons.push(`calibration loop ${calSlowPct.toFixed(0)}% slower than the quietest`);
  if (otherLoadPct > disturbCorePct) reasons.push(`other processes used ${otherLoadPct.toFixed(0)}% of the target's core`);
  return { calMovedPct, calSlowPct, reasons };
}

/** The runs a row's medians are taken from: the undisturbed ones, or (flagged) all when none is. */
export function usedRuns(runs) {
  const clean = runs.filter((r) => !r.disturbed);
  return { clean, used: clean.length > 0 ? clean : runs, disturbedOnly: clean.length === 0 };
}

/** a ÷ b of two rows' medians, or NaN when either row has only disturbed runs. */
export function ratio(a, b, key) {
  if (!a || !b || a.disturbedOnly || b.disturbedOnly) return NaN;
  return a[key] / b[key];
}

/** The floor: the cheapest (CPU per request) floor row with an undisturbed run, or null. */
export function floorOf(states) {
  const rows = states.filter((s) => s.target.floor && s.median && !s.median.disturbedOnly);
  return rows.length === 0 ? null : rows.reduce((a, s) => (s.median.cpuUsPerReq < a.median.cpuUsPerReq ? s : a));
}

/**
 * Instructions per request over consecutive windows of one process (bench/instructions.mjs): it has
 * settled once two windows in a row agree within `pct`%, and its figure is then the mean of those
 * two. Unsettled, the figure is the mean of the last two windows (or the only one), flagged.
 * @param {number[]} windows instructions per request, in order
 * @param {number} pct
 */
export function settled(windows, pct) {
  const n = windows.length;
  if (n === 0) return { settled: false, figure: NaN };
  if (n === 1) return { settled: false, figure: windows[0] };
  const [a, b] = [windows[n - 2], windows[n - 1]];
  return { settled: Math.abs(b - a) <= (pct / 100) * a, figure: (a + b) / 2 };
}
