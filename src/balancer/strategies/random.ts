/** Uniform random among available backends. */
import type { Backend } from '../backend.js';
import type { Outcome, Strategy, StrategyOptions } from './strategy.js';

export class RandomStrategy implements Strategy {
  readonly #backends: readonly Backend[];
  readonly #random: () => number;

  constructor(backends: readonly Backend[], random: () => number = Math.random) {
    this.#backends = backends;
    this.#random = random;
  }

  pick(exclude: Backend | null = null): Backend | null {
    const list = this.#backends;
    const n = list.length;
    const start = Math.floor(this.#random() * n);
    // Start at a random place, then walk: still uniform when all are available, and no allocation.
    for (let k = 0; k < n; k++) {
      const b = list[(start + k) % n]!;
      if (b !== exclude && b.tryAcquire()) return b;
    }
    return null;
  }

  /** Uniform choice ignores outcomes (the breaker and health checks act on failures). */
  feedback(_backend: Backend, _latencyMs: number, _outcome: Outcome): void {}
}

export function random(opts: StrategyOptions): Strategy {
  return new RandomStrategy(opts.backends, opts.random);
}
