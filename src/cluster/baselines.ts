/**
 * The adaptive layer's baselines in workers. Analytics lives in the primary; after each analysis
 * (and to a worker that says hello) the primary sends what the adaptive layer reads — each route's
 * mean rate and data duration, each backend's latency, error rate and sample size — and a worker's
 * {@link BaselineFeed} answers the adaptive module's baseline lookups from the last message.
 */
import type { BackendBaseline, BackendBaselineSource, RouteBaseline, RouteBaselineSource } from '../adaptive/sources.js';
import type { BaselinesMessage, PrimaryToWorker } from './messages.js';

/** The primary's side: the message for what `routes` and `backends` read now. */
export function collectBaselines(
  routes: RouteBaselineSource,
  backends: BackendBaselineSource,
  routeNames: Iterable<string>,
  backendUrls: Iterable<string>,
): BaselinesMessage {
  const msg: BaselinesMessage = { t: 'baselines', routes: [], backends: [] };
  for (const r of routeNames) {
    const b = routes.baseline(r);
    if (b !== null) msg.routes.push([r, b.avgRatePerMin, b.dataMs]);
  }
  for (const u of backendUrls) {
    const b = backends.backend(u);
    if (b !== null) msg.backends.push([u, b.latencyMs, b.errorRate, b.sampleSize]);
  }
  return msg;
}

/** The worker's side: baseline sources fed by the primary's messages. */
export class BaselineFeed implements RouteBaselineSource, BackendBaselineSource {
  #routes = new Map<string, RouteBaseline>();
  #backends = new Map<string, BackendBaseline>();
  readonly #listeners: (() => void)[] = [];

  baseline(route: string): RouteBaseline | null {
    return this.#routes.get(route) ?? null;
  }

  backend(url: string): BackendBaseline | null {
    return this.#backends.get(url) ?? null;
  }

  /** Calls `listener` after each update; returns the unsubscribe. */
  onUpdate(listener: () => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Takes a `baselines` message; returns true when the message was one. */
  receive(msg: PrimaryToWorker): boolean {
    if (msg.t !== 'baselines') return false;
    const routes = new Map<string, RouteBaseline>();
    for (const [r, avgRatePerMin, dataMs] of msg.routes) routes.set(r, { avgRatePerMin, dataMs });
    const backends = new Map<string, BackendBaseline>();
    for (const [u, latencyMs, errorRate, sampleSize] of msg.backends) backends.set(u, { latencyMs, errorRate, sampleSize });
    this.#routes = routes;
    this.#backends = backends;
    for (const l of [...this.#listeners]) l();
    return true;
  }
}
