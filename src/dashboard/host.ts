/**
 * What the dashboard needs of the gateway, and nothing more: config, time, logs, the completion
 * bus, routes and backends, health and the process manager, and a place to mount its handler.
 */
import type { Topology } from '../balancer/index.js';
import type { Clock } from '../clock.js';
import type { NoticeBus } from '../events/index.js';
import type { HealthChecker } from '../health/index.js';
import type { AdminHandler, CompletionSource, ConfigRef } from '../host.js';
import type { Logger } from '../logging/index.js';
import type { ProcessManager } from '../procman/index.js';
import type { ReloadOutcome } from '../reload/index.js';

/** The process manager as the dashboard drives it. */
export type ProcessControl = Pick<ProcessManager, 'list' | 'get' | 'has' | 'add' | 'remove' | 'logs' | 'start' | 'stop' | 'restart' | 'on' | 'off'>;

export interface DashboardHost {
  /** Reads `dashboard`, `processes` and `admin.allowed_commands`. */
  readonly config: ConfigRef;
  readonly clock: Clock;
  readonly logger: Logger;
  /** When the gateway started, epoch ms (for uptime). */
  readonly startedAt: number;
  readonly bus: CompletionSource;
  /** Operator notices (anomaly, adaptive, breaker, config), each forwarded to the stream as its own event. */
  readonly notices?: Pick<NoticeBus, 'subscribe'>;
  readonly topology: Pick<Topology, 'routes' | 'route' | 'backendsOfPort' | 'addBackend'>;
  readonly health: Pick<HealthChecker, 'snapshot' | 'onChange'>;
  readonly processes: ProcessControl;
  mountAdmin(path: string, handler: AdminHandler): void;
  /** Re-reads the config file (POST /dashboard/api/reload); absent when the embedder offers no reload. */
  reload?(): Promise<ReloadOutcome>;
}
