/**
 * Balancer: the Backend object (URL, pool, health, breaker), the balancing strategies (one file
 * each under strategies/, looked up by name) and the per-response feedback they receive. A
 * strategy never returns an unhealthy or open backend; it does no I/O.
 */
export { Backend, type BackendOptions, type BreakerGate } from './backend.js';
export {
  BUILTIN_STRATEGIES,
  RandomStrategy,
  RoundRobinStrategy,
  StrategyRegistry,
  type Outcome,
  type Strategy,
  type StrategyFactory,
  type StrategyOptions,
  type StrategyRegistrar,
} from './strategies/index.js';
export { outcomeOf, strategyFeedback } from './feedback.js';
export { RouteTopology, TopologyEvents, TopologyView, isLocalHost, type Topology, type TopologyCarry, type TopologyDiff } from './topology.js';

/** What the proxy needs of a route's strategy (kept for the proxy's retry: `route.selector.pick(exclude)`). */
export type { Strategy as Selector } from './strategies/index.js';
