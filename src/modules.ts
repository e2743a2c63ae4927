/**
 * The gateway's parts, in ONE ordered list. The gateway builds them in this order, starts them in
 * this order, and drains and closes them in reverse. Stages run by phase (route → auth → limit →
 * balance → forward), not by list position; within a phase, in list order.
 *
 * Adding a part: one folder under src/ exporting a ModuleSpec (or a small entry here), and one
 * line in MODULES. A module gets only its Host (src/host.ts); none imports gateway.ts.
 */
import { analyticsModule } from './analytics/index.js';
import { auth, createAuthenticator, FailureBudget } from './auth/index.js';
import { GatewayError } from './errors.js';
import { strategyFeedback, type Backend } from './balancer/index.js';
import { mountDashboard } from './dashboard/index.js';
import { healthEndpoint, HealthChecker, livenessEndpoint, readinessEndpoint } from './health/index.js';
import { adaptiveModule } from './adaptive/index.js';
import type { Config, ProcessConfig } from './config/index.js';
import type { Host, Module, ModuleSpec } from './host.js';
import { accessLog } from './logging/index.js';
import { createMetrics } from './metrics/index.js';
import { requestId, type CompiledRoute, type Next, type RequestContext, type RouteTable } from './pipeline/index.js';
import { ProcessManager, startAutoProcesses } from './procman/index.js';
import { BodyWatch, bufferBody, forward, tunnel } from './proxy/index.js';
import { rateLimit } from './ratelimit/index.js';
import { createStore } from './store/index.js';

/** The shared per-client state (token buckets; Redis in cluster mode). First, so every part can use it. */
export const storeModule: ModuleSpec = {
  name: 'store',
  build(host) {
    const cfg = host.config.current;
    const store = createStore(cfg.cluster, cfg.ratelimit, host.clock, {
      onError: (op, err) => {
        host.services.get('metrics')?.storeError('redis', op);
        host.logger.warn({ op, err: (err as Error)?.message }, 'cluster store error: answering from the local fallback');
      },
    });
    host.provide('store', store);
    // Kept across reloads: every consumer's bucket stays where it is (cluster settings need a restart).
    return { start: () => store.start(), close: () => store.close(), reload() {} };
  },
};

/** Prometheus metrics: a completion subscriber and /metrics. Early in the list so it closes late. */
export const metricsModule: ModuleSpec = {
  name: 'metrics',
  build(host) {
    const metrics = createMetrics({
      routes: host.topology.routes.map((r) => r.prefix),
      backends: () => [...host.topology.backends()],
      storeDegraded: () => host.store.degraded,
      collectDefault: host.options.defaultMetrics ?? true,
      onError: (err) => host.logger.error({ err }, 'metrics scrape failed'),
    });
    host.provide('metrics', metrics);
    const unsubscribe = host.bus.subscribe(metrics.onCompletion);
    return {
      admin: { '/metrics': (req, res) => void metrics.handle(req, res) },
      // Kept across reloads: series of new routes and backends are created on first use.
      reload() {},
      close() {
        unsubscribe();
        metrics.close();
      },
    };
  },
};

/** The request ID and the route match: the `route` phase. */
export const routingModule: ModuleSpec = {
  name: 'routing',
  build(host) {
    return { stages: { route: [requestId(), routeStage(host.topology.table)] } };
  },
};

/** The static rate limit (`limit` phase). Built before auth: a failed auth attempt costs a token. */
export const rateLimitModule: ModuleSpec = {
  name: 'ratelimit',
  enabled: (config) => config.ratelimit?.enabled === true,
  build(host) {
    const rl = rateLimit({ config: host.section('ratelimit')!, store: host.store });
    host.provide('rateLimit', rl);
    return { stages: { limit: rl.stage } };
  },
};

/**
 * API keys and JWT (`auth` phase). Auth runs before limits so limits can be per consumer; a failed
 * attempt costs a token from the client IP's bucket (and becomes a 429 when empty).
 */
export const authModule: ModuleSpec = {
  name: 'auth',
  enabled: (config) => config.auth !== undefined && config.auth !== null,
  build(host) {
    const cfg = host.section('auth')!;
    // A reload that leaves the auth section as it is keeps the authenticator (verified tokens, JWKS keys).
    const { value: authenticator, fresh } = host.reuse('authenticator', JSON.stringify(cfg), () => createAuthenticator(cfg, { clock: host.clock }), (a) => a.close());
    host.provide('authenticator', authenticator);
    const rl = host.services.get('rateLimit');
    return {
      stages: {
        auth: auth({
          authenticator,
          stripCredentials: cfg.strip_credentials,
          onFailure: rl === undefined ? undefined : rl.chargeAuthFailure,
          // Credential guessing: a spent address is refused for right and wrong credentials alike until it refills.
          budget: cfg.failure_budget.enabled ? new FailureBudget({ store: host.store, config: cfg.failure_budget }) : undefined,
        }),
      },
      start: () => (fresh ? authenticator.start() : undefined),
    };
  },
};

/** Active health checks of every backend, passive connect-failure signals, and /health. */
export const healthModule: ModuleSpec = {
  name: 'health',
  build(host) {
    const checker = new HealthChecker({
      config: host.section('healthcheck'),
      clock: host.clock,
      onChange: (b, healthy) => host.logger.info({ backend: b.url, healthy }, healthy ? 'backend healthy' : 'backend unhealthy'),
    });
    for (const b of host.topology.backends()) checker.add(b);
    const off = [
      host.topology.onAdded((b) => checker.add(b)),
      // A backend added at run time is checked at once and joins the rotation when healthy.
      host.topology.onAttached((b) => checker.watchStartup([b.url])),
      host.topology.onConnectFailure((b) => checker.reportConnectFailure(b)),
      // A reload dropped it (a backend it adds is `added`): stop probing it.
      host.topology.onRemoved((b) => checker.remove(b)),
    ];
    host.provide('health', checker);
    return {
      admin: {
        '/health': healthEndpoint({
          checker,
          startedAt: host.startedAt,
          clock: host.clock,
          degradedReasons: () => [
            ...(host.store.degraded && !host.config.current.cluster.fail_closed ? ['cluster store unreachable: rate limits answered from local state'] : []),
            ...(host.services.get('analytics')?.degradedReasons() ?? []),
            ...(host.services.get('adaptive')?.degradedReasons?.() ?? []),
          ],
          failingReasons: () => (host.store.degraded && host.config.current.cluster.fail_closed ? ['cluster store unreachable: rate-limited requests answered 503 (fail_closed)'] : []),
        }),
        '/health/live': livenessEndpoint(),
        '/health/ready': readinessEndpoint({ phase: host.lifecycle }),
      },
      start: () => checker.start(),
      // Kept across reloads: backends come and go through the topology events above.
      reload() {},
      close() {
        for (const f of off) f();
        checker.close();
      },
    };
  },
};

/** Managed processes: added and auto-started at start, stopped at close. */
export const processesModule: ModuleSpec = {
  name: 'processes',
  build(host) {
    const opts = host.options;
    const processes = new ProcessManager({ baseDir: opts.baseDir, echo: opts.echoProcessOutput ?? false, clock: host.clock, logger: host.logger });
    host.provide('processes', processes);
    const health = host.services.get('health');
    return {
      async start() {
        const processConfigs = host.section('processes');
        reloadedProcesses.set(processes, processConfigs);
        for (const p of processConfigs) processes.add(p);
        // Backends of a process that just started are probed right away, so they serve within moments.
        if (health !== undefined) {
          processes.on('process', (info) => {
            if (info.status === 'running' && info.port > 0) health.watchStartup(host.topology.backendsOfPort(info.port).map((b) => b.url));
          });
        }
        // Clean start: auto-start processes are through their first probe (or start_timeout) before the gateway listens.
        if (health === undefined) {
          for (const p of processConfigs) if (p.auto_start) await processes.start(p.id).catch((err: Error) => host.logger.error({ process: p.id, err: err.message }, 'could not auto-start process'));
        } else {
          await startAutoProcesses({ manager: processes, processes: processConfigs, probe: health, backendsOf: (port) => host.topology.backendsOfPort(port), clock: host.clock, logger: host.logger });
        }
      },
      reload: (next) => reloadProcesses(host, processes, next),
      close: () => processes.stopAll(),
    };
  },
};

/**
 * A reload's processes: those gone from the file stop and are removed, new ones are added (and
 * started when `auto_start`), changed ones are stopped and replaced. Processes added from the
 * dashboard are not in the file and are left alone.
 */
async function reloadProcesses(host: Host, processes: ProcessManager, next: Config): Promise<void> {
  const before = new Map(reloadedProcesses.get(processes)?.map((p) => [p.id, p]) ?? []);
  reloadedProcesses.set(processes, next.processes);
  const after = new Map(next.processes.map((p) => [p.id, p]));
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const starting = [...after.values()].filter((p) => p.auto_start && !same(before.get(p.id), p));
  // Their routes are in force already: keep them out of rotation until the new process answers a probe.
  for (const p of starting) if (p.port !== undefined) for (const b of host.topology.backendsOfPort(p.port)) if (b.healthy === null) b.healthy = false;
  const stopping: Promise<unknown>[] = [];
  for (const [id, old] of before) {
    if (same(old, after.get(id))) continue;
    const remove = () => processes.remove(id);
    stopping.push(processes.get(id)?.status === 'running' ? processes.stop(id).then(remove, remove) : Promise.resolve(remove()));
  }
  await Promise.all(stopping);
  for (const [id, p] of after) {
    if (same(before.get(id), p)) continue;
    if (processes.has(id)) {
      host.logger.warn({ process: id }, 'config reload: a process with this id is still registered; not replaced');
      continue;
    }
    processes.add(p);
  }
  // Started together and probed, like at start-up (bounded by each start_timeout).
  const health = host.services.get('health');
  const toStart = starting.filter((p) => processes.get(p.id)?.status !== 'running');
  if (health === undefined) {
    for (const p of toStart) await processes.start(p.id).catch((err: Error) => host.logger.error({ process: p.id, err: err.message }, 'could not start process after reload'));
  } else {
    await startAutoProcesses({ manager: processes, processes: toStart, probe: health, backendsOf: (port) => host.topology.backendsOfPort(port), clock: host.clock, logger: host.logger });
  }
  host.logger.info({ processes: [...after.keys()] }, 'processes reloaded');
}
/** The processes of the file last applied, per manager. */
const reloadedProcesses = new WeakMap<ProcessManager, readonly ProcessConfig[]>();

/** Picks the backend (`balance` phase) and feeds each route's strategy the outcome of every response. */
/**
 * Slow request bodies (issue 7): a body up to `server.request_buffer` is read whole before a backend
 * is chosen, and a stalled one times out (408), so a trickling client holds only its own connection.
 * Registered first in the `balance` phase (this module precedes the balancer in the list): after
 * every limit, before a backend connection is taken. Plain requests only; upgrades carry no body.
 */
export const bodyBufferModule: ModuleSpec = {
  name: 'body-buffer',
  build(host) {
    const server = host.section('server');
    const { fail, done } = host.responder;
    return { stages: { balance: { request: bufferBody({ bodyLimit: server.body_limit, bufferBytes: server.request_buffer, timeoutMs: server.body_timeout, fail, done }) } } };
  },
};

export const balancerModule: ModuleSpec = {
  name: 'balancer',
  build(host) {
    const unsubscribe = host.bus.subscribe(strategyFeedback(host.topology.routes, (url) => host.topology.backend(url)));
    return { stages: { balance: balanceStage() }, close: unsubscribe };
  },
};

/** Forwards to the chosen backend (`forward` phase): the HTTP proxy for requests, the tunnel for upgrades. */
export const proxyModule: ModuleSpec = {
  name: 'proxy',
  build(host) {
    const server = host.section('server');
    const stripCredentials = host.section('auth')?.strip_credentials ?? false;
    const { fail, done } = host.responder;
    const onConnectFailure = (b: Backend): void => host.topology.reportConnectFailure(b);
    return {
      stages: {
        forward: {
          request: forward({ bodyLimit: server.body_limit, bodyWatch: new BodyWatch(server.upstream_body_timeout, host.clock), stripCredentials, fail, done, onConnectFailure }),
          upgrade: tunnel({ stripCredentials, idleTimeoutMs: server.tunnel_idle_timeout, fail, done, onConnectFailure }),
        },
      },
    };
  },
};

/** One access-log line per request (when `logging.access_log` and the logger is at info or below). */
export const accessLogModule: ModuleSpec = {
  name: 'access-log',
  enabled: (config) => config.logging.access_log,
  build(host): Module {
    if (!host.logger.isLevelEnabled('info')) return { reload() {} };
    return { close: host.bus.subscribe(accessLog(host.logger)), reload() {} };
  },
};

/** The dashboard: request log, live metrics, SSE, the process API and the UI under /dashboard/. */
export const dashboardModule: ModuleSpec = {
  name: 'dashboard',
  enabled: (config) => config.dashboard.enabled,
  build(host) {
    const dashboard = mountDashboard(
      {
        config: host.config,
        clock: host.clock,
        logger: host.logger,
        startedAt: host.startedAt,
        bus: host.bus,
        notices: host.notices,
        topology: host.topology,
        health: host.services.need('health'),
        processes: host.services.need('processes'),
        mountAdmin: (path, handler) => host.mountAdmin(path, handler),
        reload: () => host.services.need('reloader').reload(),
      },
      host.options.dashboard,
    );
    host.provide('dashboard', dashboard);
    // Kept across reloads: the request log and the SSE clients stay; reload results arrive as `config` notices.
    return { drain: () => dashboard.close(), close: () => dashboard.close(), reload() {} };
  },
};

/** THE list. Start in this order; drain and close in reverse. */
export const MODULES: readonly ModuleSpec[] = [
  storeModule,
  metricsModule,
  routingModule,
  rateLimitModule,
  authModule,
  healthModule,
  processesModule,
  bodyBufferModule,
  balancerModule,
  proxyModule,
  accessLogModule,
  // After the store, metrics and health it reads, before the dashboard whose views read it; it
  // closes (and snapshots) after the dashboard and before the store.
  analyticsModule,
  // After analytics (its baselines) and the static limit (its `limit` stage runs after that one).
  adaptiveModule,
  dashboardModule,
];

/**
 * Stage: finds the route. An unmatched request goes on with ctx.route = null, so it still needs
 * credentials (and costs a token) before it learns that nothing is there: paths cannot be probed.
 */
function routeStage(table: RouteTable) {
  return function routeMatchStage(ctx: RequestContext, next: Next): void {
    ctx.route = table.match(ctx.path);
    next(ctx);
  };
}

/** Stage: picks an available backend (healthy, breaker not open); none → 503. */
function balanceStage() {
  return function balance(ctx: RequestContext, next: Next): void {
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
    next(ctx);
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
