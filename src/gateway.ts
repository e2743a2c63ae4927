/**
 * The gateway: builds the modules of src/modules.ts from a narrow host, starts them in order,
 * drains and closes them in reverse (close is safe after a partial start), builds the pipeline
 * once from the stages they registered by phase, and owns the listener, admin dispatch, the error
 * writer and the one completion record per request. It knows no part by name.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Authenticator } from './auth/index.js';
import { RouteTopology, StrategyRegistry, type Backend } from './balancer/index.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Config } from './config/index.js';
import { isAdminPath, notYetBuilt } from './config/index.js';
import type { DashboardOptions } from './dashboard/index.js';
import { GatewayError, toGatewayError } from './errors.js';
import { CompletionBus, NO_VERDICTS, NoticeBus, redactInPlace, type CompletionRecord } from './events/index.js';
import { drainDelay, isHealthPath, type HealthChecker } from './health/index.js';
import type { AdminHandler, ConfigRef, Host, HostOptions, Module, ModuleSpec, ServiceDirectory, Services } from './host.js';
import { createLogger, type Logger } from './logging/index.js';
import type { Metrics } from './metrics/index.js';
import { MODULES } from './modules.js';
import { ClientIpResolver, compose, isUnsafePath, pickRequestId, PHASES, RequestContext, StageRegistry, type RouteTable, type StageEntry } from './pipeline/index.js';
import type { ProcessManager } from './procman/index.js';
import type { RateLimitStore } from './store/index.js';
import { upgradeResponse, upgradesFor } from './proxy/index.js';
import { AdminGuard, createHttpServer, isRebound, isDashboardUi, sendError, SESSION_PATH, type SessionOutcome } from './server/index.js';

export type { AdminHandler } from './host.js';

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
  /** The module list (default: MODULES of src/modules.ts). */
  modules?: readonly ModuleSpec[];
  /** Cluster role (src/cluster): a worker relays every admin request, unguarded, to the primary; the primary's private listener serves only what `admit` lets through, and no upgrades. */
  cluster?: { role: 'worker'; relayAdmin: AdminHandler } | { role: 'primary'; admit(req: IncomingMessage, res: ServerResponse): boolean };
}

/** The one place services are offered and found. */
class ServiceTable implements ServiceDirectory {
  readonly #map = new Map<keyof Services, unknown>();
  provide<K extends keyof Services>(name: K, service: Services[K], by: string): void {
    if (this.#map.has(name)) throw new Error(`module "${by}": service "${name}" is already provided`);
    this.#map.set(name, service);
  }
  get<K extends keyof Services>(name: K): Services[K] | undefined {
    return this.#map.get(name) as Services[K] | undefined;
  }
  need<K extends keyof Services>(name: K): Services[K] {
    const s = this.#map.get(name);
    if (s === undefined) throw new Error(`service "${name}" is not available: no module before this one in src/modules.ts provides it`);
    return s as Services[K];
  }
}

export class Gateway {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly bus: CompletionBus;
  /** Operator notices (anomaly, adaptive, breaker, config); the dashboard streams them. */
  readonly notices: NoticeBus;
  readonly startedAt: number;
  /** Services the modules provide (store, metrics, health, processes, dashboard, …). */
  readonly services: ServiceDirectory;

  readonly #configRef: { current: Config };
  readonly #options: HostOptions;
  readonly #topology: RouteTopology;
  readonly #services = new ServiceTable();
  readonly #stages = new StageRegistry();
  readonly #strategies = new StrategyRegistry();
  /** Built modules, in list order (with their names, for logs). */
  readonly #modules: { name: string; module: Module }[] = [];
  #server: Server | null = null;
  #handle: (ctx: RequestContext) => void;
  #handleUpgrade: (ctx: RequestContext) => void;
  #clientIp: ClientIpResolver;
  #readsForwardedFor: boolean;
  #admin = new Map<string, AdminHandler>();
  #adminGuard: AdminGuard;
  #inFlight = 0;
  #draining = false;
  #closed = false;
  #started = false;
  #closers: (() => Promise<void> | void)[] = [];
  #drainWaiters: (() => void)[] = [];
  readonly #cluster: GatewayOptions['cluster'] | null;
  /** Upgraded (WebSocket) client sockets: the HTTP server no longer tracks them, so shutdown must. */
  #tunnels = new Set<Duplex>();
  readonly #fail = (ctx: RequestContext, err: GatewayError): void => this.#failRequest(ctx, err);
  readonly #done = (ctx: RequestContext): void => this.#publish(ctx);

  constructor(config: Config, opts: GatewayOptions = {}) {
    this.#configRef = { current: config };
    this.#cluster = opts.cluster ?? null;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger(config.logging);
    this.startedAt = this.clock.now();
    this.services = this.#services;
    this.#options = { baseDir: opts.baseDir, echoProcessOutput: opts.echoProcessOutput, defaultMetrics: opts.defaultMetrics, dashboard: opts.dashboard };
    this.bus = new CompletionBus((err) => this.logger.error({ err }, 'completion listener failed'));
    this.notices = new NoticeBus((err) => this.logger.error({ err }, 'notice listener failed'));
    this.#clientIp = new ClientIpResolver(config.server.trusted_proxies);
    this.#readsForwardedFor = config.server.trusted_proxies.length > 0;
    this.#adminGuard = new AdminGuard(config.admin, { clock: this.clock });
    this.#topology = new RouteTopology(config, this.clock, this.logger);

    try {
      for (const spec of opts.modules ?? MODULES) {
        if (spec.enabled !== undefined && !spec.enabled(config)) continue;
        this.mount(spec);
      }
      this.#topology.bindStrategies(this.#strategies);
    } catch (err) {
      // Release what the modules built so far (timers, subscriptions, pools), then fail.
      void this.#closeModules().then(() => this.#topology.destroy());
      throw err;
    }
    this.#stages.seal();
    const onError = (ctx: RequestContext, err: unknown) => this.#failRequest(ctx, toGatewayError(err));
    this.#handle = compose(this.#stages.stages('request'), onError);
    this.#handleUpgrade = compose(this.#stages.stages('upgrade'), onError);
  }

  /**
   * Builds one module from its own host and registers what it returns. The module list does this
   * for every entry; an embedder may mount one more before start (stages are then refused: the
   * pipeline is built). Returns the module.
   */
  mount(spec: ModuleSpec): Module {
    if (this.#started) throw new Error(`module "${spec.name}": modules are mounted before the gateway starts`);
    const host = this.#host(spec.name);
    const module = spec.build(host);
    this.#modules.push({ name: spec.name, module });
    if (module.stages !== undefined) {
      for (const phase of PHASES) {
        const entry = module.stages[phase];
        if (entry === undefined) continue;
        const list: readonly StageEntry[] = Array.isArray(entry) ? entry : [entry as StageEntry];
        for (const stage of list) this.#stages.add(phase, stage);
      }
    }
    if (module.admin !== undefined) for (const [path, handler] of Object.entries(module.admin)) this.addAdmin(path, handler);
    return module;
  }

  #host(name: string): Host {
    const gateway = this;
    const services = this.#services;
    return {
      name,
      config: this.#configRef as ConfigRef,
      section: (key) => this.#configRef.current[key],
      clock: this.clock,
      logger: this.logger,
      startedAt: this.startedAt,
      lifecycle: () => (this.#draining ? 'draining' : this.#server?.listening ? 'ready' : 'starting'),
      options: this.#options,
      bus: this.bus,
      notices: this.notices,
      get store(): RateLimitStore {
        return services.need('store');
      },
      topology: this.#topology,
      responder: { fail: this.#fail, done: this.#done },
      stages: this.#stages,
      strategies: this.#strategies,
      services,
      provide: (key, service) => services.provide(key, service, name),
      mountAdmin: (path, handler) => gateway.addAdmin(path, handler),
    };
  }

  /** The config snapshot in force. */
  get config(): Config {
    return this.#configRef.current;
  }

  /** The route table. */
  get routes(): RouteTable {
    return this.#topology.table;
  }

  /** Backends by URL. */
  get backends(): ReadonlyMap<string, Backend> {
    return this.#topology.byUrl;
  }

  get store(): RateLimitStore {
    return this.#services.need('store');
  }

  get metrics(): Metrics {
    return this.#services.need('metrics');
  }

  get health(): HealthChecker {
    return this.#services.need('health');
  }

  get processes(): ProcessManager {
    return this.#services.need('processes');
  }

  get authenticator(): Authenticator | null {
    return this.#services.get('authenticator') ?? null;
  }

  /** Registers an admin handler for an exact path or, with a trailing "/", a subtree. */
  addAdmin(path: string, handler: AdminHandler): void {
    this.#admin.set(path, handler);
  }

  /** Registers something to end when shutdown starts (with the modules' drain; in reverse order of registration). */
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

  /** Starts the modules in list order, then the listener. */
  async start(opts: { port?: number; host?: string } = {}): Promise<void> {
    if (this.#started) throw new Error('the gateway was already started');
    this.#started = true;
    for (const note of notYetBuilt(this.config)) this.logger.warn(note);
    for (const { module } of this.#modules) await module.start?.();
    if (this.#draining) return; // closed while starting (e.g. a signal during auto-start)
    const server = createHttpServer(this.config.server, {
      request: (req, res) => this.#onRequest(req, res),
      upgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
      // Only the upgrade tokens a route allows (routes[].upgrades) are offered to a backend.
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
    this.logger.info({ port: this.port, routes: this.#topology.routes.map((r) => r.prefix) }, 'MicroGate listening');
  }

  /**
   * Graceful shutdown: stop accepting, drain the modules (long-lived streams end), let in-flight
   * requests finish (bounded by shutdown_timeout), then close the modules in reverse order and the
   * backends' pools. Safe after a partial or failed start, and without start.
   */
  async close(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    // /health/ready answers 503 from now on; keep serving for drain_delay so balancers notice first.
    if (this.#server?.listening) await drainDelay(this.config.server.drain_delay, this.clock);
    const server = this.#server;
    const deadline = this.config.server.shutdown_timeout;
    if (server !== null) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Long-lived streams (SSE) are ended by their owners first.
      await this.#drainModules();
      await this.#waitForDrain(deadline);
      server.closeAllConnections();
      for (const socket of this.#tunnels) socket.destroy();
      await closed;
    } else {
      await this.#drainModules();
    }
    await this.#closeModules();
    await this.#topology.destroy();
    this.logger.info('gateway stopped');
    this.logger.flush?.();
  }

  async #drainModules(): Promise<void> {
    const steps: [string, () => Promise<void> | void][] = [...this.#closers].reverse().map((c) => ['closer', c]);
    this.#closers = [];
    for (const { name, module } of [...this.#modules].reverse()) if (module.drain) steps.push([name, () => module.drain!()]);
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.logger.warn({ err, module: name }, 'drain failed');
      }
    }
  }

  async #closeModules(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const { name, module } of [...this.#modules].reverse()) {
      try {
        await module.close?.();
      } catch (err) {
        this.logger.warn({ err, module: name }, 'module close failed');
      }
    }
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
    if (this.#cluster?.role === 'primary' && !this.#cluster.admit(req, res)) return;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path.length > 1 && isAdminPath(path)) {
      this.#onAdmin(req, res, path);
      return;
    }
    const ctx = new RequestContext(req, res, performance.now(), this.clock.now());
    ctx.path = path;
    ctx.query = q === -1 ? '' : url.slice(q + 1);
    ctx.clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    this.#inFlight++;
    if (url.charCodeAt(0) !== 47 /* / */ || isUnsafePath(path)) {
      ctx.id = requestIdOf(req);
      ctx.decision = 'bad_request';
      this.#failRequest(ctx, new GatewayError('bad_request', 'Request target must be an absolute path without "." or ".." segments or backslashes'));
      return;
    }
    this.#handle(ctx);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#cluster?.role === 'primary') return void socket.destroy();
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    const res = upgradeResponse(req, socket);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const ctx = new RequestContext(req, res, performance.now(), this.clock.now());
    ctx.path = path;
    ctx.query = q === -1 ? '' : url.slice(q + 1);
    ctx.upgradeHead = head;
    ctx.clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    this.#inFlight++;
    if (this.#draining || url.charCodeAt(0) !== 47 || isUnsafePath(path) || isAdminPath(path)) {
      ctx.id = requestIdOf(req);
      this.#failRequest(ctx, new GatewayError(this.#draining ? 'shutting_down' : 'bad_request'));
      return;
    }
    this.#handleUpgrade(ctx);
  }

  #onAdmin(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (this.#cluster?.role === 'worker') return this.#cluster.relayAdmin(req, res, path);
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
      // The longest mounted subtree wins (e.g. /dashboard/api/analytics/ inside /dashboard/).
      let best = 0;
      for (const [prefix, h] of this.#admin) {
        if (prefix.endsWith('/') && prefix.length > best && (path.startsWith(prefix) || path === prefix.slice(0, -1))) {
          handler = h;
          best = prefix.length;
        }
      }
    }
    if (handler === undefined) {
      sendError(res, 404, 'not_found', `Nothing at ${path}`, id);
      return;
    }
    const open =
      (isHealthPath(path) && this.config.admin.public_health) ||
      (path === '/metrics' && this.config.admin.public_metrics) ||
      // The UI's files hold no data and carry the login form; the API they call stays guarded.
      (dashboard && isDashboardUi(path));
    if (!open) {
      // A presented admin token is looked at only while the address has sign-in attempts left; a wrong one spends one.
      const clientIp = this.#clientIp.resolve(req.socket.remoteAddress, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
      const h = handler;
      this.#adminGuard.admit(req, res, {
        requestId: id,
        clientIp,
        store: this.store,
        onOutcome: (outcome) => {
          if (outcome === 'throttled') this.logger.warn({ client_ip: clientIp, path }, 'admin token guessing throttled');
        },
        proceed: () => {
          // A loopback caller under a foreign host name is what DNS rebinding looks like: only a verified token or session passes.
          if (isRebound(req)) {
            sendError(res, 403, 'forbidden', 'the admin surface answers loopback callers only under a loopback host name (use http://localhost or an admin token)', id);
            return;
          }
          this.#runAdmin(h, req, res, path, id);
        },
      });
      return;
    }
    this.#runAdmin(handler, req, res, path, id);
  }

  #runAdmin(handler: AdminHandler, req: IncomingMessage, res: ServerResponse, path: string, id: string): void {
    try {
      handler(req, res, path);
    } catch (err) {
      this.logger.error({ err, path }, 'admin handler failed');
      sendError(res, 500, 'internal_error', 'Internal Server Error', id);
    }
  }

  /** Writes the JSON error response for ctx (unless one started) and publishes the record. */
  #failRequest(ctx: RequestContext, err: GatewayError): void {
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
      verdicts: ctx.verdicts ?? NO_VERDICTS,
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

export function createGateway(config: Config, opts?: GatewayOptions): Gateway {
  return new Gateway(config, opts);
}
