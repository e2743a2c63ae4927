/** Selection policies. A Selector picks an available backend, skipping unhealthy and open ones. */
import type { Backend } from './backend.js';

export interface Selector {
  /** Picks a backend and reserves it (tryAcquire), or returns null when none is available. `exclude` is skipped (for retries). */
  pick(exclude?: Backend | null): Backend | null;
}

/** Round-robin: the first request goes to the first backend, then in order, skipping unavailable ones. */
export class RoundRobinSelector implements Selector {
  readonly #backends: readonly Backend[];
  #next = 0;

  constructor(backends: readonly Backend[]) {
    this.#backends = backends;
  }

  pick(exclude: Backend | null = null): Backend | null {
    const list = this.#backends;
    const n = list.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const b = list[i]!;
      if (b !== exclude && b.tryAcquire()) {
        this.#next = (i + 1) % n;
        return b;
      }
    }
    return null;
  }
}

/** Uniform random among available backends. */
export class RandomSelector implements Selector {
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
}

export function createSelector(strategy: 'round-robin' | 'random', backends: readonly Backend[]): Selector {
  return strategy === 'random' ? new RandomSelector(backends) : new RoundRobinSelector(backends);
}
