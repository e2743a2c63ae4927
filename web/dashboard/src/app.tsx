/**
 * The one-page dashboard: asks how the gateway admits the page (sign-in when it does not), loads
 * the initial state, then follows the SSE stream.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Anomaly } from './analytics-model';
import { api, useEventStream, type AdminVia, type ConfigEvent, type ManagedProcess, type Metrics, type ProcessLogLine, type RequestLog, type ServiceHealth } from './api';
import { AnalyticsView } from './components/analytics-view';
import { ConfigBanner } from './components/config-banner';
import { Header, type View } from './components/header';
import { LoginPanel } from './components/login-panel';
import { MetricsPanel } from './components/metrics-panel';
import { ProcessOutput } from './components/process-output';
import { RequestDetail } from './components/request-detail';
import { RequestLogTable } from './components/request-log';
import { ServicesCard } from './components/services-card';
import { logKey } from './format';
import { MAX_ROWS, useRequestLog } from './use-request-log';
import { useSession } from './use-session';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Apply a process JSON (full, from a response or a `process` event) to the list, keeping its order. */
function mergeProcess(list: ManagedProcess[], p: Partial<ManagedProcess> & { id: string }): ManagedProcess[] {
  const i = list.findIndex((x) => x.id === p.id);
  const old = i >= 0 ? list[i] : undefined;
  const running = (p.status ?? old?.status) === 'running';
  const next: ManagedProcess = {
    command: '',
    args: [],
    ...old,
    ...p,
    status: p.status ?? old?.status ?? 'stopped',
    // The payload omits pid/started_at when the process is not running.
    pid: p.pid,
    started_at: p.started_at,
    // Older servers leave `healthy` out of events; a process that is not running is never healthy.
    healthy: running ? (p.healthy ?? old?.healthy ?? false) : false,
  };
  if (i < 0) return [...list, next];
  const copy = list.slice();
  copy[i] = next;
  return copy;
}

function portOf(url: string): number | undefined {
  try {
    const u = new URL(url);
    return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  } catch {
    return undefined;
  }
}

/** The view named by the URL's hash: `#analytics`, else the overview. */
function viewFromHash(): View {
  return window.location.hash === '#analytics' ? 'analytics' : 'overview';
}

function useView(): [View, (v: View) => void] {
  const [view, setView] = useState<View>(viewFromHash);
  useEffect(() => {
    const on = () => setView(viewFromHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const go = useCallback((v: View) => {
    // The hash keeps the view across reloads and makes it linkable; the gateway never sees it.
    const hash = v === 'analytics' ? '#analytics' : '';
    if (window.location.hash !== hash) history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
    setView(v);
  }, []);
  return [view, go];
}

type AnalyticsListener = { anomaly: (a: Anomaly) => void; adaptive: () => void };

export function App() {
  const session = useSession();
  const { state } = session;
  if (state.kind === 'checking') return <div className="app" aria-busy="true" />;
  if (state.kind === 'out') return <LoginPanel loginEnabled={state.loginEnabled} reason={state.reason} onLogin={session.login} />;
  // A new key on every sign-in: the dashboard mounts afresh, loading its data and opening its stream.
  return <Dashboard key={session.generation} via={state.via} onLogout={session.logout} />;
}

function Dashboard({ via, onLogout }: { via: AdminVia | null; onLogout: () => Promise<void> }) {
  const [processes, setProcesses] = useState<ManagedProcess[]>([]);
  const [processError, setProcessError] = useState<string | null>(null);
  const [routes, setRoutes] = useState<string[]>([]);
  const [metrics, setMetrics] = useState<{ m: Metrics | null; at: number }>({ m: null, at: Date.now() });
  const [metricsError, setMetricsError] = useState<string | null>(null);
  const [logError, setLogError] = useState<string | null>(null);
  const [selected, setSelected] = useState<RequestLog | null>(null);
  const [outputId, setOutputId] = useState<string | null>(null);
  const log = useRequestLog();
  const processLogListeners = useRef(new Set<(l: ProcessLogLine) => void>());
  const analyticsListeners = useRef(new Set<AnalyticsListener>());
  const [resync, setResync] = useState(0);
  const [view, setView] = useView();
  const [configEvent, setConfigEvent] = useState<ConfigEvent | null>(null);
  const [reloadError, setReloadError] = useState<string | null>(null);
  const [reloading, setReloading] = useState(false);

  const loadProcesses = useCallback(() => {
    api.processes().then(
      (ps) => {
        setProcesses(ps);
        setProcessError(null);
      },
      (e: unknown) => setProcessError(message(e)),
    );
    api.routes().then(setRoutes, () => {
      /* the add form shows "— none —" only; the processes banner already reports an outage */
    });
  }, []);
  const loadMetrics = useCallback(() => {
    api.metrics().then(
      (m) => {
        setMetrics({ m, at: Date.now() });
        setMetricsError(null);
      },
      (e: unknown) => setMetricsError(message(e)),
    );
  }, []);
  const loadLogs = useCallback(() => {
    api.logs(50).then(
      (logs) => {
        log.seed(logs);
        setLogError(null);
      },
      (e: unknown) => setLogError(message(e)),
    );
  }, [log.seed]);

  useEffect(() => {
    loadProcesses();
    loadMetrics();
    loadLogs();
  }, [loadProcesses, loadMetrics, loadLogs]);

  // Pick a process for the output panel once the list is known: the first running one.
  useEffect(() => {
    if (outputId === null && processes.length > 0) setOutputId((processes.find((p) => p.status === 'running') ?? processes[0]!).id);
  }, [processes, outputId]);

  const connection = useEventStream({
    connected: (first) => {
      // After an outage, resynchronise what events may not replay.
      if (!first) {
        loadProcesses();
        loadMetrics();
        loadLogs();
        setResync((n) => n + 1);
      }
    },
    request: log.push,
    process: (p) => setProcesses((list) => mergeProcess(list, p)),
    process_log: (l) => processLogListeners.current.forEach((fn) => fn(l)),
    service: (s: ServiceHealth) => {
      const port = portOf(s.url);
      if (port === undefined) return;
      setProcesses((list) => list.map((p) => (p.port === port ? { ...p, healthy: s.healthy && p.status === 'running' } : p)));
    },
    metrics: (m) => {
      setMetrics({ m, at: Date.now() });
      setMetricsError(null);
    },
    anomaly: (a) => analyticsListeners.current.forEach((l) => l.anomaly(a)),
    adaptive: () => analyticsListeners.current.forEach((l) => l.adaptive()),
    breaker: () => analyticsListeners.current.forEach((l) => l.adaptive()),
    config: (e) => {
      setConfigEvent(e);
      setReloadError(null);
      // Routes and processes may have changed.
      if (e.result === 'success') loadProcesses();
      analyticsListeners.current.forEach((l) => l.adaptive());
    },
  });
  const reloadConfig = useCallback(() => {
    setReloading(true);
    setReloadError(null);
    // The outcome (refused files too) arrives as a `config` event; only a failed call is shown here.
    api.reload().then(
      (e) => setConfigEvent(e),
      (e: unknown) => setReloadError(message(e)),
    ).finally(() => setReloading(false));
  }, []);
  const dismissConfig = useCallback(() => setConfigEvent(null), []);
  const subscribeAnalytics = useCallback((l: AnalyticsListener) => {
    analyticsListeners.current.add(l);
    return () => void analyticsListeners.current.delete(l);
  }, []);

  const subscribeProcessLog = useCallback((fn: (l: ProcessLogLine) => void) => {
    processLogListeners.current.add(fn);
    return () => void processLogListeners.current.delete(fn);
  }, []);
  const onProcess = useCallback((p: ManagedProcess) => setProcesses((list) => mergeProcess(list, p)), []);
  const closeDetail = useCallback(() => setSelected(null), []);
  // Rounded to 10 s: the uptime pushed every 5 s must not re-render every chart.
  const uptime = metrics.m?.uptime_seconds;
  const startedAtS = typeof uptime === 'number' && Number.isFinite(uptime) ? Math.floor((metrics.at / 1000 - uptime) / 10) * 10 : null;

  return (
    <div className={`app${selected && view === 'overview' ? ' with-detail' : ''}`}>
      <Header connection={connection} metrics={metrics.m} receivedAt={metrics.at} via={via} onLogout={onLogout} view={view} onView={setView} />
      {view === 'analytics' ? (
        <main className="layout">
          <AnalyticsView via={via} subscribe={subscribeAnalytics} resync={resync} startedAtS={startedAtS} />
          <footer className="foot muted small">Rates in requests per minute · learned by the gateway from its own traffic · times in your local zone</footer>
        </main>
      ) : (
        <main className="layout">
          <ConfigBanner event={configEvent} error={configEvent?.result === 'error' ? null : reloadError} busy={reloading} onReload={reloadConfig} onDismiss={dismissConfig} />
          <MetricsPanel metrics={metrics.m} receivedAt={metrics.at} error={metricsError} />
          <div className="row-2">
            <ServicesCard
              processes={processes}
              routes={routes}
              loadError={processError}
              onRetry={loadProcesses}
              onProcess={onProcess}
              onShowOutput={setOutputId}
              outputId={outputId}
            />
            <ProcessOutput processes={processes} selectedId={outputId} onSelect={setOutputId} subscribe={subscribeProcessLog} />
          </div>
          <RequestLogTable
            rows={log.rows}
            paused={log.paused}
            pending={log.pending}
            onTogglePause={log.togglePause}
            selectedKey={selected ? logKey(selected) : null}
            onSelect={setSelected}
            error={logError}
            onRetry={loadLogs}
          />
          <footer className="foot muted small">
            Showing the latest {MAX_ROWS} requests · metrics refresh every 5 s · times in your local zone
          </footer>
        </main>
      )}
      {selected && view === 'overview' && <RequestDetail log={selected} onClose={closeDetail} />}
    </div>
  );
}
