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
import { AuthConfigError } from './auth/index.js';
import { RouteTopology, StrategyRegistry, TopologyView, type Backend, type StrategyFactory } from './balancer/index.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Config } from './config/index.js';
import { ConfigError, formatProblem, isAdminPath, loadConfig, notYetBuilt, type ConfigProblem } from './config/index.js';
import type { DashboardOptions } from './dashboard/index.js';
import { GatewayError, toGatewayError } from './errors.js';
import { CompletionBus, headerListOf, NO_VERDICTS, NoticeBus, redactList, redactListed, type CompletionRecord } from './events/index.js';
import { drainDelay, isHealthPath, type HealthChecker } from './health/index.js';
import type { AdminHandler, ConfigRef, Host, HostOptions, Module, ModuleSpec, ServiceDirectory, Services } from './host.js';
import { createLogger, type Logger } from './logging/index.js';
import type { Metrics } from './metrics/index.js';
import { MODULES } from './modules.js';
import { ClientIpResolver, compose, isUnsafePath, peerIpOf, pickRequestId, PHASES, RequestContext, StageRegistry, type RouteTable, type StageEntry } from './pipeline/index.js';
import type { ProcessManager } from './procman/index.js';
import type { RateLimitStore } from './store/index.js';
import { planReload, reloadCounter, type ReloadFailure, type ReloadOutcome, type ReloadSuccess } from './reload/index.js';
import type { Counter } from 'prom-client';
import { upgradeResponse, upgradesFor } from './proxy/index.js';
import { releaseYoungGeneration } from './young-generation.js';
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
  /** The file the config was read from: `reloadFromFile()` (SIGHUP, --watch, POST /dashboard/api/reload) re-reads it. */
  configFile?: string;
  /** The module list (default: MODULES of src/modules.ts). */
  modules?: readonly ModuleSpec[];
  /** Cluster role (src/cluster): a worker relays every admin request, unguarded, to the primary; the primary's private listener serves only what `admit` lets through, and no upgrades. */
  cluster?: { role: 'worker'; relayAdmin: AdminHandler } | { role: 'primary'; admit(req: IncomingMessage, res: ServerResponse): boolean };
}

/** The one place services are offered and found (one table per generation). */
class ServiceTable implements ServiceDirectory {
  readonly #map = new Map<keyof Services, { service: unknown; by: string }>();
  provide<K extends keyof Services>(name: K, service: Services[K], by: string): void {
    if (this.#map.has(name)) throw new Error(`module "${by}": service "${name}" is already provided`);
    this.#map.set(name, { service, by });
  }
  get<K extends keyof Services>(name: K): Services[K] | undefined {
    return this.#map.get(name)?.service as Services[K] | undefined;
  }
  need<K extends keyof Services>(name: K): Services[K] {
    const s = this.#map.get(name);
    if (s === undefined) throw new Error(`service "${name}" is not available: no module before this one in src/modules.ts provides it`);
    return s.service as Services[K];
  }
  /** Takes over the services of `from` whose provider lives on (the gateway, modules kept across reloads). */
  inherit(from: ServiceTable, keep: (by: string) => boolean): void {
    for (const [name, entry] of from.#map) if (keep(entry.by)) this.#map.set(name, entry);
  }
}

/** A module as built: what it registered, so a reload can rebuild it or keep it. */
interface Built {
  readonly name: string;
  /** Position in the module list (build, start and close order). */
  readonly index: number;
  readonly spec: ModuleSpec;
  module: Module;
  /** Lives across reloads (declares `reload`, registers no stages); else rebuilt per generation. */
  kept: boolean;
  stages: number;
  readonly strategies: [string, StrategyFactory][];
  readonly admin: [string, AdminHandler][];
  /** Its completion-bus subscriptions: a replaced generation stops receiving records at the swap. */
  readonly offBus: (() => void)[];
}

interface Carried {
  readonly fingerprint: string;
  readonly value: unknown;
  readonly dispose: (value: unknown) => void | Promise<void>;
}

/**
 * One config in force: its snapshot, topology, services, the modules built for it and the
 * pipeline composed from their stages. A request runs entirely on the generation it started on.
 */
interface Generation {
  readonly id: number;
  readonly configRef: { readonly current: Config };
  readonly topology: RouteTopology;
  readonly services: ServiceTable;
  readonly stages: StageRegistry;
  readonly strategies: StrategyRegistry;
  /** The modules built for this generation (kept modules are the gateway's, in #kept). */
  readonly built: Built[];
  readonly carried: Map<string, Carried>;
  handle: (ctx: RequestContext) => void;
  handleUpgrade: (ctx: RequestContext) => void;
  fail: (ctx: RequestContext, err: GatewayError) => void;
  done: (ctx: RequestContext) => void;
  inFlight: number;
  /** Replaced by a reload; its parts close when inFlight reaches 0. */
  retired: boolean;
  retireTimer: NodeJS.Timeout | null;
}

const NOT_BUILT = (): void => {
  throw new Error('the pipeline is not built yet');
};

export class Gateway {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly bus: CompletionBus;
  /** Operator notices (anomaly, adaptive, breaker, config); the dashboard streams them. */
  readonly notices: NoticeBus;
  readonly startedAt: number;
  /** Services the modules provide (store, metrics, health, processes, dashboard, …), of the config in force. */
  readonly services: ServiceDirectory;

  /** The snapshot in force, as modules kept across reloads see it. */
  readonly #configRef: { current: Config };
  readonly #configFile: string | null;
  readonly #options: HostOptions;
  /** The module list (plus modules mounted before start). */
  readonly #specs: ModuleSpec[] = [];
  /** Modules living across reloads. */
  readonly #kept: Built[] = [];
  #gen: Generation;
  /** Replaced generations still finishing requests. */
  #retired: Generation[] = [];
  /** Backends a reload dropped; their pools close when no replaced generation has requests left. */
  readonly #retiringBackends = new Map<string, Backend>();
  #generations = 0;
  #reloadChain: Promise<unknown> = Promise.resolve();
  #reloadCounter: Counter<'result'> | null = null;
  readonly #topologyView: TopologyView;
  readonly #servicesView: ServiceDirectory;
  #server: Server | null = null;
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

  constructor(config: Config, opts: GatewayOptions = {}) {
    this.#configRef = { current: config };
    this.#configFile = opts.configFile ?? null;
    this.#cluster = opts.cluster ?? null;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger(config.logging);
    this.startedAt = this.clock.now();
    this.#options = { baseDir: opts.baseDir, echoProcessOutput: opts.echoProcessOutput, defaultMetrics: opts.defaultMetrics, dashboard: opts.dashboard };
    this.bus = new CompletionBus((err) => this.logger.error({ err }, 'completion listener failed'));
    this.notices = new NoticeBus((err) => this.logger.error({ err }, 'notice listener failed'));
    this.#clientIp = new ClientIpResolver(config.server.trusted_proxies);
    this.#readsForwardedFor = config.server.trusted_proxies.length > 0;
    this.#adminGuard = new AdminGuard(config.admin, { clock: this.clock });
    this.#topologyView = new TopologyView(() => this.#gen.topology);
    this.#servicesView = { get: (name) => this.#gen.services.get(name), need: (name) => this.#gen.services.need(name) };
    this.services = this.#servicesView;
    const gen = this.#newGeneration(config, new RouteTopology(config, this.clock, this.logger));
    this.#gen = gen;
    gen.services.provide('reloader', { reload: () => this.reloadFromFile() }, 'gateway');

    try {
      for (const spec of opts.modules ?? MODULES) {
        this.#specs.push(spec);
        if (spec.enabled !== undefined && !spec.enabled(config)) continue;
        this.#build(spec, this.#specs.length - 1, gen);
      }
      gen.topology.bindStrategies(gen.strategies);
    } catch (err) {
      // Release what the modules built so far (timers, subscriptions, pools), then fail.
      void this.#closeModules().then(() => gen.topology.destroy());
      throw err;
    }
    this.#compose(gen);
    const metrics = gen.services.get('metrics');
    if (metrics !== undefined) this.#reloadCounter = reloadCounter(metrics.registry);
  }

  /**
   * Builds one module from its own host and registers what it returns. The module list does this
   * for every entry; an embedder may mount one more before start (stages are then refused: the
   * pipeline is built). Returns the module.
   */
  mount(spec: ModuleSpec): Module {
    if (this.#started) throw new Error(`module "${spec.name}": modules are mounted before the gateway starts`);
    this.#specs.push(spec);
    return this.#build(spec, this.#specs.length - 1, this.#gen).module;
  }

  #build(spec: ModuleSpec, index: number, gen: Generation): Built {
    const built: Built = { name: spec.name, index, spec, module: {}, kept: false, stages: 0, strategies: [], admin: [], offBus: [] };
    const host = this.#host(gen, built);
    gen.built.push(built);
    const module = spec.build(host);
    built.module = module;
    if (module.stages !== undefined) {
      for (const phase of PHASES) {
        const entry = module.stages[phase];
        if (entry === undefined) continue;
        const list: readonly StageEntry[] = Array.isArray(entry) ? entry : [entry as StageEntry];
        for (const stage of list) host.stages.add(phase, stage);
      }
    }
    if (module.admin !== undefined) for (const [path, handler] of Object.entries(module.admin)) host.mountAdmin(path, handler);
    // Only the first generation decides which modules live across reloads.
    if (gen.id === 0 && module.reload !== undefined && built.stages === 0) {
      built.kept = true;
      gen.built.splice(gen.built.indexOf(built), 1);
      this.#kept.push(built);
    }
    return built;
  }

  #host(gen: Generation, built: Built): Host {
    const gateway = this;
    const name = built.name;
    // A kept module follows whatever is in force; a rebuilt one stays with its generation.
    const configRef: ConfigRef = {
      get current() {
        return built.kept ? gateway.#configRef.current : gen.configRef.current;
      },
    };
    const services: ServiceDirectory = {
      get: (key) => (built.kept ? this.#gen.services : gen.services).get(key),
      need: (key) => (built.kept ? this.#gen.services : gen.services).need(key),
    };
    const topology = new TopologyView(() => (built.kept ? this.#gen.topology : gen.topology));
    return {
      name,
      config: configRef,
      section: (key) => configRef.current[key],
      clock: this.clock,
      logger: this.logger,
      startedAt: this.startedAt,
      lifecycle: () => (this.#draining ? 'draining' : this.#server?.listening ? 'ready' : 'starting'),
      options: this.#options,
      bus: {
        subscribe: (listener) => {
          const off = this.bus.subscribe(listener);
          built.offBus.push(off);
          return off;
        },
      },
      notices: this.notices,
      get store(): RateLimitStore {
        return services.need('store');
      },
      topology,
      responder: { fail: gen.fail, done: gen.done },
      stages: {
        add: (phase, stage) => {
          built.stages++;
          gen.stages.add(phase, stage);
        },
      },
      strategies: {
        register: (key, factory) => {
          built.strategies.push([key, factory]);
          gen.strategies.register(key, factory);
        },
      },
      services,
      provide: (key, service) => gen.services.provide(key, service, name),
      mountAdmin: (path, handler) => {
        built.admin.push([path, handler]);
        // A generation being tried by a reload mounts its handlers when it is put in force.
        if (gen === this.#gen) gateway.addAdmin(path, handler);
      },
      reuse: <T>(key: string, fingerprint: string, create: () => T, dispose: (value: T) => void | Promise<void>) => {
        const prev = this.#gen === gen ? undefined : this.#gen.carried.get(key);
        if (prev !== undefined && prev.fingerprint === fingerprint) {
          gen.carried.set(key, prev);
          return { value: prev.value as T, fresh: false };
        }
        const value = create();
        gen.carried.set(key, { fingerprint, value, dispose: dispose as (v: unknown) => void | Promise<void> });
        return { value, fresh: true };
      },
    };
  }

  #newGeneration(config: Config, topology: RouteTopology): Generation {
    const gen: Generation = {
      id: this.#generations,
      configRef: { current: config },
      topology,
      services: new ServiceTable(),
      stages: new StageRegistry(),
      strategies: new StrategyRegistry(),
      built: [],
      carried: new Map(),
      handle: NOT_BUILT,
      handleUpgrade: NOT_BUILT,
      fail: (ctx, err) => {
        if (ctx.finished) return;
        this.#writeError(ctx, err);
        gen.done(ctx);
      },
      done: (ctx) => {
        if (ctx.finished) return;
        this.#publish(ctx);
        if (--gen.inFlight === 0 && gen.retired) this.#retiredDrained(gen);
      },
      inFlight: 0,
      retired: false,
      retireTimer: null,
    };
    return gen;
  }

  /** Seals the generation's stage registry and composes its request and upgrade pipelines. */
  #compose(gen: Generation): void {
    gen.stages.seal();
    const onError = (ctx: RequestContext, err: unknown) => gen.fail(ctx, toGatewayError(err));
    gen.handle = compose(gen.stages.stages('request'), onError);
    gen.handleUpgrade = compose(gen.stages.stages('upgrade'), onError);
  }

  /** Every built module in list order: kept ones and those of the given generations. */
  #ordered(...gens: Generation[]): Built[] {
    return [...this.#kept, ...gens.flatMap((g) => g.built)].sort((a, b) => a.index - b.index);
  }

  /**
   * Re-reads the config file the gateway was created with (`configFile`) and reloads it. Never
   * rejects: an invalid file answers `result: "error"` with every problem and changes nothing.
   */
  reloadFromFile(): Promise<ReloadOutcome> {
    const file = this.#configFile;
    return this.#enqueue(async () => {
      if (file === null) return this.#failure(null, 'failed', [{ file: '', line: 0, col: 0, key: '', message: 'no config file to reload: the gateway was created from a snapshot' }]);
      let next: Config;
      try {
        // A file with no settings is refused: it is more likely caught mid-rewrite than meant.
        next = await loadConfig(file, process.env, { refuseEmpty: true });
      } catch (err) {
        if (err instanceof ConfigError) return this.#failure(file, 'invalid', err.problems);
        return this.#failure(file, 'failed', [{ file, line: 0, col: 0, key: '', message: (err as Error).message }]);
      }
      return this.#reload(next, file);
    });
  }

  /** Puts a validated snapshot in force (see reloadFromFile). Reloads run one at a time. */
  reload(next: Config): Promise<ReloadOutcome> {
    return this.#enqueue(() => this.#reload(next, null));
  }

  #enqueue(run: () => Promise<ReloadOutcome>): Promise<ReloadOutcome> {
    const result = this.#reloadChain.then(run, run);
    this.#reloadChain = result.catch(() => {});
    return result;
  }

  async #reload(next: Config, file: string | null): Promise<ReloadOutcome> {
    const problem = (key: string, message: string): ConfigProblem => ({ file: file ?? '', line: 0, col: 0, key, message });
    if (this.#draining || !this.#started) return this.#failure(file, 'busy', [problem('', this.#draining ? 'the gateway is shutting down' : 'the gateway is not started')]);
    const cur = this.#gen;
    const plan = planReload(cur.configRef.current, next);
    const config = plan.effective;
    this.#generations++;
    const gen = this.#newGeneration(config, new RouteTopology(config, this.clock, this.logger, { previous: cur.topology, retiring: this.#retiringBackends }));
    const keptNames = new Set(this.#kept.map((b) => b.name));
    gen.services.inherit(cur.services, (by) => by === 'gateway' || keptNames.has(by));
    for (const b of this.#kept) for (const [key, factory] of b.strategies) gen.strategies.register(key, factory);
    // Build the new generation beside the one in force; nothing it does is visible until the swap.
    try {
      for (const [index, spec] of this.#specs.entries()) {
        if (keptNames.has(spec.name)) continue;
        if (spec.enabled !== undefined && !spec.enabled(config)) continue;
        this.#build(spec, index, gen);
      }
      gen.topology.bindStrategies(gen.strategies);
      this.#compose(gen);
      for (const b of gen.built) await b.module.start?.();
      if (this.#draining) throw new Error('the gateway is shutting down');
    } catch (err) {
      this.#generations--;
      await this.#discard(gen);
      if (err instanceof AuthConfigError) return this.#failure(file, 'invalid', [problem('auth', err.message)]);
      if (err instanceof ConfigError) return this.#failure(file, 'invalid', err.problems);
      this.logger.error({ err }, 'config reload: the new configuration could not be built');
      return this.#failure(file, this.#draining ? 'busy' : 'failed', [problem('', (err as Error).message)]);
    }

    // The swap: synchronous, so it happens between requests.
    const diff = gen.topology.commit();
    for (const b of gen.topology.byUrl.values()) if (this.#retiringBackends.get(b.url) === b) this.#retiringBackends.delete(b.url);
    for (const b of diff.dropped) this.#retiringBackends.set(b.url, b);
    for (const b of cur.built) for (const off of b.offBus.splice(0)) off();
    this.#gen = gen;
    this.#configRef.current = config;
    if (JSON.stringify(config.server.trusted_proxies) !== JSON.stringify(cur.configRef.current.server.trusted_proxies)) {
      this.#clientIp = new ClientIpResolver(config.server.trusted_proxies);
      this.#readsForwardedFor = config.server.trusted_proxies.length > 0;
    }
    for (const b of gen.built) for (const [path, handler] of b.admin) this.addAdmin(path, handler);
    cur.retired = true;
    this.#retired.push(cur);
    if (cur.inFlight === 0) this.#retiredDrained(cur);
    else {
      // A request that never completes must not pin the old generation for ever.
      cur.retireTimer = setTimeout(() => this.#retiredDrained(cur), cur.configRef.current.server.shutdown_timeout);
      cur.retireTimer.unref();
    }
    // Parts that live across reloads adapt (processes start and stop, analytics series, …).
    for (const b of this.#kept) {
      try {
        await b.module.reload!(config);
      } catch (err) {
        this.logger.error({ err, module: b.name }, 'config reload: a module could not apply the new configuration');
      }
    }

    const outcome: ReloadSuccess = {
      result: 'success',
      file,
      generation: gen.id,
      changed: false,
      routes: diff.routes,
      backends: diff.backends,
      sections: plan.sections,
      processes: plan.processes,
      restart_required: plan.restartRequired,
    };
    const lists = [diff.routes.added, diff.routes.removed, diff.routes.changed, diff.backends.added, diff.backends.removed, diff.backends.changed, plan.sections];
    outcome.changed = lists.some((l) => l.length > 0) || Object.values(plan.processes).some((l) => l.length > 0);
    this.#reloadCounter?.inc({ result: 'success' });
    this.logger[plan.restartRequired.length > 0 ? 'warn' : 'info'](
      { file, generation: gen.id, routes: diff.routes, backends: diff.backends, sections: plan.sections, processes: plan.processes, restart_required: plan.restartRequired },
      plan.restartRequired.length > 0 ? `config reloaded; needs a restart to apply: ${plan.restartRequired.join(', ')}` : 'config reloaded',
    );
    this.notices.publish('config', outcome);
    return outcome;
  }

  #failure(file: string | null, reason: ReloadFailure['reason'], problems: readonly ConfigProblem[]): ReloadFailure {
    const outcome: ReloadFailure = { result: 'error', file, reason, problems: problems.map((p) => ({ ...p, text: formatProblem(p) })) };
    this.#reloadCounter?.inc({ result: 'failure' });
    this.logger.error({ file, reason, problems: outcome.problems.map((p) => p.text) }, `config reload failed; nothing changed:\n${outcome.problems.map((p) => p.text).join('\n')}`);
    this.notices.publish('config', outcome);
    return outcome;
  }

  /** A generation that was never put in force: close what it built and created. */
  async #discard(gen: Generation): Promise<void> {
    await this.#closeBuilt(gen.built);
    for (const c of gen.carried.values()) if (![...this.#gen.carried.values()].includes(c)) await this.#dispose(c);
    await gen.topology.discard();
  }

  /** A replaced generation finished its last request: close its modules, and what nothing in force uses. */
  #retiredDrained(gen: Generation): void {
    const i = this.#retired.indexOf(gen);
    if (i === -1) return;
    this.#retired.splice(i, 1);
    if (gen.retireTimer !== null) clearTimeout(gen.retireTimer);
    const live = new Set([this.#gen, ...this.#retired].flatMap((g) => [...g.carried.values()]));
    const carried = [...gen.carried.values()].filter((c) => !live.has(c));
    const backends = this.#retired.length === 0 ? [...this.#retiringBackends.values()] : [];
    if (this.#retired.length === 0) this.#retiringBackends.clear();
    void (async () => {
      await this.#closeBuilt(gen.built);
      for (const c of carried) await this.#dispose(c);
      // No replaced generation has requests left: no request can be on a dropped backend's pool.
      await Promise.all(backends.map((b) => b.destroy().catch(() => {})));
    })();
  }

  async #dispose(c: Carried): Promise<void> {
    try {
      await c.dispose(c.value);
    } catch (err) {
      this.logger.warn({ err }, 'disposing a reused value failed');
    }
  }

  async #closeBuilt(list: readonly Built[]): Promise<void> {
    for (const { name, module, offBus } of [...list].reverse()) {
      for (const off of offBus.splice(0)) off();
      try {
        await module.close?.();
      } catch (err) {
        this.logger.warn({ err, module: name }, 'module close failed');
      }
    }
  }

  /** The config snapshot in force. */
  get config(): Config {
    return this.#configRef.current;
  }

  /** The route table. */
  get routes(): RouteTable {
    return this.#gen.topology.table;
  }

  /** Backends by URL. */
  get backends(): ReadonlyMap<string, Backend> {
    return this.#gen.topology.byUrl;
  }

  get store(): RateLimitStore {
    return this.services.need('store');
  }

  get metrics(): Metrics {
    return this.services.need('metrics');
  }

  get health(): HealthChecker {
    return this.services.need('health');
  }

  get processes(): ProcessManager {
    return this.services.need('processes');
  }

  get authenticator(): Authenticator | null {
    return this.services.get('authenticator') ?? null;
  }

  /** Reloads that took effect since start (0: the config the gateway started with). */
  get generation(): number {
    return this.#gen.id;
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
    for (const { module } of this.#ordered(this.#gen)) await module.start?.();
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
    this.logger.info({ port: this.port, routes: this.#gen.topology.routes.map((r) => r.prefix) }, 'MicroGate listening');
    // Start-up is over: the young generation may grow under traffic again (src/young-generation.ts).
    releaseYoungGeneration();
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
    await this.#gen.topology.destroy();
    await Promise.all([...this.#retiringBackends.values()].map((b) => b.destroy().catch(() => {})));
    this.#retiringBackends.clear();
    this.logger.info('gateway stopped');
    this.logger.flush?.();
  }

  async #drainModules(): Promise<void> {
    const steps: [string, () => Promise<void> | void][] = [...this.#closers].reverse().map((c) => ['closer', c]);
    this.#closers = [];
    for (const { name, module } of this.#ordered(this.#gen, ...this.#retired).reverse()) if (module.drain) steps.push([name, () => module.drain!()]);
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
    const gens = [this.#gen, ...this.#retired];
    for (const g of this.#retired) if (g.retireTimer !== null) clearTimeout(g.retireTimer);
    this.#retired = [];
    await this.#closeBuilt(this.#ordered(...gens));
    for (const c of new Set(gens.flatMap((g) => [...g.carried.values()]))) await this.#dispose(c);
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
    ctx.peerIp = peerIpOf(req.socket);
    ctx.clientIp = this.#clientIp.resolve(ctx.peerIp, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    // The request runs on the generation in force now, to its end, whatever a reload swaps meanwhile.
    const gen = this.#gen;
    gen.inFlight++;
    this.#inFlight++;
    if (url.charCodeAt(0) !== 47 /* / */ || isUnsafePath(path)) {
      ctx.id = requestIdOf(req);
      ctx.decision = 'bad_request';
      gen.fail(ctx, new GatewayError('bad_request', 'Request target must be an absolute path without "." or ".." segments or backslashes'));
      return;
    }
    gen.handle(ctx);
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
    ctx.peerIp = peerIpOf(req.socket);
    ctx.clientIp = this.#clientIp.resolve(ctx.peerIp, this.#readsForwardedFor ? req.headers['x-forwarded-for'] : undefined);
    const gen = this.#gen;
    gen.inFlight++;
    this.#inFlight++;
    if (this.#draining || url.charCodeAt(0) !== 47 || isUnsafePath(path) || isAdminPath(path)) {
      ctx.id = requestIdOf(req);
      gen.fail(ctx, new GatewayError(this.#draining ? 'shutting_down' : 'bad_request'));
      return;
    }
    gen.handleUpgrade(ctx);
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

  /** Writes the JSON error response for ctx (unless one started); the generation's `fail` publishes the record. */
  #writeError(ctx: RequestContext, err: GatewayError): void {
    if (err.code === 'internal_error') this.logger.error({ err: err.cause ?? err, request_id: ctx.id }, 'internal error');
    ctx.errorCode = err.code;
    if (ctx.id === '') ctx.id = requestIdOf(ctx.req);
    const res = ctx.res;
    if (!res.headersSent && !res.destroyed) {
      const extra = ctx.extraHeaders;
      if (extra !== null) for (let i = 0; i < extra.length; i += 2) res.setHeader(extra[i]!, extra[i + 1]!);
      sendError(res, err.status, err.code, err.message, ctx.id, err.headers);
      ctx.responseHeaders = headerListOf(res.getHeaders());
      ctx.responseSecrets = true;
    } else if (!res.writableEnded) {
      res.destroy();
    }
  }

  /** Publishes the one completion record of ctx (the generation's `done` checked it is the first). */
  #publish(ctx: RequestContext): void {
    ctx.finished = true;
    const res = ctx.res;
    const record: CompletionRecord = {
      id: ctx.id,
      idBytes: ctx.idBytes,
      idWord: ctx.idWord,
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
    redactListed(record.requestHeaders as Record<string, unknown>, ctx.req.rawHeaders);
    if (ctx.responseSecrets) redactList(record.responseHeaders);
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
