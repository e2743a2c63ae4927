/**
 * The cluster primary: owns what must exist once and never serves proxy traffic. It runs a gateway
 * of its own on a private loopback port (managed processes, health checks, metrics, dashboard,
 * analytics, the admin guard) that workers relay admin requests to, forks `workers` workers on the
 * public port, feeds its completion bus from their record batches, pushes health verdicts to them,
 * owns the rate-limit buckets they lease tokens from, replaces a worker that dies (counted in
 * `gateway_worker_restarts_total`) and, on SIGTERM/SIGINT, drains every worker before it stops.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { Counter, Gauge } from 'prom-client';
import { Backoff } from '../backoff.js';
import { every, timersOf, type TimerHandle } from '../clock.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/index.js';
import { MODULES } from '../modules.js';
import { relayAdmission } from './admin-relay.js';
import type { GatewayFactory } from './embed.js';
import { backendSource, createAdaptiveModule, routeSource } from '../adaptive/module.js';
import type { CompletionRecord } from '../events/index.js';
import type { Host } from '../host.js';
import type { CounterCell } from '../metrics/cells.js';
import { collectBaselines } from './baselines.js';
import { LeaseLedger } from './lease-ledger.js';
import { RouteLedger } from './route-ledger.js';
import { ENV_ADMIN_PORT, ENV_RELAY_SECRET, type BaselinesMessage, type PrimaryToWorker, type WorkerToPrimary } from './messages.js';

export interface PrimaryOptions {
  config: Config;
  logger: Logger;
  workers: number;
  /** The public port (--port), else server.port. */
  port?: number;
  baseDir?: string;
  /** The config file (a reload re-reads it). */
  configFile?: string;
  /** The CLI's createGateway. */
  createGateway: GatewayFactory;
  /** Called once every worker listens, with the public port. */
  onListening?: (port: number) => void;
}

/**
 * Restarting a dead worker: at once after a worker that served 5 s or more, else 100 ms doubling
 * up to 5 s for deaths in a row (a worker that cannot start must not fork in a tight loop).
 */
const WORKER_BACKOFF = { firstMs: 100, maxMs: 5_000, stableMs: 5_000, afterStableMs: 0 };

/** What the primary offers the CLI. */
export interface ClusterPrimary {
  /** Reloads the config file in the primary; when it takes effect, every worker reloads it too. */
  reload(): Promise<void>;
  /** Drains every worker, then stops the primary's gateway. Idempotent. */
  shutdown(): Promise<void>;
  /** Stops at once: SIGKILL to workers, managed processes killed. */
  killNow(): void;
}

/**
 * Starts the primary. Resolves once every worker listens; rejects (after cleaning up) when a worker
 * cannot start (e.g. the port is taken).
 */
export async function runPrimary(opts: PrimaryOptions): Promise<ClusterPrimary> {
  const { config, logger } = opts;
  const secret = randomBytes(24).toString('hex');
  const live = new Set<Worker>();
  /** Backends joined to routes at run time, for workers started later. */
  const attached: [string, string][] = [];
  function onAttached(route: string, url: string): void {
    attached.push([route, url]);
    broadcast({ t: 'attach', items: [[route, url]] });
  }
  const broadcast = (msg: PrimaryToWorker): void => {
    for (const w of live) trySend(w, msg);
  };
  const adaptiveTally = new AdaptiveTally();
  /** The baselines last sent to the workers (a worker that says hello gets them). */
  let lastBaselines: BaselinesMessage | null = null;
  /**
   * After each analysis (checked every second: the analyzer runs at most that often) the workers get
   * the baselines the adaptive layer reads, when they changed; the primary's own adaptive module
   * re-reads them too, so limit changes are announced once, here.
   */
  function pushBaselines(host: Host): () => void {
    let last = '';
    const tick = (): void => {
      // Looked up each time: a reload rebuilds analytics and the adaptive module (this module is kept).
      const analytics = host.services.get('analytics');
      if (analytics === undefined) return;
      const width = host.config.current.analytics.bucket_interval;
      const routes = host.topology.routes.map((r) => r.prefix);
      const msg = collectBaselines(routeSource(analytics, width), backendSource(analytics), routes, [...host.topology.backends()].map((b) => b.url));
      const json = JSON.stringify(msg);
      if (json === last) return;
      last = json;
      lastBaselines = msg;
      broadcast(msg);
      (host.services.get('adaptive') as { refresh?: () => void } | undefined)?.refresh?.();
    };
    return every(host.clock, 1_000, tick);
  }
  const gateway = opts.createGateway(config, {
    logger,
    configFile: opts.configFile,
    baseDir: opts.baseDir,
    echoProcessOutput: true,
    // Workers write their own access log lines; the primary would repeat them.
    modules: [
      ...MODULES.filter((m) => m.name !== 'access-log').map((m) =>
        // The workers decide; the primary counts their adaptive decisions from the records.
        m.name === 'adaptive' ? { ...createAdaptiveModule({ routeCounts: (r) => adaptiveTally.counts(r) }), enabled: m.enabled } : m,
      ),
      {
        // Kept across reloads (it has a reload hook): one set of subscriptions for the primary's life.
        name: 'cluster-primary',
        build(host) {
          const off = [
            host.topology.onAttached((b, route) => onAttached(route.prefix, b.url)),
            host.services.need('health').onChange((b, healthy) => broadcast({ t: 'health', states: [[b.url, healthy]] })),
            host.bus.subscribe(adaptiveTally.onRecord),
          ];
          adaptiveTally.bind(host);
          const stopBaselines = pushBaselines(host);
          off.push(stopBaselines);
          return {
            close: () => off.forEach((f) => f()),
            // A reload took effect here (SIGHUP, --watch, the dashboard's button): the workers read the same file.
            reload: () => broadcast({ t: 'reload' }),
          };
        },
      },
    ],
    cluster: { role: 'primary', admit: relayAdmission(secret) },
  });
  const registry = gateway.metrics.registry;
  const restarts = new Counter({ name: 'gateway_worker_restarts_total', help: 'Workers that died and were replaced', registers: [registry] });
  const recordsDropped = new Counter({
    name: 'gateway_worker_records_dropped_total',
    help: 'Completion records a worker dropped because the primary did not keep up (not in the other metrics)',
    registers: [registry],
  });
  new Gauge({
    name: 'gateway_workers',
    help: 'Worker processes serving traffic',
    registers: [registry],
    collect() {
      this.set(live.size);
    },
  });
  const ledger = new LeaseLedger({ clock: gateway.clock, holders: () => Math.max(1, live.size), maxBuckets: config.ratelimit?.max_buckets });
  const routeLedger = new RouteLedger({ clock: gateway.clock, holders: () => Math.max(1, live.size) });
  const timers = timersOf(gateway.clock);
  const stopSweep = every(timers, 10_000, () => ledger.sweep());

  let stopping = false;
  let started = false;
  const backoff = new Backoff(WORKER_BACKOFF);
  const restartTimers = new Set<TimerHandle>();
  const startedAt = new Map<Worker, number>();

  const healthStates = (): [string, boolean | null][] => [...gateway.backends.values()].map((b) => [b.url, b.healthy]);

  const onMessage = (w: Worker, msg: WorkerToPrimary): void => {
    switch (msg.t) {
      case 'records':
        for (const r of msg.records) gateway.bus.publish(r);
        if (msg.dropped !== undefined && msg.dropped > 0) {
          recordsDropped.inc(msg.dropped);
          logger.warn({ worker: w.id, dropped: msg.dropped }, 'the primary did not keep up with a worker\'s completion records: some were dropped (metrics and the request log miss them)');
        }
        return;
      case 'lease':
        trySend(w, { t: 'leased', grants: msg.asks.map((a) => ledger.grant(w.id, a)) });
        return;
      case 'settle':
        for (const s of msg.items) ledger.settle(w.id, s);
        return;
      case 'route-lease':
        trySend(w, { t: 'route-leased', grants: msg.asks.map((a) => routeLedger.grant(w.id, a)) });
        return;
      case 'route-settle':
        for (const s of msg.items) routeLedger.settle(w.id, s);
        return;
      case 'store-errors':
        for (const [op, n] of msg.counts) for (let i = 0; i < n; i++) gateway.metrics.storeError('redis', op);
        return;
      case 'notice':
        gateway.notices.publish(msg.event, msg.data);
        return;
      case 'hello':
        if (attached.length > 0) trySend(w, { t: 'attach', items: attached });
        trySend(w, { t: 'health', states: healthStates() });
        if (lastBaselines !== null) trySend(w, lastBaselines);
        return;
      case 'connect-failure': {
        const b = gateway.backends.get(msg.url);
        if (b !== undefined) gateway.health.reportConnectFailure(b);
        return;
      }
    }
  };

  const fork = (): Worker => {
    const w = cluster.fork({ [ENV_ADMIN_PORT]: String(gateway.port), [ENV_RELAY_SECRET]: secret, MALLOC_ARENA_MAX: workerArenaMax() });
    live.add(w);
    startedAt.set(w, timers.now());
    w.on('message', (msg: WorkerToPrimary) => onMessage(w, msg));
    w.on('error', (err) => logger.warn({ err, worker: w.id }, 'worker channel error'));
    return w;
  };

  cluster.on('exit', (w, code, signal) => {
    live.delete(w);
    ledger.forget(w.id);
    routeLedger.forget(w.id);
    const began = startedAt.get(w) ?? 0;
    startedAt.delete(w);
    if (stopping || !started) return;
    restarts.inc();
    const delay = backoff.next(timers.now() - began);
    logger.error({ worker: w.id, pid: w.process.pid, code, signal, restart_in_ms: delay }, 'worker died: starting another (its in-flight requests are lost)');
    const timer = timers.setTimeout(() => {
      restartTimers.delete(timer);
      if (!stopping) fork();
    }, delay);
    restartTimers.add(timer);
  });

  let shutdownPromise: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    shutdownPromise ??= (async () => {
      stopping = true;
      for (const t of restartTimers) timers.clearTimeout(t);
      restartTimers.clear();
      stopSweep();
      const deadline = config.server.drain_delay + config.server.shutdown_timeout + 5_000;
      await stopWorkers(live, deadline, logger);
      await gateway.close();
    })();
    return shutdownPromise;
  };
  const killNow = (): void => {
    stopping = true;
    for (const w of live) w.process.kill('SIGKILL');
    gateway.processes.killAllNow();
  };

  try {
    // Managed processes and their first health probes, before any worker takes traffic.
    await gateway.start({ port: 0, host: '127.0.0.1' });
    cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2), execArgv: process.execArgv });
    const port = await new Promise<number>((resolve, reject) => {
      let listening = 0;
      let publicPort = 0;
      const onListening = (_w: Worker, address: { port: number }): void => {
        publicPort = address.port;
        if (++listening === opts.workers) done(null);
      };
      const onExit = (w: Worker, code: number | null): void => done(new Error(`worker ${w.id} exited (code ${code}) before listening`));
      const done = (err: Error | null): void => {
        cluster.off('listening', onListening);
        cluster.off('exit', onExit);
        if (err === null) resolve(publicPort);
        else reject(err);
      };
      cluster.on('listening', onListening);
      cluster.on('exit', onExit);
      for (let i = 0; i < opts.workers; i++) fork();
    });
    started = true;
    logger.info({ workers: opts.workers, port, admin_port: gateway.port }, 'MicroGate cluster listening');
    opts.onListening?.(port);
  } catch (err) {
    stopping = true;
    await stopWorkers(live, 5_000, logger);
    await gateway.close().catch(() => {});
    throw err;
  }

  return {
    async reload() {
      // On success the cluster-primary module's reload hook tells the workers.
      await gateway.reloadFromFile();
    },
    shutdown,
    killNow,
  };
}

/** Tells every worker to drain and waits for their exits; SIGKILL after `deadlineMs`. */
async function stopWorkers(live: Set<Worker>, deadlineMs: number, logger: Logger): Promise<void> {
  const workers = [...live];
  if (workers.length === 0) return;
  const exits = workers.map((w) => (w.isDead() ? Promise.resolve() : new Promise<void>((resolve) => w.process.once('exit', () => resolve()))));
  // A signal, not a message: a worker still starting has no message listener yet, but SIGTERM is
  // either its drain (once it runs) or the default exit (before).
  for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const w of workers) {
      if (!w.isDead()) {
        logger.warn({ worker: w.id, pid: w.process.pid }, 'worker did not drain in time: killing it');
        w.process.kill('SIGKILL');
      }
    }
  }, deadlineMs);
  await Promise.all(exits);
  clearTimeout(timer);
}

function trySend(w: Worker, msg: PrimaryToWorker): void {
  try {
    if (w.isConnected()) w.send(msg);
  } catch {
    // The worker is going away; its exit is handled.
  }
}

/**
 * The workers' adaptive decisions as the primary sees them (their completion records' `adaptive`
 * verdicts): `gateway_adaptive_rejections_total` and the counts of /analytics/routes.
 */
class AdaptiveTally {
  readonly #counts = new Map<string, { decisions: number; refusals: number }>();
  readonly #cells = new Map<string, CounterCell>();
  #host: Host | null = null;

  bind(host: Host): void {
    this.#host = host;
    this.#cells.clear();
  }

  counts(route: string): { decisions: number; refusals: number } {
    return this.#counts.get(route) ?? { decisions: 0, refusals: 0 };
  }

  readonly onRecord = (r: CompletionRecord): void => {
    if (r.route === null || r.verdicts.length === 0) return;
    for (const v of r.verdicts) {
      if (v.policy !== 'adaptive') continue;
      let c = this.#counts.get(r.route);
      if (c === undefined) this.#counts.set(r.route, (c = { decisions: 0, refusals: 0 }));
      c.decisions++;
      if (v.verdict !== 'refuse' && v.verdict !== 'would_refuse') return;
      c.refusals++;
      const mode = v.mode === 'shadow' ? 'shadow' : 'enforce';
      const key = mode + ' ' + r.route;
      let cell = this.#cells.get(key);
      if (cell === undefined) {
        const metrics = this.#host?.services.get('metrics');
        if (metrics === undefined) return;
        cell = metrics.adaptiveRejectionCell(r.route, mode);
        this.#cells.set(key, cell);
      }
      cell.value++;
      return;
    }
  };
}

/**
 * glibc's MALLOC_ARENA_MAX for the workers: the operator's, or 2. With glibc's default (8 arenas a
 * core), V8's background compiles at start leave ~10 MB in a thread's arena in about one start of
 * three, in every worker (docs/configuration.md, "Memory").
 */
function workerArenaMax(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.MALLOC_ARENA_MAX;
  return v !== undefined && v !== '' ? v : '2';
}
