/**
 * Log-scale latency histogram bins shared by the store, the cluster merge and the snapshot.
 * Bin 0 holds latencies ≤ MIN_MS; bin i ≥ 1 holds (MIN_MS·R^(i-1), MIN_MS·R^i]; the last bin also
 * takes everything above the range. A bin's value is its geometric midpoint, so any latency inside
 * the range is reported within √R − 1 ≈ 4.4% of its true value.
 */

/** Smallest latency told apart (ms); below it everything is one bin. */
export const HIST_MIN_MS = 0.05;
/** Width ratio of consecutive bins. */
export const HIST_RATIO = 1.09;
/** Largest latency inside the range (ms): five minutes. Above it a percentile reads the bucket maximum. */
export const HIST_MAX_MS = 300_000;
const INV_LN_RATIO = 1 / Math.log(HIST_RATIO);
/** Number of bins, the underflow and overflow bins included. */
export const HIST_BINS = Math.ceil(Math.log(HIST_MAX_MS / HIST_MIN_MS) * INV_LN_RATIO) + 2;

/** The bin of a latency (ms). O(1): one logarithm. */
export function binOf(ms: number): number {
  if (!(ms > HIST_MIN_MS)) return 0;
  const i = 1 + Math.floor(Math.log(ms / HIST_MIN_MS) * INV_LN_RATIO);
  return i < HIST_BINS ? i : HIST_BINS - 1;
}

/** The value a bin stands for (its geometric midpoint; MIN_MS for the underflow bin). */
export function binValue(i: number): number {
  if (i <= 0) return HIST_MIN_MS;
  return HIST_MIN_MS * Math.pow(HIST_RATIO, i - 0.5);
}

/**
 * The q-quantile (0 < q ≤ 1, nearest rank) of the latencies counted in `bins[offset..offset+HIST_BINS)`,
 * capped at `max` (the largest latency seen) so the overflow bin and the top bin never overshoot.
 * Returns null when the bins are empty.
 */
export function quantile(bins: ArrayLike<number>, q: number, max = Infinity, offset = 0, total?: number): number | null {
  let n = total ?? 0;
  if (total === undefined) for (let i = 0; i < HIST_BINS; i++) n += bins[offset + i]!;
  if (n <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (let i = 0; i < HIST_BINS; i++) {
    seen += bins[offset + i]!;
    if (seen >= rank) return Math.min(i === HIST_BINS - 1 && max !== Infinity ? max : binValue(i), max);
  }
  return max === Infinity ? null : max;
}
