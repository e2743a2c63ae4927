/**
 * Circuit breaker: one per backend, implementing the balancer's BreakerGate. It is a passive state
 * machine fed with the verdicts of real requests, evaluated lazily against a Clock. It must not
 * start timers, do I/O or allocate on allow()/success()/failure(), and it never counts the
 * gateway's own 429/503 answers: the caller reports only what the backend did.
 */
export { CircuitBreaker, type BreakerState, type BreakerOptions, type BreakerStats, type BreakerTrip, type BreakerWindow, type WindowTrip } from './circuit-breaker.js';
