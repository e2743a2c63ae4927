/**
 * Latency-weighted: src/adaptive's LatencyWeightedBalancer over the route's live backend list.
 * Weight = (1 − error rate) / latency² (docs/decisions.md "Weighted balancing"), from a fast
 * per-response peak-EWMA and, once the adaptive module attaches them, the learned backend baselines
 * every `weighted_lb.rebalance_interval`. Power of two choices in proportion to weight ÷ (in-flight + 1).
 */
import type { BackendBaselineSource } from '../../adaptive/sources.js';
import { LatencyWeightedBalancer, type BackendWeight } from '../../adaptive/weighted.js';
import type { Clock } from '../../clock.js';
import type { Backend } from '../backend.js';
import type { Outcome, Strategy, StrategyOptions } from './strategy.js';

export interface WeightedBaselines {
  baselines: BackendBaselineSource;
  rebalanceIntervalMs: number;
  onError?: (err: unknown) => void;
}

export class WeightedStrategy implements Strategy {
  readonly #backends: readonly Backend[];
  readonly #clock: Clock;
  readonly #random: () => number;
  #balancer: LatencyWeightedBalancer<Backend>;
  /** Backends the balancer knows (the route's list is live: one may be pushed at run time). */
  #known: number;

  constructor(backends: readonly Backend[], clock: Clock, random: () => number, baselines: WeightedBaselines | null = null) {
    this.#backends = backends;
    this.#clock = clock;
    this.#random = random;
    this.#balancer = this.#build(baselines, null);
    this.#known = backends.length;
  }

  /** Feeds the balancer learned baselines from now on (keeps each backend's fast EWMA). */
  useBaselines(baselines: WeightedBaselines): void {
    this.#balancer = this.#build(baselines, this.#balancer);
  }

  pick(exclude: Backend | null = null): Backend | null {
    if (this.#backends.length !== this.#known) this.#sync();
    return this.#balancer.pick(exclude);
  }

  feedback(backend: Backend, latencyMs: number, outcome: Outcome): void {
    this.#balancer.onResponse(backend.url, latencyMs, outcome === 'success' ? 'success' : outcome === 'backend_error' ? 'failure' : 'aborted');
  }

  /** A backend's weight relative to the pool mean, or null when not on this route. */
  weight(url: string): number | null {
    return this.#balancer.weight(url);
  }

  weights(): BackendWeight[] {
    return this.#balancer.weights();
  }

  #sync(): void {
    for (const b of this.#backends) this.#balancer.add(b);
    this.#known = this.#backends.length;
  }

  #build(b: WeightedBaselines | null, previous: LatencyWeightedBalancer<Backend> | null): LatencyWeightedBalancer<Backend> {
    return new LatencyWeightedBalancer<Backend>(this.#backends, {
      clock: this.#clock,
      random: this.#random,
      baselines: b?.baselines ?? null,
      rebalanceIntervalMs: b?.rebalanceIntervalMs,
      onError: b?.onError,
      previous: previous as LatencyWeightedBalancer<never> | null,
    });
  }
}

export function weighted(opts: StrategyOptions): Strategy {
  return new WeightedStrategy(opts.backends, opts.clock, opts.random);
}
