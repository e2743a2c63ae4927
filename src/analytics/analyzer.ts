/**
 * The analyzer: baselines per series over the window, and z-score anomalies on completed buckets
 * of route series. Off the hot path (runs every analyzer_interval). Statistical rules:
 * - rates are requests per bucket (reported per minute), empty buckets count as zero, and only
 *   buckets the gateway covered count at all;
 * - a bucket is tested against the window of buckets before it: never itself, never the current
 *   partial bucket, never gateway rejections (they are counted apart by the store);
 * - σ has a floor, so steady traffic's jitter is not an alarm (rate: Poisson noise with margin plus one
 *   request, and a fraction of the mean; error rate: Poisson noise of the expected error count with
 *   margin, at least one error, and 1 point; latency: twice the standard error of a bucket mean, a
 *   fraction of the mean and 1 ms). The margins keep stationary traffic under one false alarm a day
 *   at one-minute buckets, where a textbook 3σ test would raise several;
 * - rate is two-sided (silence is an anomaly), error rate and latency flag increases only, and the
 *   error rate is tested even when the baseline had no errors;
 * - an anomalous bucket stays out of its metric's baseline only while its episode lasts, at most a
 *   quarter of the window: a level shift that persists becomes the new normal.
 */
import { Coverage } from './coverage.js';
import { HIST_BINS, quantile } from './histogram.js';
import { COUNT, ERRORS, FIELDS, LAT_MAX, LAT_SUM, LAT_SUMSQ, REJECTED, BYTES_IN, BYTES_OUT, type TrafficStore } from './store.js';

export type MetricName = 'request_rate' | 'error_rate' | 'latency';
export const METRICS: readonly MetricName[] = ['request_rate', 'error_rate', 'latency'];

/** A baseline is trusted (anomalies tested, `learning` false) once it holds this many buckets. */
export const MIN_BASELINE_BUCKETS = 10;
/** Error rate and latency of a bucket are tested only when it has at least this many requests. */
export const MIN_BUCKET_VOLUME = 10;
/** σ floor factors (see the module header). */
const RATE_POISSON_K = 1.5;
const RATE_FRACTION = 0.1;
/** Added to the Poisson term: small counts have a longer upper tail than a normal curve. */
const RATE_SKEW_MARGIN = 1;
const ERROR_POISSON_K = 2;
/** Error-count noise is at least one error: a single failure is never an alarm on its own. */
const ERROR_MIN_COUNT_SIGMA = 1;
const ERROR_MIN_SIGMA = 0.01;
const LATENCY_SE_K = 2;
const LATENCY_FRACTION = 0.2;
const LATENCY_MIN_SIGMA_MS = 1;
/** Anomalies kept at most (oldest dropped first). */
const MAX_ANOMALIES = 10_000;

/** One anomaly episode of one route and metric, in the API's shape plus the bucket index. */
export interface Anomaly {
  route: string;
  metric: MetricName;
  /** Value in the first anomalous bucket (rate: requests/minute, error rate: 0..1, latency: ms). */
  current: number;
  mean: number;
  std_dev: number;
  z_score: number;
  /** ISO start of the first anomalous bucket. */
  timestamp: string;
  /** ISO start of the first bucket back to normal, or of the bucket where the shift became the new normal; null while it lasts. */
  ended_at: string | null;
  /** Internal: absolute bucket index of `timestamp`. */
  bucket: number;
}

/** What is normal for one series over the window. Latency figures are null with no requests. */
export interface SeriesBaseline {
  /** Covered buckets in the window (the rate baseline's size). */
  sampleSize: number;
  learning: boolean;
  /** Requests per minute (gateway rejections excluded). */
  rateMean: number;
  rateStdDev: number;
  requests: number;
  errors: number;
  rejected: number;
  errorRate: number;
  latencyMeanMs: number | null;
  latencyStdDevMs: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  bytesIn: number;
  bytesOut: number;
  /** Last bucket the window covers. */
  toBucket: number;
}

interface Episode {
  anomaly: Anomaly;
  /** Anomalous buckets kept out of this metric's baseline while the episode lasts. */
  buckets: number[];
}

export interface AnalyzerOptions {
  windowBuckets: number;
  zThreshold: number;
  coverage: Coverage;
  onAnomaly: (a: Anomaly) => void;
  onAnomalyEnd: (a: Anomaly) => void;
}

interface Test {
  value: number;
  mean: number;
  sigma: number;
  z: number;
  anomalous: boolean;
}

/** Per-run scratch space: allocated once. */
const scratch = new Float64Array(FIELDS);
const histScratch = new Float64Array(HIST_BINS);

export class Analyzer {
  readonly windowBuckets: number;
  readonly zThreshold: number;
  readonly coverage: Coverage;
  /** Longest an episode keeps its buckets out of the baseline. */
  readonly maxEpisodeBuckets: number;
  #onAnomaly: (a: Anomaly) => void;
  #onAnomalyEnd: (a: Anomaly) => void;
  /** Open episodes by `${series}\u0000${metric}`. */
  #episodes = new Map<string, Episode>();
  #anomalies: Anomaly[] = [];
  /** Last bucket tested (all route series are tested together). */
  lastTested = -Infinity;
  #baselines = new Map<string, SeriesBaseline>();

  constructor(opts: AnalyzerOptions) {
    this.windowBuckets = opts.windowBuckets;
    this.zThreshold = opts.zThreshold;
    this.coverage = opts.coverage;
    this.maxEpisodeBuckets = Math.max(3, Math.ceil(opts.windowBuckets / 4));
    this.#onAnomaly = opts.onAnomaly;
    this.#onAnomalyEnd = opts.onAnomalyEnd;
  }

  get anomalies(): readonly Anomaly[] {
    return this.#anomalies;
  }

  baseline(name: string): SeriesBaseline | undefined {
    return this.#baselines.get(name);
  }

  get baselines(): ReadonlyMap<string, SeriesBaseline> {
    return this.#baselines;
  }

  /**
   * One analysis: tests every completed, covered, untested bucket up to `lastComplete` (at most a
   * window of them) for each route series, then recomputes every series' baseline.
   */
  run(store: TrafficStore, routeSeries: readonly number[], lastComplete: number, nowMs: number, retentionMs: number): void {
    const from = Math.max(this.lastTested + 1, lastComplete - this.windowBuckets + 1);
    for (let b = from; b <= lastComplete; b++) {
      if (!this.coverage.covered(b)) continue;
      for (const s of routeSeries) this.#testBucket(store, s, b);
    }
    if (lastComplete > this.lastTested) this.lastTested = lastComplete;
    for (let s = 0; s < store.names.length; s++) this.#baselines.set(store.names[s]!, this.computeBaseline(store, s, lastComplete));
    this.#prune(nowMs - Math.max(retentionMs, 86_400_000));
  }

  #prune(minTime: number): void {
    let drop = 0;
    while (drop < this.#anomalies.length && (this.#anomalies.length - drop > MAX_ANOMALIES || Date.parse(this.#anomalies[drop]!.timestamp) < minTime)) drop++;
    if (drop > 0) this.#anomalies.splice(0, drop);
  }

  #excluded(store: TrafficStore, s: number, metric: MetricName): number[] | undefined {
    return this.#episodes.get(episodeKey(store.names[s]!, metric))?.buckets;
  }

  #testBucket(store: TrafficStore, s: number, b: number): void {
    const lo = b - this.windowBuckets;
    const hi = b - 1;
    const perMinute = 60_000 / store.widthMs;
    const n = store.get(s, b, COUNT);
    // Rate, two-sided. It also decides whether the baseline is big enough to test anything.
    const rate = this.#rateTest(store, s, lo, hi, n, this.#excluded(store, s, 'request_rate'));
    if (rate === null) return;
    this.#verdict(store, s, 'request_rate', b, rate, perMinute);
    if (n >= MIN_BUCKET_VOLUME) {
      const err = this.#errorTest(store, s, lo, hi, n, store.get(s, b, ERRORS), this.#excluded(store, s, 'error_rate'));
      if (err !== null) this.#verdict(store, s, 'error_rate', b, err, 1);
      const lat = this.#latencyTest(store, s, lo, hi, n, store.get(s, b, LAT_SUM) / n, this.#excluded(store, s, 'latency'));
      if (lat !== null) this.#verdict(store, s, 'latency', b, lat, 1);
    } else {
      // Too few requests to judge errors or latency: an open episode goes on (bounded) until traffic says otherwise.
      for (const metric of ['error_rate', 'latency'] as const) {
        const key = episodeKey(store.names[s]!, metric);
        const ep = this.#episodes.get(key);
        if (ep === undefined || ep.buckets.includes(b)) continue;
        ep.buckets.push(b);
        if (ep.buckets.length >= this.maxEpisodeBuckets) this.#end(key, ep, store.startOf(b + 1));
      }
    }
  }

  #rateTest(store: TrafficStore, s: number, lo: number, hi: number, x: number, skip: number[] | undefined): Test | null {
    const { n, mean, sd } = countSpread(store, s, this.coverage.ranges(lo, hi), skip);
    if (n < MIN_BASELINE_BUCKETS) return null;
    const sigma = Math.max(sd, RATE_POISSON_K * Math.sqrt(mean) + RATE_SKEW_MARGIN, RATE_FRACTION * mean);
    const z = (x - mean) / sigma;
    return { value: x, mean, sigma, z, anomalous: Math.abs(z) > this.zThreshold };
  }

  #errorTest(store: TrafficStore, s: number, lo: number, hi: number, nb: number, eb: number, skip: number[] | undefined): Test | null {
    const { requests: total, sum: errors, between } = perRequestSpread(store, s, this.coverage.ranges(lo, hi), skip, ERRORS, null);
    if (total === 0) return null;
    const mean = errors / total;
    // Laplace-smoothed rate: a baseline with no errors still has a finite, non-zero noise level.
    const p = (errors + 1) / (total + 2);
    // Error counts of a bucket are near-Poisson with mean p·n: their noise, in counts, over the bucket's volume.
    const countSigma = Math.max(ERROR_POISSON_K * Math.sqrt(p * nb), ERROR_MIN_COUNT_SIGMA);
    const sigma = Math.max(between, countSigma / nb, ERROR_MIN_SIGMA);
    const x = eb / nb;
    const z = (x - mean) / sigma;
    return { value: x, mean, sigma, z, anomalous: z > this.zThreshold };
  }

  #latencyTest(store: TrafficStore, s: number, lo: number, hi: number, nb: number, x: number, skip: number[] | undefined): Test | null {
    const { requests: total, sum: latSum, sumSq: latSq, between } = perRequestSpread(store, s, this.coverage.ranges(lo, hi), skip, LAT_SUM, LAT_SUMSQ);
    if (total === 0) return null;
    const mean = latSum / total;
    const sdReq = Math.sqrt(Math.max(0, latSq / total - mean * mean));
    const sigma = Math.max(between, (LATENCY_SE_K * sdReq) / Math.sqrt(nb), LATENCY_FRACTION * mean, LATENCY_MIN_SIGMA_MS);
    const z = (x - mean) / sigma;
    return { value: x, mean, sigma, z, anomalous: z > this.zThreshold };
  }

  /** Opens, extends or ends the episode of (series, metric) after testing bucket b. */
  #verdict(store: TrafficStore, s: number, metric: MetricName, b: number, t: Test, scale: number): void {
    const key = episodeKey(store.names[s]!, metric);
    const ep = this.#episodes.get(key);
    if (t.anomalous) {
      if (ep === undefined) {
        const anomaly: Anomaly = {
          route: routeOfSeries(store.names[s]!),
          metric,
          current: round(t.value * scale),
          mean: round(t.mean * scale),
          std_dev: round(t.sigma * scale),
          z_score: round(t.z),
          timestamp: new Date(store.startOf(b)).toISOString(),
          ended_at: null,
          bucket: b,
        };
        this.#episodes.set(key, { anomaly, buckets: [b] });
        this.#anomalies.push(anomaly);
        this.#onAnomaly(anomaly);
        return;
      }
      if (ep.buckets.includes(b)) return;
      ep.buckets.push(b);
      // Bounded: past a quarter of the window the shift is the new normal; its buckets count again.
      if (ep.buckets.length >= this.maxEpisodeBuckets) this.#end(key, ep, store.startOf(b + 1));
      return;
    }
    if (ep !== undefined) this.#end(key, ep, store.startOf(b));
  }

  #end(key: string, ep: Episode, atMs: number): void {
    this.#episodes.delete(key);
    ep.anomaly.ended_at = new Date(atMs).toISOString();
    this.#onAnomalyEnd(ep.anomaly);
  }

  /** Baseline of series `s` over the window ending at `to` (inclusive), episodes' buckets left out. */
  computeBaseline(store: TrafficStore, s: number, to: number): SeriesBaseline {
    const lo = to - this.windowBuckets + 1;
    const ranges = this.coverage.ranges(lo, to);
    const name = store.names[s]!;
    const rateSkip = this.#episodes.get(episodeKey(name, 'request_rate'))?.buckets;
    const latSkip = this.#episodes.get(episodeKey(name, 'latency'))?.buckets;
    const { n, mean, sd } = countSpread(store, s, ranges, rateSkip);
    scratch.fill(0);
    histScratch.fill(0);
    const skip = latSkip === undefined ? undefined : (b: number) => latSkip.includes(b);
    for (const [a, z] of ranges) store.sum(s, a, z, scratch, histScratch, skip);
    const perMinute = 60_000 / store.widthMs;
    const reqs = scratch[COUNT]!;
    const latMean = reqs > 0 ? scratch[LAT_SUM]! / reqs : null;
    const max = scratch[LAT_MAX]!;
    // Errors over all covered buckets (the error episode's buckets are not told apart here).
    let errors = 0;
    let requests = 0;
    let rejected = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    for (const [a, z] of ranges) {
      for (let b = a; b <= z; b++) {
        const slot = store.slotOf(s, b);
        if (slot === -1) continue;
        const c = store.cells[s]!;
        const o = slot * FIELDS;
        requests += c[o + COUNT]!;
        errors += c[o + ERRORS]!;
        rejected += c[o + REJECTED]!;
        bytesIn += c[o + BYTES_IN]!;
        bytesOut += c[o + BYTES_OUT]!;
      }
    }
    return {
      sampleSize: n,
      learning: n < MIN_BASELINE_BUCKETS,
      rateMean: round(mean * perMinute),
      rateStdDev: round(sd * perMinute),
      requests,
      errors,
      rejected,
      errorRate: requests > 0 ? round(errors / requests, 6) : 0,
      latencyMeanMs: latMean === null ? null : round(latMean),
      latencyStdDevMs: latMean === null ? null : round(Math.sqrt(Math.max(0, scratch[LAT_SUMSQ]! / reqs - latMean * latMean))),
      p50Ms: roundOrNull(quantile(histScratch, 0.5, max)),
      p95Ms: roundOrNull(quantile(histScratch, 0.95, max)),
      p99Ms: roundOrNull(quantile(histScratch, 0.99, max)),
      bytesIn,
      bytesOut,
      toBucket: to,
    };
  }

  /** Anomalies of the last `ms` (by start), optionally of one route. */
  recent(sinceMs: number, route?: string): Anomaly[] {
    const out: Anomaly[] = [];
    for (const a of this.#anomalies) if (Date.parse(a.timestamp) >= sinceMs && (route === undefined || a.route === route)) out.push(a);
    return out;
  }

  /** State for the snapshot. */
  exportState(): { lastTested: number | null; anomalies: Anomaly[]; episodes: { key: string; buckets: number[]; index: number }[] } {
    const episodes: { key: string; buckets: number[]; index: number }[] = [];
    for (const [key, ep] of this.#episodes) episodes.push({ key, buckets: ep.buckets, index: this.#anomalies.indexOf(ep.anomaly) });
    return { lastTested: Number.isFinite(this.lastTested) ? this.lastTested : null, anomalies: this.#anomalies, episodes: episodes.filter((e) => e.index >= 0) };
  }

  importState(state: { lastTested: number | null; anomalies: Anomaly[]; episodes: { key: string; buckets: number[]; index: number }[] }): void {
    this.lastTested = state.lastTested ?? -Infinity;
    this.#anomalies = state.anomalies.slice(-MAX_ANOMALIES);
    this.#episodes.clear();
    for (const e of state.episodes) {
      const anomaly = state.anomalies[e.index];
      if (anomaly !== undefined && anomaly.ended_at === null && this.#anomalies.includes(anomaly)) this.#episodes.set(e.key, { anomaly, buckets: e.buckets.slice(0, this.maxEpisodeBuckets) });
    }
  }
}

/** Route series are named "r:<prefix>" (or "r:unmatched"), backend series "b:<url>". */
export function routeOfSeries(name: string): string {
  return name.startsWith('r:') || name.startsWith('b:') ? name.slice(2) : name;
}

/** Episodes are kept by series name and metric. */
function episodeKey(series: string, metric: MetricName): string {
  return series + '\u0000' + metric;
}

/** Number, mean and sample standard deviation (0 below two) of the request counts of series `s`'s buckets in `ranges`, `skip`'s left out. */
function countSpread(store: TrafficStore, s: number, ranges: readonly [number, number][], skip: readonly number[] | undefined): { n: number; mean: number; sd: number } {
  let n = 0;
  let sum = 0;
  let sumsq = 0;
  for (const [a, z] of ranges) {
    for (let b = a; b <= z; b++) {
      if (skip !== undefined && skip.includes(b)) continue;
      const c = store.get(s, b, COUNT);
      n++;
      sum += c;
      sumsq += c * c;
    }
  }
  const mean = n > 0 ? sum / n : 0;
  const sd = n > 1 ? Math.sqrt(Math.max(0, (sumsq - n * mean * mean) / (n - 1))) : 0;
  return { n, mean, sd };
}

/**
 * Over series `s`'s non-empty buckets in `ranges` (`skip`'s left out): the requests, the total of
 * `field` (and of `sqField` when given), and the sample standard deviation between buckets of
 * `field` per request, over the buckets of at least MIN_BUCKET_VOLUME requests.
 */
function perRequestSpread(
  store: TrafficStore,
  s: number,
  ranges: readonly [number, number][],
  skip: readonly number[] | undefined,
  field: number,
  sqField: number | null,
): { requests: number; sum: number; sumSq: number; between: number } {
  const out = { requests: 0, sum: 0, sumSq: 0, between: 0 };
  let k = 0;
  let meanSum = 0;
  let meanSumSq = 0;
  for (const [a, z] of ranges) {
    for (let b = a; b <= z; b++) {
      if (skip !== undefined && skip.includes(b)) continue;
      const c = store.get(s, b, COUNT);
      if (c === 0) continue;
      const v = store.get(s, b, field);
      out.requests += c;
      out.sum += v;
      if (sqField !== null) out.sumSq += store.get(s, b, sqField);
      if (c >= MIN_BUCKET_VOLUME) {
        const m = v / c;
        k++;
        meanSum += m;
        meanSumSq += m * m;
      }
    }
  }
  out.between = sampleSd(k, meanSum, meanSumSq);
  return out;
}

/** Sample standard deviation of k values from their sum and sum of squares (0 below two). */
function sampleSd(k: number, sum: number, sumsq: number): number {
  return k > 1 ? Math.sqrt(Math.max(0, (sumsq - (sum * sum) / k) / (k - 1))) : 0;
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function roundOrNull(x: number | null): number | null {
  return x === null ? null : round(x);
}
