/**
 * The host: the narrow interface every module is built from. A module never sees the gateway;
 * it gets its config (through a snapshot reference a reload can swap), the clock, the logger, the
 * completion bus (subscribe only), the routes and backends, the shared store, and the ways to
 * register what it contributes: admin handlers, pipeline stages by phase, balancing strategies,
 * and services later modules may use.
 *
 * A module is `{ start?, drain?, close?, stages?, admin?, reload? }`, listed once in src/modules.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Analytics } from './analytics/index.js';
import type { Authenticator } from './auth/index.js';
import type { StrategyRegistrar, Topology } from './balancer/index.js';
import type { Clock } from './clock.js';
import type { Config } from './config/index.js';
import type { Dashboard, DashboardOptions } from './dashboard/index.js';
import type { GatewayError } from './errors.js';
import type { CompletionListener, NoticeBus } from './events/index.js';
import type { HealthChecker } from './health/index.js';
import type { Logger } from './logging/index.js';
import type { Metrics } from './metrics/index.js';
import type { Phase, RequestContext, StageEntry, StageRegistrar } from './pipeline/index.js';
import type { ProcessManager } from './procman/index.js';
import type { RateLimit } from './ratelimit/index.js';
import type { RateLimitStore } from './store/index.js';
import type { Reloader } from './reload/index.js';

/** An admin endpoint: answers requests under a path the gateway owns (access control is done before it). */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/**
 * The config in force. Read `current` when you need a value (not once at build time) if your
 * module supports reload: a reload validates a whole new snapshot and swaps this one reference
 * between requests. Snapshots are immutable.
 */
export interface ConfigRef {
  readonly current: Config;
}

/** The completion bus, as a module sees it: one record per finished request. */
export interface CompletionSource {
  /** Adds a listener (synchronous, must be cheap and never throw); returns its unsubscribe. */
  subscribe(listener: CompletionListener): () => void;
}

/** How the request path ends a request: the gateway's error writer and its completion publisher. */
export interface Responder {
  /** Writes the JSON error response for ctx (unless one started) and publishes its record. */
  fail(ctx: RequestContext, err: GatewayError): void;
  /** Publishes the one completion record of ctx (the response was written by the stage). */
  done(ctx: RequestContext): void;
}

/**
 * Services a module offers the modules after it in the list (`host.provide`, `host.services`).
 * A new service is one line here.
 */
export interface Services {
  store: RateLimitStore;
  metrics: Metrics;
  rateLimit: RateLimit;
  authenticator: Authenticator;
  health: HealthChecker;
  processes: ProcessManager;
  dashboard: Dashboard;
  analytics: Analytics;
  adaptive: AdaptiveReadout;
  /** Re-reads the config file (offered by the gateway itself). */
  reloader: Reloader;
}

/** What the adaptive layer enforces, read back for /analytics/* and the dashboard (null = not applicable). */
export interface AdaptiveReadout {
  /** The route-wide limit actually enforced (requests per minute), or null. */
  currentLimit(route: string): number | null;
  /** A backend's balancing weight (1 = the pool mean), or null when its route is not weighted. */
  backendWeight(url: string): number | null;
  /** A backend's learned breaker error-rate threshold (0..1), or null while the static rule applies. */
  breakerThreshold(url: string): number | null;
}

export interface ServiceDirectory {
  /** A service, or undefined when no module (earlier in the list, or enabled) provides it. */
  get<K extends keyof Services>(name: K): Services[K] | undefined;
  /** A service that must exist; throws naming it otherwise. */
  need<K extends keyof Services>(name: K): Services[K];
}

/** Options of the embedder (the CLI, tests), not of the config file. */
export interface HostOptions {
  /** Directory relative process commands are resolved against (default: cwd). */
  readonly baseDir?: string;
  /** Echo managed processes' output to our stdout/stderr (the CLI does). */
  readonly echoProcessOutput?: boolean;
  /** Node process metrics (GC, event loop) on /metrics; default true. */
  readonly defaultMetrics?: boolean;
  /** Options of the dashboard. */
  readonly dashboard?: DashboardOptions;
}

/** The gateway's phase: only `ready` takes traffic (what `/health/ready` reports). */
export type LifecyclePhase = 'starting' | 'ready' | 'draining';

/** What every module is built from. */
export interface Host {
  /** The module's name in the list (for logs and errors). */
  readonly name: string;
  readonly config: ConfigRef;
  /** The module's own config section from the snapshot in force, e.g. `host.section('analytics')`. */
  section<K extends keyof Config>(key: K): Config[K];
  readonly clock: Clock;
  /** The gateway's logger (not a child: log lines keep their shape); `logger.child({...})` if you want a tag. */
  readonly logger: Logger;
  /** When the gateway was created, epoch ms from `clock`. */
  readonly startedAt: number;
  /** Where the gateway is in its life: `starting` until it listens, `ready`, `draining` from shutdown on. */
  lifecycle(): LifecyclePhase;
  readonly options: HostOptions;
  readonly bus: CompletionSource;
  /** Notices for operators (anomaly, adaptive, breaker, config): the dashboard streams them as SSE events. */
  readonly notices: NoticeBus;
  /** The shared per-client state (token buckets, counters): `services.need('store')`. */
  readonly store: RateLimitStore;
  readonly topology: Topology;
  readonly responder: Responder;
  /** Register a stage into a named phase (or return `stages` from the module). */
  readonly stages: StageRegistrar;
  /** Register a balancing strategy by name (before routes are bound, i.e. while being built). */
  readonly strategies: StrategyRegistrar;
  readonly services: ServiceDirectory;
  /** Offers a service to the modules after this one. */
  provide<K extends keyof Services>(name: K, service: Services[K]): void;
  /** Mounts an admin handler at an exact path or, with a trailing "/", a subtree (or return `admin`). */
  mountAdmin(path: string, handler: AdminHandler): void;
  /**
   * A value that survives reloads while its `fingerprint` (e.g. the JSON of the section it is built
   * from) is unchanged: the first build creates it; a module rebuilt by a reload gets the same
   * value back (`fresh: false`). The gateway disposes of it once no generation in force or still
   * finishing requests uses it, so the module's own `close` must not.
   */
  reuse<T>(key: string, fingerprint: string, create: () => T, dispose: (value: T) => void | Promise<void>): { value: T; fresh: boolean };
}

/** What a module returns. Every member is optional. */
export interface Module {
  /** Runs in list order at gateway start (before the listener opens). */
  start?(): void | Promise<void>;
  /**
   * The listener stopped accepting: end long-lived streams (SSE) and stop taking new work. Runs in
   * reverse list order before in-flight requests are awaited. Idempotent.
   */
  drain?(): void | Promise<void>;
  /**
   * Runs in reverse list order once in-flight requests finished (or the shutdown timeout cut them).
   * Called for every module that was built, started or not, and after a start that failed
   * part-way: it must be idempotent and safe without start.
   */
  close?(): void | Promise<void>;
  /** Stages by phase, registered as if through `host.stages.add`. */
  stages?: Partial<Record<Phase, StageEntry | readonly StageEntry[]>>;
  /** Admin handlers by path, mounted as if through `host.mountAdmin`. */
  admin?: Readonly<Record<string, AdminHandler>>;
  /**
   * Hot reload. A module that declares `reload` and contributes no stages lives for the gateway's
   * whole life: it is built once, its host follows the config, topology and services in force,
   * and `reload(next)` is called (in list order) right after a reload put `next` in force. Every
   * other module is rebuilt from a new host for each reload (beside the old one, which keeps
   * serving the requests it started), then the pipeline is swapped between requests and the old
   * instance closed once its requests finished.
   */
  reload?(next: Config): void | Promise<void>;
}

/** One entry of the module list. */
export interface ModuleSpec {
  readonly name: string;
  /** Whether this config wants the module (default: always). */
  enabled?(config: Config): boolean;
  build(host: Host): Module;
}
