/**
 * Routes and backends as every part sees them: the compiled route table and the one Backend per
 * URL (its pool, health flag, breaker). Per-backend state is reached through this interface only;
 * parts that care about backends (health checks, the dashboard, metrics, analytics) subscribe to
 * its events instead of being called by whoever adds a backend.
 */
import type { Clock } from '../clock.js';
import type { Config, RouteConfig } from '../config/index.js';
import { normalizePrefix } from '../config/index.js';
import { CircuitBreaker } from '../breaker/index.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../logging/index.js';
import { RouteTable, type CompiledRoute } from '../pipeline/index.js';
import { Backend } from './backend.js';
import type { Strategy } from './strategies/index.js';
import type { StrategyRegistry } from './strategies/index.js';

type Listener<A extends unknown[]> = (...args: A) => void;

/** The read side and the few run-time changes of routes and backends. */
export interface Topology {
  /** The route table (longest-prefix match). */
  readonly table: RouteTable;
  /** Routes in config order. */
  readonly routes: readonly CompiledRoute[];
  /** A route by its configured prefix. */
  route(prefix: string): CompiledRoute | undefined;
  /** The backend of a URL, if any route names it. */
  backend(url: string): Backend | undefined;
  /** Every backend (shared between routes naming the same URL). */
  backends(): IterableIterator<Backend>;
  /** Backends of a managed process: those on localhost at its port. */
  backendsOfPort(port: number): Backend[];
  /**
   * Adds a backend to a route at run time (e.g. a process added from the dashboard): created if
   * new (`added`), then joined to the route (`attached`). Throws if the route does not exist;
   * idempotent for a URL already on the route.
   */
  addBackend(routePrefix: string, url: string): Backend;
  /** The proxy could not connect to a backend: tells the connect-failure listeners (passive health). */
  reportConnectFailure(backend: Backend): void;
  /** A backend object was created (at start-up, or at run time). */
  onAdded(listener: Listener<[Backend]>): () => void;
  /** addBackend() put a backend on a route at run time. */
  onAttached(listener: Listener<[Backend, CompiledRoute]>): () => void;
  /** The proxy could not connect to a backend. */
  onConnectFailure(listener: Listener<[Backend]>): () => void;
}

function routeBackends(route: RouteConfig): { url: string; health_path?: string }[] {
  const list = route.backends && route.backends.length > 0 ? route.backends : route.backend ? [route.backend] : [];
  return list.map((b) => (typeof b === 'string' ? { url: b } : b));
}

export function isLocalHost(host: string): boolean {
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1';
}

/** Until strategies are bound; a request can never reach it (binding happens before listening). */
const UNBOUND: Strategy = {
  pick() {
    throw new Error('balancing strategy not bound yet');
  },
  feedback() {},
};

export class RouteTopology implements Topology {
  readonly table: RouteTable;
  readonly routes: readonly CompiledRoute[];
  /** URL → Backend. Exposed as a Map for the gateway's compatibility getter (`gateway.backends`). */
  readonly byUrl = new Map<string, Backend>();
  readonly #config: Config;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #added: Listener<[Backend]>[] = [];
  #attached: Listener<[Backend, CompiledRoute]>[] = [];
  #connectFailure: Listener<[Backend]>[] = [];

  constructor(config: Config, clock: Clock, logger: Logger) {
    this.#config = config;
    this.#clock = clock;
    this.#logger = logger;
    // Backends are shared between routes that name the same URL: one pool, one breaker, one health state.
    const compiled: CompiledRoute[] = config.routes.map((rc) => {
      const backends = routeBackends(rc).map((b) =>
        this.#backend(b.url, b.health_path ?? rc.health_path ?? config.healthcheck.path, rc.connect_timeout ?? config.server.connect_timeout),
      );
      return {
        prefix: normalizePrefix(rc.path),
        config: rc,
        backends,
        selector: UNBOUND,
        timeoutMs: rc.timeout ?? config.server.upstream_timeout,
        stripPrefix: rc.strip_prefix,
        isPublic: rc.public,
      };
    });
    this.routes = compiled;
    this.table = new RouteTable(compiled);
    // A configured process with a route serves that route at http://localhost:<port>.
    for (const p of config.processes) {
      if (p.route === undefined || p.port === undefined) continue;
      const route = this.table.find(p.route)!;
      if (!route.backends.some((b) => Number(b.origin.port) === p.port && isLocalHost(b.origin.hostname))) {
        route.backends.push(this.#backend(`http://localhost:${p.port}`, route.config.health_path ?? config.healthcheck.path));
      }
    }
  }

  /** Gives every route its strategy, by name, once every module registered its own. */
  bindStrategies(registry: StrategyRegistry, random: () => number = Math.random): void {
    for (const r of this.routes) {
      r.selector = registry.create(r.config.strategy, { backends: r.backends, route: r.config, clock: this.#clock, random });
    }
  }

  route(prefix: string): CompiledRoute | undefined {
    return this.table.find(prefix);
  }

  backend(url: string): Backend | undefined {
    return this.byUrl.get(url);
  }

  backends(): IterableIterator<Backend> {
    return this.byUrl.values();
  }

  backendsOfPort(port: number): Backend[] {
    return [...this.byUrl.values()].filter((b) => Number(b.origin.port) === port && isLocalHost(b.origin.hostname));
  }

  addBackend(routePrefix: string, url: string): Backend {
    const route = this.table.find(routePrefix);
    if (!route) throw new GatewayError('not_found', `route "${routePrefix}" not found`);
    const backend = this.#backend(url, route.config.health_path ?? this.#config.healthcheck.path);
    if (!route.backends.includes(backend)) route.backends.push(backend);
    for (const l of this.#attached) l(backend, route);
    return backend;
  }

  reportConnectFailure(backend: Backend): void {
    for (const l of this.#connectFailure) l(backend);
  }

  onAdded(listener: Listener<[Backend]>): () => void {
    this.#added = [...this.#added, listener];
    return () => void (this.#added = this.#added.filter((l) => l !== listener));
  }

  onAttached(listener: Listener<[Backend, CompiledRoute]>): () => void {
    this.#attached = [...this.#attached, listener];
    return () => void (this.#attached = this.#attached.filter((l) => l !== listener));
  }

  onConnectFailure(listener: Listener<[Backend]>): () => void {
    this.#connectFailure = [...this.#connectFailure, listener];
    return () => void (this.#connectFailure = this.#connectFailure.filter((l) => l !== listener));
  }

  /** Closes every backend's pool (at shutdown, after the modules closed). */
  async destroy(): Promise<void> {
    await Promise.all([...this.byUrl.values()].map((b) => b.destroy().catch(() => {})));
  }

  /** The one Backend per URL (routes naming the same URL share it; the first route's settings win). */
  #backend(url: string, healthPath: string, connectTimeoutMs = this.#config.server.connect_timeout): Backend {
    let b = this.byUrl.get(url);
    if (!b) {
      b = new Backend(url, {
        connectTimeoutMs,
        connections: this.#config.server.upstream_connections,
        queueLimit: this.#config.server.upstream_queue_limit,
        healthPath,
      });
      b.breaker = new CircuitBreaker(this.#config.circuitbreaker, {
        clock: this.#clock,
        onStateChange: (from, to) => this.#logger.warn({ backend: url, from, to }, `circuit breaker ${to}`),
        onError: (err) => this.#logger.error({ err }, 'breaker listener failed'),
      });
      this.byUrl.set(url, b);
      for (const l of this.#added) l(b);
    }
    return b;
  }
}
