/**
 * Balancer: the Backend object (URL, pool, health, breaker) and the selection policies behind the
 * Selector interface. A Selector never returns an unhealthy or open backend; it does no I/O.
 */
export { Backend, type BackendOptions, type BreakerGate } from './backend.js';
export { RoundRobinSelector, RandomSelector, createSelector, type Selector } from './selector.js';
