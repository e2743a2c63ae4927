/**
 * The gateway: composes config, server, pipeline, proxy, health, processes and observers, and
 * owns their lifecycle (start in order, close in reverse; close is safe after a partial start).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { auth, createAuthenticator, type Authenticator } from './auth/index.js';
import { Backend, createSelector } from './balancer/index.js';
import { CircuitBreaker } from './breaker/index.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Config, RouteConfig } from './config/index.js';
import { isAdminPath, normalizePrefix, notYetBuilt } from './config/index.js';
import { mountDashboard, type DashboardOptions } from './dashboard/index.js';
import { GatewayError, toGatewayError } from './errors.js';
import { CompletionBus, redactInPlace, type CompletionRecord } from './events/index.js';
import { healthEndpoint, HealthChecker } from './health/index.js';
import { accessLog, createLogger, type Logger } from './logging/index.js';
import { ClientIpResolver, compose, pickRequestId, requestId, RequestContext, RouteTable, type CompiledRoute, type Stage } from './pipeline/index.js';
import { createMetrics, type Metrics } from './metrics/index.js';
import { ProcessManager } from './procman/index.js';
import { rateLimit } from './ratelimit/index.js';
import { createStore, type RateLimitStore } from './store/index.js';
import { bufferBody, forward, tunnel, upgradeResponse, upgradesFor } from './proxy/index.js';
import { AdminGuard, chargeAdminFailure, createHttpServer, isDashboardUi, sendError, SESSION_PATH, type SessionOutcome } from './server/index.js';

export interface GatewayOptions {
  logger?: Logger;
  clock?: Clock;
  /** Directory relative process commands are resolved against (default: cwd). */
  baseDir?: string;
  /** Echo managed processes' output to our stdout/stderr (the CLI does). */
  echoProcessOutput?: boolean;
  /** Node process metrics (GC, event loop) on /metrics; default true. Tests that build many gateways turn them off. */
  defaultMetrics?: boolean;
  /** Options of the dashboard (mounted when dashboard.enabled). */
  dashboard?: DashboardOptions;
}

/** An admin endpoint: answers requests under a path the gateway owns. */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

function routeBackends(route: RouteConfig): { url: string; health_path?: string }[] {
  const list = route.backends && route.backends.length > 0 ? route.backends : route.backend ? [route.backend] : [];
  return list.map((b) => (typeof b === 'string' ? { url: b } : b));
}

export class Gateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly bus: CompletionBus;
  readonly routes: RouteTable;
  readonly backends: Map<string, Backend>;
  readonly health: HealthChecker;
  readonly processes: ProcessManager;
  readonly startedAt: number;
  readonly store: RateLimitStore;
  readonly metrics: Metrics;
  readonly authenticator: Authenticator | null;

  #server: Server | null = null;
  #handle: (ctx: RequestContext) => void;
  #handleUpgrade: (ctx: RequestContext) => void;
  #clientIp: ClientIpResolver;
  #readsForwardedFor: boolean;
  #admin = new Map<string, AdminHandler>();
  #adminGuard: AdminGuard;
  #inFlight = 0;
  #draining = false;
  #closers: (() => Promise<void> | void)[] = [];
  #drainWaiters: (() => void)[] = [];
  /** Upgraded (WebSocket) client sockets: the HTTP server no longer tracks them, so shutdown must. */
  #tunnels = new Set<Duplex>();

  constructor(config: Config, opts: GatewayOptions = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger(config.logging);
    this.startedAt = this.clock.now();
    this.bus = new CompletionBus((err) => this.logger.error({ err }, 'completion listener failed'));
    this.#clientIp = new ClientIpResolver(config.server.trusted_proxies);
    this.#readsForwardedFor = config.server.trusted_proxies.length > 0;
    this.#adminGuard = new AdminGuard(config.admin, { clock: this.clock });

    this.store = createStore(config.cluster, config.ratelimit, this.clock, {
      onError: (op, err) => {
        this.metrics?.storeError('redis', op);
        this.logger.warn({ op, err: (err as Error)?.message }, 'cluster store error: answering from the local fallback');
      },
    });
    this.authenticator = config.auth ? createAuthenticator(config.auth, { clock: this.clock }) : null;

    this.health = new HealthChecker({
      config: config.healthcheck,
      clock: this.clock,
      onChange: (b, healthy) => this.logger.info({ backend: b.url, healthy }, healthy ? 'backend healthy' : 'backend unhealthy'),
    });

    // Backends are shared between routes that name the same URL: one pool, one breaker, one health state.
    this.backends = new Map();
    const compiled: CompiledRoute[] = config.routes.map((rc) => {
      const backends = routeBackends(rc).map((b) =>
        this.#backend(b.url, b.health_path ?? rc.health_path ?? config.healthcheck.path, rc.connect_timeout ?? config.server.connect_timeout),
      );
      return {
        prefix: normalizePrefix(rc.path),
        config: rc,
        backends,
        selector: createSelector(rc.strategy, backends),
        timeoutMs: rc.timeout ?? config.server.upstream_timeout,
        stripPrefix: rc.strip_prefix,
        isPublic: rc.public,
      };
    });
    this.routes = new RouteTable(compiled);
    // A configured process with a route serves that route at http://localhost:<port>.
    for (const p of config.processes) {
      if (p.route === undefined || p.port === undefined) continue;
      const route = this.routes.find(p.route)!;
      if (!route.backends.some((b) => Number(b.origin.port) === p.port && isLocalHost(b.origin.hostname))) {
        route.backends.push(this.#backend(`http://localhost:${p.port}`, route.config.health_path ?? config.healthcheck.path));
      }
    }

    this.metrics = createMetrics({
      routes: compiled.map((r) => r.prefix),
      backends: () => [...this.backends.values()],
      storeDegraded: () => this.store.degraded,
      collectDefault: opts.defaultMetrics ?? true,
      onError: (err) => this.logger.error({ err }, 'metrics scrape failed'),
    });
    this.bus.subscribe(this.metrics.onCompletion);

    this.processes = new ProcessManager({ baseDir: opts.baseDir, echo: opts.echoProcessOutput ?? false });

    const fail = (ctx: RequestContext, err: GatewayError) => this.#fail(ctx, err);
    const done = (ctx: RequestContext) => this.#publish(ctx);
    const onConnectFailure = (b: Backend) => this.health.reportConnectFailure(b);
    const stripCredentials = config.auth?.strip_credentials ?? false;

    const policy = this.#policyStages();
    const onError = (ctx: RequestContext, err: unknown) => this.#fail(ctx, toGatewayError(err));
    this.#handle = compose(
      [
        requestId(),
        routeStage(this.routes),
        ...policy,
        bufferBody({ bodyLimit: config.server.body_limit, bufferBytes: config.server.request_buffer, timeoutMs: config.server.body_timeout, fail, done }),
        balanceStage(),
        forward({ bodyLimit: config.server.body_limit, bodyTimeoutMs: config.server.upstream_body_timeout, stripCredentials, fail, done, onConnectFailure }),
      ],
      onError,
    );
    this.#handleUpgrade = compose(
      [
        requestId(),
        routeStage(this.routes),
        ...policy,
        balanceStage(),
        tunnel({ stripCredentials, idleTimeoutMs: config.server.tunnel_idle_timeout, fail, done, onConnectFailure }),
      ],
      onError,
    );

    if (config.logging.access_log && this.logger.isLevelEnabled('info')) this.bus.subscribe(accessLog(this.logger));
    this.addAdmin(
      '/health',
      healthEndpoint({
        checker: this.health,
        startedAt: this.startedAt,
        clock: this.clock,
        degradedReasons: () => (this.store.degraded ? ['cluster store unreachable: rate limits answered from local state'] : []),
      }),
    );
    this.addAdmin('/metrics', (req, res) => void this.metrics.handle(req, res));
    if (config.dashboard.enabled) mountDashboard(this, opts.dashboard);
  }

  /**
   * Policy stages between routing and balancing. Auth runs first so limits can be per consumer;
   * a failed auth attempt costs a token from the client IP's bucket (and becomes a 429 when empty).
   */
  #policyStages(): Stage[] {
    const stages: Stage[] = [];
    const rl = this.config.ratelimit?.enabled ? rateLimit({ config: this.config.ratelimit, store: this.store }) : null;
    if (this.authenticator !== null) {
      stages.push(
        auth({
          authenticator: this.authenticator,
          stripCredentials: this.config.auth!.strip_credentials,
          onFailure: rl === null ? undefined : rl.chargeAuthFailure,
        }),
      );
    }
    if (rl !== null) stages.push(rl.stage);
    return stages;
  }

  /** The one Backend per URL (routes naming the same URL share it; the first route's settings win). */
  #backend(url: string, healthPath: string, connectTimeoutMs = this.config.server.connect_timeout): Backend {
    let b = this.backends.get(url);
    if (!b) {
      b = new Backend(url, {
        connectTimeoutMs,
        connections: this.config.server.upstream_connections,
        queueLimit: this.config.server.upstream_queue_limit,
        healthPath,
      });
      b.breaker = new CircuitBreaker(this.config.circuitbreaker, {
        clock: this.clock,
        onStateChange: (from, to) => this.logger.warn({ backend: url, from, to }, `circuit breaker ${to}`),
        onError: (err) => this.logger.error({ err }, 'breaker listener failed'),
      });
      this.backends.set(url, b);
      this.health.add(b);
    }
    return b;
  }

  /**
   * Adds a backend to a route at run time (e.g. a process added from the dashboard). The backend
   * is health-checked at once and joins the route's rotation when healthy. Throws if the route
   * does not exist. Idempotent for a URL already on the route.
   */
  addBackend(routePrefix: string, url: string): Backend {
    const route = this.routes.find(routePrefix);
    if (!route) throw new GatewayError('not_found', `route "${routePrefix}" not found`);
    const backend = this.#backend(url, route.config.health_path ?? this.config.healthcheck.path);
    if (!route.backends.includes(backend)) route.backends.push(backend);
    this.health.watchStartup([url]);
    return backend;
  }

  /** Backends of managed processes: those whose URL is on localhost at the process's port. */
  backendsOfPort(port: number): Backend[] {
    return [...this.backends.values()].filter((b) => Number(b.origin.port) === port && isLocalHost(b.origin.hostname));
  }

  /** Registers an admin handler for an exact path or, with a trailing "/", a subtree. */
  addAdmin(path: string, handler: AdminHandler): void {
    this.#admin.set(path, handler);
  }

  /** Registers something to close on shutdown (closed in reverse order of registration). */
  onClose(closer: () => Promise<void> | void): void {
    this.#closers.push(closer);
  }

  get server(): Server | null {
    return this.#server;
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Starts processes, health checks and the listener. */
  async start(opts: { port?: number; host?: string } = {}): Promise<void> {
    for (const note of notYetBuilt(this.config)) this.logger.warn(note);
    await this.store.start();
    await this.authenticator?.start();
    for (const p of this.config.processes) this.processes.add(p);
    // Backends of a process that just started are probed right away, so they serve within moments.
    this.processes.on('process', (info) => {
      if (info.status === 'running' && info.port > 0) this.health.watchStartup(this.backendsOfPort(info.port).map((b) => b.url));
    });
    this.health.start();
    for (const p of this.config.processes) {
      if (!p.auto_start) continue;
      try {
        await this.processes.start(p.id);
        this.logger.info({ process: p.id, port: p.port }, 'auto-started process');
      } catch (err) {
        this.logger.error({ process: p.id, err: (err as Error).message }, 'could not auto-start process');
      }
    }
    const server = createHttpServer(this.config.server, {
      request: (req, res) => this.#onRequest(req, res),
      upgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
      upgrades: (req) => upgradesFor(this.routes, req.url ?? '/'),
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? this.config.server.port, opts.host ?? this.config.server.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'server error'));
    this.logger.info({ port: this.port, routes: this.routes.routes.map((r) => r.prefix) }, 'MicroGate listening');
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (bounded by
   * shutdown_timeout), end long-lived streams, then stop processes and wait for them.
   */
  async close(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const server = this.#server;
    const deadline = this.config.server.shutdown_timeout;
    if (server !== null) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Long-lived streams (SSE) are ended by their owners' closers first.
      for (const closer of [...this.#closers].reverse()) {
        try {
          await closer();
        } catch (err) {
          this.logger.warn({ err }, 'closer failed');
        }
      }
      this.#closers = [];
      await this.#waitForDrain(deadline);
      server.closeAllConnections();
      for (const socket of this.#tunnels) socket.destroy();
      await closed;
    } else {
      for (const closer of [...this.#closers].reverse()) await closer();
      this.#closers = [];
    }
    this.health.close();
    await this.processes.stopAll();
    await Promise.all([...this.backends.values()].map((b) => b.destroy().catch(() => {})));
    await this.authenticator?.close();
    await this.store.close();
    this.metrics.close();
    this.logger.info('gateway stopped');
    this.logger.flush?.();
  }

  #waitForDrain(ms: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn({ in_flight: this.#inFlight }, 'shutdown timeout: cutting remaining requests');
        resolve();
      }, ms);
      this.#drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.#draining) res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path.length > 1 && isAdminPath(path)) {
      this.#onAdmin(req, res, path);
      return;
    }
    const ctx = new RequestContext(req, res, performance.now(), Date.now());
    ctx.path = path;
    ctx.query = q === -1 ? '' : url.slice(q + 1);
    ctx.clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    this.#inFlight++;
    if (url.charCodeAt(0) !== 47 /* / */ || hasDotSegment(path)) {
      ctx.id = requestIdOf(req);
      ctx.decision = 'bad_request';
      this.#fail(ctx, new GatewayError('bad_request', 'Request target must be an absolute path without "." or ".." segments'));
      return;
    }
    this.#handle(ctx);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    const res = upgradeResponse(req, socket);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const ctx = new RequestContext(req, res, performance.now(), Date.now());
    ctx.path = path;
    ctx.query = q === -1 ? '' : url.slice(q + 1);
    ctx.upgradeHead = head;
    ctx.clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    this.#inFlight++;
    if (this.#draining || url.charCodeAt(0) !== 47 || hasDotSegment(path) || isAdminPath(path)) {
      ctx.id = requestIdOf(req);
      this.#fail(ctx, new GatewayError(this.#draining ? 'shutting_down' : 'bad_request'));
      return;
    }
    this.#handleUpgrade(ctx);
  }

  #onAdmin(req: IncomingMessage, res: ServerResponse, path: string): void {
    const id = requestIdOf(req);
    res.setHeader('x-request-id', id);
    const dashboard = this.#admin.has('/dashboard/');
    if (dashboard && path === SESSION_PATH) {
      // Reachable without credentials: it is where they are presented.
      const clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
      const onOutcome = (outcome: SessionOutcome): void => {
        if (outcome === 'login' || outcome === 'logout') this.logger.info({ client_ip: clientIp, outcome }, 'admin session');
        else this.logger.warn({ client_ip: clientIp, outcome }, 'admin login refused');
      };
      this.#adminGuard.session(req, res, { requestId: id, clientIp, store: this.store, onOutcome }).catch((err: unknown) => {
        this.logger.error({ err, path }, 'admin handler failed');
        sendError(res, 500, 'internal_error', 'Internal Server Error', id);
      });
      return;
    }
    let handler = this.#admin.get(path);
    if (handler === undefined) {
      for (const [prefix, h] of this.#admin) {
        if (prefix.endsWith('/') && (path.startsWith(prefix) || path === prefix.slice(0, -1))) {
          handler = h;
          break;
        }
      }
    }
    if (handler === undefined) {
      sendError(res, 404, 'not_found', `Nothing at ${path}`, id);
      return;
    }
    const open =
      (path === '/health' && this.config.admin.public_health) ||
      (path === '/metrics' && this.config.admin.public_metrics) ||
      // The UI's files hold no data and carry the login form; the API they call stays guarded.
      (dashboard && isDashboardUi(path));
    if (!open && !this.#adminGuard.allows(req)) {
      const deny = () =>
        sendError(res, 401, 'admin_unauthorized', 'Admin token required (Authorization: Bearer <admin.token>, or log in at /dashboard/)', id, {
          'www-authenticate': 'Bearer realm="microgate-admin"',
        });
      if (req.headers.authorization === undefined) return void deny();
      // A wrong admin token costs from the same per-IP bucket as sign-in attempts: no online guessing.
      const clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
      chargeAdminFailure(this.store, clientIp).then(
        (retry) => {
          if (retry === null) return deny();
          this.logger.warn({ client_ip: clientIp, path }, 'admin token guessing throttled');
          sendError(res, 429, 'rate_limited', `Too many failed admin attempts: try again in ${retry} s`, id, { 'retry-after': String(retry) });
        },
        () => deny(),
      );
      return;
    }
    try {
      handler(req, res, path);
    } catch (err) {
      this.logger.error({ err, path }, 'admin handler failed');
      sendError(res, 500, 'internal_error', 'Internal Server Error', id);
    }
  }

  /** Writes the JSON error response for ctx (unless one started) and publishes the record. */
  #fail(ctx: RequestContext, err: GatewayError): void {
    if (ctx.finished) return;
    if (err.code === 'internal_error') this.logger.error({ err: err.cause ?? err, request_id: ctx.id }, 'internal error');
    ctx.errorCode = err.code;
    if (ctx.id === '') ctx.id = requestIdOf(ctx.req);
    const res = ctx.res;
    if (!res.headersSent && !res.destroyed) {
      const extra = ctx.extraHeaders;
      if (extra !== null) for (let i = 0; i < extra.length; i += 2) res.setHeader(extra[i]!, extra[i + 1]!);
      sendError(res, err.status, err.code, err.message, ctx.id, err.headers);
      ctx.responseHeaders = res.getHeaders();
    } else if (!res.writableEnded) {
      res.destroy();
    }
    this.#publish(ctx);
  }

  /** Publishes the one completion record of ctx. */
  #publish(ctx: RequestContext): void {
    if (ctx.finished) return;
    ctx.finished = true;
    const res = ctx.res;
    const record: CompletionRecord = {
      id: ctx.id,
      time: ctx.time,
      method: ctx.req.method ?? 'GET',
      path: ctx.path,
      query: ctx.query,
      route: ctx.route === null ? null : ctx.route.prefix,
      backend: ctx.backend === null ? '' : ctx.backend.url,
      status: ctx.decision === 'client_aborted' ? 499 : res.statusCode,
      latencyMs: performance.now() - ctx.startedAt,
      bytesIn: ctx.bytesIn,
      bytesOut: ctx.bytesOut,
      clientIp: ctx.clientIp,
      consumer: ctx.consumer,
      decision: ctx.decision,
      detail: ctx.detail,
      errorCode: ctx.errorCode,
      requestHeaders: ctx.req.headers,
      responseHeaders: ctx.responseHeaders,
    };
    redactInPlace(record.requestHeaders as Record<string, unknown>);
    redactInPlace(record.responseHeaders as Record<string, unknown> | undefined);
    this.bus.publish(record);
    if (--this.#inFlight === 0 && this.#drainWaiters.length > 0) {
      for (const w of this.#drainWaiters.splice(0)) w();
    }
  }
}

function requestIdOf(req: IncomingMessage): string {
  return pickRequestId(req.headers['x-request-id']);
}

/** "." or ".." path segments, plain or percent-encoded, would let a client walk out of a route prefix. */
function hasDotSegment(path: string): boolean {
  if (path.includes('/.')) {
    for (const seg of path.split('/')) if (seg === '.' || seg === '..') return true;
  }
  if (path.includes('%')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return true;
    }
    for (const seg of decoded.split(/[/\\]/)) if (seg === '.' || seg === '..') return true;
  }
  return false;
}

function isLocalHost(host: string): boolean {
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1';
}

/**
 * Stage: finds the route. An unmatched request goes on with ctx.route = null, so it still needs
 * credentials (and costs a token) before it learns that nothing is there: paths cannot be probed.
 */
function routeStage(table: RouteTable) {
  return function routeMatchStage(ctx: RequestContext): void {
    ctx.route = table.match(ctx.path);
    ctx.next();
  };
}

/** Stage: picks an available backend (healthy, breaker not open); none → 503. */
function balanceStage() {
  return function balance(ctx: RequestContext): void {
    const route = ctx.route;
    if (route === null) {
      ctx.decision = 'not_found';
      throw new GatewayError('not_found', `No route for ${ctx.path}`);
    }
    let backend = route.selector.pick(null);
    if (backend === null && route.config.panic) {
      // Panic mode: every backend failed its health checks; try them anyway (breakers still apply).
      backend = panicPick(route);
      if (backend !== null) ctx.decision = 'panic';
    }
    if (backend === null) {
      // Say which: every backend unhealthy, or healthy ones held open by their breakers.
      const anyHealthy = route.backends.some((b) => b.healthy !== false);
      if (anyHealthy) {
        ctx.decision = 'breaker_open';
        throw new GatewayError('breaker_open', 'Every backend of this route has an open circuit breaker', { headers: { 'retry-after': '1' } });
      }
      ctx.decision = 'no_healthy_backend';
      throw new GatewayError('no_healthy_backend', undefined, { headers: { 'retry-after': '1' } });
    }
    ctx.backend = backend;
    ctx.next();
  };
}

/** Panic routing: the first backend (from a rotating start) whose breaker admits a request, health ignored. */
function panicPick(route: CompiledRoute): Backend | null {
  const list = route.backends;
  const start = panicCounter++ % list.length;
  for (let k = 0; k < list.length; k++) {
    const b = list[(start + k) % list.length]!;
    if (b.breaker === null || b.breaker.allow()) return b;
  }
  return null;
}
let panicCounter = 0;

export function createGateway(config: Config, opts?: GatewayOptions): Gateway {
  return new Gateway(config, opts);
}
