/**
 * Analytics: learns what normal traffic looks like. A traffic store (per route, "unmatched" and
 * per backend, a fixed ring of buckets with latency histograms), an analyzer (baselines over a
 * window, z-score anomalies on completed buckets, episodes), snapshots in `data_dir`, optional
 * cluster-wide learning through Redis, and the `/analytics/*` API.
 *
 * It must not: do more than O(1) allocation-free work in `record()` (the only call on the request
 * path), read request paths into series (bounded: configured routes, "unmatched", known backends),
 * count the gateway's own rejections as traffic, or fail a request because Redis or the disk fails.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { every, type Clock } from '../clock.js';
import type { AnalyticsConfig } from '../config/index.js';
import type { CompletionRecord, Decision } from '../events/index.js';
import { Analyzer, routeOfSeries, type Anomaly, type SeriesBaseline } from './analyzer.js';
import { createAnalyticsApi, type AnalyticsHandler, type HistoryPoint } from './api.js';
import { ClusterLink } from './cluster.js';
import { Coverage } from './coverage.js';
import { HIST_BINS, quantile } from './histogram.js';
import { decodeSnapshot, encodeSnapshot, ensureWritableDir, readSnapshotFile, writeSnapshotFile, type AnalyzerState } from './snapshot.js';
import { BYTES_IN, BYTES_OUT, COUNT, ERRORS, FIELDS, LAT_MAX, LAT_SUM, MAX_SLOTS, REJECTED, TrafficStore } from './store.js';

export type { Anomaly, MetricName, SeriesBaseline } from './analyzer.js';
export { MIN_BASELINE_BUCKETS, METRICS } from './analyzer.js';
export type { AnalyticsHandler, HistoryPoint } from './api.js';
export { MAX_SLOTS } from './store.js';
export { SNAPSHOT_VERSION } from './snapshot.js';

/** Series name of requests that matched no route (same label as the metrics' `unmatched`). */
export const UNMATCHED = 'unmatched';
/** File name of the snapshot inside data_dir. */
export const SNAPSHOT_FILE = 'analytics.snapshot';
/** How often the store and baselines are snapshotted. */
export const SNAPSHOT_INTERVAL_MS = 60_000;
/** Buckets published to Redis per call at most (catching up after an outage goes in steps). */
const PUBLISH_CHUNK = 256;
/** Merged bucket reads per analysis at most; beyond it the analysis uses local data and goes on next time. */
const FETCH_LIMIT = 50_000;

/**
 * Decisions that mean the gateway answered by itself (auth, limits, breaker, no backend, overload,
 * bad input): counted as rejections, never as traffic, errors or latency.
 */
const REJECTING: ReadonlySet<Decision> = new Set<Decision>([
  'rate_limited',
  'adaptive_limited',
  'auth_failed',
  'breaker_open',
  'no_healthy_backend',
  'upstream_saturated',
  'body_too_large',
  'bad_request',
]);

/** True when the gateway itself refused the request (see REJECTING); an unmatched path's 404 is traffic of "unmatched". */
export function isGatewayRejection(rec: Pick<CompletionRecord, 'decision' | 'backend' | 'errorCode'>): boolean {
  if (rec.decision !== undefined) return REJECTING.has(rec.decision);
  return rec.backend === '' && rec.errorCode !== undefined && rec.errorCode !== 'not_found';
}

/** The slice of a pino logger analytics uses. */
export interface AnalyticsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the host passes. */
export interface AnalyticsOptions {
  /** The `analytics` config section. */
  config: AnalyticsConfig;
  /** Configured route prefixes (normalized, as in CompletionRecord.route), in config order. */
  routes: readonly string[];
  /** Known backend URLs (as in CompletionRecord.backend). More can be added with addBackend(). */
  backends: readonly string[];
  clock: Clock;
  logger: AnalyticsLogger;
  /** The top-level `data_dir`; the snapshot is `<dataDir>/analytics.snapshot`. */
  dataDir: string;
  /** Cluster-wide learning, when `cluster.redis_url` is set. */
  cluster?: { url: string; keyPrefix: string; timeoutMs: number } | undefined;
  /** The rate limit actually enforced on a route (requests per minute), or null when none. */
  currentLimit?: (route: string) => number | null;
  /** A backend's balancing weight, or null when not weighted. */
  backendWeight?: (backend: string) => number | null;
  /** A backend's breaker error-rate threshold (0..1), or null when not adaptive. */
  breakerThreshold?: (backend: string) => number | null;
  /** Extra fields of a route's /analytics/routes entry (the adaptive layer's mode and refusals), or null. */
  routeExtras?: (route: string) => Record<string, unknown> | null;
  /** Run the analyzer, snapshot and publish timers (default true). Tests drive analyze()/snapshot()/publish() by hand. */
  timers?: boolean;
  /** Read and write snapshots (default true). */
  persist?: boolean;
}

export interface Analytics {
  /** Checks data_dir (throws an Error naming it when not writable), loads the snapshot, connects Redis, runs a first analysis, starts timers. */
  start(): Promise<void>;
  /** Stops timers, publishes and snapshots one last time, disconnects. Safe after a partial start and twice. */
  close(): Promise<void>;
  /** Counts one finished request: O(1), no allocation. Subscribe it to the completion bus. */
  record(rec: CompletionRecord): void;
  /** `(req, res, path)` for everything under /analytics (mount behind the admin guard). */
  handle: AnalyticsHandler;
  /** Adds a backend series at run time (e.g. a backend added from the dashboard). */
  addBackend(url: string): void;
  /** Adds a route series at run time (a route a config reload added); idempotent. Series of removed routes stay until restart. */
  addRoute(prefix: string): void;
  /** Baseline of a route prefix (or "unmatched"); undefined before the first analysis. */
  routeBaseline(route: string): SeriesBaseline | undefined;
  backendBaseline(url: string): SeriesBaseline | undefined;
  /** Anomaly episodes (oldest first), optionally of one route and since a time (epoch ms). */
  anomalies(filter?: { route?: string; sinceMs?: number }): Anomaly[];
  /** Called once when an anomaly episode starts. Returns an unsubscribe function. */
  onAnomaly(listener: (a: Anomaly) => void): () => void;
  /** Called once when an episode ends (`ended_at` set). */
  onAnomalyEnd(listener: (a: Anomaly) => void): () => void;
  /** Runs one analysis now (the timer does it every analyzer_interval). */
  analyze(): Promise<void>;
  /** Publishes completed buckets to Redis now (cluster mode; the timer does it every ≤ 1 s). */
  publish(): Promise<void>;
  /** Writes the snapshot now (the timer does it every minute). */
  snapshot(): Promise<void>;
  /** True while cluster learning is configured but Redis is unreachable (learning locally). */
  readonly degraded: boolean;
  /** For /health: why analytics is degraded; empty when fine. */
  degradedReasons(): string[];
}

export function createAnalytics(opts: AnalyticsOptions): Analytics {
  const cfg = opts.config;
  const { clock, logger } = opts;
  const widthMs = cfg.bucket_interval;
  const slots = Math.min(MAX_SLOTS, Math.ceil(cfg.retention / widthMs));
  const retentionMs = slots * widthMs;
  const windowBuckets = Math.max(3, Math.round(cfg.window / widthMs));
  const snapshotPath = join(opts.dataDir, SNAPSHOT_FILE);
  const persist = opts.persist ?? true;
  const timersOn = opts.timers ?? true;

  const routeNames = [...opts.routes];
  const seriesNames = [...routeNames.map((r) => 'r:' + r), 'r:' + UNMATCHED, ...opts.backends.map((b) => 'b:' + b)];
  const store = new TrafficStore(widthMs, slots, seriesNames);
  /** Cluster mode: the merged series read back from Redis (completed buckets only). */
  const merged = opts.cluster ? new TrafficStore(widthMs, slots, seriesNames) : null;
  const routeIndex = new Map<string, number>(routeNames.map((r) => [r, store.indexOf('r:' + r)]));
  const unmatchedIndex = store.indexOf('r:' + UNMATCHED);
  const backendIndex = new Map<string, number>();
  const backendList: string[] = [];
  const routeSeries = [...routeIndex.values(), unmatchedIndex];
  const coverage = new Coverage();
  const startListeners = new Set<(a: Anomaly) => void>();
  const endListeners = new Set<(a: Anomaly) => void>();

  function emit(set: Set<(a: Anomaly) => void>, a: Anomaly): void {
    for (const l of set) {
      try {
        l(a);
      } catch (err) {
        logger.error({ err }, 'anomaly listener failed');
      }
    }
  }

  const analyzer = new Analyzer({
    windowBuckets,
    zThreshold: cfg.z_threshold,
    coverage,
    onAnomaly: (a) => {
      logger.warn({ route: a.route, metric: a.metric, current: a.current, mean: a.mean, std_dev: a.std_dev, z_score: a.z_score, timestamp: a.timestamp }, 'anomaly');
      emit(startListeners, a);
    },
    onAnomalyEnd: (a) => {
      logger.info({ route: a.route, metric: a.metric, timestamp: a.timestamp, ended_at: a.ended_at }, 'anomaly ended');
      emit(endListeners, a);
    },
  });

  function addBackend(url: string): void {
    if (backendIndex.has(url)) return;
    const i = store.addSeries('b:' + url);
    merged?.addSeries('b:' + url);
    backendIndex.set(url, i);
    backendList.push(url);
  }
  for (const b of opts.backends) addBackend(b);

  function addRoute(prefix: string): void {
    if (routeIndex.has(prefix) || prefix === UNMATCHED) return;
    const i = store.addSeries('r:' + prefix);
    merged?.addSeries('r:' + prefix);
    routeIndex.set(prefix, i);
    routeNames.push(prefix);
    routeSeries.push(i);
    knownRoutes.add(prefix);
  }

  const cluster = opts.cluster
    ? new ClusterLink({
        url: opts.cluster.url,
        keyPrefix: opts.cluster.keyPrefix,
        timeoutMs: opts.cluster.timeoutMs,
        widthMs,
        retentionMs,
        instanceId: () => instanceId,
        onError: (op, err) => logger.warn({ op, err: (err as Error)?.message }, 'analytics: Redis unreachable, learning locally (degraded) until it is back'),
      })
    : null;
  /** Buckets are published once complete; analyzers in cluster mode read a bucket only after this much more time. */
  const publishEveryMs = Math.min(1_000, widthMs / 2);
  const settleMs = cluster ? 2 * publishEveryMs : 0;
  let lastPublished: number | null = null;
  /** Names this instance's fields in the shared Redis hashes; restored from the snapshot so a restart never counts twice. */
  let instanceId = randomBytes(9).toString('base64url');
  let usedMerged = false;
  let wasHealthy = false;
  /** Bumped whenever the merged view is given up: late Redis replies of an older read are dropped. */
  let generation = 0;
  let started = false;
  let closed = false;
  const timers: (() => void)[] = [];
  let analyzing: Promise<void> = Promise.resolve();
  let snapshotting: Promise<void> = Promise.resolve();
  let publishing: Promise<void> = Promise.resolve();

  function record(rec: CompletionRecord): void {
    const bucket = Math.floor((rec.time + rec.latencyMs) / widthMs);
    const rejected = isGatewayRejection(rec);
    const error = !rejected && rec.status >= 500;
    const route = rec.route;
    const r = route === null ? unmatchedIndex : (routeIndex.get(route) ?? unmatchedIndex);
    store.add(r, bucket, rejected, error, rec.latencyMs, rec.bytesIn, rec.bytesOut);
    if (rec.backend !== '') {
      const b = backendIndex.get(rec.backend);
      if (b !== undefined) store.add(b, bucket, rejected, error, rec.latencyMs, rec.bytesIn, rec.bytesOut);
    }
  }

  /** The series the analyzer and the API read: merged (cluster, Redis fine) or local. */
  function source(): TrafficStore {
    return usedMerged && merged !== null ? merged : store;
  }

  function lastCompleteAt(now: number): number {
    return Math.floor((now - settleMs) / widthMs) - 1;
  }

  /** Fetches merged buckets [lo, hi] missing from `merged` for `series`; false when Redis failed or the work is over the limit. */
  async function fetchMerged(lo: number, hi: number, series: readonly number[]): Promise<boolean> {
    if (cluster === null || merged === null) return false;
    if (!cluster.healthy) {
      wasHealthy = false;
      return false;
    }
    if (!wasHealthy) {
      // Back from an outage: what was read before may miss counts other instances published since.
      generation++;
      merged.clear();
      wasHealthy = true;
    }
    const mine = generation;
    const current = () => generation === mine;
    const byBuckets = new Map<string, { buckets: number[]; series: number[] }>();
    let work = 0;
    for (const s of series) {
      const missing: number[] = [];
      for (let b = Math.max(lo, hi - slots + 1); b <= hi; b++) if (merged.slotOf(s, b) === -1) missing.push(b);
      if (missing.length === 0) continue;
      work += missing.length;
      const key = missing.join(',');
      const group = byBuckets.get(key);
      if (group === undefined) byBuckets.set(key, { buckets: missing, series: [s] });
      else group.series.push(s);
    }
    if (work > FETCH_LIMIT) return false;
    for (const g of byBuckets.values()) {
      if (!(await cluster.fetch(merged, g.buckets, g.series, current))) {
        // Part of it may have landed: forget the merged view, read it again once Redis is back.
        wasHealthy = false;
        generation++;
        return false;
      }
    }
    return true;
  }

  async function runAnalysis(): Promise<void> {
    const now = clock.now();
    const lastComplete = lastCompleteAt(now);
    usedMerged = false;
    if (cluster !== null) {
      if (!cluster.healthy) wasHealthy = false;
      const from = Math.max(analyzer.lastTested + 1, lastComplete - windowBuckets + 1) - windowBuckets;
      const all: number[] = [];
      for (let s = 0; s < store.names.length; s++) all.push(s);
      usedMerged = await fetchMerged(from, lastComplete, all);
    }
    analyzer.run(source(), routeSeries, lastComplete, now, retentionMs);
    coverage.prune(Math.floor(now / widthMs) - slots + 1);
  }

  function analyze(): Promise<void> {
    analyzing = analyzing.then(runAnalysis).catch((err: unknown) => logger.error({ err }, 'analytics: analysis failed'));
    return analyzing;
  }

  async function runPublish(): Promise<void> {
    if (cluster === null || !cluster.healthy) return;
    const last = Math.floor(clock.now() / widthMs) - 1;
    let from = lastPublished === null ? last : lastPublished + 1;
    from = Math.max(from, last - slots + 1);
    while (from <= last && !closed) {
      const to = Math.min(last, from + PUBLISH_CHUNK - 1);
      if (!(await cluster.publish(store, from, to))) return;
      lastPublished = to;
      from = to + 1;
    }
  }

  function publish(): Promise<void> {
    publishing = publishing.then(runPublish).catch((err: unknown) => logger.error({ err }, 'analytics: publish failed'));
    return publishing;
  }

  async function writeSnapshot(): Promise<void> {
    if (!persist) return;
    const now = clock.now();
    const current = Math.floor(now / widthMs);
    const data = encodeSnapshot(store, current - slots + 1, {
      savedAt: now,
      coverage: coverage.toJSON(current - 1),
      analyzer: analyzer.exportState() as AnalyzerState,
      lastPublished,
      instanceId,
    });
    try {
      await writeSnapshotFile(snapshotPath, data);
    } catch (err) {
      logger.warn({ path: snapshotPath, err: (err as Error).message }, 'analytics: snapshot not written');
    }
  }

  function snapshot(): Promise<void> {
    snapshotting = snapshotting.then(writeSnapshot);
    return snapshotting;
  }

  /** Loads the snapshot whole or not at all; one warning when it cannot be used. */
  async function load(): Promise<void> {
    let buf: Buffer | null;
    try {
      buf = await readSnapshotFile(snapshotPath);
    } catch (err) {
      logger.warn({ path: snapshotPath, err: (err as Error).message }, 'analytics: snapshot unreadable, starting fresh');
      return;
    }
    if (buf === null) {
      logger.warn({ path: snapshotPath }, 'analytics: no snapshot, starting fresh');
      return;
    }
    try {
      const known = new Set(store.names);
      const { store: loaded, header } = decodeSnapshot(buf, slots, widthMs, (name) => known.has(name));
      const restored = Coverage.from(header.coverage);
      const state = header.analyzer;
      if (!(state.lastTested === null || Number.isSafeInteger(state.lastTested))) throw new Error('bad lastTested');
      for (const a of state.anomalies) {
        if (typeof a?.route !== 'string' || typeof a.metric !== 'string' || typeof a.timestamp !== 'string' || !Number.isSafeInteger(a.bucket)) throw new Error('bad anomaly entry');
      }
      if (!(header.lastPublished === null || header.lastPublished === undefined || Number.isSafeInteger(header.lastPublished))) throw new Error('bad lastPublished');
      // Everything checked: now copy in (nothing below can fail half-way).
      for (let s = 0; s < loaded.names.length; s++) {
        const target = store.indexOf(loaded.names[s]!);
        for (let slot = 0; slot < loaded.slots; slot++) {
          const b = loaded.stamps[s]![slot]!;
          if (b < 0) continue;
          store.setBucket(target, b, loaded.cells[s]!.subarray(slot * FIELDS, slot * FIELDS + FIELDS), loaded.hists[s]!.subarray(slot * HIST_BINS, slot * HIST_BINS + HIST_BINS));
        }
      }
      for (const iv of restored.toJSON(Infinity)) {
        coverage.open(iv.from);
        coverage.close(iv.to);
      }
      analyzer.importState(state);
      lastPublished = header.lastPublished ?? null;
      if (typeof header.instanceId === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(header.instanceId)) instanceId = header.instanceId;
      logger.info({ path: snapshotPath, saved_at: new Date(header.savedAt).toISOString() }, 'analytics: snapshot loaded');
    } catch (err) {
      logger.warn({ path: snapshotPath, err: (err as Error).message }, 'analytics: snapshot is corrupt or truncated, starting fresh');
    }
  }

  async function start(): Promise<void> {
    if (started || closed) return;
    started = true;
    if (persist) {
      try {
        await ensureWritableDir(opts.dataDir);
      } catch (err) {
        // Nothing started: close() has nothing to save.
        started = false;
        throw err;
      }
      await load();
    }
    const now = clock.now();
    // The bucket we start in is partial: coverage begins with the first complete one.
    coverage.open(Math.ceil(now / widthMs));
    lastPublished ??= Math.floor(now / widthMs) - 1;
    if (cluster !== null) await cluster.start();
    if (closed) return;
    await analyze();
    if (!timersOn || closed) return;
    // On the injected clock: a ManualClock drives analyses, snapshots and publishes in simulated time.
    timers.push(every(clock, cfg.analyzer_interval, () => void analyze()));
    if (persist) timers.push(every(clock, SNAPSHOT_INTERVAL_MS, () => void snapshot()));
    if (cluster !== null) timers.push(every(clock, publishEveryMs, () => void publish()));
  }

  async function close(): Promise<void> {
    if (closed) return;
    for (const stop of timers.splice(0)) stop();
    if (started) {
      await analyzing;
      if (cluster !== null) await publish();
      closed = true;
      coverage.close(Math.floor(clock.now() / widthMs) - 1);
      await snapshot();
    }
    closed = true;
    if (cluster !== null) await cluster.close();
  }

  function seriesBaseline(name: string): SeriesBaseline | undefined {
    return analyzer.baseline(name);
  }

  async function history(route: string, fromMs: number, toMs: number, stepMs: number): Promise<HistoryPoint[]> {
    const s = store.indexOf('r:' + route);
    const first = Math.floor(fromMs / widthMs);
    const last = Math.floor((toMs - 1) / widthMs);
    const per = Math.max(1, Math.round(stepMs / widthMs));
    let src = store;
    let settled = -Infinity;
    if (usedMerged && merged !== null && cluster !== null && cluster.healthy) {
      settled = lastCompleteAt(clock.now());
      if (await fetchMerged(first, Math.min(last, settled), [s])) src = merged;
    }
    const out: HistoryPoint[] = [];
    const cells = new Float64Array(FIELDS);
    const hist = new Float64Array(HIST_BINS);
    for (let b0 = first; b0 <= last; b0 += per) {
      cells.fill(0);
      hist.fill(0);
      const b1 = Math.min(last, b0 + per - 1);
      if (src === merged && merged !== null) {
        merged.sum(s, b0, Math.min(b1, settled), cells, hist);
        if (b1 > settled) store.sum(s, Math.max(b0, settled + 1), b1, cells, hist);
      } else store.sum(s, b0, b1, cells, hist);
      const n = cells[COUNT]!;
      out.push({
        timestamp: new Date(b0 * widthMs).toISOString(),
        request_count: n,
        rejected_count: cells[REJECTED]!,
        error_rate: n > 0 ? Math.round((cells[ERRORS]! / n) * 1e6) / 1e6 : 0,
        avg_latency_ms: n > 0 ? Math.round((cells[LAT_SUM]! / n) * 1000) / 1000 : null,
        p99_latency_ms: n > 0 ? Math.round(quantile(hist, 0.99, cells[LAT_MAX]!)! * 1000) / 1000 : null,
        bytes_in: cells[BYTES_IN]!,
        bytes_out: cells[BYTES_OUT]!,
      });
    }
    return out;
  }

  const knownRoutes = new Set([...routeNames, UNMATCHED]);
  const handle = createAnalyticsApi({
    routes: routeNames,
    widthMs,
    retentionMs,
    now: () => clock.now(),
    backends: () => backendList,
    routeBaseline: (r) => seriesBaseline('r:' + r),
    backendBaseline: (u) => seriesBaseline('b:' + u),
    hasRoute: (r) => knownRoutes.has(r),
    anomalies: (route, since) => analyzer.recent(since, route),
    history,
    currentLimit: (r) => opts.currentLimit?.(r) ?? null,
    backendWeight: (u) => opts.backendWeight?.(u) ?? null,
    breakerThreshold: (u) => opts.breakerThreshold?.(u) ?? null,
    routeExtras: (r) => opts.routeExtras?.(r) ?? null,
  });

  return {
    start,
    close,
    record,
    handle,
    addBackend,
    addRoute,
    routeBaseline: (r) => seriesBaseline('r:' + r),
    backendBaseline: (u) => seriesBaseline('b:' + u),
    anomalies: (filter = {}) => analyzer.recent(filter.sinceMs ?? 0, filter.route),
    onAnomaly(listener) {
      startListeners.add(listener);
      return () => startListeners.delete(listener);
    },
    onAnomalyEnd(listener) {
      endListeners.add(listener);
      return () => endListeners.delete(listener);
    },
    analyze,
    publish,
    snapshot,
    get degraded() {
      return cluster !== null && !cluster.healthy;
    },
    degradedReasons: () => (cluster !== null && !cluster.healthy ? ['analytics: Redis unreachable, learning locally'] : []),
  };
}

export { routeOfSeries };
export { analyticsModule } from './module.js';
