/**
 * Balancing strategies, looked up by name. Each strategy is one file in this folder exporting a
 * StrategyFactory; BUILTIN_STRATEGIES is the one line per strategy. A module can also add one at
 * start-up through its host (`host.strategies.register(name, factory)`), before routes are bound.
 * The config schema's `routes[].strategy` enum names the strategies a config may use.
 */
import { random } from './random.js';
import { roundRobin } from './round-robin.js';
import type { Strategy, StrategyFactory, StrategyOptions } from './strategy.js';

export type { Outcome, Strategy, StrategyFactory, StrategyOptions } from './strategy.js';
export { RoundRobinStrategy } from './round-robin.js';
export { RandomStrategy } from './random.js';

/** Strategies every gateway knows. Adding one: a file here and a line below. */
export const BUILTIN_STRATEGIES: Readonly<Record<string, StrategyFactory>> = {
  'round-robin': roundRobin,
  random,
};

/** Where a strategy is registered (by modules) and created (once per route). */
export interface StrategyRegistrar {
  register(name: string, factory: StrategyFactory): void;
}

export class StrategyRegistry implements StrategyRegistrar {
  readonly #factories = new Map<string, StrategyFactory>();

  constructor(initial: Readonly<Record<string, StrategyFactory>> = BUILTIN_STRATEGIES) {
    for (const [name, factory] of Object.entries(initial)) this.#factories.set(name, factory);
  }

  /** Adds a strategy; a name can be registered once. */
  register(name: string, factory: StrategyFactory): void {
    if (this.#factories.has(name)) throw new Error(`balancing strategy "${name}" is already registered`);
    this.#factories.set(name, factory);
  }

  has(name: string): boolean {
    return this.#factories.has(name);
  }

  names(): string[] {
    return [...this.#factories.keys()];
  }

  /** Builds the named strategy for one route; an unknown name is an error naming the known ones. */
  create(name: string, opts: StrategyOptions): Strategy {
    const factory = this.#factories.get(name);
    if (factory === undefined) throw new Error(`unknown balancing strategy "${name}" (known: ${this.names().join(', ')})`);
    return factory(opts);
  }
}
