/** Round-robin: the first request goes to the first backend, then in order, skipping unavailable ones. */
import type { Backend } from '../backend.js';
import type { Outcome, Strategy, StrategyOptions } from './strategy.js';

export class RoundRobinStrategy implements Strategy {
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

  /** Round-robin does not weigh backends: outcomes change nothing (the breaker and health checks act on failures). */
  feedback(_backend: Backend, _latencyMs: number, _outcome: Outcome): void {}
}

export function roundRobin(opts: StrategyOptions): Strategy {
  return new RoundRobinStrategy(opts.backends);
}
