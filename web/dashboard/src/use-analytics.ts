/**
 * Data of the traffic analytics view: routes, backends and anomalies polled from /analytics/*,
 * anomalies also merged live from the stream; and one route's history for a time range.
 * Nothing is fetched while the view is not shown.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { analyticsApi, ApiError, isAnalyticsOff } from './api';
import { firstActivity, historyQuery, mergeAnomalies, RANGES, stepFor, type Anomaly, type BackendAnalytics, type RangeKey, type RouteAnalytics, type RouteHistory } from './analytics-model';

export type Load<T> =
  | { status: 'loading' }
  /** analytics.enabled is false (the API answers 404), or this gateway has no analytics API. */
  | { status: 'off' }
  | { status: 'error'; message: string; httpStatus: number }
  /** `error`: the last refresh failed; `data` is the last answer. */
  | { status: 'ok'; data: T; at: number; error?: string };

const POLL_MS = 5000;
const OFF_POLL_EVERY = 6;
/** After an `anomaly` event, the summary is reloaded this much later (events come in bursts). */
const ANOMALY_RELOAD_DELAY_MS = 400;
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function failure<T>(e: unknown): Load<T> {
  if (isAnalyticsOff(e)) return { status: 'off' };
  return { status: 'error', message: message(e), httpStatus: e instanceof ApiError ? e.status : 0 };
}

/** A failed refresh keeps what was shown (a gateway restarting must not blank the charts), saying it is stale. */
const failed =
  <T,>(e: unknown) =>
  (prev: Load<T>): Load<T> => {
    const f = failure<T>(e);
    return prev.status === 'ok' && f.status === 'error' ? { ...prev, error: f.message } : f;
  };

export interface AnalyticsData {
  routes: Load<RouteAnalytics[]>;
  backends: Load<BackendAnalytics[]>;
  /** Newest first; since the start of the range or of the last 24 h, whichever is earlier. */
  anomalies: Anomaly[];
  anomaliesError: string | null;
  /** Bumped for a route when a live anomaly event names it, so its chart refetches at once. */
  routeBumps: Record<string, number>;
  reload: () => void;
  /** Feed of the stream's `anomaly` events. */
  onAnomaly: (a: Anomaly) => void;
}

export function useAnalytics(range: RangeKey): AnalyticsData {
  const [routes, setRoutes] = useState<Load<RouteAnalytics[]>>({ status: 'loading' });
  const [backends, setBackends] = useState<Load<BackendAnalytics[]>>({ status: 'loading' });
  const [anomalies, setAnomalies] = useState<Anomaly[]>([]);
  const [anomaliesError, setAnomaliesError] = useState<string | null>(null);
  const [routeBumps, setRouteBumps] = useState<Record<string, number>>({});
  const inFlight = useRef(false);
  const live = useRef(true);
  const offRef = useRef(false);
  const polls = useRef(0);
  const rangeRef = useRef(range);
  rangeRef.current = range;

  const reload = useCallback(() => {
    if (inFlight.current) return;
    inFlight.current = true;
    const sinceS = Math.floor(Date.now() / 1000) - Math.max(RANGES[rangeRef.current], 24 * 3600);
    // Routes first: when analytics is off, one 404 per poll is enough.
    void analyticsApi
      .routes()
      .then(
        (data) => {
          if (!live.current) return;
          offRef.current = false;
          setRoutes({ status: 'ok', data, at: Date.now() });
          const b = analyticsApi.backends().then(
            (list) => live.current && setBackends({ status: 'ok', data: list, at: Date.now() }),
            (e: unknown) => live.current && setBackends(failed<BackendAnalytics[]>(e)),
          );
          const a = analyticsApi.anomalies({ since: new Date(sinceS * 1000).toISOString() }).then(
            (list) => {
              if (!live.current) return;
              setAnomalies((old) => mergeAnomalies(old.filter((x) => Date.parse(x.timestamp) / 1000 >= sinceS), list));
              setAnomaliesError(null);
            },
            (e: unknown) => live.current && !isAnalyticsOff(e) && setAnomaliesError(message(e)),
          );
          return Promise.allSettled([b, a]);
        },
        (e: unknown) => {
          if (!live.current) return;
          offRef.current = isAnalyticsOff(e);
          setRoutes(failed<RouteAnalytics[]>(e));
        },
      )
      .finally(() => {
        inFlight.current = false;
      });
  }, []);

  useEffect(() => {
    live.current = true;
    reload();
    // While analytics is off, ask again only every OFF_POLL_EVERY polls (a config reload may turn it on).
    const t = setInterval(() => {
      if (!offRef.current || ++polls.current % OFF_POLL_EVERY === 0) reload();
    }, POLL_MS);
    return () => {
      live.current = false;
      clearInterval(t);
    };
  }, [reload]);

  // A longer range needs older anomalies: fetch at once.
  useEffect(() => {
    reload();
  }, [range, reload]);

  const refreshSoon = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (refreshSoon.current !== null) clearTimeout(refreshSoon.current);
    },
    [],
  );
  const onAnomaly = useCallback(
    (a: Anomaly) => {
      if (!a || typeof a.route !== 'string') return;
      setAnomalies((old) => mergeAnomalies(old, [a]));
      setRouteBumps((b) => ({ ...b, [a.route]: (b[a.route] ?? 0) + 1 }));
      // The routes' counts (anomalies_24h) change too: one reload for a burst of events.
      if (refreshSoon.current === null)
        refreshSoon.current = setTimeout(() => {
          refreshSoon.current = null;
          reload();
        }, ANOMALY_RELOAD_DELAY_MS);
    },
    [reload],
  );

  return { routes, backends, anomalies, anomaliesError, routeBumps, reload, onAnomaly };
}

/** How often a chart refetches, by range: the longer the range, the coarser its points. */
const HISTORY_REFRESH_MS: Record<RangeKey, number> = { '1h': 5000, '6h': 30_000, '48h': 60_000 };

/**
 * The gateway's bucket width (a step below it is refused with a 400). Learned once per page from a
 * tiny history request without a step, whose `step_ms` is the width; failing that (a gateway that
 * does not say), from a refused step and the spacing of the answer asked without one.
 */
const buckets: { widthS: number | null; refused: boolean; probe: Promise<void> | null } = { widthS: null, refused: false, probe: null };

function probeBucketWidth(route: string): Promise<void> {
  buckets.probe ??= (async () => {
    const nowS = Math.floor(Date.now() / 1000);
    try {
      const h = await analyticsApi.history(route, { from: new Date((nowS - 2) * 1000).toISOString(), to: new Date(nowS * 1000).toISOString() });
      const ms = typeof h?.step_ms === 'number' && Number.isFinite(h.step_ms) && h.step_ms > 0 ? h.step_ms : null;
      if (ms !== null) buckets.widthS = ms / 1000;
    } catch {
      // Learned the other way, below; the chart's own request reports the error.
    }
  })();
  return buckets.probe;
}

/** The step to ask for, given the one wanted: a multiple of the bucket width once known; null: ask for the bucket width. */
function stepToAsk(wantedS: number): number | null {
  if (buckets.widthS !== null) return Math.max(1, Math.ceil(wantedS / buckets.widthS)) * buckets.widthS;
  return buckets.refused ? null : wantedS;
}

export interface HistoryState {
  history: RouteHistory | null;
  /** The window shown, unix seconds. */
  fromS: number;
  toS: number;
  /** The step the chart shows (points finer than it are binned to it). */
  stepS: number;
  /** Whether the gateway was asked for that step (else it used its bucket width). */
  stepSent: boolean;
  /** The gateway saw nothing before `fromS` in this range (it started, or got its first request, then). */
  zoomed: boolean;
  error: string | null;
  loaded: boolean;
  /** The range the shown history was fetched for (null before the first answer). */
  range: RangeKey | null;
}

/** Data starting this far into the range counts as a young route: the chart zooms to it. */
const ZOOM_WHEN_DATA_STARTS_AFTER = 0.25;
/** Finest step asked for: per-minute rates of 1 s buckets are mostly noise. */
const MIN_STEP_S = 2;
/** Room shown before the first point of a zoomed chart: a share of the span, at least this and five buckets. */
const ZOOM_PAD_S = 30;

/**
 * One route's history over `range`, refetched while `visible`, and at once when `bump` changes.
 * When the gateway's data begins late in the range (`startedAtS`: when the gateway started, if
 * known), the window shrinks to the data, with finer points, growing back to the full range.
 */
export function useRouteHistory(route: string, range: RangeKey, visible: boolean, bump: number, startedAtS: number | null): HistoryState {
  const rangeS = RANGES[range];
  const initial = (): HistoryState => {
    const nowS = Math.floor(Date.now() / 1000);
    return { history: null, fromS: nowS - rangeS, toS: nowS, stepS: stepFor(rangeS), stepSent: true, zoomed: false, error: null, loaded: false, range: null };
  };
  const [state, setState] = useState<HistoryState>(initial);
  const seq = useRef(0);
  /** Start of the zoomed window (unix s), or null for the whole range. */
  const zoomFrom = useRef<number | null>(null);
  const started = useRef(startedAtS);
  started.current = startedAtS;

  useEffect(() => {
    zoomFrom.current = null;
    setState(initial());
  }, [route, range]);

  useEffect(() => {
    if (!visible) return;
    let disposed = false;
    let inFlight = false;
    const load = async () => {
      if (inFlight) return;
      inFlight = true;
      const mine = ++seq.current;
      await probeBucketWidth(route);
      if (disposed) return;
      const nowMs = Date.now();
      const nowS = Math.floor(nowMs / 1000);
      if (zoomFrom.current !== null && nowS - zoomFrom.current >= rangeS * (1 - ZOOM_WHEN_DATA_STARTS_AFTER)) zoomFrom.current = null;
      const spanS = zoomFrom.current === null ? rangeS : nowS - zoomFrom.current;
      const wanted = Math.max(MIN_STEP_S, stepFor(spanS));
      const asked = stepToAsk(wanted);
      const q = historyQuery(spanS, nowMs, asked);
      analyticsApi.history(route, q).then(
        (history) => {
          inFlight = false;
          if (disposed || mine !== seq.current) return;
          const points = Array.isArray(history?.history) ? history.history : [];
          const stamps = points.map((p) => Date.parse(p.timestamp) / 1000).filter(Number.isFinite).sort((a, b) => a - b);
          if (asked === null && buckets.widthS === null && stamps.length >= 2) {
            let gap = Infinity;
            for (let i = 1; i < stamps.length; i++) if (stamps[i]! > stamps[i - 1]!) gap = Math.min(gap, stamps[i]! - stamps[i - 1]!);
            if (Number.isFinite(gap)) buckets.widthS = gap;
          }
          const fromS = Date.parse(q.from) / 1000;
          // A young gateway: nothing before it started or before the first request, whichever is
          // earlier (a snapshot may hold traffic from before a restart). Show that, in finer points.
          const begin = Math.min(firstActivity(history) ?? Infinity, started.current ?? Infinity);
          if (zoomFrom.current === null && Number.isFinite(begin) && begin - fromS > rangeS * ZOOM_WHEN_DATA_STARTS_AFTER) {
            zoomFrom.current = Math.floor(begin - Math.max(ZOOM_PAD_S, (nowS - begin) * 0.15, 5 * (buckets.widthS ?? 0)));
            void load();
            return;
          }
          setState({ history, fromS, toS: Date.parse(q.to) / 1000, stepS: asked ?? wanted, stepSent: asked !== null, zoomed: zoomFrom.current !== null, error: null, loaded: true, range });
        },
        (e: unknown) => {
          inFlight = false;
          if (disposed || mine !== seq.current) return;
          // Buckets wider than the step: the gateway says so with a 400 naming `step`. Ask for its own width.
          if (asked !== null && buckets.widthS === null && e instanceof ApiError && e.status === 400 && /step/i.test(`${e.code ?? ''} ${e.message}`)) {
            buckets.refused = true;
            void load();
            return;
          }
          setState((s) => ({ ...s, error: message(e), loaded: true }));
        },
      );
    };
    void load();
    const t = setInterval(() => void load(), HISTORY_REFRESH_MS[range]);
    return () => {
      disposed = true;
      clearInterval(t);
    };
  }, [route, range, rangeS, visible, bump]);

  return state;
}
