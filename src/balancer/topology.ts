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
  /** A reload took a backend object out of the topology (its URL is gone, or it was replaced). */
  onRemoved(listener: Listener<[Backend]>): () => void;
}

/** The listeners of topology events: one set for the gateway's life, shared by every generation's topology. */
export class TopologyEvents {
  added: Listener<[Backend]>[] = [];
  attached: Listener<[Backend, CompiledRoute]>[] = [];
  connectFailure: Listener<[Backend]>[] = [];
  removed: Listener<[Backend]>[] = [];
}

/** What a reload's new topology changed compared with the one it replaces (URLs and prefixes). */
export interface TopologyDiff {
  routes: { added: string[]; removed: string[]; changed: string[] };
  backends: { added: string[]; removed: string[]; changed: string[] };
  /** Backend objects no longer in the topology: their pools close once requests on them finished. */
  dropped: Backend[];
}

/** Where a reload's topology takes its backends from (by URL, so their pools, health and breakers carry over). */
export interface TopologyCarry {
  previous: RouteTopology;
  /** Backends dropped by an earlier reload whose pools are not closed yet: reused if named again. */
  retiring: ReadonlyMap<string, Backend>;
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
  readonly #events: TopologyEvents;
  readonly #carry: TopologyCarry | null;
  /** Backends put on routes at run time (addBackend): a reload keeps them on routes that still exist. */
  #runtime: { prefix: string; url: string }[] = [];

  /**
   * Builds the routes and backends of a config. With `carry` (a reload) a URL the previous
   * topology (or a retiring one) already has reuses its Backend object when its pool settings are
   * the same, and no event fires until `commit()`: a reload that fails changes nothing.
   */
  constructor(config: Config, clock: Clock, logger: Logger, carry?: TopologyCarry) {
    this.#config = config;
    this.#clock = clock;
    this.#logger = logger;
    this.#carry = carry ?? null;
    this.#events = carry === undefined ? new TopologyEvents() : carry.previous.#events;
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
    // Backends added at run time (a process from the dashboard) stay on their routes across a reload.
    for (const r of carry === undefined ? [] : carry.previous.#runtime) {
      const route = this.table.find(r.prefix);
      if (route === undefined || route.prefix !== r.prefix) continue;
      const b = this.#backend(r.url, route.config.health_path ?? config.healthcheck.path);
      if (!route.backends.includes(b)) route.backends.push(b);
      this.#runtime.push(r);
    }
  }

  /**
   * Makes this (reload-built) topology the one in force: compares it with `previous`, gives
   * carried-over backends the new breaker settings when the circuitbreaker section changed (their
   * state restarts closed), and tells the listeners what was removed and added. Synchronous.
   */
  commit(): TopologyDiff {
    const previous = this.#carry?.previous;
    if (previous === undefined) throw new Error('commit() is for a topology built by a reload');
    const routeKey = (r: CompiledRoute) => JSON.stringify([r.config, r.backends.map((b) => b.url)]);
    const before = new Map(previous.routes.map((r) => [r.prefix, routeKey(r)]));
    const after = new Map(this.routes.map((r) => [r.prefix, routeKey(r)]));
    const diff: TopologyDiff = {
      routes: {
        added: [...after.keys()].filter((p) => !before.has(p)),
        removed: [...before.keys()].filter((p) => !after.has(p)),
        changed: [...after.keys()].filter((p) => before.has(p) && before.get(p) !== after.get(p)),
      },
      backends: { added: [], removed: [], changed: [] },
      dropped: [],
    };
    const added: Backend[] = [];
    for (const [url, b] of this.byUrl) {
      const old = previous.byUrl.get(url);
      if (old === undefined) {
        diff.backends.added.push(url);
        added.push(b);
      } else if (old !== b) {
        diff.backends.changed.push(url);
        added.push(b);
      }
    }
    for (const [url, old] of previous.byUrl) {
      if (this.byUrl.get(url) === old) continue;
      if (!this.byUrl.has(url)) diff.backends.removed.push(url);
      diff.dropped.push(old);
    }
    // A backend reused from a retiring one was dropped by an earlier reload: it is added again.
    if (JSON.stringify(previous.#config.circuitbreaker) !== JSON.stringify(this.#config.circuitbreaker)) {
      for (const b of this.byUrl.values()) if (previous.byUrl.get(b.url) === b) b.breaker = this.#breaker(b.url);
    }
    for (const b of diff.dropped) for (const l of this.#events.removed) l(b);
    for (const b of added) for (const l of this.#events.added) l(b);
    return diff;
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
    if (!route.backends.includes(backend)) {
      route.backends.push(backend);
      this.#runtime.push({ prefix: route.prefix, url });
    }
    for (const l of this.#events.attached) l(backend, route);
    return backend;
  }

  reportConnectFailure(backend: Backend): void {
    for (const l of this.#events.connectFailure) l(backend);
  }

  onAdded(listener: Listener<[Backend]>): () => void {
    return this.#on('added', listener);
  }

  onAttached(listener: Listener<[Backend, CompiledRoute]>): () => void {
    return this.#on('attached', listener);
  }

  onConnectFailure(listener: Listener<[Backend]>): () => void {
    return this.#on('connectFailure', listener);
  }

  onRemoved(listener: Listener<[Backend]>): () => void {
    return this.#on('removed', listener);
  }

  #on<K extends keyof TopologyEvents>(kind: K, listener: TopologyEvents[K][number]): () => void {
    const events = this.#events;
    events[kind] = [...events[kind], listener] as TopologyEvents[K];
    return () => void (events[kind] = events[kind].filter((l) => l !== listener) as TopologyEvents[K]);
  }

  /** Closes the pools of the backends this reload-built topology created (a reload that failed). */
  async discard(): Promise<void> {
    const previous = this.#carry?.previous;
    const fresh = [...this.byUrl.values()].filter((b) => previous?.byUrl.get(b.url) !== b && this.#carry?.retiring.get(b.url) !== b);
    await Promise.all(fresh.map((b) => b.destroy().catch(() => {})));
  }

  /** Closes every backend's pool (at shutdown, after the modules closed). */
  async destroy(): Promise<void> {
    await Promise.all([...this.byUrl.values()].map((b) => b.destroy().catch(() => {})));
  }

  /** The one Backend per URL (routes naming the same URL share it; the first route's settings win). */
  #backend(url: string, healthPath: string, connectTimeoutMs = this.#config.server.connect_timeout): Backend {
    let b = this.byUrl.get(url);
    if (!b) {
      const server = this.#config.server;
      const maxInFlight = server.upstream_connections + server.upstream_queue_limit;
      // A reload reuses the object (pool, health, breaker, in-flight count) when its pool settings are the same.
      const carry = this.#carry;
      const carried = carry === null ? undefined : (carry.previous.byUrl.get(url) ?? carry.retiring.get(url));
      const samePools = carry !== null && carry.previous.#config.server.upstream_connections === server.upstream_connections && carry.previous.#config.server.upstream_queue_limit === server.upstream_queue_limit;
      if (carried !== undefined && samePools && carried.healthPath === healthPath && carried.connectTimeoutMs === connectTimeoutMs && carried.maxInFlight === maxInFlight) {
        this.byUrl.set(url, carried);
        return carried;
      }
      b = new Backend(url, {
        connectTimeoutMs,
        connections: server.upstream_connections,
        queueLimit: server.upstream_queue_limit,
        healthPath,
      });
      b.breaker = this.#breaker(url);
      this.byUrl.set(url, b);
      // A reload tells the listeners at commit(), not while the new topology is only being tried.
      if (this.#carry === null) for (const l of this.#events.added) l(b);
    }
    return b;
  }

  #breaker(url: string): CircuitBreaker {
    return new CircuitBreaker(this.#config.circuitbreaker, {
      clock: this.#clock,
      onStateChange: (from, to) => this.#logger.warn({ backend: url, from, to }, `circuit breaker ${to}`),
      onError: (err) => this.#logger.error({ err }, 'breaker listener failed'),
    });
  }
}

/**
 * The topology in force, for parts that live across reloads (health, metrics, the dashboard): every
 * call goes to whatever `resolve()` answers now. Events are shared by all generations anyway.
 */
export class TopologyView implements Topology {
  readonly #resolve: () => Topology;
  constructor(resolve: () => Topology) {
    this.#resolve = resolve;
  }
  get table(): RouteTable {
    return this.#resolve().table;
  }
  get routes(): readonly CompiledRoute[] {
    return this.#resolve().routes;
  }
  route(prefix: string): CompiledRoute | undefined {
    return this.#resolve().route(prefix);
  }
  backend(url: string): Backend | undefined {
    return this.#resolve().backend(url);
  }
  backends(): IterableIterator<Backend> {
    return this.#resolve().backends();
  }
  backendsOfPort(port: number): Backend[] {
    return this.#resolve().backendsOfPort(port);
  }
  addBackend(routePrefix: string, url: string): Backend {
    return this.#resolve().addBackend(routePrefix, url);
  }
  reportConnectFailure(backend: Backend): void {
    this.#resolve().reportConnectFailure(backend);
  }
  onAdded(listener: Listener<[Backend]>): () => void {
    return this.#resolve().onAdded(listener);
  }
  onAttached(listener: Listener<[Backend, CompiledRoute]>): () => void {
    return this.#resolve().onAttached(listener);
  }
  onConnectFailure(listener: Listener<[Backend]>): () => void {
    return this.#resolve().onConnectFailure(listener);
  }
  onRemoved(listener: Listener<[Backend]>): () => void {
    return this.#resolve().onRemoved(listener);
  }
}
