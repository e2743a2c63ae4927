/**
 * A worker's module list: the gateway's own list (src/modules.ts) with what must exist once left
 * to the primary. Unknown modules are kept as they are, so a module added to the list later runs
 * in every worker unless it is named here.
 *
 * - `store` → the lease store (tokens leased from the primary), unless `cluster.redis_url` is set;
 * - `health` → a follower: it probes nothing, applies the primary's verdicts and reports connect failures;
 * - `metrics`, `processes`, `analytics`, `dashboard` → left out: the primary has them, fed by the records;
 * - `adaptive` → the same module reading the baselines the primary pushes (BaselineFeed), its route
 *   buckets leased from the primary (RouteLeaseStore) unless in Redis; limit changes are announced by the primary;
 * - one module is added: the completion records go to the primary in batches, notices one by one.
 */
import { timersOf, type TimerHandle } from '../clock.js';
import { HealthChecker } from '../health/index.js';
import type { Host, ModuleSpec, ServiceDirectory, Services } from '../host.js';
import type { Backend } from '../balancer/index.js';
import { createAdaptiveModule } from '../adaptive/module.js';
import type { BaselineFeed } from './baselines.js';
import type { LeaseStore } from './ipc-store.js';
import type { RouteLeaseStore } from './route-lease-store.js';
import type { PrimaryToWorker, WorkerToPrimary } from './messages.js';
import { RecordBatcher } from './record-batcher.js';

/** Modules that exist once, in the primary. */
export const PRIMARY_ONLY = new Set(['metrics', 'processes', 'analytics', 'dashboard']);

export interface WorkerWiring {
  send: (msg: WorkerToPrimary) => void;
  /** Sends and calls `sent` once the channel took the message (for the record batches' bound). */
  sendTracked: (msg: WorkerToPrimary, sent: () => void) => void;
  /** Adds a handler of the primary's messages. */
  onMessage: (handler: (msg: PrimaryToWorker) => void) => void;
  /** The lease store, when the limits are not in Redis. */
  leaseStore: LeaseStore | null;
  /** The baselines the primary pushes (for the adaptive module). */
  baselines?: BaselineFeed;
  /** The adaptive route buckets leased from the primary, when not in Redis. */
  routeStore?: RouteLeaseStore | null;
}

export function workerModules(list: readonly ModuleSpec[], wiring: WorkerWiring): ModuleSpec[] {
  const out: ModuleSpec[] = [];
  for (const spec of list) {
    if (PRIMARY_ONLY.has(spec.name)) continue;
    if (spec.name === 'store') out.push(wiring.leaseStore !== null ? leaseStoreModule(wiring.leaseStore) : storeErrorsForwarded(spec, wiring));
    else if (spec.name === 'health') out.push(healthFollowerModule(wiring));
    else if (spec.name === 'adaptive') {
      // Without the primary's baselines there is nothing to act on: left out.
      if (wiring.baselines === undefined) continue;
      const feed = wiring.baselines;
      out.push({
        ...createAdaptiveModule({
          baselines: { routes: feed, backends: feed, onUpdate: (l) => feed.onUpdate(l) },
          routeStore: wiring.routeStore ?? undefined,
          announce: false,
        }),
        enabled: spec.enabled,
      });
    }
    else out.push(spec);
  }
  out.push(recordsModule(wiring));
  return out;
}

function leaseStoreModule(store: LeaseStore): ModuleSpec {
  return {
    name: 'store',
    build(host) {
      host.provide('store', store);
      // Kept across reloads, like the store it replaces: leases and buckets stay where they are.
      return { start: () => store.start(), close: () => store.close(), reload() {} };
    },
  };
}

/**
 * The gateway's own store module (Redis), built with a `metrics` service that only counts failed
 * operations and sends the counts to the primary once a second (its /metrics has
 * gateway_store_errors_total): never one message per failing request.
 */
function storeErrorsForwarded(spec: ModuleSpec, wiring: WorkerWiring): ModuleSpec {
  return {
    name: spec.name,
    enabled: spec.enabled,
    build(host) {
      const counts = new Map<string, number>();
      const timers = timersOf(host.clock);
      let timer: TimerHandle | null = null;
      const flush = (): void => {
        if (timer !== null) timers.clearTimeout(timer);
        timer = null;
        if (counts.size === 0) return;
        wiring.send({ t: 'store-errors', counts: [...counts] });
        counts.clear();
      };
      const counter = {
        storeError(_store: string, op: string): void {
          counts.set(op, (counts.get(op) ?? 0) + 1);
          if (timer === null) {
            timer = timers.setTimeout(flush, 1000);
            (timer as { unref?: () => void }).unref?.();
          }
        },
      };
      const services: ServiceDirectory = {
        get: (name) => (name === 'metrics' ? (counter as unknown as Services['metrics']) : host.services.get(name)) as never,
        need: (name) => (name === 'metrics' ? (counter as unknown as Services['metrics']) : host.services.need(name)) as never,
      };
      const inner = spec.build(Object.create(host, { services: { value: services } }) as Host);
      return {
        ...inner,
        async close() {
          await inner.close?.();
          flush();
        },
      };
    },
  };
}

/** Probes nothing: backends take the primary's verdicts; a connect failure is reported to it (once a second per backend). */
function healthFollowerModule(wiring: WorkerWiring): ModuleSpec {
  return {
    name: 'health',
    build(host) {
      // Offered for modules that read health state; never started, so it never probes.
      const checker = new HealthChecker({ config: host.section('healthcheck'), clock: host.clock });
      for (const b of host.topology.backends()) checker.add(b);
      host.provide('health', checker);
      const lastReport = new Map<string, number>();
      const off = [
        host.topology.onAdded((b) => checker.add(b)),
        host.topology.onConnectFailure((b: Backend) => {
          const now = host.clock.now();
          if ((lastReport.get(b.url) ?? -Infinity) > now - 1000) return;
          lastReport.set(b.url, now);
          wiring.send({ t: 'connect-failure', url: b.url });
        }),
      ];
      wiring.onMessage((msg) => {
        if (msg.t === 'attach') {
          for (const [route, url] of msg.items) {
            try {
              host.topology.addBackend(route, url);
            } catch (err) {
              host.logger.warn({ route, url, err: (err as Error).message }, 'could not join a backend the primary added');
            }
          }
          return;
        }
        if (msg.t !== 'health') return;
        for (const [url, healthy] of msg.states) {
          const b = host.topology.backend(url);
          if (b !== undefined && b !== null) b.healthy = healthy;
        }
      });
      return {
        close() {
          for (const f of off) f();
        },
        // Kept across reloads: it reads the topology in force; backends come and go through its events.
        reload() {},
      };
    },
  };
}

function recordsModule(wiring: WorkerWiring): ModuleSpec {
  return {
    name: 'cluster-records',
    build(host) {
      const batcher = new RecordBatcher({ send: wiring.sendTracked, withHeaders: host.config.current.dashboard.enabled, clock: host.clock });
      const unsubscribe = host.bus.subscribe(batcher.onCompletion);
      // Notices are rare: one message each, to the primary's dashboard stream.
      const offNotices = host.notices.subscribe((n) => {
        try {
          wiring.send({ t: 'notice', event: n.event, data: n.data });
        } catch {
          // The primary is gone.
        }
      });
      return {
        drain: () => batcher.flush(),
        // Kept across reloads: one batcher, one subscription.
        reload() {},
        close() {
          unsubscribe();
          offNotices();
          batcher.flush();
        },
      };
    },
  };
}
