/**
 * Dashboard: the request log, live metrics, the JSON API and SSE stream at /dashboard/api/, and
 * the built UI at /dashboard/. It only subscribes (completion bus, process manager, health
 * checker) and answers admin requests; it must never be called by the proxy, never block a
 * publisher (events are written on a later turn of the event loop), and never store a credential.
 * Access control (admin token or loopback) is enforced by the gateway before any handler here.
 * It sees only its DashboardHost (./host.ts), never the gateway.
 */
import { fileURLToPath } from 'node:url';
import type { CompletionRecord } from '../events/index.js';
import type { OutputLine, ProcessInfo } from '../procman/index.js';
import type { DashboardHost } from './host.js';
import { API_PREFIX, dashboardApi, dashboardMetrics, processView, type DashboardMetrics } from './api.js';
import { LiveMetrics } from './live-metrics.js';
import { RequestLogStore } from './request-log.js';
import { SseBroker, type SseStats } from './sse.js';
import { staticUi } from './static.js';

export type { RequestLog } from './request-log.js';
export type { DashboardMetrics, ProcessView } from './api.js';
export type { SseStats } from './sse.js';
export type { DashboardHost, ProcessControl } from './host.js';

/** How often the `metrics` event is pushed to connected streams. */
export const METRICS_INTERVAL_MS = 5_000;
/** Reconnection delay advertised to browsers (`retry:`). */
export const SSE_RETRY_MS = 3_000;
/** Concurrent dashboard streams; more are refused with 503. */
export const MAX_STREAMS = 100;

export interface DashboardOptions {
  /** The built UI; default web/dashboard/dist of the package (two levels above this file, in src/ and in dist/). */
  distDir?: string;
  /** Period of the `metrics` event (tests shorten it). */
  metricsIntervalMs?: number;
}

export interface Dashboard {
  /** Where the UI is served from. */
  readonly distDir: string;
  /** The numbers of GET /dashboard/api/metrics, now. */
  metrics(): DashboardMetrics;
  /** Stream clients and events dropped for slow clients. */
  sse(): SseStats;
  /** Ends every stream, stops timers and unsubscribes. Idempotent; the dashboard module runs it at drain. */
  close(): void;
}

/**
 * Mounts the dashboard on its host: registers `/dashboard/` (the UI, and the API below
 * /dashboard/api/) as an admin path and subscribes to requests, processes and health. The caller
 * decides whether `dashboard.enabled`, and calls close() at shutdown (the dashboard module does).
 */
export function mountDashboard(host: DashboardHost, opts: DashboardOptions = {}): Dashboard {
  const config = host.config.current;
  const cfg = config.dashboard;
  const logger = host.logger.child({ component: 'dashboard' });
  const distDir = opts.distDir ?? fileURLToPath(new URL('../../web/dashboard/dist/', import.meta.url));
  // Entries are kept for the SSE history's replay too (its request events point into the log).
  const log = new RequestLogStore(cfg.log_capacity, cfg.sse_history);
  const entryJson = (seq: number): string | undefined => log.json(seq);
  const live = new LiveMetrics(host.clock);
  const broker = new SseBroker({
    history: cfg.sse_history,
    buffer: cfg.sse_buffer,
    heartbeatMs: cfg.heartbeat,
    retryMs: SSE_RETRY_MS,
    maxClients: MAX_STREAMS,
    logger,
    entries: { event: 'request', json: entryJson, bytes: { length: (seq) => log.byteLength(seq), copy: (seq, target, at) => log.copyTo(seq, target, at) } },
  });
  // Read from the config in force: a reload that adds a process allows its command.
  const allowedCommands = { has: (command: string) => host.config.current.processes.some((p) => p.command === command) || host.config.current.admin.allowed_commands.includes(command) };

  // Per request: the entry's bytes written to the log and an O(1) publish of its number; the
  // record itself is kept by nothing. The stream sends the entry's JSON as it is in the log.
  const unsubscribeBus = host.bus.subscribe(function dashboardRecord(record: CompletionRecord): void {
    const seq = log.push(record);
    live.record(record.latencyMs, record.status);
    broker.publishEntry(seq);
  });

  const unsubscribeNotices = host.notices?.subscribe((n) => broker.publish(n.event, n.data)) ?? (() => {});

  const onProcess = (info: ProcessInfo): void => broker.publish('process', processView(host, info));
  const onOutput = (line: OutputLine): void => broker.publish('process_log', { id: line.id, line: line.line, stream: line.stream });
  host.processes.on('process', onProcess);
  host.processes.on('output', onOutput);

  const unsubscribeHealth = host.health.onChange((backend, healthy) => {
    broker.publish('service', { url: backend.url, healthy });
    // A process's `healthy` depends on its backends: send the new view of the ones on this port.
    const port = Number(backend.origin.port);
    if (host.topology.backendsOfPort(port).includes(backend)) {
      for (const info of host.processes.list()) if (info.port === port) onProcess(info);
    }
  });

  const metricsTimer = setInterval(() => {
    // Snapshots are not kept for replay: the next one is never more than one period away.
    if (broker.clientCount > 0) broker.publish('metrics', dashboardMetrics(host, live), null, false);
  }, opts.metricsIntervalMs ?? METRICS_INTERVAL_MS);
  metricsTimer.unref();

  const api = dashboardApi({ host, log, live, broker, allowedCommands });
  const ui = staticUi(distDir);

  host.mountAdmin('/dashboard/', function dashboardHandler(req, res, path) {
    if (path === '/dashboard') {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      res.writeHead(301, { location: `/dashboard/${q === -1 ? '' : url.slice(q)}`, 'content-length': 0, 'cache-control': 'no-cache' });
      res.end();
      return;
    }
    if (path === API_PREFIX || path.startsWith(API_PREFIX + '/')) api(req, res, path);
    else ui(req, res, path);
  });

  let closed = false;
  const dashboard: Dashboard = {
    distDir,
    metrics: () => dashboardMetrics(host, live),
    sse: () => broker.stats(),
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(metricsTimer);
      unsubscribeBus();
      unsubscribeNotices();
      unsubscribeHealth();
      host.processes.off('process', onProcess);
      host.processes.off('output', onOutput);
      broker.close();
    },
  };
  return dashboard;
}
