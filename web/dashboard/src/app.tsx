/**
 * The one-page dashboard: asks how the gateway admits the page (sign-in when it does not), loads
 * the initial state, then follows the SSE stream.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, useEventStream, type AdminVia, type ManagedProcess, type Metrics, type ProcessLogLine, type RequestLog, type ServiceHealth } from './api';
import { Header } from './components/header';
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
  });

  const subscribeProcessLog = useCallback((fn: (l: ProcessLogLine) => void) => {
    processLogListeners.current.add(fn);
    return () => void processLogListeners.current.delete(fn);
  }, []);
  const onProcess = useCallback((p: ManagedProcess) => setProcesses((list) => mergeProcess(list, p)), []);
  const closeDetail = useCallback(() => setSelected(null), []);

  return (
    <div className={`app${selected ? ' with-detail' : ''}`}>
      <Header connection={connection} metrics={metrics.m} receivedAt={metrics.at} via={via} onLogout={onLogout} />
      <main className="layout">
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
      {selected && <RequestDetail log={selected} onClose={closeDetail} />}
    </div>
  );
}
